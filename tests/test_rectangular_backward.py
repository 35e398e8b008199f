"""The CPU's svd backward of tall / wide input: the SoA tiles against batched BLAS.

safesvd._testing.cpu_fused_rectangular(m) (a test hook, csrc/testing.h) switches the
rectangular shapes that csrc/cpu/cpu.cpp (backward_fused_cpu) gives to the SoA tiles (a
short side <= 8, m n <= 16384) back to the batched path (products by batched BLAS). Both take
every decision in kernels::svd_build_J, so on input where no decision sits at a
threshold they differ only by rounding: with well-separated singular values the
difference is a small multiple of eps times the size of the gradient. Exactly
repeated and exactly zero singular values (the guard's and the complement term's
decisions) and the ends of the exponent range are included.
"""

import contextlib

import pytest
import torch

import safesvd
from safesvd._testing import cpu_fused_rectangular

# Shapes the SoA tiles take (a short side above 8 is batched in both modes at this B).
SHAPES = [(8, 3), (3, 8), (12, 4), (5, 1), (1, 6), (64, 8), (8, 64), (256, 8), (40, 7)]
SETS = ["separated", "repeated", "rankdef", "tiny", "huge"]
SCALE = {"tiny": {torch.float32: 2.0**-100, torch.float64: 2.0**-1000},
         "huge": {torch.float32: 2.0**100, torch.float64: 2.0**1000}}
B = 37


@contextlib.contextmanager
def fused_rectangular(mode):
    previous = cpu_fused_rectangular(mode)
    try:
        yield
    finally:
        cpu_fused_rectangular(previous)


def orth(B, m, k, g):
    q, r = torch.linalg.qr(torch.randn(B, m, k, dtype=torch.float64, generator=g))
    return q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)


def make_A(kind, m, n, dtype, g, B=B):
    k = min(m, n)
    # Relative gaps >= 0.1 / k between the singular values: rounding stays near eps.
    s = torch.linspace(2.0, 1.0, k, dtype=torch.float64).expand(B, k).clone()
    s = s * (1 + 0.02 / k * torch.rand(B, k, dtype=torch.float64, generator=g))
    if kind == "repeated" and k >= 2:
        s[:, 1] = s[:, 0]
    elif kind == "rankdef":
        s[:, -1] = 0
    A = (orth(B, m, k, g) * s.unsqueeze(-2)) @ orth(B, n, k, g).mT
    return (A * SCALE[kind][dtype]).to(dtype) if kind in SCALE else A.to(dtype)


def backward(A, cot, mode):
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    with fused_rectangular(mode):
        return torch.ops.safesvd._svd_backward(*cot(U, S, Vh), U, S, Vh, "pinv", None, None)


def test_mode_switch():
    prev = cpu_fused_rectangular(-1)
    assert prev in (0, 1)
    with fused_rectangular(0):
        assert cpu_fused_rectangular(-1) == 0
    assert cpu_fused_rectangular(-1) == prev
    with pytest.raises(ValueError):
        cpu_fused_rectangular(2)


# Small batches outside the SoA's range: the per-matrix kernel at its runtime size (B m n k
# <= 32768) against the batched path.
SMALL_BATCHES = [((24, 20), 1), ((20, 24), 2), ((64, 12), 3), ((100, 10), 1), ((12, 10), 16), ((10, 12), 5)]


def _fused_matches_batched(shape, kind, dtype, B):
    m, n = shape
    g = torch.Generator().manual_seed(m * 1000 + n + SETS.index(kind))
    A = make_A(kind, m, n, dtype, g, B)
    draws = [torch.randn(B, m, min(m, n), generator=g, dtype=torch.float64).to(dtype),
             torch.randn(B, min(m, n), generator=g, dtype=torch.float64).to(dtype),
             torch.randn(B, min(m, n), n, generator=g, dtype=torch.float64).to(dtype)]
    for present in [(True, True, True), (True, False, False), (False, False, True), (False, True, False)]:
        cot = lambda U, S, Vh: [d if p else None for d, p in zip(draws, present)]
        gA_f, gauge_f = backward(A, cot, 1)
        gA_b, gauge_b = backward(A, cot, 0)
        scale = gA_b.abs().amax(dim=(-2, -1), keepdim=True).clamp_min(torch.finfo(dtype).tiny)
        assert torch.isfinite(gA_f).all()
        err = ((gA_f - gA_b).abs() / scale).max().item()
        assert err <= 64 * max(m, n) * torch.finfo(dtype).eps, (present, err)
        # The same gauge notes: the residual to rounding, the pair exactly.
        torch.testing.assert_close(gauge_f[:, 0], gauge_b[:, 0], rtol=1e-3, atol=1e-3)
        big = gauge_b[:, 0] > 1e-2
        assert torch.equal(gauge_f[big, 1:], gauge_b[big, 1:])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", SETS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_fused_matches_batched(shape, kind, dtype):
    _fused_matches_batched(shape, kind, dtype, B)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", SETS)
@pytest.mark.parametrize("shape, batch", SMALL_BATCHES, ids=lambda s: f"{s[0]}x{s[1]}" if isinstance(s, tuple) else f"B{s}")
def test_small_batch_per_matrix_matches_batched(shape, batch, kind, dtype):
    _fused_matches_batched(shape, kind, dtype, batch)


def test_through_autograd_matches_torch():
    """The public path on tall and wide shapes (the SoA tiles; 40x12, 12x40: batched BLAS
    with the SoA J builder), against torch's gradient of a loss that does not depend on the
    singular vectors' signs."""
    g = torch.Generator().manual_seed(3)
    for m, n in [(8, 3), (3, 8), (64, 8), (40, 12), (12, 40)]:
        A = make_A("separated", m, n, torch.float64, g).requires_grad_()
        W = torch.randn(B, m, n, dtype=torch.float64, generator=g)
        w = torch.randn(B, min(m, n), dtype=torch.float64, generator=g)

        def loss(svd):
            U, S, Vh = svd(A, full_matrices=False)
            return ((U * S.unsqueeze(-2)) @ Vh * W).sum() + (S * w).sum() + (U @ U.mT * W[..., :1]).sum()

        (ours,) = torch.autograd.grad(loss(safesvd.svd), A)
        (ref,) = torch.autograd.grad(loss(torch.linalg.svd), A)
        torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("shape, batch", [((24, 20), 1), ((20, 24), 2), ((100, 10), 3)])
def test_small_batch_takes_the_per_matrix_kernel(shape, batch):
    """Routing (csrc/cpu/cpu.cpp, backward_fused_cpu): a small batch outside the SoA's range
    makes no batched product in mode 1 and does in mode 0; a batch above the limit makes
    them in both."""
    def products(A, mode):
        U, S, Vh = torch.linalg.svd(A, full_matrices=False)
        cot = [torch.randn_like(U), torch.randn_like(S), torch.randn_like(Vh)]
        with fused_rectangular(mode), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as p:
            torch.ops.safesvd._svd_backward(*cot, U, S, Vh, "pinv", None, None)
        return sum(e.name in ("aten::bmm", "aten::matmul", "aten::baddbmm") for e in p.events())

    m, n = shape
    small = torch.randn(batch, m, n, dtype=torch.float64)
    assert products(small, 1) == 0 and products(small, 0) > 0
    large = torch.randn(32768 // (m * n * min(m, n)) + 1, m, n, dtype=torch.float64)
    assert products(large, 1) > 0

"""The CPU's SoA backward (docs/soa_backward.md) against the per-matrix kernels.

safesvd._testing.cpu_soa_mode(m) (a test hook, csrc/testing.h) switches the CPU
backward: 1 the SoA tiles (default), 2 the per-matrix fused kernels over the same
range, 0 as before the SoA backward existed. Every decision is the per-matrix kernels' and every sum
runs in their order without FMA contraction, so on x86-64 (per-matrix kernels
compiled for the baseline, no FMA) the results agree bit for bit on every input,
degenerate ones included; elsewhere (a baseline with FMA, where the compiler
may contract the per-matrix kernels) only to rounding, on well-posed input.
"""

import contextlib
import itertools
import platform
import warnings

import pytest
import torch

import safesvd
from safesvd._testing import cpu_soa_calls, cpu_soa_mode


EXACT = platform.machine().lower() in ("x86_64", "amd64")
GUARDS = ["pinv", "lorentz", "clamp", "none"]
DTYPES = [torch.float32, torch.float64]
SETS = ["random", "repeated", "rankdef", "near", "tiny", "huge"]
B_ODD = 37  # not a multiple of any tile width (4, 8, 16)


@contextlib.contextmanager
def soa_mode(mode):
    previous = cpu_soa_mode(mode)
    try:
        yield
    finally:
        cpu_soa_mode(previous)


def rand_orth(B, n, g):
    q, r = torch.linalg.qr(torch.randn(B, n, n, dtype=torch.float64, generator=g))
    return q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)


def spectrum(kind, B, n, dtype, g):
    s = torch.rand(B, n, dtype=torch.float64, generator=g) + 0.5
    if kind == "repeated" and n >= 2:  # exactly repeated pairs and a triple
        s[:, 1] = s[:, 0]
        if n >= 5:
            s[:, 4] = s[:, 3] = s[:, 2]
    elif kind == "rankdef":  # one zero singular value; two (a doubly-zero pair) in half the batch
        s[:, -1] = 0
        if n >= 3:
            s[: B // 2, -2] = 0
    elif kind == "near" and n >= 2:  # a pair at a relative gap of about the guard tolerance, and 1e3 x that
        gap = 1e-13 if dtype == torch.float64 else 1e-6
        s[:, 1] = s[:, 0] * (1 + torch.where(torch.arange(B) % 2 == 0, gap, gap * 1e3))
    return s


# Exactly repeated spectra at the ends of the exponent range (subnormal for float32 "tiny").
SCALE = {"tiny": {torch.float32: 2.0**-135, torch.float64: 2.0**-1060},
         "huge": {torch.float32: 2.0**120, torch.float64: 2.0**1015}}


def rand_orth_cols(B, m, k, g):
    """(B, m, k) with orthonormal columns."""
    q, r = torch.linalg.qr(torch.randn(B, m, k, dtype=torch.float64, generator=g))
    return q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)


def make_A(kind, B, n, dtype, g, m=None):
    """B matrices m x n (m = n by default) with the spectrum of `kind`."""
    m = n if m is None else m
    k = min(m, n)
    if kind == "random":
        return torch.randn(B, m, n, dtype=torch.float64, generator=g).to(dtype)
    s = spectrum("repeated" if kind in SCALE else kind, B, k, dtype, g)
    A = (rand_orth_cols(B, m, k, g) * s.unsqueeze(-2)) @ rand_orth_cols(B, n, k, g).mT
    return (A * SCALE[kind][dtype]).to(dtype) if kind in SCALE else A.to(dtype)


def svd_cotangents(U, S, Vh, g, invariant):
    """Random cotangents, or those of the basis-independent loss <W, U diag(S) Vh>."""
    f = lambda t: torch.randn(t.shape, dtype=torch.float64, generator=g).to(t.dtype)
    if not invariant:
        return f(U), f(S), f(Vh)
    W = f(U @ Vh)
    return W @ (Vh.mT * S.unsqueeze(-2)), torch.einsum("bik,bij,bkj->bk", U, W, Vh), (S.unsqueeze(-1) * U.mT) @ W


def assert_same(a, b, tol=None):
    if EXACT and tol is None:
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)
    else:
        torch.testing.assert_close(a, b, rtol=tol or 0, atol=0, equal_nan=True)


def both(fn):
    with soa_mode(1):
        soa = fn()
    with soa_mode(2):
        ref = fn()
    return soa, ref


def test_mode_switch():
    prev = cpu_soa_mode(-1)
    assert prev in (0, 1, 2)
    with soa_mode(0):
        assert cpu_soa_mode(-1) == 0
    assert cpu_soa_mode(-1) == prev
    with pytest.raises(ValueError):
        cpu_soa_mode(3)


# Tall and wide: every short side 1..8 and 16, long sides near it and far from it (one
# instance per short side serves them all, the long side at run time).
RECT_SHAPES = [(8, 3), (3, 8), (12, 4), (5, 1), (1, 6), (9, 8), (2, 7), (40, 8), (8, 33), (6, 5), (7, 13),
               (40, 16), (16, 17)]
# The batched backward (J by the SoA builder, k at run time); the float64 tall / wide
# ones take the fused per-matrix kernel in both modes.
BATCHED_SHAPES = [(9, 9), (16, 16), (24, 24), (40, 12), (12, 40), (20, 9)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", SETS)
@pytest.mark.parametrize("shapes", ["square", "rectangular", "batched"])
def test_svd_matches_per_matrix(dtype, kind, shapes):
    """Square n = 1..8 and tall / wide input (the complement terms of the rectangular
    backward included): the SoA tiles against the per-matrix kernel; larger shapes
    ("batched": products by batched BLAS) the SoA J builder against the per-matrix one.
    Every guard and every subset of the cotangents."""
    g = torch.Generator().manual_seed(1000 * SETS.index(kind) + 10 * DTYPES.index(dtype) + (shapes == "square"))
    well_posed = kind == "random"
    if not (EXACT or well_posed):
        pytest.skip("degenerate input agrees bit for bit only without FMA contraction")
    tol = None if EXACT else (1e-10 if dtype == torch.float64 else 1e-4)
    for m, n in {"square": [(n, n) for n in range(1, 9)], "rectangular": RECT_SHAPES, "batched": BATCHED_SHAPES}[shapes]:
        # U, Vh column-major (LAPACK)
        U, S, Vh = torch.linalg.svd(make_A(kind, B_ODD, n, dtype, g, m=m), full_matrices=False)
        if kind in SCALE and not torch.isfinite(S).all():
            continue
        for invariant in (False, True):
            cot = svd_cotangents(U, S, Vh, g, invariant)
            for guard in GUARDS:
                # Every subset of the random cotangents; the invariant loss needs all three.
                for mask in itertools.product((0, 1), repeat=3) if not invariant else [(1, 1, 1)]:
                    if not any(mask):
                        continue
                    gU, gS, gVh = (c if keep else None for c, keep in zip(cot, mask))
                    (gA1, gauge1), (gA2, gauge2) = both(
                        lambda: torch.ops.safesvd._svd_backward(gU, gS, gVh, U, S, Vh, guard, None, None))
                    assert gA1.shape == (B_ODD, m, n)
                    assert_same(gA1, gA2, tol)
                    assert_same(gauge1, gauge2, tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", SETS)
@pytest.mark.parametrize("sizes", ["small", "batched"])
def test_eigh_matches_per_matrix(dtype, kind, sizes):
    """n = 1..8: the SoA tiles; n = 9, 16, 24 (products by batched BLAS): the SoA J
    builder; against the per-matrix kernels."""
    g = torch.Generator().manual_seed(100 * SETS.index(kind) + 10 * DTYPES.index(dtype) + (sizes == "small"))
    if not (EXACT or kind == "random"):
        pytest.skip("degenerate input agrees bit for bit only without FMA contraction")
    tol = None if EXACT else (1e-10 if dtype == torch.float64 else 1e-4)
    for n in range(1, 9) if sizes == "small" else [9, 16, 24]:
        if kind == "random":
            X = torch.randn(B_ODD, n, n, dtype=torch.float64, generator=g)
            A = (X + X.mT).to(dtype)
        else:
            lam = spectrum("repeated" if kind in SCALE else kind, B_ODD, n, dtype, g)
            lam = lam * torch.where(torch.rand(B_ODD, n, generator=g) < 0.3, -1.0, 1.0)
            Q = rand_orth(B_ODD, n, g)
            A = (Q * lam.unsqueeze(-2)) @ Q.mT
            A = (A * SCALE[kind][dtype] if kind in SCALE else A).to(dtype)
        L, Q = torch.linalg.eigh(A)
        f = lambda t: torch.randn(t.shape, dtype=torch.float64, generator=g).to(t.dtype)
        Wm = f(A)
        Wm = Wm + Wm.mT
        cotangents = [(f(L), f(Q)),  # random
                      (torch.einsum("bki,bkl,bli->bi", Q, Wm, Q), 2 * (Wm @ Q) * L.unsqueeze(-2))]  # <W, A>
        for gL_, gQ_ in cotangents:
            for guard in GUARDS:
                for gL, gQ in [(gL_, gQ_), (None, gQ_), (gL_, None)]:
                    (gA1, gauge1), (gA2, gauge2) = both(
                        lambda: torch.ops.safesvd._eigh_backward(gL, gQ, L, Q, guard, None, None))
                    assert_same(gA1, gA2, tol)
                    assert_same(gauge1, gauge2, tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B", [0, 1, 5, 16, 17, 1000])
@pytest.mark.parametrize("shape", [(3, 3), (7, 3), (2, 9)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_batch_sizes_and_strides(dtype, B, shape):
    g = torch.Generator().manual_seed(B)
    m, n = shape
    A = torch.randn(2 * B, m, n, dtype=torch.float64, generator=g).to(dtype)
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    gU, gS, gVh = svd_cotangents(U, S, Vh, g, invariant=False)
    layouts = {
        "contiguous": lambda t: t.contiguous(),
        "transposed": lambda t: t.mT.contiguous().mT if t.dim() == 3 else t,
        "batch-strided": lambda t: torch.repeat_interleave(t, 2, dim=0)[::2],
        "expanded": lambda t: t[:1].expand_as(t),
    }
    for name, lay in layouts.items():
        args = [lay(t) for t in (gU, gS, gVh, U, S, Vh)]
        (gA1, gauge1), (gA2, gauge2) = both(lambda: torch.ops.safesvd._svd_backward(*args, "pinv", None, None))
        assert gA1.shape == (2 * B, m, n) and gauge1.shape == (2 * B, 3), name
        assert_same(gA1, gA2, None if EXACT else 1e-4)
        assert_same(gauge1, gauge2, None if EXACT else 1e-4)
        # A contiguous copy gives the same values as the strided views.
        (gA3, _), _ = both(lambda: torch.ops.safesvd._svd_backward(*[t.contiguous() for t in args], "pinv", None, None))
        assert_same(gA1, gA3, None if EXACT else 1e-4)
    if m != n:
        return
    L, Q = torch.linalg.eigh(A + A.mT)
    gL, gQ = torch.randn(L.shape, generator=g).to(dtype), torch.randn(Q.shape, generator=g).to(dtype)
    for lay in layouts.values():
        args = [lay(t) for t in (gL, gQ, L, Q)]
        (gA1, gauge1), (gA2, gauge2) = both(lambda: torch.ops.safesvd._eigh_backward(*args, "pinv", None, None))
        assert_same(gA1, gA2, None if EXACT else 1e-4)
        assert_same(gauge1, gauge2, None if EXACT else 1e-4)


@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_against_torch_autograd(n):
    """Well-posed float64 input: the SoA backward is torch's gradient to 1e-10 relative."""
    A = torch.randn(40, n, n, dtype=torch.float64)
    gU, gS, gVh = torch.randn(40, n, n, dtype=torch.float64), torch.randn(40, n, dtype=torch.float64), torch.randn(
        40, n, n, dtype=torch.float64)
    A_ = A.clone().requires_grad_()
    U, S, Vh = torch.linalg.svd(A_)
    (ref,) = torch.autograd.grad([U, S, Vh], [A_], [gU, gS, gVh])
    for guard in GUARDS:
        with soa_mode(1):
            gA, _ = torch.ops.safesvd._svd_backward(gU, gS, gVh, U.detach(), S.detach(), Vh.detach(), guard, None, None)
        torch.testing.assert_close(gA, ref, rtol=1e-10, atol=1e-10 * ref.abs().max().item())
    X = torch.randn(40, n, n, dtype=torch.float64)
    A_ = (X + X.mT).requires_grad_()
    L, Q = torch.linalg.eigh(A_)
    gL, gQ = torch.randn_like(L), torch.randn_like(Q)
    (ref,) = torch.autograd.grad([L, Q], [A_], [gL, gQ])
    with soa_mode(1):
        gA, _ = torch.ops.safesvd._eigh_backward(gL, gQ, L.detach(), Q.detach(), "pinv", None, None)
    # torch symmetrizes the gradient of eigh's input; compare the symmetric parts.
    sym = lambda t: 0.5 * (t + t.mT)
    torch.testing.assert_close(sym(gA), sym(ref), rtol=1e-10, atol=1e-10 * ref.abs().max().item())


def test_routing_outside_range():
    """Complex, n > 8, a short side 9..15 or > 16 and tall / wide input above 16384
    entries (2048 for the short side 16) keep the per-matrix / batched paths; n = 8 real and tall / wide real with a
    short side <= 8 or 16 take the SoA (before: batched BLAS or the per-matrix kernel)
    and agree with them to rounding."""
    g = torch.Generator().manual_seed(7)
    for shape, dtype in [((37, 4, 3), torch.float64), ((37, 3, 5), torch.float32), ((37, 3, 3), torch.complex128),
                         ((9, 9, 9), torch.float64), ((37, 8, 8), torch.float64), ((37, 8, 8), torch.float32),
                         ((5, 24, 9), torch.float32), ((3, 2049, 8), torch.float64), ((3, 8, 2049), torch.float32),
                         ((37, 100, 8), torch.float32), ((5, 24, 16), torch.float64), ((5, 16, 70), torch.float32),
                         ((5, 24, 15), torch.float64), ((5, 17, 24), torch.float32), ((3, 129, 16), torch.float64),
                         ((3, 16, 128), torch.float32)]:
        A = torch.randn(shape, dtype=torch.float64, generator=g).to(dtype)
        for full in (False, True):
            U, S, Vh = torch.linalg.svd(A, full_matrices=full)
            gU, gS, gVh = torch.randn_like(U), torch.randn_like(S), torch.randn_like(Vh)
            out = {}
            for mode in (0, 1, 2):
                calls = cpu_soa_calls()
                with soa_mode(mode):
                    out[mode] = torch.ops.safesvd._svd_backward(gU, gS, gVh, U, S, Vh, "pinv", None, None)
                k, mn = min(shape[1:]), shape[1] * shape[2]
                in_range = dtype in DTYPES and (
                    (k <= 8 and (shape[1] == shape[2] or mn <= 16384)) or (k == 16 and shape[1] != shape[2]
                                                                           and mn <= 2048))
                assert cpu_soa_calls() - calls == int(mode == 1 and in_range), (shape, dtype, mode)
            tol = 1e-10 if dtype in (torch.float64, torch.complex128) else 1e-4
            for mode in (1, 2):
                torch.testing.assert_close(out[mode][0], out[0][0], rtol=tol, atol=tol * out[0][0].abs().max().item())


def test_builder_routing():
    """The SoA J builder runs the batched backward's J for real input (square n > 8, tall
    / wide with a short side 9..15 or > 16), in mode 1 only; complex input and the shapes
    of the fused kernels (n <= 8, tall / wide with a short side <= 8 or 16, a small batch of
    square matrices: test_small_square_batches_take_the_runtime_size_kernel, a small batch
    of rectangular ones, B m n k <= 32768: tests/test_rectangular_backward.py) do not reach it."""
    g = torch.Generator().manual_seed(11)
    for shape, dtype, expect in [((40, 9, 9), torch.float64, 1), ((5, 33, 33), torch.float32, 1),
                                 ((5, 9, 9), torch.float64, 0),
                                 ((7, 40, 12), torch.float32, 1), ((7, 12, 40), torch.float32, 1),
                                 ((7, 40, 12), torch.float64, 1), ((5, 40, 12), torch.float64, 0),
                                 ((5, 9, 9), torch.complex128, 0),
                                 ((5, 3, 3), torch.float64, 0), ((5, 40, 8), torch.float64, 0),
                                 ((5, 40, 16), torch.float64, 0), ((5, 16, 40), torch.float32, 0)]:
        A = torch.randn(shape, dtype=torch.float64, generator=g).to(dtype)
        U, S, Vh = torch.linalg.svd(A, full_matrices=False)
        gU, gS, gVh = torch.randn_like(U), torch.randn_like(S), torch.randn_like(Vh)
        for mode in (1, 2):
            calls = cpu_soa_calls("builder")
            with soa_mode(mode):
                torch.ops.safesvd._svd_backward(gU, gS, gVh, U, S, Vh, "pinv", None, None)
            assert cpu_soa_calls("builder") - calls == (expect if mode == 1 else 0), (shape, dtype, mode)
        if shape[1] == shape[2]:
            L, Q = torch.linalg.eigh(A + A.mH)
            calls = cpu_soa_calls("builder")
            with soa_mode(1):
                torch.ops.safesvd._eigh_backward(torch.randn_like(L), torch.randn_like(Q), L, Q, "pinv", None, None)
            assert cpu_soa_calls("builder") - calls == expect, (shape, dtype)
    with pytest.raises(KeyError):
        cpu_soa_calls("other")


@pytest.mark.parametrize("dtype", DTYPES)
def test_gauge_warnings(dtype):
    """The Python gauge check reads the same gauge output: a basis-dependent loss on
    exactly repeated singular values warns in both modes, an invariant one in neither."""
    g = torch.Generator().manual_seed(3)
    A = make_A("repeated", 33, 3, dtype, g)
    for mode in (1, 2):
        with soa_mode(mode):
            for loss, expect in [(lambda U, S, Vh: (U[..., :, 0] ** 3).sum(), True),
                                 (lambda U, S, Vh: ((U * S.unsqueeze(-2)) @ Vh).pow(2).sum(), False)]:
                A_ = A.clone().requires_grad_()
                with warnings.catch_warnings(record=True) as w:
                    warnings.simplefilter("always")
                    U, S, Vh = safesvd.svd(A_)
                    loss(U, S, Vh).backward()
                got = any(issubclass(x.category, safesvd.GaugeWarning) for x in w)
                assert got == expect, (mode, expect)
            # eigh: the same on an exactly repeated eigenvalue.
            Q = rand_orth(33, 3, g).to(dtype)
            Ae = (Q * torch.tensor([1.0, 1.0, 2.0], dtype=dtype)) @ Q.mT
            Ae_ = Ae.clone().requires_grad_()
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                L, Qo = safesvd.eigh(Ae_)
                (Qo[..., :, 0] ** 3).sum().backward()
            assert any(issubclass(x.category, safesvd.GaugeWarning) for x in w), mode


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_batches_take_the_per_matrix_kernel(dtype):
    """The SoA tiles compute W matrices however few are real: a batch of one (float32
    rectangular: up to two) takes the per-matrix kernel, which gives the tiles' results
    bit for bit (the tests above), a larger batch the tiles. Slices of a batch decomposed
    in the SoA give the same gradients as the whole batch."""
    g = torch.Generator().manual_seed(13)
    for m, n in [(3, 3), (8, 8), (64, 16), (16, 64), (256, 8)]:
        small = 2 if (m != n and dtype == torch.float32) else 1
        A = torch.randn(small + 1, m, n, dtype=torch.float64, generator=g).to(dtype)
        U, S, Vh = torch.linalg.svd(A, full_matrices=False)
        gU, gS, gVh = torch.randn_like(U), torch.randn_like(S), torch.randn_like(Vh)
        L, Q = torch.linalg.eigh(A + A.mT) if m == n else (None, None)
        calls = cpu_soa_calls()
        whole = torch.ops.safesvd._svd_backward(gU, gS, gVh, U, S, Vh, "pinv", None, None)
        assert cpu_soa_calls() - calls == 1, (m, n)
        for B in range(1, small + 1):
            calls = cpu_soa_calls()
            part = torch.ops.safesvd._svd_backward(gU[:B], gS[:B], gVh[:B], U[:B], S[:B], Vh[:B], "pinv", None, None)
            assert cpu_soa_calls() == calls, (m, n, B)
            assert torch.equal(part[0], whole[0][:B]) and torch.equal(part[1], whole[1][:B]), (m, n, B)
        if L is not None:
            gL, gQ = torch.randn_like(L), torch.randn_like(Q)
            whole = torch.ops.safesvd._eigh_backward(gL, gQ, L, Q, "pinv", None, None)
            calls = cpu_soa_calls()
            part = torch.ops.safesvd._eigh_backward(gL[:1], gQ[:1], L[:1], Q[:1], "pinv", None, None)
            assert cpu_soa_calls() == calls
            assert torch.equal(part[0], whole[0][:1]) and torch.equal(part[1], whole[1][:1]), (m, n)
    # The batched path's J builders: a batch of one takes the per-matrix builder. (A
    # rectangular batch below B m n k = 32768 takes the per-matrix kernel instead: 7 x 40x12.)
    for m, n in [(24, 24), (40, 12), (64, 64)]:
        A = torch.randn(3 if m == n else 7, m, n, dtype=torch.float64, generator=g).to(dtype)
        U, S, Vh = torch.linalg.svd(A, full_matrices=False)
        gU, gS, gVh = torch.randn_like(U), torch.randn_like(S), torch.randn_like(Vh)
        calls = cpu_soa_calls("builder")
        whole = torch.ops.safesvd._svd_backward(gU, gS, gVh, U, S, Vh, "pinv", None, None)
        assert cpu_soa_calls("builder") == calls + 1, (m, n)
        part = torch.ops.safesvd._svd_backward(gU[:1], gS[:1], gVh[:1], U[:1], S[:1], Vh[:1], "pinv", None, None)
        assert cpu_soa_calls("builder") == calls + 1, (m, n)
        torch.testing.assert_close(part[0], whole[0][:1])  # to rounding: the products may be BLAS
        if m == n:
            L, Q = torch.linalg.eigh(A + A.mT)
            gL, gQ = torch.randn_like(L), torch.randn_like(Q)
            whole = torch.ops.safesvd._eigh_backward(gL, gQ, L, Q, "pinv", None, None)
            calls = cpu_soa_calls("builder")
            part = torch.ops.safesvd._eigh_backward(gL[:1], gQ[:1], L[:1], Q[:1], "pinv", None, None)
            assert cpu_soa_calls("builder") == calls
            torch.testing.assert_close(part[0], whole[0][:1])  # to rounding: the products may be BLAS


def close_in_norm(x, y, n):
    """Each matrix to rounding in norm: the per-matrix kernel and the batched path sum the
    products in another order, and 1/(s_i - s_j) of the random spectrum's closest pairs
    magnifies that (float32 n = 32: elements differ by 1e-4 of their size)."""
    eps = torch.finfo(x.dtype).eps
    err = torch.linalg.matrix_norm(x - y) / torch.linalg.matrix_norm(y)
    assert (err <= 10 * n * eps).all(), (n, err.max().item())


def small_square_cases(limit, dtype, seed):
    """For n = 9..32 with room for a batch under `limit` (B n^3): n, the largest such batch
    `small`, and the svd / eigh of 1 + small n x n matrices, the first with a repeated and a
    zero singular value (eigenvalue), the rest random."""
    from safesvd._testing import with_eigenvalues, with_singular_values

    g = torch.Generator().manual_seed(seed)
    for n in (9, 12, 16, 24, 32):
        small = limit // n**3
        if small == 0:
            continue
        s = torch.rand(n, dtype=torch.float64, generator=g) + 0.5
        s[1], s[-1] = s[0], 0.0
        A = torch.cat([with_singular_values(s.tolist(), n, n)[None],
                       torch.randn(small, n, n, dtype=torch.float64, generator=g)]).to(dtype)
        lam = torch.linspace(-1.0, 2.0, n, dtype=torch.float64)
        lam[1], lam[3] = lam[0], 0.0
        E = torch.cat([with_eigenvalues(lam.tolist())[None],
                       torch.randn(small, n, n, dtype=torch.float64, generator=g)]).to(dtype)
        yield n, small, torch.linalg.svd(A, full_matrices=False), torch.linalg.eigh(E + E.mT)


def assert_whole_batched_part_fused(op, args, small, n, counter, whole_calls=None):
    """op(*args) on the whole batch takes the batched path (the CPU counter `counter` grows:
    by exactly `whole_calls` when given), on its first `small` matrices the per-matrix kernel
    (the counter stays); the two agree, the gradient to rounding in norm, the second result
    (gauge, gf) elementwise."""
    calls = cpu_soa_calls(counter)
    whole = op(*args)
    grew = cpu_soa_calls(counter) - calls
    assert (grew == whole_calls if whole_calls is not None else grew > 0), (op, n, grew)
    calls = cpu_soa_calls(counter)
    part = op(*(x[:small] if isinstance(x, torch.Tensor) else x for x in args))
    assert cpu_soa_calls(counter) == calls, (op, n)
    close_in_norm(part[0], whole[0][:small], n)
    torch.testing.assert_close(part[1], whole[1][:small])


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_square_batches_take_the_runtime_size_kernel(dtype):
    """Real square n > 8: a batch with B n^3 up to 32768 (float32) or 16384 (float64) takes the
    per-matrix kernel at its runtime size (no J builder, no batched products), a larger one the
    batched path (csrc/cpu/cpu.cpp, per_matrix_square). The same gradients and gauge to
    rounding, a repeated and a zero singular value (eigenvalue) included."""
    limit = 32768 if dtype == torch.float32 else 16384
    for n, small, (U, S, Vh), (L, Q) in small_square_cases(limit, dtype, 17):
        cotangents = [torch.randn_like(x) for x in (U, S, Vh, L, Q)]
        assert_whole_batched_part_fused(torch.ops.safesvd._svd_backward,
                                        (*cotangents[:3], U, S, Vh, "pinv", None, None), small, n, "builder", 1)
        assert_whole_batched_part_fused(torch.ops.safesvd._eigh_backward,
                                        (*cotangents[3:], L, Q, "pinv", None, None), small, n, "builder", 1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_matrix_function_small_batches_take_the_runtime_size_kernel(dtype):
    """The matrix functions' backward follows the same rule (csrc/cpu/cpu.cpp,
    fn_backward_fused_cpu) with a quarter of its limits: real square n > 8 with B n^3 up to
    8192 (float32) or 4096 (float64) takes the per-matrix kernel at its runtime size (none of
    the batched path's products), a larger batch the batched path. The same gA and gf to
    rounding, a repeated and a zero singular value (eigenvalue) in the first matrix."""
    limit = 8192 if dtype == torch.float32 else 4096
    for n, small, (U, S, Vh), (L, Q) in small_square_cases(limit, dtype, 19):
        G = torch.randn_like(U)
        for op, spectrum, factors in ((torch.ops.safesvd._svd_fn_backward, S, (U, S, Vh)),
                                      (torch.ops.safesvd._eigh_fn_backward, L, (L, Q))):
            f, df = spectrum**3, 3 * spectrum**2  # f(x) = x^3, odd as svd_fn needs
            assert_whole_batched_part_fused(op, (G, *factors, f, df, None, None), small, n, "gemm")

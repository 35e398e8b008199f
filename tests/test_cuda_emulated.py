"""The CUDA kernels, run on the CPU through the CUDA emulation (csrc/emulation/).

tests/emulation/emulated_cuda.cpp (the CUDA table of csrc/cuda/table.h) and the CUDA
kernel units of csrc/manifest.txt are compiled with the host compiler: every thread
of every block runs, shared memory is NaN-filled before each block, barriers and warp
operations have CUDA's semantics, and launch limits are enforced. Its dispatch table replaces the CPU one
for the duration of a test, so the ordinary operators run the CUDA kernels (with
CUDA's fused/batched crossover) on CPU tensors; each result is compared with the
CPU kernels'. A deliberately broken variant shows the comparison can fail.
"""

from pathlib import Path

import pytest
import torch

import safesvd
from helpers import build_emulated, with_eigenvalues, with_singular_values
from safesvd._testing import cpu_kernels

pytestmark = pytest.mark.cuda_emulated

ROOT = Path(__file__).resolve().parent.parent
DTYPES = [torch.float32, torch.float64, torch.complex64, torch.complex128]


@pytest.fixture(scope="module")
def emulated():
    return build_emulated()


def tolerance(dtype, n=1):
    """Single precision: the kernels and the CPU sum in different orders (the CPU's batched
    path uses BLAS above n = 8); at n = 32 on rank-deficient input a gradient entry of ~3
    differs by up to ~5e-4 (double precision, same inputs: within 1e-10)."""
    if dtype in (torch.float32, torch.complex64):
        return dict(rtol=1e-3, atol=1e-3) if n > 16 else dict(rtol=1e-4, atol=1e-4)
    return dict(rtol=1e-10, atol=1e-10)


def compare(emulated, run, dtype, n=1):
    expected = run()
    with cpu_kernels(emulated.table()):
        got = run()
    for e, g in zip(expected if isinstance(expected, tuple) else (expected,), got if isinstance(got, tuple) else (got,)):
        torch.testing.assert_close(g, e, **tolerance(dtype, n))
    return expected


def base(dtype):
    return torch.complex128 if dtype.is_complex else torch.float64


def svd_batch(B, m, n, dtype):
    """Random, exactly repeated and rank-deficient matrices, cycled to B."""
    k = min(m, n)
    spectra = [None, [2.0, 2.0] + [1.0] * (k - 2), [1.0] + [0.0] * (k - 1)] if k >= 2 else [None]
    mats = [torch.randn(m, n, dtype=base(dtype)) if s is None else with_singular_values(s, m, n, base(dtype))
            for s in (spectra * (B // len(spectra) + 1))[:B]]
    return (torch.stack(mats) if mats else torch.zeros(0, m, n, dtype=base(dtype))).to(dtype)


# (m, n) by CUDA path (docs/cuda_backward.md). Real: band "registers" for max(m, n) <= 4,
# band "team" for square 5..32, the generic per-thread kernel for rectangular up to 8,
# batched BLAS above. Complex: the generic kernel up to 8, batched above.
SVD_SHAPES = [(1, 1), (2, 4), (4, 2), (3, 3), (4, 4), (5, 5), (6, 4), (4, 6), (8, 8), (12, 12), (16, 16),
              (17, 17), (32, 32), (33, 33), (14, 10), (10, 14)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n", SVD_SHAPES)
@pytest.mark.parametrize("subset", [("U", "S", "Vh"), ("S",), ("U",), ("Vh",)])
def test_svd_backward(emulated, dtype, m, n, subset):
    A = svd_batch(7, m, n, dtype)
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)  # U, Vh column-major: strided reads
    g = {"U": torch.randn_like(U), "S": torch.randn_like(S), "Vh": torch.randn_like(Vh).mT.contiguous().mT}
    args = [g[x] if x in subset else None for x in ("U", "S", "Vh")]
    for guard in ("pinv", "lorentz"):
        compare(emulated, lambda: torch.ops.safesvd._svd_backward(*args, U, S, Vh, guard, None, None), dtype,
                max(m, n))


@pytest.mark.parametrize("B", [0, 1, 129, 300])
def test_svd_backward_batch_sizes_and_many_blocks(emulated, B):
    """B = 0, 1, a batch that is not a multiple of the block size, and several blocks."""
    A = svd_batch(B, 3, 3, torch.float64)
    U, S, Vh = torch.linalg.svd(A)
    gU, gS, gVh = torch.randn_like(U), torch.randn_like(S), torch.randn_like(Vh)
    compare(emulated, lambda: torch.ops.safesvd._svd_backward(gU, gS, gVh, U, S, Vh, "pinv", None, None),
            torch.float64)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [3, 5, 16, 32])
@pytest.mark.parametrize("B", [0, 1, 25, 70])
def test_band_kernels_batch_sizes_and_layouts(emulated, dtype, n, B):
    """The band kernels (n = 3: registers; 5, 16, 32: a team per matrix) over B = 0, 1, a
    batch that is not a multiple of the block's matrices, several blocks; every input
    row-major contiguous, column-major contiguous (the fast loaders) and strided."""
    A = svd_batch(B, n, n, dtype)
    U, S, Vh = torch.linalg.svd(A)
    L, Q = torch.linalg.eigh(A + A.mT)
    rand = lambda x: torch.randn(x.shape, dtype=torch.float64).to(dtype)  # noqa: E731
    gU, gS, gVh, gL, gQ = rand(U), rand(S), rand(Vh), rand(L), rand(Q)
    layouts = {
        "row-major": lambda x: x.contiguous(),
        "column-major": lambda x: x.mT.contiguous().mT,
        "strided": lambda x: torch.stack([x, x], dim=-1)[..., 1],
    }
    for layout in layouts.values():
        u, vh, gu, gvh, q, gq = (layout(x) for x in (U, Vh, gU, gVh, Q, gQ))
        svd_bwd = lambda: torch.ops.safesvd._svd_backward(gu, gS, gvh, u, S, vh, "pinv", None, None)  # noqa: E731
        compare(emulated, svd_bwd, dtype, n)
        compare(emulated, lambda: torch.ops.safesvd._eigh_backward(gL, gq, L, q, "pinv", None, None), dtype, n)


def test_transposed_and_strided_inputs(emulated):
    base_A = torch.randn(6, 9, 7, dtype=torch.float64)
    A = base_A[::2].mT  # strided batch, transposed matrices
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    gU = torch.randn(3, 14, 7, dtype=torch.float64).mT[..., ::2]  # (3, 7, 7), strided and transposed
    compare(emulated, lambda: torch.ops.safesvd._svd_backward(gU, None, None, U, S, Vh, "pinv", None, None),
            torch.float64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 3, 8, 12, 20])
def test_eigh_and_matrix_function_backward(emulated, dtype, n):
    A = torch.stack([with_eigenvalues([1.0] * (n // 2) + [2.0] * (n - n // 2), base(dtype)),
                     with_eigenvalues(torch.rand(n) + 0.5, base(dtype))]).to(dtype)
    L, Q = torch.linalg.eigh(A)
    gL, gQ, G, H = torch.randn_like(L), torch.randn_like(Q), torch.randn_like(Q), torch.randn_like(Q)
    compare(emulated, lambda: torch.ops.safesvd._eigh_backward(gL, gQ, L, Q, "pinv", None, None), dtype)
    compare(emulated, lambda: torch.ops.safesvd._eigh_backward(None, gQ, L, Q, "clamp", None, None), dtype)
    fL = L.exp()
    compare(emulated, lambda: torch.ops.safesvd._eigh_fn_backward(G, L, Q, fL, fL, None, None), dtype)
    compare(emulated, lambda: torch.ops.safesvd._eigh_fn_second_order(H, G, L, Q, fL, fL, fL, None, None), dtype)
    U, S, Vh = torch.linalg.svd(A)
    fS, dfS = S.tanh(), 1 - S.tanh() ** 2
    compare(emulated, lambda: torch.ops.safesvd._svd_fn_backward(G, U, S, Vh, fS, dfS, None, None), dtype)


@pytest.mark.parametrize("m,n", [(5, 3), (3, 5), (9, 6)])
def test_rectangular_matrix_functions_and_second_order(emulated, m, n):
    A = svd_batch(3, m, n, torch.float64)
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    G, H = torch.randn_like(A), torch.randn_like(A)
    fS, dfS, d2fS = S.sinh(), S.cosh(), S.sinh()
    df0 = torch.ones(3, 1, dtype=torch.float64)
    compare(emulated, lambda: torch.ops.safesvd._svd_fn_backward(G, U, S, Vh, fS, dfS, None, None), torch.float64)
    compare(emulated, lambda: torch.ops.safesvd._svd_fn_second_order(H, G, U, S, Vh, fS, dfS, d2fS, df0, None, None),
            torch.float64)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_public_api_end_to_end(emulated, dtype):
    """Gradients of the public functions (fused, composite through the guard operators,
    matrix functions, second order) at degeneracy, with the emulated kernels."""
    A = svd_batch(5, 4, 4, dtype)
    W = torch.randn(4, 4, dtype=dtype)

    @safesvd.gauge_mode("ignore")  # the polar factor of a rank-deficient matrix is basis dependent
    def grads():
        X = A.clone().requires_grad_()
        U, S, Vh = safesvd.svd(X, driver="lapack")  # the same basis on both sides
        first = (W * (U @ Vh)).real.sum() + (S ** 2).sum()
        # + I: at a zero eigenvalue the sqrtm gradient is a ratio of rounding errors, and the
        # CPU default (the Jacobi engine) and the emulated default (LAPACK) round differently.
        second = (W * safesvd.sqrtm(X @ X.mH + torch.eye(4, dtype=dtype))).real.sum()
        (g,) = torch.autograd.grad(first + second, X, create_graph=True)
        (h,) = torch.autograd.grad((g.abs() ** 2).sum(), X)
        return g.detach(), h

    compare(emulated, grads, dtype)


ENGINE_SIZES = [2, 3, 5, 8, 16]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", ENGINE_SIZES)
@pytest.mark.parametrize("B", [0, 1, 130])
def test_engine_forward(emulated, dtype, n, B):
    """The forward engine, one matrix per thread, against the CPU engine (SIMD lanes):
    values to rounding, vectors through invariants (reconstruction, projectors of the
    simple values), on random, exactly repeated and rank-deficient matrices."""
    A = svd_batch(B, n, n, dtype)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    U, S, Vh = safesvd.svd(A, driver="jacobi")
    L, Q = safesvd.eigh(A + A.mT, driver="jacobi")
    with cpu_kernels(emulated.table()):
        Ue, Se, Vhe = safesvd.svd(A, driver="jacobi")
        Le, Qe = safesvd.eigh(A + A.mT, driver="jacobi")
        with pytest.raises(ValueError, match="driver='jacobi'"):  # the CUDA engine is square only
            safesvd.svd(torch.randn(2, n + 1, n, dtype=dtype), driver="jacobi")
    assert Ue.stride() == U.stride() and Qe.stride() == Q.stride()
    torch.testing.assert_close(Se, S, **tol)
    torch.testing.assert_close(Le, L, **tol)
    torch.testing.assert_close((Ue * Se.unsqueeze(-2)) @ Vhe, A, **tol)
    torch.testing.assert_close((Qe * Le.unsqueeze(-2)) @ Qe.mT, A + A.mT, **tol)
    eye = torch.eye(n, dtype=dtype).expand(B, n, n)
    torch.testing.assert_close(Ue.mT @ Ue, eye, **tol)
    torch.testing.assert_close(Qe.mT @ Qe, eye, **tol)
    if B:  # the first matrix of svd_batch is random: simple values, compare vectors up to sign
        torch.testing.assert_close(Ue[0].abs(), U[0].abs(), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_engine_non_finite_matrix_gets_nan_and_nothing_else(emulated, dtype):
    A = svd_batch(70, 4, 4, dtype)
    A[5, 1, 2] = float("nan")
    A[40, 0, 0] = float("inf")
    U, S, Vh, info = emulated.svd_jacobi(A, False)
    Sym = A + A.mT
    L, Q, info_e = emulated.eigh_jacobi(Sym, True)
    bad = torch.zeros(70, dtype=torch.bool)
    bad[[5, 40]] = True
    for x, inf in ((U, info), (S, info), (Vh, info), (L, info_e), (Q, info_e)):
        assert x[bad].isnan().all() and torch.isfinite(x[~bad]).all()
        assert (inf[bad] != 0).all() and (inf[~bad] == 0).all()
    good = ~bad
    torch.testing.assert_close(S[good], torch.linalg.svdvals(A[good]), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(L[good], torch.linalg.eigvalsh(Sym[good]), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("n,dtype", [(3, torch.float64), (10, torch.float64), (24, torch.float32),
                                     (3, torch.complex128)])
def test_broken_kernel_is_detected(emulated, n, dtype):
    """A runner that skips the last matrix, in each CUDA path (band "registers", band
    "team", the generic per-thread kernel): the comparison must fail."""
    A = svd_batch(5, n, n, dtype)
    U, S, Vh = torch.linalg.svd(A)
    gS = torch.randn_like(S)
    expected = torch.ops.safesvd._svd_backward(None, gS, None, U, S, Vh, "pinv", None, None)[0]
    with cpu_kernels(emulated.broken_table()):
        broken = torch.ops.safesvd._svd_backward(None, gS, None, U, S, Vh, "pinv", None, None)[0]
    torch.testing.assert_close(broken[:-1], expected[:-1])
    with pytest.raises(AssertionError):
        torch.testing.assert_close(broken[-1], expected[-1])

"""LAPACK over a batch in parallel (csrc/cpu/cpu.cpp, "LAPACK over a batch"): the CPU runs
the matrices the engine does not take (larger, complex, driver="lapack", the engine's
non-converged redo) on every thread, each matrix one single-threaded LAPACK call, so the
results are those of torch's own serial loop bit for bit, layout included. For real input
the calls go to LAPACK directly (csrc/cpu/lapack.h), with each step torch takes, so that
holds there too, on one thread and on several."""

import pytest
import torch

import safesvd
from safesvd import _testing

SHAPES = [(20, 20), (33, 17), (17, 40), (3, 3)]
DTYPES = [torch.float32, torch.float64, torch.complex64, torch.complex128]


@pytest.fixture
def two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


def serial(fn, *args):
    """torch's own call with one thread: its loop over the batch, one LAPACK call each."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(previous)


def assert_identical(got, expected):
    for g, e in zip(got, expected):
        assert g.shape == e.shape and g.stride() == e.stride() and g.dtype == e.dtype
        assert torch.equal(g, e)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n", SHAPES)
@pytest.mark.parametrize("full_matrices", [False, True])
def test_svd_identical_to_serial_loop(two_threads, dtype, m, n, full_matrices):
    A = torch.randn(5, 7, m, n, dtype=dtype)
    got = safesvd.svd(A, full_matrices, driver="lapack")
    assert_identical(got, serial(torch.linalg.svd, A, full_matrices))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [3, 20, 40])
@pytest.mark.parametrize("UPLO", ["L", "U"])
def test_eigh_identical_to_serial_loop(two_threads, dtype, n, UPLO):
    X = torch.randn(37, n, n, dtype=dtype)
    got = safesvd.eigh(X, UPLO, driver="lapack")
    assert_identical(got, serial(torch.linalg.eigh, X, UPLO))


def test_default_driver_outside_the_engine_and_matrix_functions(two_threads):
    """Shapes outside the engine (n > 64, complex) take the parallel path by default, and so
    does the eigh inside the matrix functions."""
    A = torch.randn(12, 70, 70, dtype=torch.float64)
    assert_identical(safesvd.svd(A), serial(torch.linalg.svd, A, False))
    X = torch.randn(40, 24, 24, dtype=torch.complex128)
    C = X @ X.mH + torch.eye(24, dtype=torch.complex128)
    L, Q = serial(torch.linalg.eigh, C)
    expected = (Q * L.sqrt().to(Q.dtype).unsqueeze(-2)) @ Q.mH
    torch.testing.assert_close(safesvd.sqrtm(C), expected, rtol=1e-12, atol=1e-12)


def test_empty_and_single_matrix_and_non_contiguous(two_threads):
    for A in (torch.randn(0, 20, 20), torch.randn(1, 20, 20), torch.randn(20, 20),
              torch.randn(6, 20, 40)[..., ::2], torch.randn(20, 6, 20).transpose(0, 1)):
        assert_identical(safesvd.svd(A, driver="lapack"), serial(torch.linalg.svd, A, False))


def test_errors_come_through(two_threads):
    A = torch.randn(8, 20, 20)
    A[5, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        safesvd.svd(A, driver="lapack")


@pytest.mark.parametrize("driver", ["lapack", None])
def test_under_autograd(two_threads, driver):
    """Input that requires grad: the workers write the outputs under the caller's grad mode
    (the op runs below autograd), the gradients are those of the serial LAPACK forward."""
    A = torch.randn(16, 30, 20, dtype=torch.float64)
    C = torch.randn(16, 70, 70, dtype=torch.float64)
    C = C + C.mT
    for f, X in ((lambda X: safesvd.svd(X, driver=driver), A), (lambda X: safesvd.eigh(X, driver=driver), C)):
        X = X.clone().requires_grad_()
        outs = f(X)
        weights = [torch.randn_like(o) for o in outs]
        values = outs[1] if len(outs) == 3 else outs[0]
        (values * weights[1 if len(outs) == 3 else 0]).sum().backward()
        # gradient of sum(w * values) = U diag(w) Vh (svd) / Q diag(w) Q^T (eigh): gauge-free
        if len(outs) == 3:
            U, S, Vh = serial(torch.linalg.svd, X.detach(), False)
            expected = (U * weights[1].unsqueeze(-2)) @ Vh
        else:
            L, Q = serial(torch.linalg.eigh, X.detach())
            expected = (Q * weights[0].unsqueeze(-2)) @ Q.mT
        torch.testing.assert_close(X.grad, expected, rtol=1e-10, atol=1e-10)


def _lapack_inputs(square: bool):
    """Real inputs of every layout the direct calls read: one matrix, batches, tall / wide,
    1 x 1, transposed, strided, an expanded batch (stride 0), a negative view."""
    g = torch.Generator().manual_seed(11)
    out = []
    for dtype in (torch.float32, torch.float64):
        r = lambda *s: torch.randn(*s, dtype=dtype, generator=g)  # noqa: E731
        cases = [r(9, 9), r(1, 16, 16), r(5, 12, 12), r(2, 3, 10, 10), r(1, 1), r(4, 1, 1),
                 r(6, 14, 14).mT, r(3, 20, 20)[:, ::2, ::2], r(11, 11).expand(3, 11, 11),
                 torch._neg_view(r(2, 9, 9))]
        if not square:
            cases += [r(7, 20, 6), r(7, 6, 20), r(1, 33, 17), r(40, 3), r(3, 40).mT]
        out += cases
    return out


@pytest.mark.parametrize("direct", [1, 0])
def test_direct_lapack_identical_to_torch(direct):
    """gesdd / syevd called directly (1) or through torch's functions (0): torch's results
    bit for bit, layout included, for every layout of real input, on one thread (the whole
    batch one call, as torch's), and for one matrix on two (MKL may split one decomposition
    over its threads: torch's call at the same setting). The batches split over threads are
    compared with torch's serial loop above (their real dtypes take the direct calls too)."""
    previous_threads, previous = torch.get_num_threads(), _testing.cpu_direct_lapack(direct)
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            for A in _lapack_inputs(square=False):
                if threads == 2 and A.dim() > 2 and A.shape[0] > 1:
                    continue
                for full in (False, True):
                    assert_identical(safesvd.svd(A, full, driver="lapack"), torch.linalg.svd(A, full))
            for A in _lapack_inputs(square=True):
                if threads == 2 and A.dim() > 2 and A.shape[0] > 1:
                    continue
                S = A + A.mT
                for UPLO in ("L", "U"):
                    X = torch.triu(S) if UPLO == "U" else torch.tril(S)  # the other triangle is not read
                    assert_identical(safesvd.eigh(X, UPLO, driver="lapack"), torch.linalg.eigh(X, UPLO))
    finally:
        torch.set_num_threads(previous_threads)
        _testing.cpu_direct_lapack(previous)


def _aten_decompositions(fn) -> list:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn()
    return [e.name for e in prof.events() if e.name in ("aten::linalg_svd", "aten::linalg_eigh")]


def test_direct_lapack_skips_torch_functions():
    """Where this torch exports the routines, real input never reaches torch.linalg.svd /
    eigh (one thread and two); complex input and the switch turned off do."""
    if _testing.cpu_direct_lapack() != 1:
        pytest.skip("this torch does not export LAPACK's gesdd / syevd (csrc/cpu/lapack.h)")
    previous = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            A = torch.randn(6, 20, 20, dtype=torch.float64)
            C = A + A.mT
            for one in (A[0], A):
                assert _aten_decompositions(lambda: safesvd.svd(one, driver="lapack")) == []
            assert _aten_decompositions(lambda: safesvd.eigh(C, driver="lapack")) == []
            assert _aten_decompositions(lambda: safesvd.svd(A.to(torch.complex128), driver="lapack"))
        torch.set_num_threads(1)
        _testing.cpu_direct_lapack(0)
        assert _aten_decompositions(lambda: safesvd.svd(A, driver="lapack")) == ["aten::linalg_svd"]
        assert _aten_decompositions(lambda: safesvd.eigh(C, driver="lapack")) == ["aten::linalg_eigh"]
    finally:
        _testing.cpu_direct_lapack(1)
        torch.set_num_threads(previous)
    with pytest.raises(ValueError, match="mode must be"):
        _testing.cpu_direct_lapack(3)

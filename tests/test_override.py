"""safesvd.override_torch(): torch's svd / eigh calls answered by safesvd inside the mode.

Every routed function is compared inside vs outside the override: forward values
(up to the sign/phase of singular vectors and eigenvectors: reconstructions,
projectors, S, L), return types and attribute names, argument conventions,
gradients (equal to torch's on generic input, finite and equal to finite
differences at degenerate input where torch's are NaN), the fallbacks to torch,
nesting, decorator, enable/disable, exceptions, half precision, torch.func and
torch.compile.
"""

import threading
import warnings

import pytest
import torch
from torch.overrides import TorchFunctionMode

import safesvd
from helpers import finite_difference_grad, rel_err, with_eigenvalues, with_singular_values
from safesvd._override import override_torch

SHAPES = [(3, 3), (5, 3), (3, 5), (2, 4, 3), (2, 3, 4), (0, 3, 3), (1, 1), (2, 1, 4)]
DTYPES = [torch.float64, torch.complex128]

# Signed permutations: A = P1 diag(s) P2 is exact, so LAPACK returns exactly repeated
# singular values and torch's backward divides 0 by 0.
P1 = torch.tensor([[0.0, -1, 0], [0, 0, 1], [1, 0, 0]], dtype=torch.float64)
P2 = torch.tensor([[0.0, 0, 1], [-1, 0, 0], [0, 1, 0]], dtype=torch.float64)


def exact(s, dtype=torch.float64):
    return (P1 @ torch.diag(torch.tensor(s, dtype=torch.float64)) @ P2).to(dtype)


def grad_of(loss, A):
    A = A.detach().clone().requires_grad_()
    (g,) = torch.autograd.grad(loss(A), A)
    return g


def stack_len():
    return torch._C._len_torch_function_stack()


class Recorder(TorchFunctionMode):
    """Records the functions that reach it. Entered *below* override_torch, it sees
    what the override passes on: the original torch function on a fallback, the
    safesvd operator when the call was routed."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls.append(func)
        return func(*args, **(kwargs or {}))

    def saw(self, func):
        return any(f is func for f in self.calls)


def routed_to_safesvd(rec):
    return any("safesvd" in str(f) for f in rec.calls)


# ---------------------------------------------------------------- torch.linalg.svd


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("full_matrices", [True, False, None])
def test_linalg_svd_forward_matches_torch(shape, dtype, full_matrices):
    A = torch.randn(*shape, dtype=dtype)
    kwargs = {} if full_matrices is None else {"full_matrices": full_matrices}  # None: torch's default (True)
    ref = torch.linalg.svd(A, **kwargs)
    with override_torch():
        out = torch.linalg.svd(A, **kwargs)
    assert type(out) is type(ref) is torch.return_types.linalg_svd
    for name in ("U", "S", "Vh"):
        assert getattr(out, name).shape == getattr(ref, name).shape
        assert getattr(out, name).dtype == getattr(ref, name).dtype
    k = min(shape[-2:])
    torch.testing.assert_close(out.S, ref.S)
    recon = (out.U[..., :k] * out.S.to(dtype).unsqueeze(-2)) @ out.Vh[..., :k, :]
    torch.testing.assert_close(recon, A)
    torch.testing.assert_close(out.U @ out.U.mH, ref.U @ ref.U.mH)  # full_matrices: identity
    torch.testing.assert_close(out.Vh.mH @ out.Vh, ref.Vh.mH @ ref.Vh)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5), (2, 4, 3)])
@pytest.mark.parametrize("full_matrices", [True, False])
def test_linalg_svd_gradient_equals_torch_on_generic_input(shape, dtype, full_matrices):
    A = torch.randn(*shape, dtype=dtype)
    k = min(shape[-2:])
    W = torch.randn(*shape, dtype=dtype)

    def loss(X):  # the first k vectors only: the extra columns of full_matrices are arbitrary
        U, S, Vh = torch.linalg.svd(X, full_matrices=full_matrices)
        U, Vh = U[..., :k], Vh[..., :k, :]
        return (W * (U @ Vh)).real.sum() + (S ** 3).sum() + ((U * S.unsqueeze(-2)) @ Vh).abs().sum()

    ref = grad_of(loss, A)
    with override_torch():
        ours = grad_of(loss, A)
    assert rel_err(ours, ref) < 1e-10


def test_linalg_svd_positional_and_keyword_A():
    A = torch.randn(4, 3, dtype=torch.float64)
    with Recorder() as rec, override_torch():
        U, S, Vh = torch.linalg.svd(A, False)
        U2, S2, Vh2 = torch.linalg.svd(A=A, full_matrices=False)
    assert routed_to_safesvd(rec) and not rec.saw(torch.linalg.svd)
    assert U.shape == U2.shape == (4, 3)
    torch.testing.assert_close(S, S2)


def _projector_loss(X, W2, W3):
    U, S, Vh = torch.linalg.svd(X)
    return (W2 * (U[:, :2] @ U[:, :2].mT)).sum() + (W3 * (Vh[:2].mT @ Vh[:2])).sum() + (S ** 2).sum()


# Basis-independent losses that are differentiable at each point (design: exact there):
# (2,2,1): polar factor, projectors onto the top-2 subspaces (gap S[1] > S[2]), S;
# (1,1,0): projectors and S^2 (the polar factor and sum(S) are not differentiable at a zero S);
# (2,2,2): polar factor and S.
DEGENERATE_CASES = {
    "(2,2,1)": ([2, 2, 1], True, True),
    "(1,1,0)": ([1, 1, 0], False, True),
    "(2,2,2)": ([2, 2, 2], True, False),
}


@pytest.mark.parametrize("case", list(DEGENERATE_CASES))
def test_linalg_svd_degenerate_torch_nan_override_exact(case):
    s, polar, projector = DEGENERATE_CASES[case]
    A = exact(s)
    W, W2, W3 = (torch.randn(3, 3, dtype=torch.float64) for _ in range(3))

    def loss(X):
        U, S, Vh = torch.linalg.svd(X)
        total = (S ** 2).sum()
        if polar:
            total = total + (W * (U @ Vh)).sum() + S.sum()
        if projector:
            total = total + _projector_loss(X, W2, W3)
        return total

    assert torch.isnan(grad_of(loss, A)).any()
    with override_torch():
        g = grad_of(loss, A)
    assert torch.isfinite(g).all()
    assert rel_err(g, finite_difference_grad(loss, A)) < 1e-7


def test_matrix_function_through_svd_is_finite_not_exact():
    """U f(S) Vh (here f(S) = S: W . A) at a repeated singular value: the override turns
    torch's NaN into a finite value that is NOT the exact derivative (the limit is lost in
    the cotangents of U, S, Vh; README). safesvd.svd_fn differentiates it exactly."""
    A = exact([2, 2, 1])
    W = torch.randn(3, 3, dtype=torch.float64)

    def loss(X):
        U, S, Vh = torch.linalg.svd(X)
        return (W * ((U * S.unsqueeze(-2)) @ Vh)).sum()

    assert torch.isnan(grad_of(loss, A)).any()
    with override_torch():
        g = grad_of(loss, A)
    assert torch.isfinite(g).all() and rel_err(g, W) > 1e-2  # the exact gradient is W
    g_fn = grad_of(lambda X: (W * safesvd.svd_fn(X, lambda s: s, torch.ones_like)).sum(), A)
    assert rel_err(g_fn, W) < 1e-12


def test_polar_factor_at_repeated_singular_values():
    A = exact([2, 2, 1])
    W = torch.randn(3, 3, dtype=torch.float64)

    def loss(X):
        U, _, Vh = torch.linalg.svd(X)
        return (W * (U @ Vh)).sum()

    assert torch.isnan(grad_of(loss, A)).any()
    with override_torch():
        g = grad_of(loss, A)
    assert rel_err(g, finite_difference_grad(loss, A)) < 1e-7


def test_extra_columns_of_full_matrices_warn_where_torch_is_silent():
    """A documented difference: torch drops the cotangent of the arbitrary extra
    columns of full_matrices=True silently; safesvd drops it with a GaugeWarning."""
    A = torch.randn(5, 3, dtype=torch.float64)

    def loss(X):
        return torch.linalg.svd(X).U[:, 4].sum()

    grad_of(loss, A)
    with override_torch(), pytest.warns(safesvd.GaugeWarning, match="extra columns"):
        grad_of(loss, A)


# ------------------------------------------------------------- torch.svd, Tensor.svd


def call_svd(form, A, **kwargs):
    return torch.svd(A, **kwargs) if form == "torch.svd" else A.svd(**kwargs)


@pytest.mark.parametrize("form", ["torch.svd", "Tensor.svd"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("some", [True, False])
def test_torch_svd_forward_matches_torch(form, shape, dtype, some):
    A = torch.randn(*shape, dtype=dtype)
    ref = call_svd(form, A, some=some)
    with override_torch():
        out = call_svd(form, A, some=some)
    assert type(out) is type(ref) is torch.return_types.svd
    for name in ("U", "S", "V"):
        assert getattr(out, name).shape == getattr(ref, name).shape
        assert getattr(out, name).dtype == getattr(ref, name).dtype
    k = min(shape[-2:])
    torch.testing.assert_close(out.S, ref.S)
    recon = (out.U[..., :k] * out.S.to(dtype).unsqueeze(-2)) @ out.V[..., :k].mH  # V, not Vh
    torch.testing.assert_close(recon, A)
    torch.testing.assert_close(out.V @ out.V.mH, ref.V @ ref.V.mH)


@pytest.mark.parametrize("form", ["torch.svd", "Tensor.svd"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 3), (5, 3), (3, 5), (2, 4, 3), (0, 2, 3)])
@pytest.mark.parametrize("some", [True, False])
def test_torch_svd_compute_uv_false(form, shape, dtype, some):
    """torch returns S and zero-filled U (m x m) and V (n x n), whatever `some` is."""
    A = torch.randn(*shape, dtype=dtype, requires_grad=True)
    ref = call_svd(form, A, some=some, compute_uv=False)
    with override_torch():
        out = call_svd(form, A, some=some, compute_uv=False)
    assert type(out) is torch.return_types.svd
    for name in ("U", "S", "V"):
        r, o = getattr(ref, name), getattr(out, name)
        assert (o.shape, o.dtype, o.requires_grad) == (r.shape, r.dtype, r.requires_grad), name
    assert not out.U.any() and not out.V.any()
    torch.testing.assert_close(out.S, ref.S)
    if A.numel():
        (g_ref,) = torch.autograd.grad(ref.S.sum(), A)
        (g_out,) = torch.autograd.grad(out.S.sum(), A)
        assert rel_err(g_out, g_ref) < 1e-10


def test_torch_svd_positional_arguments_and_gradient():
    A = torch.randn(5, 3, dtype=torch.float64)

    def loss(X):
        U, S, V = torch.svd(X, False)  # some=False: full U (5 x 5)
        assert U.shape == (5, 5)
        return (U[:, :3] @ V.mT).sum() + S.sum()

    ref = grad_of(loss, A)
    with override_torch():
        assert rel_err(grad_of(loss, A), ref) < 1e-10
        assert A.svd(True, False).U.shape == (5, 5)  # compute_uv=False ignores some


def test_torch_svd_degenerate():
    A = exact([2, 2, 1])
    W = torch.randn(3, 3, dtype=torch.float64)

    def loss(X):
        U, S, V = X.svd()
        return (W * (U @ V.mT)).sum()

    assert torch.isnan(grad_of(loss, A)).any()
    with override_torch():
        assert rel_err(grad_of(loss, A), finite_difference_grad(loss, A)) < 1e-7


# ------------------------------------------------------------------------ svdvals


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_svdvals(shape, dtype):
    A = torch.randn(*shape, dtype=dtype)
    ref = torch.linalg.svdvals(A)
    with Recorder() as rec, override_torch():
        out = torch.linalg.svdvals(A)
    assert routed_to_safesvd(rec)
    assert type(out) is torch.Tensor and out.shape == ref.shape and out.dtype == ref.dtype
    torch.testing.assert_close(out, ref)
    if A.numel():
        loss = lambda X: (torch.linalg.svdvals(X) ** 2).sum() + torch.linalg.svdvals(X).sum()  # noqa: E731
        ref_g = grad_of(loss, A)
        with override_torch():
            assert rel_err(grad_of(loss, A), ref_g) < 1e-10


def test_svdvals_degenerate_gradient_exact():
    A = exact([2, 2, 1])
    loss = lambda X: torch.linalg.svdvals(X)[:2].sum()  # noqa: E731  (Ky Fan 2-norm: gap after S[1])
    with override_torch():
        g = grad_of(loss, A)
    assert rel_err(g, finite_difference_grad(loss, A)) < 1e-7


# ------------------------------------------------------------------ eigh, eigvalsh


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 3), (0, 3, 3), (1, 1), (3, 0, 0)])
@pytest.mark.parametrize("UPLO", ["L", "U", None])
def test_eigh_forward_matches_torch(shape, dtype, UPLO):
    A = torch.randn(*shape, dtype=dtype)  # not Hermitian: only the UPLO triangle is read
    kwargs = {} if UPLO is None else {"UPLO": UPLO}
    ref = torch.linalg.eigh(A, **kwargs)
    ref_vals = torch.linalg.eigvalsh(A, **kwargs)
    with override_torch():
        out = torch.linalg.eigh(A, **kwargs)
        vals = torch.linalg.eigvalsh(A, **kwargs)
    assert type(out) is type(ref) is torch.return_types.linalg_eigh
    assert type(vals) is torch.Tensor
    for name in ("eigenvalues", "eigenvectors"):
        assert getattr(out, name).shape == getattr(ref, name).shape
        assert getattr(out, name).dtype == getattr(ref, name).dtype
    torch.testing.assert_close(out.eigenvalues, ref.eigenvalues)
    torch.testing.assert_close(vals, ref_vals)
    L, Q = out
    torch.testing.assert_close((Q * L.to(dtype).unsqueeze(-2)) @ Q.mH,
                               (ref.eigenvectors * ref.eigenvalues.to(dtype).unsqueeze(-2)) @ ref.eigenvectors.mH)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("UPLO", ["L", "U"])
def test_eigh_gradient_equals_torch_on_generic_input(dtype, UPLO):
    A = torch.randn(2, 4, 4, dtype=dtype)
    W = torch.randn(4, 4, dtype=dtype)
    w = torch.randn(4, dtype=torch.float64)

    def loss(X):
        L, Q = torch.linalg.eigh(X, UPLO=UPLO)
        P = (Q * w.to(dtype)) @ Q.mH  # basis-independent
        return (W * P).real.sum() + (torch.linalg.eigvalsh(X, UPLO) ** 2).sum() + L.sum()

    ref = grad_of(loss, A)
    with override_torch():
        assert rel_err(grad_of(loss, A), ref) < 1e-10


def test_eigh_degenerate_eigenprojector():
    """Projector onto the 2-dimensional eigenspace of (1, 1, 3): torch NaN, override exact."""
    A = P1 @ torch.diag(torch.tensor([1.0, 1.0, 3.0], dtype=torch.float64)) @ P1.T
    W = torch.randn(3, 3, dtype=torch.float64)
    W = W + W.T

    def loss(X):
        X = (X + X.mT) / 2
        _, Q = torch.linalg.eigh(X)
        return (W * (Q[:, :2] @ Q[:, :2].mT)).sum()

    assert torch.isnan(grad_of(loss, A)).any()
    with override_torch():
        g = grad_of(loss, A)
    assert rel_err(g, finite_difference_grad(loss, A)) < 1e-7


def test_eigh_basis_dependent_loss_warns():
    """One eigenvector of a repeated eigenvalue: no unique gradient, GaugeWarning (torch: NaN)."""
    A = with_eigenvalues([1.0, 1.0, 3.0])
    with override_torch(), pytest.warns(safesvd.GaugeWarning):
        g = grad_of(lambda X: torch.linalg.eigh(X).eigenvectors[:, 0].sum(), A)
    assert torch.isfinite(g).all()


# ---------------------------------------------------------------------- fallbacks


def test_out_falls_back_to_torch():
    A = torch.randn(4, 3, dtype=torch.float64)
    bufs = (torch.empty(0, dtype=A.dtype), torch.empty(0, dtype=A.dtype), torch.empty(0, dtype=A.dtype))
    with Recorder() as rec, override_torch():
        r = torch.linalg.svd(A, out=bufs)
        assert type(r) is torch.return_types.linalg_svd_out and r.U is bufs[0]
        s = torch.empty(0, dtype=A.dtype)
        assert torch.linalg.svdvals(A, out=s) is s
        e = (torch.empty(0, dtype=A.dtype), torch.empty(0, dtype=A.dtype))
        torch.linalg.eigh(A[:3], out=e)
        torch.linalg.eigvalsh(A[:3], out=e[0])
        torch.svd(A, out=tuple(torch.empty(0, dtype=A.dtype) for _ in range(3)))
    for f in (torch.linalg.svd, torch.linalg.svdvals, torch.linalg.eigh, torch.linalg.eigvalsh, torch.svd):
        assert rec.saw(f), f
    assert not routed_to_safesvd(rec)
    torch.testing.assert_close(bufs[1], torch.linalg.svdvals(A))


def test_driver_falls_back_to_torch():
    """safesvd has no driver choice: torch answers. On CPU torch rejects any driver; on
    CUDA it would use the requested cuSOLVER driver with its own backward."""
    A = torch.randn(4, 3)
    for f in (torch.linalg.svd, torch.linalg.svdvals):
        with pytest.raises(RuntimeError) as expected:
            f(A, driver="gesvd")
        with Recorder() as rec, override_torch(), pytest.raises(RuntimeError) as got:
            f(A, driver="gesvd")
        assert str(got.value) == str(expected.value) and rec.saw(f)
    with Recorder() as rec, override_torch():  # driver=None is the default: routed
        torch.linalg.svd(A, driver=None)
    assert routed_to_safesvd(rec)


@pytest.mark.parametrize("case", ["int", "bool", "1-D", "non-square eigh", "bad kwarg", "bad UPLO", "complex32"])
def test_unsupported_input_gets_torch_own_error(case):
    A = torch.randn(3, 3)
    calls = {
        "int": lambda: torch.linalg.svd(torch.ones(3, 3, dtype=torch.int64)),
        "bool": lambda: torch.linalg.eigh(torch.ones(3, 3, dtype=torch.bool)),
        "1-D": lambda: torch.linalg.svd(torch.ones(3)),
        "non-square eigh": lambda: torch.linalg.eigh(torch.ones(3, 4)),
        "bad kwarg": lambda: torch.linalg.svd(A, bogus=1),
        "bad UPLO": lambda: torch.linalg.eigh(A, UPLO="X"),
        "complex32": lambda: torch.linalg.svd(A.to(torch.complex32)),
    }
    with pytest.raises(Exception) as expected:
        calls[case]()
    with override_torch(), pytest.raises(Exception) as got:
        calls[case]()
    assert type(got.value) is type(expected.value) and str(got.value) == str(expected.value)


@pytest.mark.parametrize("f", [torch.linalg.svd, torch.linalg.eigh, torch.svd, torch.linalg.svdvals])
def test_non_finite_input_raises_torch_linalg_error(f):
    """Code that catches torch's LinAlgError (kornia's homography does) keeps working."""
    A = torch.full((3, 3), float("nan"), dtype=torch.float64)
    with pytest.raises(torch.linalg.LinAlgError):
        f(A)
    with override_torch(), pytest.raises(torch.linalg.LinAlgError):
        f(A)


def test_other_functions_untouched():
    A = torch.randn(4, 3, dtype=torch.float64)
    with Recorder() as rec, override_torch():
        Q, R = torch.linalg.qr(A)
        torch.ops.aten.linalg_svd(A)  # dispatcher-level calls are not routed
    assert rec.saw(torch.linalg.qr) and not routed_to_safesvd(rec)


def test_no_grad_and_inference_mode():
    A = torch.randn(2, 4, 3, dtype=torch.float64)
    ref = torch.linalg.svd(A, full_matrices=False)
    for ctx in (torch.no_grad, torch.inference_mode):
        with ctx(), override_torch():
            U, S, Vh = torch.linalg.svd(A, full_matrices=False)
            L = torch.linalg.eigvalsh(A[..., :3, :])
        torch.testing.assert_close(S, ref.S)
        torch.testing.assert_close(U @ Vh, ref.U @ ref.Vh)
        torch.testing.assert_close(L, torch.linalg.eigvalsh(A[..., :3, :]))


def test_python_level_torch_code_is_covered_cpp_level_is_not():
    """torch.svd_lowrank calls torch.linalg.svd from Python: routed. torch.linalg.pinv calls
    the SVD inside C++: not routed (documented)."""
    A = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    with override_torch():
        S = torch.svd_lowrank(A, q=3)[1]
        P = torch.linalg.pinv(A)
    assert "safesvd" in S.grad_fn.name().lower()
    assert P.grad_fn.name() == "LinalgPinvBackward0"


def test_parameter_input_is_routed():
    p = torch.nn.Parameter(exact([2, 2, 1]))
    with override_torch():
        U, S, Vh = torch.linalg.svd(p)
        (U @ Vh).sum().backward()
    assert torch.isfinite(p.grad).all()


# ------------------------------------------------------------- options, nesting


def test_options_are_forwarded_and_innermost_wins():
    A = exact([2, 2, 1])
    W = torch.randn(3, 3, dtype=torch.float64)

    def loss(X):
        U, _, Vh = torch.linalg.svd(X)
        return (W * (U @ Vh)).sum()

    with override_torch(guard="none"):  # PyTorch's own math, through safesvd: NaN
        assert torch.isnan(grad_of(loss, A)).any()
        with override_torch():
            assert torch.isfinite(grad_of(loss, A)).all()
        assert torch.isnan(grad_of(loss, A)).any()
    # rtol: singular values (2, 1.9, 1) count as equal with rtol=0.1, so the gradient
    # is no longer torch's; with the default rtol it is.
    # The loss is the projector onto the first left singular vector, whose derivative
    # divides by S[0] - S[1] = 0.1.
    B = P1 @ torch.diag(torch.tensor([2.0, 1.9, 1.0], dtype=torch.float64)) @ P2

    def projector(X):
        U = torch.linalg.svd(X).U[:, :1]
        return (W * (U @ U.mT)).sum()

    ref = grad_of(projector, B)
    # With tol >= 0.1 the pair counts as degenerate and the gradient is not torch's. The
    # loss then reads the basis of a "degenerate" subspace: GaugeWarning with atol (the
    # gauge check's threshold is max(sqrt(eps), 10 rtol), so rtol=0.1 does not warn).
    with override_torch(rtol=0.1):
        assert rel_err(grad_of(projector, B), ref) > 1e-2
    with override_torch(atol=0.2), pytest.warns(safesvd.GaugeWarning, match="S\\[1\\] = 1.9"):
        assert rel_err(grad_of(projector, B), ref) > 1e-2
    with override_torch(rtol=0.01):
        assert rel_err(grad_of(projector, B), ref) < 1e-10


def test_invalid_options():
    with pytest.raises(ValueError, match="guard"):
        override_torch(guard="bogus")
    with pytest.raises(ValueError, match="rtol"):
        override_torch(rtol=-1.0)
    with pytest.raises(TypeError):
        override_torch("pinv")  # keyword-only
    assert "guard='clamp'" in repr(override_torch(guard="clamp"))


def test_nesting_same_and_different_objects():
    o = override_torch()
    n = stack_len()
    with o:
        with o:
            with override_torch():
                assert stack_len() == n + 3
        assert stack_len() == n + 1
        assert torch.linalg.svd(exact([2, 2, 1]).requires_grad_()).S.grad_fn is not None
    assert stack_len() == n


def test_exception_inside_block_restores_state():
    n = stack_len()
    with pytest.raises(ZeroDivisionError):
        with override_torch():
            1 / 0
    assert stack_len() == n

    @override_torch()
    def boom():
        raise KeyError("x")

    with pytest.raises(KeyError):
        boom()
    assert stack_len() == n
    A = torch.randn(3, 3, requires_grad=True)
    assert type(torch.linalg.svd(A).S.grad_fn).__name__ == "LinalgSvdBackward0"  # torch again


# ------------------------------------------------------------------ decorator


def test_decorator():
    W = torch.randn(3, 3, dtype=torch.float64)

    @override_torch()
    def polar_loss(X):
        """docstring kept"""
        U, _, Vh = torch.linalg.svd(X)
        return (W * (U @ Vh)).sum()

    assert polar_loss.__name__ == "polar_loss" and polar_loss.__doc__ == "docstring kept"
    A = exact([2, 2, 1])
    n = stack_len()
    g = grad_of(polar_loss, A)
    assert stack_len() == n
    assert rel_err(g, finite_difference_grad(polar_loss, A)) < 1e-7
    # outside the decorated function torch answers again
    assert torch.isnan(grad_of(lambda X: (W * (torch.linalg.svd(X)[0] @ torch.linalg.svd(X)[2])).sum(), A)).any()


def test_decorator_recursion():
    @override_torch()
    def f(X, depth):
        if depth == 0:
            return torch.linalg.svdvals(X).sum()
        return f(X, depth - 1)

    n = stack_len()
    assert torch.isfinite(f(torch.randn(3, 3), 5))
    assert stack_len() == n


# ------------------------------------------------------------- whole program


def test_enable_disable():
    A = exact([2, 2, 1])

    def loss(X):
        U, _, Vh = torch.linalg.svd(X)
        return (U @ Vh).sum()

    n = stack_len()
    o = override_torch().enable()
    try:
        assert o.enabled and stack_len() == n + 1
        assert torch.isfinite(grad_of(loss, A)).all()
        with pytest.raises(RuntimeError, match="already enabled"):
            o.enable()
    finally:
        o.disable()
    assert not o.enabled and stack_len() == n
    assert torch.isnan(grad_of(loss, A)).any()
    with pytest.raises(RuntimeError, match="not enabled"):
        o.disable()
    o.enable().disable()  # can be enabled again


def test_disable_keeps_modes_entered_after_it():
    o = override_torch().enable()
    rec = Recorder()
    with rec:
        o.disable()  # o is below rec on the stack
        assert torch._C._len_torch_function_stack() >= 1
        torch.linalg.svd(torch.randn(3, 3))
    assert rec.saw(torch.linalg.svd)


def test_thread_locality():
    """Torch function modes are thread-local: enable() covers the calling thread only."""
    A = torch.randn(3, 3, requires_grad=True)
    seen = {}

    def grad_fn_name():
        return torch.linalg.svd(A).S.grad_fn.name()

    o = override_torch().enable()
    try:
        seen["main"] = grad_fn_name()
        t = threading.Thread(target=lambda: seen.__setitem__("thread", grad_fn_name()))
        t.start()
        t.join()

        def worker():
            o2 = override_torch().enable()
            seen["thread enabled"] = grad_fn_name()
            o2.disable()
            try:
                o.disable()
            except RuntimeError as e:
                seen["disable elsewhere"] = str(e)

        t = threading.Thread(target=worker)
        t.start()
        t.join()
    finally:
        o.disable()
    assert "safesvd" in seen["main"].lower()
    assert seen["thread"] == "LinalgSvdBackward0"
    assert "safesvd" in seen["thread enabled"].lower()
    assert "another thread" in seen["disable elsewhere"]


def test_backward_does_not_need_the_mode():
    A = exact([2, 2, 1]).requires_grad_()
    with override_torch():
        U, _, Vh = torch.linalg.svd(A)
    (U @ Vh).sum().backward()  # outside the mode: safesvd's backward was recorded
    assert torch.isfinite(A.grad).all()


# ---------------------------------------------------------------- half precision


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_computes_in_float32(dtype):
    A = torch.randn(2, 4, 3).to(dtype)
    H = (A[..., :3, :] + A[..., :3, :].mT) / 2
    with pytest.raises(NotImplementedError):
        torch.linalg.svd(A)  # stock torch
    with override_torch():
        U, S, Vh = torch.linalg.svd(A, full_matrices=False)
        s2 = torch.linalg.svdvals(A)
        U3, S3, V3 = torch.svd(A)
        L, Q = torch.linalg.eigh(H)
        L2 = torch.linalg.eigvalsh(H)
        _, S4, V4 = A.svd(compute_uv=False)
    for t in (U, S, Vh, s2, U3, S3, V3, L, Q, L2, S4, V4):
        assert t.dtype == torch.float32
    torch.testing.assert_close(S, torch.linalg.svdvals(A.float()))
    torch.testing.assert_close(L, torch.linalg.eigvalsh(H.float()))
    torch.testing.assert_close((U * S.unsqueeze(-2)) @ Vh, A.float(), rtol=1e-5, atol=1e-5)

    Ah = exact([2, 2, 1]).to(dtype).requires_grad_()  # exactly representable
    W = torch.randn(3, 3)
    with override_torch():
        U, S, Vh = torch.linalg.svd(Ah)
        ((W * (U @ Vh)).sum() + S.sum()).backward()
    assert Ah.grad.dtype == dtype and torch.isfinite(Ah.grad).all()
    A32 = Ah.detach().float().requires_grad_()
    with override_torch():
        U, S, Vh = torch.linalg.svd(A32)
        ((W * (U @ Vh)).sum() + S.sum()).backward()
    torch.testing.assert_close(Ah.grad, A32.grad.to(dtype))


def test_autocast_region_computes_in_float32():
    """Inside torch.autocast a bfloat16 activation (the output of an autocast matmul)
    goes through safesvd in float32 and returns float32, as autocast's float32 ops do;
    the gradient reaches the float32 parameters through the bfloat16 matmul."""
    X = torch.randn(4, 3, 3)
    Wt = torch.randn(3, 3, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        A = X @ Wt
        assert A.dtype == torch.bfloat16
        U, S, Vh = safesvd.svd(A)
        L, Q = safesvd.eigh(A @ A.mT)
        R = safesvd.polar(A)[0]
        P = safesvd.procrustes(A, special=True)  # det has no bfloat16 kernel: must run in float32
        C = safesvd.sqrtm(A @ A.mT)
        s1 = safesvd.svd_rank1(A)[0]
        assert {t.dtype for t in (U, S, Vh, L, Q, R, P, C, s1)} == {torch.float32}
        with override_torch():
            S2 = torch.linalg.svdvals(A)
        assert S2.dtype == torch.float32
    (S.sum() + L.sum() + R.sum() + S2.sum() + P.sum() + C.sum() + s1.sum()).backward()
    assert Wt.grad.dtype == torch.float32 and torch.isfinite(Wt.grad).all()
    torch.testing.assert_close(S, torch.linalg.svdvals(A.float()))


# --------------------------------------------------------------------- torch.func


def test_torch_func_grad_vmap_with_mode_inside_or_outside():
    A = exact([2, 2, 1])
    W = torch.randn(3, 3, dtype=torch.float64)

    def loss(X):
        U, S, Vh = torch.linalg.svd(X)
        return (W * (U @ Vh)).sum() + torch.linalg.eigvalsh(X @ X.mT).sum()

    fd = finite_difference_grad(loss, A)
    with override_torch():
        g_outside = torch.func.grad(loss)(A)  # mode entered outside the transform
        batched = torch.func.vmap(torch.func.grad(loss))(torch.stack([A, A]))
    g_inside = torch.func.grad(override_torch()(loss))(A)  # mode entered inside it
    for g in (g_outside, g_inside, batched[0], batched[1]):
        assert rel_err(g, fd) < 1e-7
    assert torch.isnan(torch.func.grad(loss)(A)).any()  # without the override


# ------------------------------------------------------------------ torch.compile


def polar_loss(X):
    U, S, Vh = torch.linalg.svd(X)
    V = X.svd().V
    return (U @ Vh).sum() + S.sum() + torch.linalg.eigvalsh(X @ X.mT).sum() + V.abs().sum() * 0


@pytest.mark.slow
def test_torch_compile_fullgraph_mode_outside():
    """Compiled under an active override, the safesvd ops are traced (fullgraph, inductor);
    the compiled function is guarded on the mode stack, so without the override it is
    recompiled for plain torch."""
    torch._dynamo.reset()
    A = exact([2, 2, 1])
    compiled = torch.compile(polar_loss, fullgraph=True)
    with override_torch():
        g_eager = grad_of(polar_loss, A)
        g_compiled = grad_of(compiled, A)
    assert torch.isfinite(g_compiled).all()
    torch.testing.assert_close(g_compiled, g_eager)
    assert rel_err(g_compiled, finite_difference_grad(polar_loss, A)) < 1e-7
    assert torch.isnan(grad_of(compiled, A)).any()  # no override: torch's NaN again


@pytest.mark.slow
def test_torch_compile_fullgraph_mode_inside():
    torch._dynamo.reset()
    A = exact([2, 2, 1])
    n = stack_len()

    @torch.compile(fullgraph=True, backend="aot_eager")
    def f(X):
        with override_torch():
            return polar_loss(X)

    decorated = torch.compile(override_torch()(polar_loss), fullgraph=True, backend="aot_eager")
    fd = finite_difference_grad(polar_loss, A)
    assert rel_err(grad_of(f, A), fd) < 1e-7
    assert rel_err(grad_of(decorated, A), fd) < 1e-7
    assert stack_len() == n


def test_no_warning_leaks():
    A = torch.randn(3, 3, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with override_torch():
            grad_of(lambda X: torch.linalg.svd(X).S.sum(), A)

"""safesvd.eigh: backward vs torch, finite differences at repeated eigenvalues, gauge check."""

import pytest
import torch

import safesvd
from helpers import autograd_grad, finite_difference_grad, rel_err, with_eigenvalues


def hermitian(shape, dtype):
    X = torch.randn(*shape, dtype=dtype)
    return (X + X.mH) / 2


def hermitian_part(X):
    """eigh reads one triangle; differentiate through A = (X + X^H)/2 so that
    the gradient wrt X is the (Hermitian) gradient wrt A."""
    return (X + X.mH) / 2


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (2, 5, 5), (2, 2, 4, 4), (40, 40)])
@pytest.mark.parametrize("subset", [("L",), ("Q",), ("L", "Q")])
@pytest.mark.parametrize("UPLO", ["L", "U"])
def test_gradient_matches_torch_on_generic_input(dtype, shape, subset, UPLO):
    A = hermitian(shape, dtype)
    n = shape[-1]
    WL = torch.randn(n, dtype=torch.float64)
    WQ = torch.randn(n, n, dtype=torch.float64)

    def loss(X, decompose):
        L, Q = decompose(X)
        total = (WL * L).sum() if "L" in subset else 0.0
        if "Q" in subset:
            # |Q|^2 is phase invariant, as torch requires for complex input.
            total = total + (WQ * (Q.abs() ** 2 if dtype.is_complex else Q)).sum()
        return total

    # The loss reads Q itself: LAPACK's eigenvectors, like torch's (signs may differ otherwise).
    ours = autograd_grad(lambda X: loss(X, lambda Y: safesvd.eigh(Y, UPLO, driver="lapack")), A)
    ref = autograd_grad(lambda X: loss(X, lambda Y: torch.linalg.eigh(Y, UPLO=UPLO)), A)
    assert rel_err(ours, ref) < 1e-10


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("guard", ["pinv", "lorentz", "clamp", "none"])
@pytest.mark.parametrize("n", [5, 20])
def test_fused_loop_equals_composite(dtype, guard, n, device):
    """Fused loop (n <= 7 on CPU), batched matmul (n > 7) and composite agree."""
    A = torch.stack([hermitian((n, n), dtype), with_eigenvalues([1, 1, 2] + [3] * (n - 3), dtype)]).to(device)
    L, Q = torch.linalg.eigh(A)
    gL, gQ = torch.randn_like(L), torch.randn_like(Q)
    for args in [(gL, gQ), (None, gQ), (gL, None)]:
        fused = torch.ops.safesvd._eigh_backward(*args, L, Q, guard, None, None)
        composite = torch.ops.safesvd._eigh_backward_composite(*args, L, Q, guard, None, None)
        if guard != "none":
            torch.testing.assert_close(fused[0], composite[0], rtol=1e-9, atol=1e-9)
        else:
            torch.testing.assert_close(fused[0][0], composite[0][0], rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(fused[1], composite[1], rtol=1e-9, atol=1e-12)


def _eigenprojector_loss(W, k):
    def loss(X):
        L, Q = safesvd.eigh(hermitian_part(X))
        P = Q[..., :k] @ Q[..., :k].mH
        return (W * P).real.sum()
    return loss


def _eigenvalue_loss(W):
    def loss(X):
        L, Q = safesvd.eigh(hermitian_part(X))
        return (W * L).sum() + (L ** 3).sum()
    return loss


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("spectrum,k", [([1, 1, 3, 4], 2), ([-2, 0.5, 0.5, 0.5, 7], 4), ([0, 0, 0, 1], 3)])
def test_eigenprojector_exact_at_repeated_eigenvalues(dtype, spectrum, k, device):
    A = with_eigenvalues(spectrum, dtype)
    W = torch.randn(len(spectrum), len(spectrum), dtype=dtype)
    g = autograd_grad(_eigenprojector_loss(W.to(device), k), A.to(device)).cpu()
    assert rel_err(g, finite_difference_grad(_eigenprojector_loss(W, k), A)) < 1e-6


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_eigenvalue_loss_exact_at_identity(dtype):
    A = torch.eye(4, dtype=dtype)
    loss = _eigenvalue_loss(torch.tensor([1.0, 1.0, 1.0, 1.0], dtype=torch.float64))
    g = autograd_grad(loss, A)
    assert rel_err(g, finite_difference_grad(loss, A)) < 1e-6


def test_seed003_finite_with_gauge_warning():
    """Seed 003: one eigenvector of a degenerate pair. torch gives NaN."""
    M = torch.tensor([[1.2039, 0, 0.3690, 0], [0, -1.2039, 0, 0.3690],
                      [0.3690, 0, -1.2039, 0], [0, 0.3690, 0, 1.2039]], dtype=torch.float64)
    A = M.clone().requires_grad_()
    L, Q = safesvd.eigh(A)
    with pytest.warns(safesvd.GaugeWarning, match=r"L\[0\] = -1.25918 and L\[1\] = -1.25918"):
        Q[:, torch.argmin(L)].sum().backward()
    assert torch.isfinite(A.grad).all()
    At = M.clone().requires_grad_()
    Lt, Qt = torch.linalg.eigh(At)
    Qt[:, torch.argmin(Lt)].sum().backward()
    assert not torch.isfinite(At.grad).all()


def test_complex_phase_dependence_warns():
    A = hermitian((4, 4), torch.complex128).requires_grad_()
    L, Q = safesvd.eigh(A)
    W = torch.randn(4, 4, dtype=torch.complex128)
    with pytest.warns(safesvd.GaugeWarning, match="phase"):
        (W * Q).real.sum().backward()  # torch raises an error for this loss
    assert torch.isfinite(A.grad).all()


def test_float32_identity_and_repeated_batches_finite():
    A = torch.stack([torch.eye(3), torch.zeros(3, 3), torch.diag(torch.tensor([2.0, 2.0, 5.0]))]).requires_grad_()
    L, Q = safesvd.eigh(A)
    with safesvd.gauge_mode("ignore"):
        (L.sum() + Q.sum()).backward()
    assert torch.isfinite(A.grad).all()


@pytest.mark.parametrize("shape", [(0, 3, 3), (0, 0), (2, 0, 0)])
def test_empty(shape):
    A = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    L, Q = safesvd.eigh(A)
    assert L.shape == shape[:-1] and Q.shape == shape
    (L.sum() + Q.sum()).backward()
    assert A.grad.shape == A.shape


def test_non_contiguous():
    base = hermitian((4, 6, 6), torch.float64)
    A = base[::2].mT  # strided batch, transposed matrices
    W = torch.randn(6, 6, dtype=torch.float64)

    def loss(X, decompose):
        L, Q = decompose(hermitian_part(X))
        return (W * (Q * L.unsqueeze(-2) ** 2) @ Q.mT).sum()

    ours = autograd_grad(lambda X: loss(X, safesvd.eigh), A)
    ref = autograd_grad(lambda X: loss(X, torch.linalg.eigh), A)
    assert rel_err(ours, ref) < 1e-10


def test_errors():
    with pytest.raises(ValueError, match="square"):
        safesvd.eigh(torch.randn(3, 4))
    with pytest.raises(ValueError, match="UPLO"):
        safesvd.eigh(torch.eye(3), "X")
    with pytest.raises(TypeError):
        safesvd.eigh(torch.eye(3, dtype=torch.int32))
    with pytest.raises(ValueError, match="NaN or Inf"):
        safesvd.eigh(torch.full((2, 2), float("inf")))


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@safesvd.gauge_mode("ignore")  # opcheck backpropagates random, basis-dependent cotangents
def test_opcheck(dtype, device):
    A = hermitian((2, 4, 4), dtype).to(device)
    torch.library.opcheck(torch.ops.safesvd.eigh.default, (A, "L", "pinv", None, None))
    torch.library.opcheck(torch.ops.safesvd.eigh.default, (A.clone().requires_grad_(), "U", "lorentz", None, None))
    L, Q = torch.linalg.eigh(A)
    for args in [(torch.randn_like(L), torch.randn_like(Q)), (None, torch.randn_like(Q))]:
        torch.library.opcheck(torch.ops.safesvd._eigh_backward.default, (*args, L, Q, "pinv", None, None))
        torch.library.opcheck(torch.ops.safesvd._eigh_backward_composite.default, (*args, L, Q, "pinv", None, None))


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_gradcheck_and_gradgradcheck(dtype, device):
    def fn(X):
        L, Q = safesvd.eigh(hermitian_part(X))
        return L, Q[..., :2] @ Q[..., :2].mH

    X = hermitian((2, 4, 4), dtype).to(device).requires_grad_()
    assert torch.autograd.gradcheck(fn, (X,))
    assert torch.autograd.gradgradcheck(fn, (X,))

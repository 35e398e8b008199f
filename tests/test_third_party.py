"""override_torch() against real third-party code: roma 1.8.0 and kornia 0.9.0.

Both libraries are test dependencies (requirements-dev.txt) and are imported
unconditionally, so a missing one fails loudly instead of skipping.

Every case below is checked three ways: outside the override the same call gives NaN
(or, at a rounding-level degeneracy, a finite but wrong value), inside it the
gradient is finite, and it equals float64 central finite differences of the same
function wherever that function is differentiable at the point.

Which results are unique (and so tested against finite differences):
  - roma.special_procrustes_naive (nearest rotation) at singular values (2, 2, 1) and
    (2, 2, 2) without a reflection, at (2, 2, 1) with one (the flipped singular value 1
    is simple), and at (1, 1, 0) with or without one: unique and differentiable.
  - roma.procrustes_naive (nearest orthogonal matrix, the polar factor) at (2, 2, 1) and
    (2, 2, 2), either sign of det: unique.
Not unique, hence no finite-difference comparison:
  - special_procrustes_naive with a reflection and a repeated smallest singular value
    ((2, 2, 2) or (2, 1, 1) with det < 0), or with two zero singular values (1, 0, 0): the
    override gives a finite value and a safesvd.GaugeWarning (asserted).
  - procrustes_naive at a zero singular value (1, 1, 0): U V^T is discontinuous there (the
    sign of u3 v3^T flips as S[2] crosses 0); any finite value is as good as another and
    there is no warning (the sign is a discrete choice). Not tested.
"""

import pytest
import torch

import kornia  # hard imports: test dependencies, never skipped
import roma
import safesvd
from helpers import finite_difference_grad, rel_err, unitary
from safesvd._override import override_torch

assert roma.__version__ == "1.8.0" and kornia.__version__ == "0.9.0", "pinned in requirements-dev.txt"

DT = torch.float64
# Signed permutations: P1 diag(s) P2 is exact, so LAPACK returns exactly repeated
# singular values (torch's backward then divides 0 by 0).
P1 = torch.tensor([[0.0, -1, 0], [0, 0, 1], [1, 0, 0]], dtype=DT)
P2 = torch.tensor([[0.0, 0, 1], [-1, 0, 0], [0, 1, 0]], dtype=DT)
FLIP = torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=DT))


def exact(s, det):
    M = P1 @ torch.diag(torch.tensor(s, dtype=DT)) @ P2  # det(P1 P2) = +1
    return M if det > 0 else M @ FLIP


def rounded(s, det):
    U, V = unitary(3, DT), unitary(3, DT)
    M = (U * torch.tensor(s, dtype=DT)) @ V.mT
    return M if torch.linalg.det(U @ V.mT) * det > 0 else M @ FLIP


def grad_of(loss, A):
    A = A.detach().clone().requires_grad_()
    (g,) = torch.autograd.grad(loss(A), A)
    return g


def inside(loss, A):
    with override_torch():
        return grad_of(loss, A)


def weight(seed, *shape):
    return torch.randn(*shape, dtype=DT, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------ roma

ROMA = {"special_procrustes_naive": roma.special_procrustes_naive, "procrustes_naive": roma.procrustes_naive}
UNIQUE = [
    ("special_procrustes_naive", [2, 2, 1], +1),
    ("special_procrustes_naive", [2, 2, 1], -1),
    ("special_procrustes_naive", [1, 1, 0], +1),
    ("special_procrustes_naive", [1, 1, 0], -1),
    ("special_procrustes_naive", [2, 2, 2], +1),
    ("procrustes_naive", [2, 2, 1], +1),
    ("procrustes_naive", [2, 2, 1], -1),
    ("procrustes_naive", [2, 2, 2], +1),
    ("procrustes_naive", [2, 2, 2], -1),
]
IDS = [f"{f}-{tuple(s)}-det{'+' if d > 0 else '-'}" for f, s, d in UNIQUE]


def roma_loss(name):
    W = weight(7, 3, 3)
    f = ROMA[name]
    return lambda M: (W * f(M)).sum()  # sum(W * R): well defined wherever R is


@pytest.mark.parametrize("name, s, det", UNIQUE, ids=IDS)
def test_roma_exactly_degenerate(name, s, det):
    loss, M = roma_loss(name), exact(s, det)
    assert torch.isnan(grad_of(loss, M)).any(), "torch's own gradient is NaN here"
    g = inside(loss, M)
    assert torch.isfinite(g).all()
    assert rel_err(g, finite_difference_grad(loss, M)) < 1e-7


@pytest.mark.parametrize("name, s, det", UNIQUE, ids=IDS)
def test_roma_rounding_level_degenerate(name, s, det):
    """Random singular vectors: the singular values are repeated up to rounding. torch's
    gradient is then NaN or finite but wrong (26% to 41% off where finite, when this was
    written: the value is a ratio of rounding errors, so it depends on the machine)."""
    loss, M = roma_loss(name), rounded(s, det)
    fd = finite_difference_grad(loss, M)
    outside = grad_of(loss, M)
    assert not torch.isfinite(outside).all() or rel_err(outside, fd) > 1e-3
    assert rel_err(inside(loss, M), fd) < 1e-7


def test_roma_batched():
    cases = [(s, d) for name, s, d in UNIQUE if name == "special_procrustes_naive"]
    M = torch.stack([exact(s, d) for s, d in cases] + [rounded([3, 2, 1], 1)])
    W = weight(8, *M.shape)
    loss = lambda X: (W * roma.special_procrustes_naive(X)).sum()  # noqa: E731
    assert torch.isnan(grad_of(loss, M)).any()
    assert rel_err(inside(loss, M), finite_difference_grad(loss, M)) < 1e-7


@pytest.mark.parametrize("s, det", [([2, 2, 2], -1), ([2, 1, 1], -1), ([1, 0, 0], +1)])
def test_roma_not_unique_warns(s, det):
    """The nearest rotation is not unique: finite minimum-norm gradient + GaugeWarning."""
    loss, M = roma_loss("special_procrustes_naive"), exact(s, det)
    with pytest.warns(safesvd.GaugeWarning, match="degenerate subspace"):
        g = inside(loss, M)
    assert torch.isfinite(g).all()


def test_roma_generic_input_unchanged():
    M = torch.randn(4, 3, 3, dtype=DT)
    for name in ROMA:
        loss = roma_loss(name)
        assert rel_err(inside(loss, M), grad_of(loss, M)) < 1e-10


def test_roma_custom_backward_functions_unaffected():
    """roma.procrustes / special_procrustes(method="svd") call torch.linalg.svd inside an
    autograd.Function with roma's own backward: the override answers the forward call,
    roma's backward is used either way, so the gradient does not change. The default
    special_procrustes (Horn's method) makes no SVD call."""
    M = torch.stack([exact([2, 2, 1], 1), torch.randn(3, 3, dtype=DT)])
    W = weight(9, 2, 3, 3)
    for f in (lambda X: roma.procrustes(X), lambda X: roma.special_procrustes(X, method="svd"),
              lambda X: roma.special_procrustes(X)):
        loss = lambda X: (W * f(X)).sum()  # noqa: E731
        torch.testing.assert_close(inside(loss, M), grad_of(loss, M))


# ---------------------------------------------------------------------------- kornia


def test_kornia_fit_plane():
    """fit_plane: the normal is the right singular vector of the smallest singular value of
    the centred points. Points spread isotropically in the plane repeat the two largest
    singular values: torch NaN (0 * inf in its backward), override exact (the normal is
    separated by a gap). Loss: squared distances of query points, invariant to the
    normal's sign."""
    P = torch.tensor([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0]], dtype=DT)[None] + torch.tensor(
        [0.25, -0.5, 0.75], dtype=DT)
    Q = weight(10, 5, 1, 3)

    def loss(X):
        return (kornia.geometry.fit_plane(X).signed_distance(Q).data ** 2).sum()

    assert torch.isnan(grad_of(loss, P)).any()
    g = inside(loss, P)
    assert rel_err(g, finite_difference_grad(loss, P)) < 1e-7
    generic = torch.randn(1, 7, 3, dtype=DT)
    assert rel_err(inside(loss, generic), grad_of(loss, generic)) < 1e-10


def test_kornia_fit_line():
    """fit_line (3-D): the direction is the top singular vector of the scatter matrix.
    Isotropic spread across the line repeats the two smallest singular values: torch NaN,
    override exact. Loss: squared distances of query points to the line."""
    P = torch.tensor([[3.0, 0, 0], [-3, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], dtype=DT)[None]
    Q = weight(11, 5, 1, 3)

    def loss(X):
        return kornia.geometry.fit_line(X).squared_distance(Q).sum()

    assert torch.isnan(grad_of(loss, P)).any()
    assert rel_err(inside(loss, P), finite_difference_grad(loss, P)) < 1e-7
    generic = torch.randn(1, 7, 3, dtype=DT)
    assert rel_err(inside(loss, generic), grad_of(loss, generic)) < 1e-10


# ZCA whitening is a matrix function of the covariance, T = U diag((S + eps)^-1/2) U^T,
# computed by kornia from torch.linalg.svd(cov). At a repeated eigenvalue the SVD
# backward cannot be exact for it (the cotangents of U and S have lost the limit; see the
# README): the override makes it finite, not exact, and safesvd.invsqrtm (or eigh_fn)
# gives the exact gradient of the same whitening.
#
# What the override's error is at a repeated eigenvalue is not a property of safesvd: it
# depends on the basis the forward picks inside the repeated eigenspace, which for a
# covariance repeated only up to rounding is decided by rounding (LAPACK/MKL code path,
# instruction set, engine). Measured on these inputs: 2.0e-2 (AMD Zen 3), 9.2e-2 (Intel
# Xeon, AVX-512), 9.4e-3 with driver="lapack". So the tests assert what follows from the
# math: finite everywhere, and not exact at an exact degeneracy (the dropped within-block
# divided differences are the diagonal's own derivative, a fixed share of the gradient),
# with the error below one (the gradient has the right scale: what is lost is the
# within-block term, never more than the whole gradient on these inputs).
ZCA_ERR_CEILING = 1.0


def zca_data():
    exact_diag = torch.tensor([[1.0, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 2], [0, 0, -2]], dtype=DT)
    g = torch.Generator().manual_seed(12)
    N = 20
    Z = torch.randn(N, 3, dtype=DT, generator=g)
    Z, _ = torch.linalg.qr(Z - Z.mean(0))
    Z = (Z - Z.mean(0)) * (N - 1) ** 0.5
    Q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=DT, generator=g))
    C_half = (Q * torch.tensor([2.0, 2.0, 1.0], dtype=DT).sqrt()) @ Q.mT
    return exact_diag, Z @ C_half + 3.0


def zca_loss(X):
    return (weight(13, *X.shape) * kornia.enhance.zca_whiten(X, dim=0)).sum()


def invsqrtm_whiten(X, eps=1e-6):
    """The same whitening with safesvd.invsqrtm: (X - mean) (C + eps I)^(-1/2)."""
    Xc = X - X.mean(0, keepdim=True)
    C = Xc.mT @ Xc / (X.shape[0] - 1)
    return Xc @ safesvd.invsqrtm(C + eps * torch.eye(X.shape[1], dtype=X.dtype))


def test_kornia_zca_at_repeated_eigenvalue_finite_not_exact():
    exact_diag, rounded_data = zca_data()
    # exactly repeated eigenvalue: torch NaN, the override finite but not exact. The
    # covariance is exactly diagonal, so every forward (engine or LAPACK, any ISA) returns
    # the coordinate basis and the lost term is the same on every machine.
    assert torch.isnan(grad_of(zca_loss, exact_diag)).any()
    g = inside(zca_loss, exact_diag)
    assert torch.isfinite(g).all()
    err = rel_err(g, finite_difference_grad(zca_loss, exact_diag))
    assert 1e-3 < err < ZCA_ERR_CEILING, err
    # repeated up to rounding: torch divides by a difference of rounding errors, the
    # override treats the pair as repeated. Its error is basis- (so machine-) dependent:
    # only finiteness and the scale ceiling are properties.
    fd = finite_difference_grad(zca_loss, rounded_data)
    g = inside(zca_loss, rounded_data)
    assert torch.isfinite(g).all()
    assert rel_err(g, fd) < ZCA_ERR_CEILING, rel_err(g, fd)


def test_invsqrtm_whitening_is_exact():
    exact_diag, rounded_data = zca_data()
    for X in (exact_diag, rounded_data):
        torch.testing.assert_close(invsqrtm_whiten(X), kornia.enhance.zca_whiten(X, dim=0))  # same forward
        loss = lambda Y: (weight(13, *Y.shape) * invsqrtm_whiten(Y)).sum()  # noqa: E731
        assert rel_err(grad_of(loss, X), finite_difference_grad(loss, X)) < 1e-7


def test_kornia_zca_generic_input_unchanged():
    X = torch.randn(12, 4, dtype=DT)
    assert rel_err(inside(zca_loss, X), grad_of(zca_loss, X)) < 1e-10

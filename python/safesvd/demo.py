"""The users' NaN cases (docs/math.md, "Reported cases"), with torch and with safesvd side by side.

Every safesvd gradient shown for a basis-independent loss is checked against
float64 central finite differences; the demo exits non-zero if one is off.
"""

from __future__ import annotations

import warnings

import torch

import safesvd
from safesvd._testing import autograd_grad, finite_difference_grad, with_eigenvalues, with_singular_values

TOLERANCE = 1e-6  # max |safesvd - finite differences| / max |finite differences|


def _fmt(g: torch.Tensor) -> list[str]:
    rows = g.detach().reshape(-1, g.shape[-1]).tolist()
    return ["[" + " ".join(f"{v:8.4f}" for v in row) + "]" for row in rows]


def _side_by_side(title_left: str, left: torch.Tensor, title_right: str, right: torch.Tensor) -> None:
    a, b = _fmt(left), _fmt(right)
    width = max(len(s) for s in a + [title_left])
    print(f"  {title_left:<{width}}   {title_right}")
    for x, y in zip(a, b):
        print(f"  {x:<{width}}   {y}")


def _relative_error(g: torch.Tensor, reference: torch.Tensor) -> float:
    return ((g - reference).abs().max() / reference.abs().max().clamp_min(1e-12)).item()


def _case(name: str, A: torch.Tensor, torch_loss, safe_loss, basis_independent: bool = True) -> bool:
    print(f"\n== {name}")
    g_torch = autograd_grad(torch_loss, A)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", safesvd.GaugeWarning)
        g_safe = autograd_grad(safe_loss, A)
    _side_by_side("torch.linalg gradient", g_torch, "safesvd gradient", g_safe)
    ok = bool(torch.isfinite(g_safe).all())
    for w in caught:
        print(f"  GaugeWarning: {str(w.message)[:160]}...")
    if basis_independent:
        fd = finite_difference_grad(safe_loss, A)
        err = _relative_error(g_safe, fd)
        ok = ok and err < TOLERANCE
        verdict = "OK" if ok else "MISMATCH"
        torch_err = _relative_error(g_torch, fd)
        torch_verdict = "NaN/Inf" if not torch.isfinite(g_torch).all() else (
            f"relative error {torch_err:.1e}" + (" (WRONG)" if torch_err > TOLERANCE else ""))
        print(f"  vs float64 finite differences: torch {torch_verdict}; "
              f"safesvd relative error {err:.1e} [{verdict}]")
    else:
        print(f"  torch finite: {bool(torch.isfinite(g_torch).all())}; safesvd finite: {ok} "
              "(the loss depends on the basis: no unique gradient exists, safesvd warns)")
    return ok


def run() -> int:
    torch.manual_seed(0)
    safesvd.load()
    dt = torch.float64
    results = []

    # Case 000: norm(U S Vh) at diag(1, 1, 2, 3). Expected diag(.258, .258, .516, .775).
    A = torch.diag(torch.tensor([1.0, 1.0, 2.0, 3.0], dtype=dt))

    def seed000(decompose):
        def loss(X):
            U, S, Vh = decompose(X)
            return torch.linalg.norm((U * S.unsqueeze(-2)) @ Vh)
        return loss

    results.append(_case("case 000: norm(U diag(S) Vh) at diag(1, 1, 2, 3)", A,
                         seed000(lambda X: torch.linalg.svd(X, full_matrices=False)), seed000(safesvd.svd)))

    # Polar factor U Vh at repeated singular values (2, 2, 1): Procrustes / pose estimation.
    A = with_singular_values([2.0, 2.0, 1.0], 3, 3)
    W = torch.randn(3, 3, dtype=dt)

    def polar(decompose):
        def loss(X):
            U, S, Vh = decompose(X)
            return (W * (U @ Vh)).sum()
        return loss

    results.append(_case("polar factor U Vh at singular values (2, 2, 1)", A,
                         polar(lambda X: torch.linalg.svd(X, full_matrices=False)), polar(safesvd.svd)))

    # Case 003: one eigenvector of a degenerate pair (basis dependent: warns, stays finite).
    M = torch.tensor([[1.2039, 0, 0.3690, 0], [0, -1.2039, 0, 0.3690],
                      [0.3690, 0, -1.2039, 0], [0, 0.3690, 0, 1.2039]], dtype=dt)

    def seed003(decompose):
        def loss(X):
            L, Q = decompose(X)
            return Q[:, torch.argmin(L)].sum()
        return loss

    results.append(_case("case 003: sum of the eigenvector of the smallest (repeated) eigenvalue", M,
                         seed003(torch.linalg.eigh), seed003(safesvd.eigh), basis_independent=False))

    # The basis-independent version of case 003: the projector onto that eigenspace.
    Wp = torch.randn(4, 4, dtype=dt)

    def eigenprojector(decompose):
        def loss(X):
            L, Q = decompose((X + X.mT) / 2)
            return (Wp * (Q[:, :2] @ Q[:, :2].mT)).sum()
        return loss

    results.append(_case("case 003, basis independent: projector onto the repeated eigenspace", M,
                         eigenprojector(torch.linalg.eigh), eigenprojector(safesvd.eigh)))

    # Rank deficiency: A A^T = U S^2 U^T of a rank-2 6x4 matrix (zero singular values).
    A = with_singular_values([2.0, 1.0, 0.0, 0.0], 6, 4)
    Wg = torch.randn(6, 6, dtype=dt)

    def gram(decompose):
        def loss(X):
            U, S, Vh = decompose(X)
            return (Wg * ((U * S.unsqueeze(-2) ** 2) @ U.mT)).sum()
        return loss

    results.append(_case("rank deficient: U S^2 U^T of a rank-2 6x4 matrix", A,
                         gram(lambda X: torch.linalg.svd(X, full_matrices=False)), gram(safesvd.svd)))

    # Covariance pooling: sqrtm of a covariance matrix with repeated eigenvalues.
    C = with_eigenvalues([1.0, 1.0, 1.0, 4.0])
    Wc = torch.randn(4, 4, dtype=dt)

    def sqrtm_torch(X):
        L, Q = torch.linalg.eigh((X + X.mT) / 2)
        return (Wc * ((Q * L.sqrt().unsqueeze(-2)) @ Q.mT)).sum()

    def sqrtm_safe(X):
        return (Wc * safesvd.sqrtm((X + X.mT) / 2)).sum()

    results.append(_case("covariance pooling: sqrtm of a covariance with eigenvalues (1, 1, 1, 4)", C,
                         sqrtm_torch, sqrtm_safe))

    # A matrix function of the SVD at a repeated singular value (docs/math.md, "What the guard gets right, and what it cannot").
    A = with_singular_values([3.0, 2.0, 1.0, 1.0], 4, 4)
    Wf = torch.randn(4, 4, dtype=dt)

    def tanh_torch(X):
        U, S, Vh = torch.linalg.svd(X, full_matrices=False)
        return (Wf * ((U * S.tanh().unsqueeze(-2)) @ Vh)).sum()

    def tanh_safe(X):
        return (Wf * safesvd.svd_fn(X, torch.tanh, lambda s: 1 - s.tanh() ** 2)).sum()

    results.append(_case("svd_fn: U tanh(S) V^T at singular values (3, 2, 1, 1)", A, tanh_torch, tanh_safe))

    print(f"\n{sum(results)} of {len(results)} cases finite and (where defined) equal to finite differences.")
    return 0 if all(results) else 1


"""safesvd: SVD and Hermitian eigendecomposition with gradients that stay finite.

PyTorch's ``svd``/``eigh`` backward divides by differences of singular values
(eigenvalues) and by singular values themselves, and returns NaN/Inf when two
are equal or one is zero. safesvd computes the same gradient in a split form
with guarded reciprocals (design.md 3.1/3.2): it equals PyTorch's wherever that
is finite, and is exact at degeneracies for every loss that does not depend on
the basis inside a degenerate subspace (singular values, subspace projectors,
the polar factor, norms). Losses that do depend on that basis get a finite,
minimum-norm gradient and a :class:`GaugeWarning`.

All functions take batched input ``(..., m, n)`` of dtype float32, float64,
complex64 or complex128, on CPU (and CUDA where built).
"""

from __future__ import annotations

import torch

from . import _loader, _ops
from ._functions import eigh_fn, invsqrtm, logm, polar, procrustes, sqrtm, svd_fn
from ._gauge import GaugeWarning, gauge_mode, get_gauge_mode, set_gauge_mode
from ._loader import load

__version__ = "0.1.0"

__all__ = [
    "svd",
    "svdvals",
    "eigh",
    "svd_fn",
    "eigh_fn",
    "sqrtm",
    "invsqrtm",
    "logm",
    "polar",
    "procrustes",
    "svd_topk",
    "svd_rank1",
    "GaugeWarning",
    "gauge_mode",
    "set_gauge_mode",
    "get_gauge_mode",
    "load",
]

_GUARDS = ("pinv", "lorentz", "clamp", "none")


def _check_guard(guard: str) -> None:
    if guard not in _GUARDS:
        raise ValueError(f"guard must be one of {_GUARDS}, got {guard!r}")


def svd(A: torch.Tensor, full_matrices: bool = False, *, guard: str = "pinv",
        rtol: float | None = None, atol: float | None = None):
    """Singular value decomposition ``A = U diag(S) Vh`` with a guarded backward.

    Args:
        A: ``(..., m, n)`` float32/float64/complex64/complex128 tensor, finite.
        full_matrices: as in :func:`torch.linalg.svd`. With ``True`` the extra
            columns of U (rows of Vh) are an arbitrary basis: their gradient is
            ignored, and a loss that reads them triggers a :class:`GaugeWarning`.
        guard: how 1/x is guarded for x = S_j - S_i (degeneracy), S_j + S_i and
            S_i (rank deficiency): ``"pinv"`` (1/x if |x| > tol else 0, default),
            ``"lorentz"`` (x/(x^2 + tol^2)), ``"clamp"`` (1/(sign(x) max(|x|, tol))),
            ``"none"`` (PyTorch's unguarded math, for comparison).
        rtol, atol: tol = max(atol, rtol * max(S)) per matrix; rtol defaults to
            eps(dtype)^(3/4), atol to 0.

    Returns:
        ``U (..., m, k)``, ``S (..., k)`` (real, descending), ``Vh (..., k, n)``,
        k = min(m, n) (m and n columns/rows with ``full_matrices=True``).

    Gradient: equal to PyTorch's where PyTorch's is finite; at repeated or zero
    singular values, exact for losses that are invariant to the basis inside a
    degenerate subspace; otherwise the minimum-norm choice and a GaugeWarning.
    Matrix functions ``U f(S) Vh`` at a degeneracy need :func:`svd_fn` (design 3.3).
    """
    _loader.require()
    _check_guard(guard)
    return _ops.call("svd", A, full_matrices, guard, rtol, atol)


def svdvals(A: torch.Tensor) -> torch.Tensor:
    """Singular values ``S (..., k)`` of ``A (..., m, n)``, descending.

    The gradient ``U diag(gS) Vh`` is exact everywhere, including repeated and
    zero singular values (where it is a valid subgradient choice).
    """
    return svd(A)[1]


def eigh(A: torch.Tensor, UPLO: str = "L", *, guard: str = "pinv",
         rtol: float | None = None, atol: float | None = None):
    """Eigendecomposition ``A = Q diag(L) Q^H`` of Hermitian matrices, guarded backward.

    Args:
        A: ``(..., n, n)`` Hermitian; only the triangle named by ``UPLO`` is read.
        UPLO: ``"L"`` or ``"U"``.
        guard, rtol, atol: as in :func:`svd`, with tol = max(atol, rtol * max|L|).

    Returns:
        ``L (..., n)`` real ascending eigenvalues and ``Q (..., n, n)`` eigenvectors.

    Gradient: the Hermitian ``Q (a o F + diag(gL)) Q^H``, as PyTorch's where that is
    finite; exact at repeated eigenvalues for losses invariant to the basis of
    each eigenspace (eigenvalues, eigenprojectors); otherwise minimum-norm with a
    GaugeWarning. Matrix functions at repeated eigenvalues need :func:`eigh_fn`.
    """
    _loader.require()
    _check_guard(guard)
    return _ops.call("eigh", A, UPLO, guard, rtol, atol)


def svd_topk(A: torch.Tensor, k: int, *, method: str = "auto", guard: str = "pinv",
             rtol: float | None = None, atol: float | None = None):
    """The k largest singular triplets: ``U_k (..., m, k)``, ``S_k (..., k)``, ``Vh_k (..., k, n)``.

    Forward: a full SVD (``method="dense"``), or subspace iteration with Rayleigh-Ritz
    (``"iterative"``: converged to 10 eps^(2/3) relative residuals, else RuntimeError).
    ``"auto"`` uses the iteration when min(m, n) > 256 and k + 8 <= min(m, n) / 4.
    Every method returns the same phase convention: the largest-magnitude entry of each
    column of U_k is real and positive (V_k rotated to match).

    Gradient (design.md 3.6): the guarded SVD backward inside the kept k (degeneracies
    there are handled as in :func:`svd`) plus the truncation term for the discarded
    spectrum, solved from the K system of seed 004 without the discarded singular
    vectors (dense deflated solve, or matrix-free conjugate gradients for
    ``"iterative"``). Valid when S_k > S_{k+1}; at S_k = S_{k+1} the subspace is not
    unique: the dense path returns the guarded value with a GaugeWarning, CG raises.
    """
    _loader.require()
    _check_guard(guard)
    return _ops.call("svd_topk", A, k, method, guard, rtol, atol)


def svd_rank1(A: torch.Tensor, *, method: str = "auto"):
    """Dominant singular triplet ``(s, u, v)`` with ``A ~ s * outer(u, v.conj())``.

    Shapes ``(...)``, ``(..., m)``, ``(..., n)``. Its gradient needs only s_1 > s_2:
    repeated or zero singular values elsewhere in the spectrum do not matter (torch's
    is NaN there). See :func:`svd_topk` for the methods.
    """
    U, S, Vh = svd_topk(A, 1, method=method)
    return S[..., 0], U[..., 0], Vh[..., 0, :].conj()


_loader.try_import_compiled()

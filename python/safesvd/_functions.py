"""Spectral matrix functions with gradients exact at degeneracy (design.md 3.5).

A guarded svd/eigh backward cannot be exact for a matrix function at a
repeated singular value or eigenvalue: the cotangents of U, S, V no longer
carry the limit (design.md 3.3). These functions differentiate the matrix
function itself, with divided differences that tend to (df_i + df_j)/2.
"""

from __future__ import annotations

import math
import warnings

import torch

from . import _gauge, _loader, _ops


def _tolerance(x: torch.Tensor, rtol: float | None, atol: float | None, power: float) -> torch.Tensor:
    """max(atol, rtol * max|x|) per matrix, shape (..., 1)."""
    eps = torch.finfo(x.dtype).eps
    rtol = eps ** power if rtol is None else rtol
    top = x.detach().abs().amax(-1, keepdim=True) if x.shape[-1] else x.new_zeros((*x.shape[:-1], 1))
    return torch.clamp_min(top * rtol, 0.0 if atol is None else atol)


def _checks_enabled(*tensors) -> bool:
    return not _gauge.is_tracing(*tensors)


def _warn_not_unique(condition: torch.Tensor, message: str) -> None:
    """GaugeWarning (or raise) when `condition` holds for some matrix; one sync."""
    if _gauge.get_gauge_mode() == "ignore" or not _checks_enabled(condition) or condition.numel() == 0:
        return
    if bool(condition.any()):
        text = message + " safesvd returns the finite guarded value."
        if _gauge.get_gauge_mode() == "raise":
            raise _gauge.GaugeWarning(text)
        warnings.warn(text, _gauge.GaugeWarning, stacklevel=3)


def _apply_svd_fn(A, U, S, Vh, fS, dfS, rtol, atol):
    return _ops.call("svd_fn", A, U, S, Vh, fS.to(S.dtype), dfS.to(S.dtype), rtol, atol)


def svd_fn(A: torch.Tensor, f, df, *, rtol: float | None = None, atol: float | None = None) -> torch.Tensor:
    """``U diag(f(S)) V^H`` for ``A = U diag(S) V^H``, with a gradient exact at degeneracy.

    Args:
        A: ``(..., m, n)`` float32/float64/complex64/complex128, any m, n.
        f, df: elementwise torch functions of the real singular values: the
            scalar function and its derivative (``f(S)``, ``df(S)``, same shape as S).
            For rank-deficient input f(0) must be 0 (otherwise the result is not
            unique: GaugeWarning).
        rtol, atol: singular values within tol = max(atol, rtol * max(S)) are
            treated as equal (divided differences become ``(df_i + df_j)/2``);
            rtol defaults to eps^(1/3), which balances cancellation in the
            quotient against the error of the average.

    Returns:
        ``(..., m, n)`` tensor of A's dtype.

    Gradient: Lewis-Sendov / Daleckii-Krein form (design.md 3.5), exact at
    repeated singular values; f(S) = S returns the upstream gradient unchanged.
    """
    _loader.require()
    from . import svd

    U, S, Vh = svd(A)
    fS, dfS = f(S), df(S)
    f0 = f(torch.zeros((), dtype=S.dtype, device=S.device))
    if _checks_enabled(S) and float(f0) != 0.0 and S.shape[-1]:
        tol = _tolerance(S, rtol, atol, 0.75)
        _warn_not_unique((S[..., -1:] <= tol), "safesvd.svd_fn: f(0) != 0 on a rank-deficient matrix: "
                         "U f(S) V^H depends on the arbitrary singular vectors of the zero singular values.")
    return _apply_svd_fn(A, U, S, Vh, fS, dfS, rtol, atol)


def _eigh_fn(A, f, df, UPLO, rtol, atol, validate=None):
    _loader.require()
    from . import eigh

    L, Q = eigh(A, UPLO)
    if validate is not None and _checks_enabled(L):
        validate(L)
    fL, dfL = f(L), df(L)
    # The op sees the Hermitian matrix eigh decomposed (one triangle mirrored),
    # so that its gradient, like torch's, is the Hermitian one.
    return _ops.call("eigh_fn", A, L, Q, fL.to(L.dtype), dfL.to(L.dtype), rtol, atol)


def eigh_fn(A: torch.Tensor, f, df, *, UPLO: str = "L", rtol: float | None = None,
            atol: float | None = None) -> torch.Tensor:
    """``Q diag(f(L)) Q^H`` for Hermitian ``A = Q diag(L) Q^H``, gradient exact at degeneracy.

    Args:
        A: ``(..., n, n)`` Hermitian; only the ``UPLO`` triangle is read.
        f, df: elementwise torch functions of the real eigenvalues (value, derivative).
        rtol, atol: eigenvalues within max(atol, rtol * max|L|) count as equal;
            rtol defaults to eps^(1/3).

    Returns:
        ``(..., n, n)`` Hermitian tensor of A's dtype.

    Gradient: ``Q (D o Q^H sym(G) Q) Q^H`` with ``D_ij = (f_i - f_j)/(L_i - L_j)``,
    ``(df_i + df_j)/2`` for equal eigenvalues (Daleckii-Krein): exact at repeated
    eigenvalues, including A = identity.
    """
    return _eigh_fn(A, f, df, UPLO, rtol, atol)


def _psd_validator(name: str, positive_definite: bool):
    def validate(L: torch.Tensor) -> None:
        if L.numel() == 0:
            return
        scale = L.detach().abs().amax(-1)
        tol = math.sqrt(torch.finfo(L.dtype).eps) * scale
        low = L.detach()[..., 0]
        if positive_definite:
            bad = low <= 0
            what = "positive definite"
        else:
            bad = low < -tol
            what = "positive semidefinite"
        if bool(bad.any()):
            raise ValueError(
                f"safesvd.{name}: expected a Hermitian {what} matrix; the smallest eigenvalue is "
                f"{float(low[bad].min()):.3g}" + ("" if positive_definite else
                f" (below -sqrt(eps) * max|L| = {-float(tol[bad].max()):.3g})")
            )
    return validate


def sqrtm(A: torch.Tensor, *, UPLO: str = "L") -> torch.Tensor:
    """Principal square root of a Hermitian positive semidefinite matrix.

    Eigenvalues below ``-sqrt(eps) * max|L|`` raise ValueError; smaller negative
    values (rounding) are clamped to 0. The gradient is exact at repeated
    eigenvalues (covariance pooling); at a zero eigenvalue the true derivative is
    unbounded and the returned one is large but finite (df clamped at eps * max|L|).
    """
    def df(L):
        info = torch.finfo(L.dtype)
        floor = _tolerance(L, info.eps, info.tiny, 0.0)  # max(tiny, eps * max|L|)
        return 0.5 / L.clamp_min(floor).sqrt()

    return _eigh_fn(A, lambda L: L.clamp_min(0).sqrt(), df, UPLO, None, None,
                    _psd_validator("sqrtm", positive_definite=False))


def invsqrtm(A: torch.Tensor, *, UPLO: str = "L") -> torch.Tensor:
    """Inverse principal square root ``A^{-1/2}`` of a Hermitian positive definite matrix
    (whitening). Non-positive eigenvalues raise ValueError. Gradient exact at repeated
    eigenvalues."""
    return _eigh_fn(A, lambda L: L.rsqrt(), lambda L: -0.5 * L.rsqrt() / L, UPLO, None, None,
                    _psd_validator("invsqrtm", positive_definite=True))


def logm(A: torch.Tensor, *, UPLO: str = "L") -> torch.Tensor:
    """Principal logarithm of a Hermitian positive definite matrix (log-Euclidean
    metrics). Non-positive eigenvalues raise ValueError. Gradient exact at repeated
    eigenvalues."""
    return _eigh_fn(A, torch.log, torch.reciprocal, UPLO, None, None,
                    _psd_validator("logm", positive_definite=True))


def polar(A: torch.Tensor):
    """Polar decomposition ``A = Q P``: ``Q = U V^H`` (m x n, orthonormal columns or rows),
    ``P = V diag(S) V^H`` (n x n, Hermitian positive semidefinite).

    Gradient exact at repeated singular values (Q's derivative is the divided
    difference 2/(S_i + S_j)). For a rank-deficient A the polar factor is not
    unique: the guarded finite value is returned with a GaugeWarning.
    """
    _loader.require()
    from . import svd

    U, S, Vh = svd(A)
    if S.shape[-1]:
        tol = _tolerance(S, None, None, 0.75)
        _warn_not_unique(S[..., -1:] <= tol, "safesvd.polar: A is rank deficient, so its polar "
                         "factor U V^H is not unique.")
    Q = _apply_svd_fn(A, U, S, Vh, torch.ones_like(S), torch.zeros_like(S), None, None)
    P = Q.mH @ A
    return Q, (P + P.mH) / 2


def procrustes(A: torch.Tensor, special: bool = False) -> torch.Tensor:
    """The nearest matrix with orthonormal columns (rows) to A in Frobenius norm: ``U V^H``.

    With ``special=True`` (square, real input) the nearest rotation, det = +1:
    ``U diag(1, ..., 1, d) V^H`` with ``d = det(U V^H)``, which also handles the
    reflection case det(A) < 0 (pose estimation, Kabsch). Not unique (GaugeWarning,
    finite guarded value) when A is rank deficient by more than the flipped
    direction allows, or when a reflection is needed and the smallest singular
    value is repeated.
    """
    if not special:
        return polar(A)[0]
    _loader.require()
    from . import svd

    if A.shape[-1] != A.shape[-2]:
        raise ValueError(f"safesvd.procrustes(special=True): expected square matrices, got shape {tuple(A.shape)}")
    if A.is_complex():
        raise TypeError("safesvd.procrustes(special=True) is defined for real input (rotations); "
                        "use special=False for the nearest unitary matrix")
    U, S, Vh = svd(A)
    n = S.shape[-1]
    d = torch.linalg.det((U @ Vh).detach()).sign() if n else S.new_ones(S.shape[:-1])
    fS = torch.ones_like(S)
    if n:
        fS[..., -1] = d
        tol = _tolerance(S, None, None, 0.75)
        reflect = d < 0
        ambiguous = (S[..., -2] - S[..., -1] <= tol[..., 0]) & reflect if n > 1 else torch.zeros_like(reflect)
        if n > 1:
            ambiguous = ambiguous | (S[..., -2] <= tol[..., 0])
        _warn_not_unique(ambiguous, "safesvd.procrustes(special=True): the nearest rotation is not unique "
                         "(repeated smallest singular value with a reflection, or rank deficiency).")
    return _apply_svd_fn(A, U, S, Vh, fS, torch.zeros_like(S), None, None)

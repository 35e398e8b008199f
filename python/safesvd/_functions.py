"""Spectral matrix functions with gradients exact at degeneracy (docs/math.md,
"Matrix functions").

A guarded svd/eigh backward cannot be exact for a matrix function at a
repeated singular value or eigenvalue: the cotangents of U, S, V no longer
carry the limit (docs/math.md, "What the guard cannot do"). These functions
differentiate the matrix function itself, with divided differences that tend
to (df_i + df_j)/2; their second order uses second divided differences and is
exact too.

f, f' and f'' are evaluated on the detached spectrum: the operator's gradient
with respect to A is complete, and f(S) receives only the cotangent its
parameters need (a learnable exponent, say).
"""

from __future__ import annotations

import torch

from . import _gauge, _guards, _inputs, _library, _ops
from ._eigh import eigh
from ._svd import svd


def _evaluate(fn, x: torch.Tensor, what: str, name: str) -> torch.Tensor:
    """fn(x) for an elementwise function of the real spectrum x, checked."""
    try:
        y = fn(x)
    except Exception as e:
        raise type(e)(f"{name}: calling {what} on the spectrum (a real tensor of shape {tuple(x.shape)}) "
                      f"failed: {e}") from e
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name}: {what} must return a torch.Tensor, got {type(y).__name__}")
    if y.is_complex() or not (y.is_floating_point()):
        raise TypeError(f"{name}: {what} must return a real floating tensor, got {y.dtype}")
    if y.shape != x.shape:
        try:
            y = y.expand(x.shape)
        except RuntimeError:
            raise ValueError(f"{name}: {what} must be elementwise: it returned shape {tuple(y.shape)} "
                             f"for a spectrum of shape {tuple(x.shape)}") from None
    return y.to(x.dtype)


def _second_derivative(df, x: torch.Tensor, name: str):
    """f'' from f' by autograd (f' must be elementwise), or None if f' is not
    differentiable by torch (then a double backward raises a clear error)."""
    try:
        if torch._C._are_functorch_transforms_active() or torch.compiler.is_compiling():
            return torch.func.grad(lambda s: df(s).sum())(x)
        with torch.enable_grad():
            xs = x.detach().requires_grad_()
            y = df(xs)
            if not y.requires_grad:
                return torch.zeros_like(x)
            (g,) = torch.autograd.grad(y.sum(), xs)
        return g.detach()
    except Exception:
        return None


def _values(A, spectrum, f, df, d2f, name):
    """f, f', f'' on the detached spectrum. f'' is computed only when a gradient may be
    taken (it is used only by second derivatives); pass d2f to avoid deriving it."""
    x = spectrum.detach()
    fx = _evaluate(f, x, "f", name)
    dfx = _evaluate(df, x, "df", name)
    d2fx = None
    needs_grad = torch.is_grad_enabled() and A.requires_grad or torch._C._are_functorch_transforms_active()
    if d2f is not None:
        d2fx = _evaluate(d2f, x, "d2f", name)
    elif needs_grad:
        d2fx = _second_derivative(df, x, name)
    return fx, dfx, d2fx


def _warn_not_unique(condition: torch.Tensor, message: str) -> None:
    """GaugeWarning (or raise) when `condition` holds for some matrix; one sync."""
    if _gauge.get_gauge_mode() == "ignore" or _gauge.is_tracing(condition) or condition.numel() == 0:
        return
    if bool(condition if condition.numel() == 1 else condition.any()):  # one matrix: no any() (~0.8 us)
        _gauge.report(message + " safesvd returns the finite guarded value.", stacklevel=3)


def _apply_svd_fn(A, U, S, Vh, fS, dfS, d2fS, df0, rtol, atol):
    """The svd_fn operator on A and its decomposition. The operator carries the whole
    gradient (and forward-mode tangent) of A, so the decomposition is taken of A.detach():
    a graph through it would never be used, and cost a node per call."""
    return _ops.apply(_ops.SafesvdSvdFn, _ops.OPS.svd_fn, A, U, S, Vh, fS, dfS, d2fS, df0,
                      rtol, atol)


@_inputs.outside_autocast
def svd_fn(A: torch.Tensor, f, df, *, rtol: float | None = None, atol: float | None = None,
           d2f=None) -> torch.Tensor:
    """``U diag(f(S)) V^H`` for ``A = U diag(S) V^H``, with a gradient exact at degeneracy.

    Args:
        A: ``(..., m, n)`` float32/float64/complex64/complex128, any m, n
            (float16/bfloat16 are computed and returned in float32).
        f, df: elementwise torch functions of the real singular values: the
            scalar function and its derivative (``f(S)``, ``df(S)``, same shape as S).
            For rank-deficient input f(0) must be 0 (otherwise the result is not
            unique: GaugeWarning). Tensors that f uses (a learnable exponent) get
            their gradient.
        rtol, atol: two singular values are treated as equal (the divided
            difference becomes ``(df_i + df_j)/2``) when
            ``|S_i - S_j| <= rtol * max(S_i, S_j)`` or within the rounding floor
            ``max(atol, eps * max(S))``; rtol defaults to eps^(1/3).
        d2f: the second derivative, for second derivatives of the result; by
            default derived from ``df`` with autograd when a gradient may be taken.

    Returns:
        ``(..., m, n)`` tensor of A's dtype.

    Gradient: singular value function form (docs/math.md, "Matrix functions"), exact
    at repeated singular values; f(S) = S returns the upstream gradient unchanged.
    Second order: exact at repeated singular values (second divided differences
    through the Hermitian dilation; at a zero singular value the odd extension of f
    is used, exact when f''(0) = 0). Forward mode: the same (self-adjoint) map.
    """
    _library.require()
    name = "safesvd.svd_fn"
    A = _inputs.promote(A, name)
    U, S, Vh = svd(A.detach())  # the decomposition records nothing (_apply_svd_fn)
    fS, dfS, d2fS = _values(A, S, f, df, d2f, name)
    m, n = A.shape[-2:]
    df0 = None
    zero_like = S.detach()[..., :1] * 0
    rank_deficient = _guards.merged_with_zero(S, rtol, atol)
    if m != n and S.shape[-1] and d2fS is not None:
        df0 = _evaluate(df, zero_like, "df", name)
    if S.shape[-1] and not _gauge.is_tracing(S) and bool(rank_deficient.any()):
        f0 = _evaluate(f, zero_like, "f", name)
        _warn_not_unique(rank_deficient & (f0[..., 0] != 0),
                         f"{name}: f(0) != 0 on a rank-deficient matrix: U f(S) V^H depends on the "
                         "arbitrary singular vectors of the zero singular values.")
    return _apply_svd_fn(A, U, S, Vh, fS, dfS, d2fS, df0, rtol, atol)


def _eigh_fn(A, f, df, d2f, UPLO, rtol, atol, name):
    _library.require()
    A = _inputs.promote(A, name)
    L, Q = eigh(A.detach(), UPLO)  # records nothing: the operator below carries A's gradient
    fL, dfL, d2fL = _values(A, L, f, df, d2f, name)
    # The op sees the Hermitian matrix eigh decomposed (one triangle mirrored),
    # so that its gradient, like torch's, is the Hermitian one.
    return _ops.apply(_ops.SafesvdEighFn, _ops.OPS.eigh_fn, A, L, Q, fL, dfL, d2fL, rtol, atol)


def _named_eigh_fn(A, UPLO, name):
    """sqrtm, invsqrtm, logm: their values and domain check are the library's
    (`_spectral_function`, csrc/aten/fn.cpp: one definition for Python and C++), computed
    with the decomposition in one operator call (`_eigh_spectral`). The check reads the
    smallest eigenvalues: skipped while tracing or capturing."""
    _library.require()
    A = _inputs.promote(A, f"safesvd.{name}")
    # Records nothing (A detached): the operator below carries A's gradient.
    L, Q, fL, dfL, d2fL = _ops.call_detached(_ops.OPS._eigh_spectral, A.detach(), UPLO, name,
                                             not _gauge.is_tracing(A))
    return _ops.apply(_ops.SafesvdEighFn, _ops.OPS.eigh_fn, A, L, Q, fL, dfL, d2fL, None, None)


@_inputs.outside_autocast
def eigh_fn(A: torch.Tensor, f, df, *, UPLO: str = "L", rtol: float | None = None,
            atol: float | None = None, d2f=None) -> torch.Tensor:
    """``Q diag(f(L)) Q^H`` for Hermitian ``A = Q diag(L) Q^H``, gradient exact at degeneracy.

    Args:
        A: ``(..., n, n)`` Hermitian; only the ``UPLO`` triangle is read.
        f, df: elementwise torch functions of the real eigenvalues (value, derivative).
            Tensors that f uses get their gradient.
        rtol, atol: eigenvalues with ``|L_i - L_j| <= rtol * max(|L_i|, |L_j|)`` or within
            ``max(atol, eps * max|L|)`` count as equal; rtol defaults to eps^(1/3). The test
            is relative to the pair, so small distinct eigenvalues of ill-conditioned input
            are never merged.
        d2f: the second derivative (see :func:`svd_fn`).

    Returns:
        ``(..., n, n)`` Hermitian tensor of A's dtype.

    Gradient: ``Q (D o Q^H sym(G) Q) Q^H`` with ``D_ij = (f_i - f_j)/(L_i - L_j)``,
    ``(df_i + df_j)/2`` for equal eigenvalues (Daleckii-Krein): exact at repeated
    eigenvalues, including A = identity. The second order is exact there too.
    """
    return _eigh_fn(A, f, df, d2f, UPLO, rtol, atol, "safesvd.eigh_fn")


@_inputs.outside_autocast
def sqrtm(A: torch.Tensor, *, UPLO: str = "L") -> torch.Tensor:
    """Principal square root of a Hermitian positive semidefinite matrix.

    Eigenvalues below ``-sqrt(eps) * max|L|`` raise ValueError; smaller negative
    values (rounding) are clamped to 0. The gradient is exact at repeated
    eigenvalues (covariance pooling). At a zero eigenvalue the true derivative is
    unbounded: every divided difference is bounded by ``1 / sqrt(eps * max|L|)``
    (``1 / sqrt(eps)`` for the zero matrix), which is finite for every finite input.
    """
    return _named_eigh_fn(A, UPLO, "sqrtm")


@_inputs.outside_autocast
def invsqrtm(A: torch.Tensor, *, UPLO: str = "L") -> torch.Tensor:
    """Inverse principal square root ``A^{-1/2}`` of a Hermitian positive definite matrix
    (whitening). Non-positive eigenvalues raise ValueError. Gradient (and second order)
    exact at repeated eigenvalues."""
    return _named_eigh_fn(A, UPLO, "invsqrtm")


@_inputs.outside_autocast
def logm(A: torch.Tensor, *, UPLO: str = "L") -> torch.Tensor:
    """Principal logarithm of a Hermitian positive definite matrix (log-Euclidean
    metrics). Non-positive eigenvalues raise ValueError. Gradient (and second order)
    exact at repeated eigenvalues."""
    return _named_eigh_fn(A, UPLO, "logm")


def _constant(value):
    return lambda S: torch.full_like(S, value)


@_inputs.outside_autocast
def polar(A: torch.Tensor):
    """Polar decomposition ``A = Q P``: ``Q = U V^H`` (m x n, orthonormal columns or rows),
    ``P = V diag(S) V^H`` (n x n, Hermitian positive semidefinite).

    Gradient exact at repeated singular values (Q's derivative is the divided
    difference 2/(S_i + S_j)). For a rank-deficient A the polar factor is not
    unique: the guarded finite value is returned with a GaugeWarning.
    """
    A = _inputs.promote(A, "safesvd.polar")
    Q = _polar_factor(A, False, "safesvd.polar", _RANK_DEFICIENT)
    P = Q.mH @ A
    return Q, (P + P.mH) / 2


def _polar_factor(A: torch.Tensor, special: bool, name: str, not_unique: str) -> torch.Tensor:
    """U diag(f) V^H of polar and procrustes (f = 1; special: the flip), warning with
    `not_unique` where it is not unique."""
    _library.require()
    # The decomposition (of A.detach(): svd_fn carries the gradient), f, f' = f'' = 0, the
    # uniqueness test and, when nothing is recorded, the product: one operator call.
    product = _ops.records_nothing(A)
    U, S, Vh, fS, zeros, ambiguous, Q = _ops.call_detached(_ops.OPS._svd_polar, A.detach(),
                                                           special, product)
    _warn_not_unique(ambiguous, f"{name}: {not_unique}")
    if product:
        return Q
    df0 = zeros[..., :1] if A.shape[-1] != A.shape[-2] else None
    return _apply_svd_fn(A, U, S, Vh, fS, zeros, zeros, df0, None, None)


_RANK_DEFICIENT = "A is rank deficient, so its polar factor U V^H is not unique."


@_inputs.outside_autocast
def procrustes(A: torch.Tensor, special: bool = False) -> torch.Tensor:
    """The nearest matrix with orthonormal columns (rows) to A in Frobenius norm: ``U V^H``.

    With ``special=True`` (square, real input) the nearest rotation, det = +1:
    ``U diag(1, ..., 1, d) V^H`` with ``d = det(U V^H)``, which also handles the
    reflection case det(A) < 0 (pose estimation, Kabsch). Not unique (GaugeWarning,
    finite guarded value) when A is rank deficient by more than the flipped
    direction allows, or when a reflection is needed and the smallest singular
    value is repeated.
    """
    _library.require()
    A = _inputs.promote(A, "safesvd.procrustes")
    if not special:  # polar's Q, without its P
        return _polar_factor(A, False, "safesvd.polar", _RANK_DEFICIENT)
    if A.shape[-1] != A.shape[-2]:
        raise ValueError(f"safesvd.procrustes(special=True): expected square matrices, got shape {tuple(A.shape)}")
    if A.is_complex():
        raise TypeError("safesvd.procrustes(special=True) is defined for real input (rotations); "
                        "use special=False for the nearest unitary matrix")
    # f(S) = [1, ..., 1, sign det(U Vh)]; not unique when the flipped direction is ambiguous
    # (repeated smallest singular value with a reflection) or when two singular values
    # vanish (csrc/aten/guards.cpp, procrustes_flip).
    return _polar_factor(A, True, "safesvd.procrustes(special=True)",
                         "the nearest rotation is not unique (repeated smallest singular value with a "
                         "reflection, or rank deficiency).")

"""safesvd.svd and safesvd.svdvals."""

from __future__ import annotations

import torch

from . import _inputs, _library, _ops


def svd(A: torch.Tensor, full_matrices: bool = False, *, guard: str = "pinv",
        rtol: float | None = None, atol: float | None = None, driver: str | None = None):
    """Singular value decomposition ``A = U diag(S) Vh`` with a guarded backward.

    Args:
        A: ``(..., m, n)`` float32/float64/complex64/complex128 tensor, finite
            (float16/bfloat16 are computed and returned in float32).
        full_matrices: as in :func:`torch.linalg.svd`. With ``True`` the extra
            columns of U (rows of Vh) are an arbitrary basis: their gradient is
            ignored, and a loss that reads them triggers a :class:`GaugeWarning`.
        guard: how 1/x is guarded for x = S_j - S_i (degeneracy), S_j + S_i and
            S_i (rank deficiency): ``"pinv"`` (default: 1/x where the quotient is
            determined by the data, else 0, see docs/math.md), ``"lorentz"``
            (x/(x^2 + tol^2)), ``"clamp"`` (1/(sign(x) max(|x|, tol))), ``"none"``
            (PyTorch's unguarded math, for comparison).
        rtol, atol: tol = max(atol, rtol * max(S)) per matrix; rtol defaults to
            eps(dtype)^(3/4), atol to 0.
        driver: ``None`` (default: the small-matrix engine where it was measured
            faster, real input on CPU with square n <= 64, both sides <= 8, or the
            short side <= 16 (thin factors), except small batches of larger matrices
            (one from 6 x 6, two or three at 64 x 64, up to 8 on more threads), which
            LAPACK decomposes faster; LAPACK / cuSOLVER elsewhere), ``"jacobi"`` (the
            engine at every batch size: Jacobi, errors
            within 4x of LAPACK's; ValueError where it does not apply) or ``"lapack"``.
            Singular vectors are unique only up to sign (phase): the drivers may differ there.

    Returns:
        ``U (..., m, k)``, ``S (..., k)`` (real, descending), ``Vh (..., k, n)``,
        k = min(m, n) (m and n columns/rows with ``full_matrices=True``).

    Gradient: equal to PyTorch's where PyTorch's is accurate. At repeated or zero
    singular values it is exact for losses that are invariant to the basis inside a
    degenerate subspace; otherwise the minimum-norm choice and a GaugeWarning. At a
    close but distinct pair inside the tolerance, ``"pinv"`` divides where the
    numerator is above rounding (docs/math.md, "The signal rule"). Matrix functions
    ``U f(S) Vh`` at a degeneracy need :func:`safesvd.svd_fn`. Forward mode
    (``torch.func.jvp``, ``torch.autograd.forward_ad``) uses the same guards; second
    derivatives through a degeneracy warn (they cannot be exact there).
    """
    _library.require()
    A = _inputs.promote(A, "safesvd.svd")
    return _ops.apply(_ops.SafesvdSvd, _ops.OPS.svd, A, full_matrices, guard, rtol, atol, driver)


def svdvals(A: torch.Tensor, *, driver: str | None = None) -> torch.Tensor:
    """Singular values ``S (..., k)`` of ``A (..., m, n)``, descending.

    The gradient ``U diag(gS) Vh`` is exact everywhere, including repeated and
    zero singular values (where it is a valid subgradient choice).
    """
    return svd(A, driver=driver)[1]

"""safesvd.eigh."""

from __future__ import annotations

import torch

from . import _inputs, _library, _ops


def eigh(A: torch.Tensor, UPLO: str = "L", *, guard: str = "pinv",
         rtol: float | None = None, atol: float | None = None, driver: str | None = None):
    """Eigendecomposition ``A = Q diag(L) Q^H`` of Hermitian matrices, guarded backward.

    Args:
        A: ``(..., n, n)`` Hermitian; only the triangle named by ``UPLO`` is read
            (float16/bfloat16 are computed and returned in float32).
        UPLO: ``"L"`` or ``"U"``.
        guard, rtol, atol: as in :func:`safesvd.svd`, with tol = max(atol, rtol * max|L|).
        driver: ``None``, ``"jacobi"`` (the engine: Jacobi, or tridiagonalization and
            QL from n = 17 (float64: 12), real n in 2..64) or ``"lapack"``, as in
            :func:`safesvd.svd`.

    Returns:
        ``L (..., n)`` real ascending eigenvalues and ``Q (..., n, n)`` eigenvectors.

    Gradient: the Hermitian ``Q (a o F + diag(gL)) Q^H``, as PyTorch's where that is
    accurate; exact at repeated eigenvalues for losses invariant to the basis of each
    eigenspace (eigenvalues, eigenprojectors); otherwise minimum-norm with a
    GaugeWarning. Matrix functions at repeated eigenvalues need :func:`safesvd.eigh_fn`.
    """
    _library.require()
    A = _inputs.promote(A, "safesvd.eigh")
    return _ops.apply(_ops.SafesvdEigh, _ops.OPS.eigh, A, UPLO, guard, rtol, atol, driver)

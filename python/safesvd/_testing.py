"""Finite-difference and matrix-construction helpers shared by the demo and the tests."""

from __future__ import annotations

import torch


def unitary(n: int, dtype: torch.dtype) -> torch.Tensor:
    """A random n x n orthogonal (real) or unitary (complex) matrix."""
    Q, R = torch.linalg.qr(torch.randn(n, n, dtype=dtype))
    d = torch.diagonal(R)
    return Q * (d / d.abs()).unsqueeze(-2) if n else Q


def with_singular_values(s, m: int, n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """An m x n matrix with singular values s (length min(m, n)) and random singular vectors."""
    s = torch.as_tensor(s, dtype=torch.float64)
    k = min(m, n)
    if s.numel() != k:
        raise ValueError(f"need {k} singular values, got {s.numel()}")
    U, V = unitary(m, dtype), unitary(n, dtype)
    return (U[:, :k] * s.to(dtype)) @ V[:, :k].mH


def with_eigenvalues(lam, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A Hermitian matrix with eigenvalues lam and random eigenvectors."""
    lam = torch.as_tensor(lam, dtype=torch.float64)
    Q = unitary(lam.numel(), dtype)
    A = (Q * lam.to(dtype)) @ Q.mH
    return (A + A.mH) / 2


def finite_difference_grad(loss, A: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    """Central-difference gradient of a real scalar loss(A).

    For complex A it is dL/dRe + i dL/dIm, PyTorch's convention for the gradient
    of a real function of complex input.
    """
    A = A.detach()
    g = torch.zeros_like(A)
    flat, gflat = A.reshape(-1), g.reshape(-1)
    directions = [1.0] + ([1j] if A.is_complex() else [])
    with torch.no_grad():
        for idx in range(flat.numel()):
            for d in directions:
                E = torch.zeros_like(flat)
                E[idx] = d * h
                fp = float(loss((flat + E).reshape(A.shape)))
                fm = float(loss((flat - E).reshape(A.shape)))
                gflat[idx] += d * (fp - fm) / (2 * h)
    return g


def autograd_grad(loss, A: torch.Tensor) -> torch.Tensor:
    A = A.detach().clone().requires_grad_()
    (g,) = torch.autograd.grad(loss(A), A)
    return g

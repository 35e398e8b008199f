"""torch.func transforms over the safesvd operations."""

import torch

import safesvd
from helpers import autograd_grad, rel_err, with_singular_values


def loss(X):
    U, S, Vh = safesvd.svd(X)
    return (U @ Vh).sum() + (S ** 2).sum() + safesvd.sqrtm(X @ X.mT + torch.eye(X.shape[-1], dtype=X.dtype)).sum()


def test_grad_equals_autograd_including_degenerate_input():
    for A in (torch.randn(4, 4, dtype=torch.float64), with_singular_values([2, 2, 1, 1], 4, 4)):
        assert rel_err(torch.func.grad(loss)(A), autograd_grad(loss, A)) < 1e-12


def test_vmap_matches_batched_call():
    A = torch.randn(5, 4, 3, dtype=torch.float64)
    U, S, Vh = torch.func.vmap(safesvd.svd)(A)
    U2, S2, Vh2 = safesvd.svd(A)
    torch.testing.assert_close(S, S2)
    torch.testing.assert_close(U @ Vh, U2 @ Vh2)
    L, Q = torch.func.vmap(safesvd.eigh)(A @ A.mT)
    torch.testing.assert_close(L, safesvd.eigh(A @ A.mT)[0])


def test_vmap_of_grad_equals_per_sample_autograd():
    A = torch.randn(3, 4, 4, dtype=torch.float64)
    per_sample = torch.func.vmap(torch.func.grad(loss))(A)
    for i in range(3):
        assert rel_err(per_sample[i], autograd_grad(loss, A[i])) < 1e-10


def test_jacrev_of_singular_values_and_rank1():
    A = torch.randn(4, 3, dtype=torch.float64)
    J = torch.func.jacrev(safesvd.svdvals)(A)
    Jt = torch.func.jacrev(torch.linalg.svdvals)(A)
    torch.testing.assert_close(J, Jt)
    g = torch.func.grad(lambda X: safesvd.svd_rank1(X)[0])(A)
    U, S, Vh = torch.linalg.svd(A)
    torch.testing.assert_close(g, torch.outer(U[:, 0], Vh[0]))

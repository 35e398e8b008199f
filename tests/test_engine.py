"""The small-matrix engine (csrc/kernels/jacobi.h, docs/jacobi.md): the fused
batched forward of svd / svdvals / eigh and its `driver=` keyword.

Accuracy: on the sets of tests/accuracy_sets.py (random, ill-conditioned 1e6,
rank-deficient, exactly repeated, clustered, scaled by 1e-30 / 1e30 in float64,
1e-15 / 1e15 in float32), for n = 2 .. 16 and both real dtypes, each error
(values relative to max(S), orthogonality, reconstruction relative to ||A||) is
within 4x of LAPACK's own error on the same matrices, both measured against a
float64 (float32 inputs) or 30-digit (float64 inputs) reference.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import safesvd
from accuracy_sets import (
    SET_NAMES,
    accuracy_sets,
    eigh_errors,
    lapack_eigh,
    lapack_svd,
    reference_eigvalsh,
    reference_svdvals,
    svd_errors,
    within,
)
from helpers import finite_difference_grad, rel_err, with_singular_values

ROOT = Path(__file__).resolve().parent.parent
DTYPES = [torch.float32, torch.float64]
SIZES = [2, 3, 4, 5, 8, 12, 16]  # float64 12, 16: the mid-size engine (kMidFromDouble)


def _count(n, dtype):
    # mpmath references of float64 inputs cost ~0.1 s per 16 x 16 matrix.
    return 24 if dtype == torch.float32 else (8 if n > 8 else 12)


def _assert_within(ours, theirs, dtype, what):
    ok = within(ours, theirs, factor=4.0, dtype=dtype)
    bad = {k: (ours[k], theirs[k]) for k, v in ok.items() if not v}
    assert not bad, f"{what}: (engine, LAPACK) errors beyond 4x: {bad}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
def test_svd_accuracy_within_4x_of_lapack(n, dtype):
    for name, A in accuracy_sets(n, dtype, count=_count(n, dtype), seed=1).items():
        S_ref = reference_svdvals(A)
        U, S, Vh = safesvd.svd(A, driver="jacobi")
        ours = svd_errors(A, U, S, Vh, S_ref)
        theirs = svd_errors(A, *lapack_svd(A), S_ref)
        _assert_within(ours, theirs, dtype, f"svd n={n} {dtype} {name}")
        assert (S[..., :-1] >= S[..., 1:]).all() and (S >= 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
def test_eigh_accuracy_within_4x_of_lapack(n, dtype):
    for name, A in accuracy_sets(n, dtype, count=_count(n, dtype), seed=2, kind="eigh").items():
        L_ref = reference_eigvalsh(A)
        L, Q = safesvd.eigh(A, driver="jacobi")
        ours = eigh_errors(A, L, Q, L_ref)
        theirs = eigh_errors(A, *lapack_eigh(A), L_ref)
        _assert_within(ours, theirs, dtype, f"eigh n={n} {dtype} {name}")
        assert (L[..., :-1] <= L[..., 1:]).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n", [(3, 2), (2, 3), (8, 3), (3, 8), (6, 5), (5, 6), (8, 8)])
def test_rectangular_svd_accuracy(m, n, dtype):
    g = torch.Generator().manual_seed(m * 10 + n)
    k = min(m, n)
    sets = {
        "random": torch.randn(16, m, n, generator=g, dtype=torch.float64),
        "rank_deficient": torch.randint(-2, 3, (16, m, 1), generator=g).double()
        @ torch.randint(-2, 3, (16, 1, n), generator=g).double(),
        "repeated": torch.stack([with_singular_values([2.0] * k, m, n, torch.float64) for _ in range(8)]),
        "scaled": torch.randn(16, m, n, generator=g, dtype=torch.float64) * (1e-15 if dtype == torch.float32 else 1e-30),
    }
    for name, A in sets.items():
        A = A.to(dtype)
        S_ref = reference_svdvals(A)
        for full in (False, True):
            U, S, Vh = safesvd.svd(A, full_matrices=full, driver="jacobi")
            assert U.shape == (A.shape[0], m, m if full else k) and Vh.shape == (A.shape[0], n if full else k, n)
            ours = svd_errors(A, U, S, Vh, S_ref)
            Ul, Sl, Vhl = torch.linalg.svd(A, full_matrices=full)
            theirs = svd_errors(A, Ul, Sl, Vhl, S_ref)
            _assert_within(ours, theirs, dtype, f"svd {m}x{n} full={full} {dtype} {name}")


MID_SIZES = [17, 24, 32, 48, 64]


def _mid_count(n, dtype):
    """float32 references are float64 LAPACK (cheap); float64 ones mpmath, about 0.1 (n / 16)^3 s
    per matrix: a couple of matrices per set up to n = 32, none above (docs/jacobi.md has the
    tables of bench/accuracy_midsize.py for float64 at n = 48, 64)."""
    if dtype == torch.float32:
        return 8
    return {17: 2, 24: 2, 32: 1}.get(n, 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", MID_SIZES)
@pytest.mark.parametrize("kind", ["svd", "eigh"])
def test_mid_size_accuracy_within_4x_of_lapack(kind, n, dtype):
    """The mid-size engine (csrc/kernels/tridiag_eigh.h, mid_svd.h), the default for real
    square n = 17..64 on the CPU (float64 from n = 12: test_svd_accuracy_within_4x_of_lapack)."""
    count = _mid_count(n, dtype)
    if count == 0:
        pytest.skip("float64 references of n > 32 are too slow for CI (docs/jacobi.md)")
    for name, A in accuracy_sets(n, dtype, count=count, seed=3, kind=kind).items():
        if kind == "svd":
            S_ref = reference_svdvals(A)
            U, S, Vh = safesvd.svd(A)
            ours, theirs = svd_errors(A, U, S, Vh, S_ref), svd_errors(A, *lapack_svd(A), S_ref)
            assert (S[..., :-1] >= S[..., 1:]).all() and (S >= 0).all()
            assert U.stride() == lapack_svd(A)[0].stride()
        else:
            L_ref = reference_eigvalsh(A)
            L, Q = safesvd.eigh(A)
            ours, theirs = eigh_errors(A, L, Q, L_ref), eigh_errors(A, *lapack_eigh(A), L_ref)
            assert (L[..., :-1] <= L[..., 1:]).all()
            assert Q.stride() == lapack_eigh(A)[1].stride()
        _assert_within(ours, theirs, dtype, f"{kind} n={n} {dtype} {name}")


@pytest.mark.parametrize("n", [39, 40, 45, 57, 64])
@pytest.mark.parametrize("kind", ["svd", "eigh"])
def test_mid_size_float64_against_lapack_above_32(kind, n):
    """float64 n > 32, where mpmath references are too slow for CI: the QL rotations applied
    one at a time (n = 39) and buffered, eight rows of Z a block (from n = 40; 45 and 57
    leave blocks of 4 + 1 and 1 rows; 64 takes a padded leading dimension), gated against
    LAPACK alone. Reconstruction and orthogonality within 4x of LAPACK's; the values
    within what both backward errors allow (Weyl: a perturbation E moves each eigen- or
    singular value by at most ||E||_2 <= n ||E||_max, relative to max |value| >= ||A||_max,
    plus the non-orthogonality of the factors)."""
    dtype, eps = torch.float64, torch.finfo(torch.float64).eps
    for name, A in accuracy_sets(n, dtype, count=2, seed=5, kind=kind).items():
        if kind == "svd":
            ref = lapack_svd(A)
            S_ref = ref[1]
            ours, theirs = svd_errors(A, *safesvd.svd(A), S_ref), svd_errors(A, *ref, S_ref)
            orth = ours["orth_u"] + ours["orth_v"] + theirs["orth_u"] + theirs["orth_v"]
        else:
            ref = lapack_eigh(A)
            ours, theirs = eigh_errors(A, *safesvd.eigh(A), ref[0]), eigh_errors(A, *ref, ref[0])
            orth = ours["orth_q"] + theirs["orth_q"]
        what = f"{kind} n={n} float64 {name}"
        values = ours.pop("values")
        theirs.pop("values")
        _assert_within(ours, theirs, dtype, what)
        bound = n * (ours["recon"] + theirs["recon"]) + 2 * orth + n * eps
        assert values <= bound, f"{what}: values differ from LAPACK's by {values:.3g} > {bound:.3g}"


def _structured_symmetric(n: int, dtype, seed: int) -> torch.Tensor:
    """Symmetric matrices whose structure shapes the mid-size eigh's QL windows and the
    zero rows of its Z (kernels/tridiag_eigh.h, ql_tiles), with random ones between them
    so that one tile's lanes differ."""
    g = torch.Generator().manual_seed(seed)

    def sym(X):
        return (X + X.mT) / 2

    def rand(k):
        return sym(torch.randn(k, k, dtype=torch.float64, generator=g))

    ones = torch.ones(n - 1, dtype=torch.float64)
    d = torch.randn(n, dtype=torch.float64, generator=g)
    k, k2 = n // 3, (2 * n) // 3
    blocks = torch.zeros(n, n, dtype=torch.float64)
    blocks[:k, :k], blocks[k:k2, k:k2], blocks[k2:, k2:] = rand(k), rand(k2 - k), rand(n - k2)
    half = torch.zeros(n, n, dtype=torch.float64)
    half[: n // 2, : n // 2] = rand(n // 2)
    perm = torch.randperm(n, generator=g)
    repeated = torch.diag((torch.arange(n) % 4).to(torch.float64))[perm][:, perm]
    wilkinson = torch.diag((torch.arange(n, dtype=torch.float64) - (n - 1) / 2).abs()) + torch.diag(ones, 1) + \
        torch.diag(ones, -1)
    mats = [torch.diag(d), torch.diag(d) + torch.diag(ones, 1) + torch.diag(ones, -1), blocks, half, repeated,
            wilkinson, torch.eye(n, dtype=torch.float64), torch.ones(n, n, dtype=torch.float64)]
    mats = [m for pair in zip(mats, [rand(n) for _ in mats]) for m in pair]
    return torch.stack(mats).to(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [24, 39, 40, 45, 64])
def test_mid_size_eigh_structured(n, dtype):
    """Diagonal, tridiagonal, block-diagonal (the tridiagonal splits: windows that end
    inside the matrix), half zero, permuted repeated values, Wilkinson's W+, identity and
    rank one, each beside a random matrix in the tiles: the rotations applied as made
    (n < 40) and buffered (n >= 40, with the rows of Z still zero skipped). The all-ones
    matrix's trailing columns are rounding noise of the first reflection, small enough in
    float32 that their squares fell into the subnormal range: Q was far from orthogonal
    (||Q^T Q - I|| = 0.25 at n = 24) before the tridiagonalization rescaled such a column
    (kernels/tall_svd.h, rescale_tiny_column). Reconstruction and orthogonality within
    4x of LAPACK's or of n eps (backward stability; LAPACK's reconstruction of the ones
    matrix is exceptionally small: 16 eps at n = 39 in float64, ours 78); values within
    what both backward errors allow (as test_mid_size_float64_against_lapack_above_32)."""
    A = _structured_symmetric(n, dtype, seed=n)
    eps = torch.finfo(dtype).eps
    ref = lapack_eigh(A)
    ours, theirs = eigh_errors(A, *safesvd.eigh(A, driver="jacobi"), ref[0]), eigh_errors(A, *ref, ref[0])
    values = ours.pop("values")
    theirs.pop("values")
    what = f"eigh n={n} {dtype} structured"
    ok = within(ours, theirs, factor=4.0, floor=n * eps)
    assert all(ok.values()), f"{what}: (engine, LAPACK) errors beyond 4x: {ours} {theirs}"
    bound = n * (ours["recon"] + theirs["recon"]) + 2 * (ours["orth_q"] + theirs["orth_q"]) + n * eps
    assert values <= bound, f"{what}: values differ from LAPACK's by {values:.3g} > {bound:.3g}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(9, 3), (64, 16), (256, 8), (16, 64), (24, 24), (40, 40), (64, 64)])
def test_svd_tiny_columns_keep_factors_orthogonal(shape, dtype):
    """Columns that the Householder steps meet near or below the square root of the
    smallest normal number, once the matrix is scaled to max |a| ~ 1: the all-ones matrix
    (every column after the first is rounding noise of the first reflection, shrinking by
    eps a step) and matrices whose columns after the first are 1e-21 (float32) or 1e-160
    (float64) times the first, beside random ones. The tall path's QR
    (kernels/tall_svd.h) built its reflectors from norms whose squares lost their digits:
    ||U^T U - I|| up to 6e-4 (tall 64x16 float32) and 2.4e-4 (the all-ones 64x16 float64)
    before such columns were rescaled (rescale_tiny_column); the square shapes take the
    mid-size path, whose Gram eigh builds its reflectors the same way. Orthogonality and
    reconstruction within 4x of LAPACK's or of max(m, n) eps."""
    m, n = shape
    g = torch.Generator().manual_seed(m * 100 + n)
    tiny = 1e-21 if dtype == torch.float32 else 1e-160
    mats = [torch.ones(m, n, dtype=torch.float64)]
    for _ in range(3):
        X = torch.randn(m, n, dtype=torch.float64, generator=g)
        X[:, 1:] *= tiny
        mats += [X, torch.randn(m, n, dtype=torch.float64, generator=g)]
    A = torch.stack(mats).to(dtype)
    ref = lapack_svd(A)
    ours, theirs = svd_errors(A, *safesvd.svd(A, driver="jacobi"), ref[1]), svd_errors(A, *ref, ref[1])
    ours.pop("values")
    theirs.pop("values")
    ok = within(ours, theirs, factor=4.0, floor=max(m, n) * torch.finfo(dtype).eps)
    assert all(ok.values()), f"svd {m}x{n} {dtype} tiny columns: (engine, LAPACK) {ours} {theirs}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [3, 8, 12, 24, 33, 45])
def test_mid_size_lanes_are_independent(n, dtype):
    """A matrix's result does not depend on the matrices beside it in its SIMD tile: a lane
    that has converged, or needs no Gram-Schmidt step, runs its neighbours' extra steps as
    exact identities. The same matrices alone, in a batch and shifted by one lane agree
    bit for bit, rank-deficient and clustered neighbours included. Also the Jacobi bands
    (n = 3, 8: tiles of two vectors of lanes; n = 12: one)."""
    sets = accuracy_sets(n, dtype, count=4, seed=11)
    X = torch.cat([sets[name] for name in ("random", "rank_deficient", "clustered", "repeated")])
    X = X[torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(0))]
    for kind in ("svd", "eigh"):
        A = X if kind == "svd" else X + X.mT
        run = (lambda M: safesvd.svd(M, driver="jacobi")) if kind == "svd" else (
            lambda M: safesvd.eigh(M, driver="jacobi"))
        full, shifted = run(A), run(A[1:])
        for b in range(A.shape[0]):
            alone = run(A[b:b + 1])
            for x, y in zip(full, alone):
                assert torch.equal(x[b], y[0]), f"{kind} n={n} matrix {b}: batch vs alone"
            if b > 0:
                for x, y in zip(full, shifted):
                    assert torch.equal(x[b], y[b - 1]), f"{kind} n={n} matrix {b}: shifted"


@pytest.mark.parametrize("kind", ["eigh", "svd"])
@pytest.mark.parametrize("n", [24, 45, 64])
def test_mid_size_tile_pairs_match_tiles_alone(n, kind):
    """float64 runs the mid-size engine's tiles in pairs (the QL recurrences of their eigh,
    or of their Gram matrices' eigh, side by side: kernels/tridiag_eigh.h,
    tridiag_eigh_tiles) and a range's odd last tile alone: on one thread a batch of five
    tiles (any lane width up to 8) takes both paths, and every matrix's result is bit for
    bit that of the matrix alone (a tile of its own, with its lanes' copies of it).
    n = 24: rotations applied as made; 45, 64: buffered."""
    sets = accuracy_sets(n, torch.float64, count=10, seed=5, kind=kind)
    A = torch.cat([sets[name] for name in ("random", "clustered", "ill_conditioned", "repeated")])[:40]
    run = (lambda M: safesvd.eigh(M, driver="jacobi")) if kind == "eigh" else (
        lambda M: safesvd.svd(M, driver="jacobi"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        full = run(A)
        for b in range(A.shape[0]):
            alone = run(A[b:b + 1])
            for x, y in zip(full, alone):
                assert torch.equal(x[b], y[0]), f"{kind} n={n} matrix {b}: pair vs alone"
    finally:
        torch.set_num_threads(threads)


def test_mid_size_gradients_layout_and_non_finite():
    """Exact gradients at exact degeneracy with the mid-size forward (FD in float64), the
    UPLO triangle, and NaN for non-finite input on the kernel level (the operators raise)."""
    n = 18
    A = with_singular_values([2.0] * 4 + [1.0] * (n - 5) + [0.5], n, n, torch.float64)
    W = torch.randn(n, n, dtype=torch.float64)

    def loss(X):
        U, S, Vh = safesvd.svd(X)
        return (W * (U @ Vh)).sum() + (S ** 3).sum()

    X = A.clone().requires_grad_()
    (g,) = torch.autograd.grad(loss(X), X)
    assert rel_err(g, finite_difference_grad(loss, A)) < 1e-6

    def eig_loss(X):
        L, Q = safesvd.eigh(X @ X.mT)
        q = Q[..., :1]  # the simple smallest eigenvalue 0.25 (the others repeat)
        return (L ** 2).sum() + (W * (q @ q.mT)).sum()

    (g,) = torch.autograd.grad(eig_loss(X), X)
    assert rel_err(g, finite_difference_grad(eig_loss, A)) < 1e-6
    B = torch.randn(5, 20, 20, dtype=torch.float64)
    junk = torch.randn(5, 20, 20, dtype=torch.float64)
    for uplo in ("L", "U"):
        tri = torch.tril(B) if uplo == "L" else torch.triu(B)
        other = torch.triu(junk, 1) if uplo == "L" else torch.tril(junk, -1)
        L, _ = safesvd.eigh(tri + other, UPLO=uplo, driver="jacobi")
        torch.testing.assert_close(L, torch.linalg.eigvalsh(tri + other, UPLO=uplo), rtol=1e-12, atol=1e-12)
    C = torch.randn(9, 30, 30)
    C[4, 2, 2] = float("inf")
    with pytest.raises(ValueError, match="NaN or Inf"):
        safesvd.svd(C)
    with pytest.raises(ValueError, match="NaN or Inf"):
        safesvd.eigh(C + C.mT)


TALL_SHAPES = [(9, 2), (2, 9), (12, 3), (17, 16), (16, 17), (64, 16), (16, 64), (256, 8), (40, 13), (1000, 5)]


def _rectangular_sets(m, n, count, seed):
    """Random, ill-conditioned (1e6), rank-deficient (exact), repeated and scaled m x n
    sets in float64 (the tall path's accuracy gate)."""
    g = torch.Generator().manual_seed(seed)
    k = min(m, n)
    return {
        "random": torch.randn(count, m, n, generator=g, dtype=torch.float64),
        "ill_conditioned": torch.stack([with_singular_values(torch.logspace(0, -6, k), m, n, torch.float64)
                                        for _ in range(count)]),
        "rank_deficient": torch.randint(-2, 3, (count, m, max(1, k // 2)), generator=g).double()
        @ torch.randint(-2, 3, (count, max(1, k // 2), n), generator=g).double(),
        "repeated": torch.stack([with_singular_values([2.0] * (k // 2) + [1.0] * (k - k // 2), m, n, torch.float64)
                                 for _ in range(count)]),
        "scaled_small": torch.randn(count, m, n, generator=g, dtype=torch.float64) * 1e-30,
        "scaled_large": torch.randn(count, m, n, generator=g, dtype=torch.float64) * 1e30,
    }


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n", TALL_SHAPES)
def test_tall_svd_accuracy_within_4x_of_lapack(m, n, dtype):
    """Tall and wide input through QR (csrc/kernels/tall_svd.h) on the engine by default."""
    if dtype == torch.float64 and (m, n) not in ((12, 3), (64, 16), (2, 9), (16, 64), (40, 13)):
        pytest.skip("float64 references (mpmath) of large matrices are slow: a subset")
    count = 16 if dtype == torch.float32 else 3
    for name, A in _rectangular_sets(m, n, count, seed=m * 100 + n).items():
        if dtype == torch.float32 and name.startswith("scaled"):
            A = A * (1e15 if name == "scaled_small" else 1e-15)  # 1e-15 and 1e15 in float32
        A = A.to(dtype)
        S_ref = reference_svdvals(A)
        U, S, Vh = safesvd.svd(A)  # driver=None takes the tall path
        Ul, Sl, Vhl = lapack_svd(A)
        assert U.shape == Ul.shape and U.stride() == Ul.stride() and Vh.stride() == Vhl.stride()
        ours = svd_errors(A, U, S, Vh, S_ref)
        theirs = svd_errors(A, Ul, Sl, Vhl, S_ref)
        _assert_within(ours, theirs, dtype, f"svd {m}x{n} {dtype} {name}")
        assert (S[..., :-1] >= S[..., 1:]).all() and (S >= 0).all()


def test_tall_path_layout_non_finite_and_gradients():
    A = torch.randn(3, 5, 40, 7, dtype=torch.float64)[:, ::2].mT  # (3, 3, 7, 40): wide, strided
    U, S, Vh = safesvd.svd(A, driver="jacobi")
    Ut, St, Vht = torch.linalg.svd(A, full_matrices=False)
    assert U.stride() == Ut.stride() and Vh.stride() == Vht.stride()
    torch.testing.assert_close((U * S.unsqueeze(-2)) @ Vh, A, rtol=1e-12, atol=1e-12)
    B = torch.randn(20, 30, 4)
    B[7, 3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        safesvd.svd(B)
    # Exact gradients at exact degeneracy through the tall path (FD in float64).
    X0 = [with_singular_values([2.0, 2.0, 1.0], 12, 3, torch.float64),
          with_singular_values([3.0, 1.0, 0.0], 3, 12, torch.float64)]
    W = [torch.randn(12, 3, dtype=torch.float64), torch.randn(3, 12, dtype=torch.float64)]
    for i in range(2):
        def loss(X, i=i):
            U, S, Vh = safesvd.svd(X, driver="jacobi")
            # the polar factor (repeated pair), resp. the projector of the simple top value
            P = U @ Vh if i == 0 else U[..., :1] @ Vh[..., :1, :]
            return (W[i] * P).sum() + (S ** 3).sum()

        with safesvd.gauge_mode("ignore"):  # a zero singular value: the polar factor is not unique
            X = X0[i].clone().requires_grad_()
            (g,) = torch.autograd.grad(loss(X), X)
            assert rel_err(g, finite_difference_grad(loss, X0[i])) < 1e-6


def test_outputs_match_torch_conventions():
    A = torch.randn(2, 5, 4, 4)
    for driver in ("jacobi", "lapack", None):
        U, S, Vh = safesvd.svd(A, driver=driver)
        Ut, St, Vht = torch.linalg.svd(A)
        assert U.shape == Ut.shape and S.shape == St.shape and Vh.shape == Vht.shape
        assert U.stride() == Ut.stride() and Vh.stride() == Vht.stride()  # column-major like LAPACK
        torch.testing.assert_close(S, St, rtol=1e-5, atol=1e-5)
        # Singular vectors agree up to sign: compare the rank-one projectors.
        torch.testing.assert_close(U.abs(), Ut.abs(), rtol=1e-3, atol=1e-3)
        L, Q = safesvd.eigh(A + A.mT, driver=driver)
        Lt, Qt = torch.linalg.eigh(A + A.mT)
        assert Q.stride() == Qt.stride()
        torch.testing.assert_close(L, Lt, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(safesvd.svdvals(A, driver=driver), St, rtol=1e-5, atol=1e-5)


def test_uplo_reads_only_one_triangle():
    A = torch.randn(6, 5, 5, dtype=torch.float64)
    junk = torch.randn(6, 5, 5, dtype=torch.float64)
    for uplo in ("L", "U"):
        tri = torch.tril(A) if uplo == "L" else torch.triu(A)
        other = torch.triu(junk, 1) if uplo == "L" else torch.tril(junk, -1)
        L, Q = safesvd.eigh(tri + other, UPLO=uplo, driver="jacobi")
        Lt, _ = torch.linalg.eigh(tri + other, UPLO=uplo)
        torch.testing.assert_close(L, Lt, rtol=1e-12, atol=1e-12)


def test_non_contiguous_and_batched_shapes():
    base = torch.randn(3, 4, 10, 7, dtype=torch.float64)
    A = base[:, ::2, 1:8:2, :4].mT  # strided batch and transposed 4 x 4 matrices
    U, S, Vh = safesvd.svd(A, driver="jacobi")
    torch.testing.assert_close((U * S.unsqueeze(-2)) @ Vh, A, rtol=1e-12, atol=1e-12)
    assert safesvd.svd(torch.zeros(0, 3, 3), driver="jacobi")[1].shape == (0, 3)
    assert safesvd.eigh(torch.zeros(2, 0, 4, 4), driver="jacobi")[0].shape == (2, 0, 4)


def test_zero_and_tiny_huge_matrices():
    for dtype, tiny, huge in ((torch.float32, 1e-40, 1e38), (torch.float64, 1e-310, 1e300)):
        Z = torch.zeros(4, 3, 3, dtype=dtype)
        U, S, Vh = safesvd.svd(Z, driver="jacobi")
        assert (S == 0).all() and torch.isfinite(U).all() and torch.isfinite(Vh).all()
        for scale in (tiny, huge):
            A = torch.randn(8, 3, 3, dtype=torch.float64).to(dtype) * scale
            S = safesvd.svdvals(A, driver="jacobi")
            St = torch.linalg.svdvals(A.double() / scale) * scale
            assert torch.isfinite(S).all()
            # subnormal inputs have few significant bits: compare to what they represent
            torch.testing.assert_close(S.double(), St, rtol=1e-4 if scale < 1e-30 else 1e-5, atol=0)


def test_driver_errors():
    A = torch.randn(3, 3)
    with pytest.raises(ValueError, match="driver must be"):
        safesvd.svd(A, driver="gesvd")
    with pytest.raises(ValueError, match="driver='jacobi'"):
        safesvd.svd(torch.randn(65, 65), driver="jacobi")
    with pytest.raises(ValueError, match="driver='jacobi'"):
        safesvd.svd(torch.randn(3, 3, dtype=torch.complex64), driver="jacobi")
    with pytest.raises(ValueError, match="driver='jacobi'"):
        safesvd.eigh(torch.randn(1, 1), driver="jacobi")
    with pytest.raises(ValueError, match="driver='jacobi'"):  # the tall path is thin only
        safesvd.svd(torch.randn(12, 3), full_matrices=True, driver="jacobi")
    with pytest.raises(ValueError, match="driver='jacobi'"):  # short side beyond 16
        safesvd.svd(torch.randn(40, 17), driver="jacobi")
    with pytest.raises(ValueError, match="driver='jacobi'"):  # tile beyond kTallMaxElements
        safesvd.svd(torch.randn(2000, 9), driver="jacobi")


def test_default_driver_falls_back_outside_the_engine():
    """driver=None: complex, 1x1 and n > 64 go to LAPACK (no error)."""
    for A in (torch.randn(2, 3, 3, dtype=torch.complex128), torch.randn(2, 1, 1), torch.randn(2, 70, 70)):
        U, S, Vh = safesvd.svd(A)
        torch.testing.assert_close(S, torch.linalg.svdvals(A))


# driver=None's batches for LAPACK (csrc/cpu/cpu.cpp, lapack_batch_limit_cpu; the rule in
# docs/architecture.md): (shape, threads) -> (float32, float64) limits.
SMALL_BATCH_LIMITS = [((5, 5), (0, 0)), ((6, 6), (1, 1)), ((7, 7), (1, 1)), ((8, 3), (0, 0)), ((7, 6), (0, 0)), ((128, 6), (0, 0)), ((4, 300), (0, 0)), ((8, 8), (1, 1)),
                      ((24, 24), (1, 1)), ((300, 4), (2, 2)), ((32, 32), (2, 2)), ((64, 16), (2, 2)),
                      ((16, 64), (1, 1)), ((48, 48), (2, 2)), ((64, 64), (3, 2)), ((256, 8), (3, 3)),
                      ((1024, 16), (10, 5)), ((3, 1000), (1, 1))]
SMALL_BATCH_LIMITS = [(shape, 1, limits) for shape, limits in SMALL_BATCH_LIMITS] + [
    # On more threads LAPACK takes up to threads x the limit (at most 8) where each matrix
    # is a slice of its own (m n min(m, n) >= 65536).
    ((48, 48), 2, (4, 4)), ((64, 64), 2, (6, 4)), ((64, 64), 3, (8, 6)), ((1024, 16), 2, (10, 8)),
    ((32, 32), 2, (2, 2)), ((256, 8), 2, (3, 3)), ((16, 16), 2, (1, 1)), ((16, 64), 2, (1, 1))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,threads,limits", SMALL_BATCH_LIMITS)
def test_default_driver_sends_small_batches_to_lapack(shape, threads, limits, dtype):
    """driver=None decomposes a batch of at most `limit` matrices with LAPACK (the engine's
    tile costs as much for one matrix as for 16 or 32) and a larger one with the engine:
    its results equal driver="lapack"'s or driver="jacobi"'s bit for bit, with batch
    dimensions too; eigh follows the same rule. driver="jacobi" stays the engine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _check_small_batch_routing(shape, limits, dtype)
    finally:
        torch.set_num_threads(previous)


def _check_small_batch_routing(shape, limits, dtype):
    m, n = shape
    limit = limits[dtype == torch.float64]
    g = torch.Generator().manual_seed(m * 100 + n)
    for B in sorted({1, max(limit, 1), limit + 1}):
        A = torch.randn(B, m, n, dtype=dtype, generator=g)
        expected = "lapack" if B <= limit else "jacobi"
        ops = [lambda X, d=None: safesvd.svd(X, driver=d)]
        if m == n:
            ops.append(lambda X, d=None: safesvd.eigh(X + X.mT, driver=d))
        for f in ops:
            default, chosen, other = f(A), f(A, expected), f(A, "lapack" if expected == "jacobi" else "jacobi")
            assert all(torch.equal(x, y) for x, y in zip(default, chosen)), (shape, B, expected)
            assert not all(torch.equal(x, y) for x, y in zip(default, other)), (shape, B, "drivers agree bitwise")
            if B == 1:  # a batch of one with batch dimensions (1, 1): the same choice
                assert all(torch.equal(x[0], y) for x, y in zip(f(A.view(1, 1, m, n)), f(A)))


def test_small_batch_gradients_match_torch():
    """The backward does not depend on which forward ran: a single 16 x 16 matrix (LAPACK
    forward under driver=None) and the same matrix in a batch of 40 (the engine) give the
    same float64 gradient of a gauge-invariant loss, and torch's."""
    g = torch.Generator().manual_seed(2)
    A = torch.randn(40, 16, 16, dtype=torch.float64, generator=g)
    w = torch.rand(16, dtype=torch.float64, generator=g)

    def loss(X, svd):
        U, S, Vh = svd(X)
        return (S * w).sum() + ((U * S.unsqueeze(-2)) @ Vh).square().sum() + (U @ Vh).diagonal(0, -2, -1).sum()

    def grad(X, svd):
        X = X.clone().requires_grad_()
        loss(X, svd).backward()
        return X.grad

    alone = grad(A[:1], safesvd.svd)
    batched = grad(A, safesvd.svd)[:1]
    ref = grad(A[:1], lambda X: torch.linalg.svd(X, full_matrices=False))
    torch.testing.assert_close(alone, batched, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(alone, ref, rtol=1e-10, atol=1e-10)


def test_non_finite_input_raises_on_cpu():
    A = torch.randn(5, 3, 3)
    A[2, 1, 1] = float("nan")
    for driver in ("jacobi", None):
        with pytest.raises(ValueError, match="NaN or Inf"):
            safesvd.svd(A, driver=driver)
    S = A + A.mT
    S[3, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="NaN or Inf"):
        safesvd.eigh(S, driver="jacobi")


@pytest.mark.parametrize("n", [40, 7])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex64, torch.complex128])
def test_finite_check_finds_every_position(dtype, n):
    """eigh's finite test (a pass over A before LAPACK and the Jacobi bands, the mid-size
    engine's tile load) and svd's LAPACK path see a NaN, +Inf or -Inf anywhere: first and
    last entry, past the first chunk of the parallel pass, in either triangle whichever
    UPLO says to read, in an imaginary part only, through a transposed or conjugated view;
    finite input passes."""
    base = torch.randn(50, n, n, dtype=dtype)  # n = 40: 80000 entries, more than one chunk
    base = base + base.mH
    safesvd.eigh(base)
    safesvd.svd(base, driver="lapack")
    real = dtype.is_floating_point
    for index in ((0, 0, 0), (49, n - 1, n - 1), (45, 3, n - 2), (17, n - 1, 1)):
        for bad in (float("nan"), float("inf"), -float("inf")):
            values = [bad] if real else [complex(bad, 0.0), complex(0.0, bad)]
            for value in values:
                A = base.clone()
                A[index] = value
                for view in (A, A.mT.contiguous().mT, A.conj() if not real else A):
                    for uplo in ("L", "U"):
                        with pytest.raises(ValueError, match="NaN or Inf"):
                            safesvd.eigh(view, UPLO=uplo)
                    with pytest.raises(ValueError, match="NaN or Inf"):
                        safesvd.svd(view, driver="lapack")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cpu_max_abs_matches_torch(dtype):
    """The backward's max |x| (the cotangent scale of the guards): contiguous (one run of
    r c entries, 64 running maxima), transposed and sliced (row by row), per row and per
    column, lengths around the run's block of 64 and its tail; NaN wins over Inf
    wherever it is, Inf over every finite value."""
    from safesvd._testing import cpu_max_abs
    g = torch.Generator().manual_seed(5)
    for r, c in ((1, 1), (3, 5), (8, 8), (64, 64), (7, 100), (130, 3)):
        base = torch.randn(r, c + 2, dtype=dtype, generator=g) * 10.0 ** torch.randint(-3, 4, (r, c + 2), generator=g)
        for x in (base[:, :c].contiguous(), base[:, :c], base[:, :c].contiguous().T, base[:, 1:c + 1]):
            torch.testing.assert_close(cpu_max_abs(x, 0), x.abs().amax().reshape(1), rtol=0, atol=0)
            torch.testing.assert_close(cpu_max_abs(x, 1), x.abs().amax(0), rtol=0, atol=0)
            torch.testing.assert_close(cpu_max_abs(x, 2), x.abs().amax(1), rtol=0, atol=0)
        x = base[:, :c].contiguous()
        for i, j in ((0, 0), (r - 1, c - 1), (r // 2, c // 3)):
            y = x.clone()
            y[i, j] = float("inf")
            assert cpu_max_abs(y, 0).item() == float("inf")
            assert cpu_max_abs(y, 1)[j].item() == float("inf") and cpu_max_abs(y, 2)[i].item() == float("inf")
            y[(i + 1) % r, (j + 1) % c] = float("nan")
            assert cpu_max_abs(y, 0).isnan().all()
            assert cpu_max_abs(y.T, 0).isnan().all()
            assert cpu_max_abs(y, 1)[(j + 1) % c].isnan() and cpu_max_abs(y, 2)[(i + 1) % r].isnan()
    with pytest.raises(ValueError, match="over must be"):
        cpu_max_abs(torch.ones(2, 2, dtype=dtype), 3)


@pytest.mark.parametrize("driver", ["jacobi", "lapack"])
def test_gradients_through_the_engine(driver):
    """Exact gradients at exact degeneracy with either forward (FD in float64)."""
    A = torch.stack([with_singular_values([2.0, 2.0, 1.0], 3, 3, torch.float64),
                     with_singular_values([3.0, 1.0, 0.0], 3, 3, torch.float64)])
    W = torch.randn(3, 3, dtype=torch.float64)

    def loss(X):
        U, S, Vh = safesvd.svd(X, driver=driver)
        return (W * (U @ Vh)).sum() + (S ** 3).sum()

    with safesvd.gauge_mode("ignore"):  # the polar factor at a zero singular value is basis dependent
        X = A[:1].clone().requires_grad_()
        (g,) = torch.autograd.grad(loss(X), X)
        fd = finite_difference_grad(loss, A[:1])
        assert rel_err(g, fd) < 1e-6
    # eigh of A A^T: spectra (1, 4, 4) and (0, 1, 9); eigenvalues and the projector on the
    # simple lowest eigenvalue (invariant losses).
    def eig_loss(X):
        L, Q = safesvd.eigh(X @ X.mT, driver=driver)
        q = Q[..., :1]
        return (L ** 3).sum() + (W * (q @ q.mT)).sum()

    X = A.clone().requires_grad_()
    (g,) = torch.autograd.grad(eig_loss(X), X)
    assert rel_err(g, finite_difference_grad(eig_loss, A)) < 1e-6


def test_matrix_functions_use_the_engine_and_agree():
    A = torch.randn(64, 4, 4, dtype=torch.float64)
    C = A @ A.mT + 1e-3 * torch.eye(4, dtype=torch.float64)
    R = safesvd.sqrtm(C)
    torch.testing.assert_close(R @ R, C, rtol=1e-10, atol=1e-10)
    P = safesvd.procrustes(A, special=True)
    torch.testing.assert_close(P.mT @ P, torch.eye(4, dtype=torch.float64).expand(64, 4, 4), rtol=1e-12, atol=1e-12)
    assert (torch.linalg.det(P) > 0).all()


@pytest.mark.parametrize("isa", ["baseline", "avx2", "avx512"])
def test_every_compiled_isa_variant(isa):
    """Each instruction-set variant of the CPU kernels, chosen with SAFESVD_CPU_ISA in a
    fresh process (the choice is made once per process); skipped where the CPU lacks it.
    A smoke test, then, for each variant other than this process's, the engine and SoA
    suites."""
    code = f"""
import torch, safesvd, sys
if torch.ops.safesvd._cpu_isa() != {isa!r}: sys.exit(3)
torch.manual_seed(0)
for n in (2, 3, 5, 8, 16):
    for dt in (torch.float32, torch.float64):
        A = torch.randn(37, n, n, dtype=dt)
        S = safesvd.svdvals(A, driver="jacobi")
        torch.testing.assert_close(S, torch.linalg.svdvals(A), rtol=1e-4, atol=1e-4)
        L, Q = safesvd.eigh(A + A.mT, driver="jacobi")
        torch.testing.assert_close((Q * L.unsqueeze(-2)) @ Q.mT, A + A.mT, rtol=1e-4, atol=1e-4)
        if 3 <= n <= 8:
            B = torch.randn(37, n + 1 if n < 8 else n, n - 1, dtype=dt)
            torch.testing.assert_close(safesvd.svdvals(B, driver="jacobi"), torch.linalg.svdvals(B), rtol=1e-4, atol=1e-4)
"""
    # The same safesvd as this process (the source tree's build, or an installed wheel).
    env = dict(os.environ, SAFESVD_CPU_ISA=isa, PYTHONPATH=str(Path(safesvd.__file__).parent.parent))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if r.returncode != 0 and "does not support it" in r.stderr:
        pytest.skip(f"this CPU does not run {isa}")
    assert r.returncode == 0, r.stderr[-3000:]
    if torch.ops.safesvd._cpu_isa() == isa:
        return  # this process's variant: the main run covers the suites below
    # Every other variant the CPU runs: the accuracy gate (within 4x of LAPACK), the
    # engine's gradient tests and the SoA backward's bit-for-bit agreement with the
    # per-matrix kernels, re-run in a fresh process, so AVX-512 runs wherever the CPU has it.
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(ROOT / "tests" / "test_engine.py"), str(ROOT / "tests" / "test_soa_backward.py"),
                        "-k", "not test_every_compiled_isa_variant"],
                       env=env, capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, f"under SAFESVD_CPU_ISA={isa}:\n{r.stdout[-6000:]}\n{r.stderr[-2000:]}"
    assert " passed" in r.stdout.splitlines()[-1] and " failed" not in r.stdout.splitlines()[-1], r.stdout[-2000:]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_small_bmm_matches_bmm(dtype):
    """The batched backward's real square products up to 64 x 64 run on the CPU's own kernel
    (csrc/kernels/small_gemm.h, aten/common.h device_bmm); the hook
    safesvd._testing.cpu_small_bmm(0) sends them to batched BLAS. Both form gA = Q M Q^T
    (eigh; U M Vh for the square svd) from the same M, each product of n-term sums with an
    error below n eps |X| |Y| (|.| entrywise), and with orthogonal factors ||gA||_F = ||M||_F:
    each result is within a few n eps ||gA||_F of the exact one, asserted per matrix as
    max |ours - BLAS| <= 4 n eps ||gA||_F. Sizes on either side of the kernel's row blocks
    (17 and 33: one row past whole vectors; 20, 24, 31: a block of half a vector for the
    last rows in float32, 20 in float64 too, then for 31 a zero-padded block of what is
    left; 24 and 48: three vectors left, in float64 and float32; 48: two in float64; 64) and
    the first size it does not take (65); both ops and the matrix functions' backward
    (eigh_fn's for sqrtm, svd_fn's square one), absent cotangents, a transposed
    (non-contiguous) cotangent, an exactly degenerate spectrum."""
    from safesvd._testing import cpu_small_bmm, cpu_soa_calls

    g = torch.Generator().manual_seed(21)
    eps = torch.finfo(dtype).eps

    def check(ours, blas, n):
        assert torch.isfinite(ours).all()
        diff = (ours - blas).abs().amax(dim=(-2, -1))
        assert (diff <= 4 * n * eps * torch.linalg.matrix_norm(blas)).all(), diff

    def both(f):
        previous = cpu_small_bmm(0)
        try:
            blas = f()
        finally:
            cpu_small_bmm(previous)
        assert cpu_small_bmm(-1) == 1
        return f(), blas

    for n in (17, 20, 24, 31, 33, 48, 64, 65):
        calls = cpu_soa_calls("gemm")
        B = 6
        X = torch.randn(B, n, n, dtype=dtype, generator=g)
        X[2] = with_singular_values([2.0, 2.0] + [1.0] * (n - 2), n, n).to(dtype)
        A = X + X.mT
        L, Q = safesvd.eigh(A)
        gL = torch.randn(B, n, dtype=dtype, generator=g)
        gQ = torch.randn(B, n, n, dtype=dtype, generator=g)
        for cot in ((gL, gQ), (None, gQ), (gL, gQ.mT)):
            (ours, _), (blas, _) = both(lambda: torch.ops.safesvd._eigh_backward(*cot, L, Q, "pinv", None, None))
            check(ours, blas, n)
        U, S, Vh = safesvd.svd(X)
        gU, gS, gVh = (torch.randn(x.shape, dtype=dtype, generator=g) for x in (U, S, Vh))
        for cot in ((gU, gS, gVh), (gU, None, None), (None, None, gVh), (gU.mT, gS, gVh.mT)):
            (ours, _), (blas, _) = both(lambda: torch.ops.safesvd._svd_backward(*cot, U, S, Vh, "pinv", None, None))
            check(ours, blas, n)
        # The matrix functions' backward (sqrtm here: eigenvalues in [1, 3], so the divided
        # differences of sqrt lie within a factor sqrt(3) of each other, and the error of
        # Q^T G Q carries into gA = Q (F o Q^T G Q) Q^T at most that much amplified).
        P = torch.linalg.qr(torch.randn(B, n, n, dtype=torch.float64, generator=g))[0]
        lam = 1 + 2 * torch.rand(B, n, dtype=torch.float64, generator=g)
        lam[2, :3] = 2.0  # an exactly repeated eigenvalue
        Ls, Qs = safesvd.eigh(((P * lam.unsqueeze(-2)) @ P.mT).to(dtype))
        G = torch.randn(B, n, n, dtype=dtype, generator=g)
        for Gc in (G, G.mT):
            fL, dfL = Ls.sqrt(), 0.5 / Ls.sqrt()
            (ours, _), (blas, _) = both(lambda: torch.ops.safesvd._eigh_fn_backward(Gc, Ls, Qs, fL, dfL, None, None))
            check(ours, blas, 2 * n)
            # svd_fn's square backward (polar-like f(s) = sqrt(s) on singular values in [1, 3]).
            (ours, _), (blas, _) = both(
                lambda: torch.ops.safesvd._svd_fn_backward(Gc, Qs, Ls, Qs.mT, fL, dfL, None, None))
            check(ours, blas, 2 * n)
        # The kernel took every product it should (none with the hook off, none above 64).
        assert (cpu_soa_calls("gemm") > calls) == (n <= 64)
    with pytest.raises(ValueError):
        cpu_small_bmm(2)


@pytest.mark.parametrize("threads", [1, 2])
def test_batched_backward_in_slices_matches_each_matrix_alone(threads):
    """The CPU's batched backward (n > 16 square, large rectangular) runs a batch in slices
    of about 256 KiB per matrix array (aten/common.h, in_backward_slices), in parallel:
    a batch of several slices, the last one partial, with exactly degenerate and
    rank-deficient matrices and absent cotangents, gives each matrix the gradient and
    gauge report it gets alone (one slice)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        g = torch.Generator().manual_seed(11)
        for m, n in ((32, 32), (100, 40), (40, 100)):
            B = 2 * (256 * 1024) // (max(m, n) * min(m, n) * 8) + 5  # two full slices and a partial one
            A = torch.randn(B, m, n, dtype=torch.float64, generator=g)
            k = min(m, n)
            A[3] = with_singular_values([2.0, 2.0] + [1.0] * (k - 2), m, n)
            A[B - 1] = with_singular_values([3.0] * (k - 1) + [0.0], m, n)
            U, S, Vh = safesvd.svd(A)
            cot = [torch.randn(x.shape, dtype=x.dtype, generator=g) for x in (U, S, Vh)]
            for present in ((0, 1, 2), (0,), (2,), (1,)):
                c = [cot[i] if i in present else None for i in range(3)]
                gA, gauge = torch.ops.safesvd._svd_backward(*c, U, S, Vh, "pinv", None, None)
                for b in (0, 3, B // 2, B - 1):
                    one = [x[b:b + 1] if x is not None else None for x in c]
                    gA1, gauge1 = torch.ops.safesvd._svd_backward(*one, U[b:b + 1], S[b:b + 1], Vh[b:b + 1],
                                                                  "pinv", None, None)
                    torch.testing.assert_close(gA[b:b + 1], gA1, rtol=1e-12, atol=1e-12 * gA1.abs().max().item())
                    torch.testing.assert_close(gauge[b:b + 1], gauge1, rtol=1e-12, atol=0)
        n = 40
        B = 2 * (256 * 1024) // (n * n * 8) + 5
        X = torch.randn(B, n, n, dtype=torch.float64, generator=g)
        X[4] = with_singular_values([2.0, 2.0] + [1.0] * (n - 2), n, n)
        A = X + X.mT
        L, Q = safesvd.eigh(A)
        cot = [torch.randn(x.shape, dtype=x.dtype, generator=g) for x in (L, Q)]
        for present in ((0, 1), (1,), (0,)):
            c = [cot[i] if i in present else None for i in range(2)]
            gA, gauge = torch.ops.safesvd._eigh_backward(*c, L, Q, "pinv", None, None)
            for b in (0, 4, B // 2, B - 1):
                one = [x[b:b + 1] if x is not None else None for x in c]
                gA1, gauge1 = torch.ops.safesvd._eigh_backward(*one, L[b:b + 1], Q[b:b + 1], "pinv", None, None)
                torch.testing.assert_close(gA[b:b + 1], gA1, rtol=1e-12, atol=1e-12 * gA1.abs().max().item())
                torch.testing.assert_close(gauge[b:b + 1], gauge1, rtol=1e-12, atol=0)
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("threads", [1, 2])
def test_matrix_function_backward_in_slices_matches_each_matrix_alone(threads):
    """The matrix functions' batched backward (above the fused sizes) runs in slices too
    (aten/fn.cpp): every matrix of a batch of several slices, the last one partial, with
    a repeated eigenvalue / singular value, gets the gradient and gf it gets alone; eigh
    based (sqrt of the eigenvalues) and svd based, square, tall and wide."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        g = torch.Generator().manual_seed(12)
        n = 40
        B = 2 * (256 * 1024) // (n * n * 8) + 5
        X = torch.randn(B, n, 2 * n, dtype=torch.float64, generator=g)
        A = X @ X.mT / (2 * n) + 0.1 * torch.eye(n, dtype=torch.float64)
        A[2] = with_singular_values([2.0, 2.0] + [1.0] * (n - 2), n, n) @ with_singular_values([1.0] * n, n, n)
        A[2] = A[2] @ A[2].mT
        L, Q = torch.linalg.eigh(A)
        G = torch.randn(A.shape, dtype=torch.float64, generator=g)
        fL, dfL = L.sqrt(), 0.5 / L.sqrt()
        gA, gf = torch.ops.safesvd._eigh_fn_backward(G, L, Q, fL, dfL, None, None)
        for b in (0, 2, B // 2, B - 1):
            s = slice(b, b + 1)
            gA1, gf1 = torch.ops.safesvd._eigh_fn_backward(G[s], L[s], Q[s], fL[s], dfL[s], None, None)
            torch.testing.assert_close(gA[s], gA1, rtol=1e-12, atol=1e-12 * gA1.abs().max().item())
            torch.testing.assert_close(gf[s], gf1, rtol=1e-12, atol=1e-12 * gf1.abs().max().item())
        for m, n in ((32, 32), (100, 40), (40, 100)):
            B = 2 * (256 * 1024) // (max(m, n) * min(m, n) * 8) + 5
            A = torch.randn(B, m, n, dtype=torch.float64, generator=g)
            A[1] = with_singular_values([3.0, 3.0] + [1.0] * (min(m, n) - 2), m, n)
            U, S, Vh = torch.linalg.svd(A, full_matrices=False)
            G = torch.randn(B, m, n, dtype=torch.float64, generator=g)
            fS, dfS = S ** 3, 3 * S ** 2
            gA, gf = torch.ops.safesvd._svd_fn_backward(G, U, S, Vh, fS, dfS, None, None)
            for b in (0, 1, B // 2, B - 1):
                s = slice(b, b + 1)
                gA1, gf1 = torch.ops.safesvd._svd_fn_backward(G[s], U[s], S[s], Vh[s], fS[s], dfS[s], None, None)
                torch.testing.assert_close(gA[s], gA1, rtol=1e-12, atol=1e-12 * gA1.abs().max().item())
                torch.testing.assert_close(gf[s], gf1, rtol=1e-12, atol=1e-12 * gf1.abs().max().item())
    finally:
        torch.set_num_threads(previous)

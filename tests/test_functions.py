"""Matrix functions (docs/math.md, "Matrix functions"): eigh_fn, svd_fn, sqrtm, invsqrtm, logm, polar, procrustes."""

import warnings

import pytest
import torch

import safesvd
from helpers import autograd_grad, finite_difference_grad, rel_err, with_eigenvalues, with_singular_values

DTYPES = [torch.float64, torch.complex128]


def sym(X):
    return (X + X.mH) / 2


def exp_fn(A):
    return safesvd.eigh_fn(A, torch.exp, torch.exp)


# ------------------------------------------------------------- eigh family


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,fn,spectrum", [
    ("sqrtm", safesvd.sqrtm, [1, 1, 1, 4]),
    ("sqrtm all equal", safesvd.sqrtm, [2, 2, 2]),
    ("invsqrtm", safesvd.invsqrtm, [0.5, 0.5, 3, 3]),
    ("logm", safesvd.logm, [1, 1, 2, 5, 5]),
    ("eigh_fn exp", exp_fn, [-1, 0.3, 0.3, 0.3]),
])
def test_eigh_functions_exact_at_repeated_eigenvalues(dtype, name, fn, spectrum, device):
    A = with_eigenvalues(spectrum, dtype)
    W = torch.randn(len(spectrum), len(spectrum), dtype=dtype)

    def loss(X):
        return (W.to(X.device) * fn(sym(X))).real.sum()

    g = autograd_grad(loss, A.to(device)).cpu()
    assert rel_err(g, finite_difference_grad(loss, A)) < 1e-6


def test_sqrtm_through_eigh_is_wrong_at_degeneracy_and_eigh_fn_is_not():
    """docs/math.md, "What the guard gets right, and what it cannot": sqrtm via eigh at eigenvalues (1, 1, 1, 4): 50% error."""
    A = with_eigenvalues([1, 1, 1, 4])
    W = torch.randn(4, 4, dtype=torch.float64)

    def via_eigh(X):
        L, Q = safesvd.eigh(sym(X))
        return (W * ((Q * L.sqrt().unsqueeze(-2)) @ Q.mT)).sum()

    def via_fn(X):
        return (W * safesvd.sqrtm(sym(X))).sum()

    fd = finite_difference_grad(via_fn, A)
    assert rel_err(autograd_grad(via_eigh, A), fd) > 0.05
    assert rel_err(autograd_grad(via_fn, A), fd) < 1e-6


@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64])
def test_float32_batches_at_identity_equal_analytic_derivative(dtype):
    """At A = I every eigenvalue is equal; d f(A)[E] = f'(1) sym(E)."""
    A = torch.eye(5, dtype=dtype).repeat(7, 1, 1).requires_grad_()
    W = torch.randn(7, 5, 5, dtype=dtype)
    for fn, dfdx in [(safesvd.sqrtm, 0.5), (safesvd.invsqrtm, -0.5), (safesvd.logm, 1.0),
                     (exp_fn, torch.e)]:
        (g,) = torch.autograd.grad((W * fn(A)).real.sum(), A)
        assert torch.isfinite(g).all()
        torch.testing.assert_close(g, dfdx * sym(W.conj()), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_eigh_fn_matches_torch_on_generic_input(dtype):
    X = torch.randn(3, 6, 6, dtype=dtype)
    A = X @ X.mH + 0.1 * torch.eye(6, dtype=dtype)
    W = torch.randn(3, 6, 6, dtype=dtype)

    def ours(Y):
        return (W * safesvd.eigh_fn(sym(Y), torch.log, torch.reciprocal)).real.sum()

    def ref(Y):
        L, Q = torch.linalg.eigh(sym(Y))
        return (W * ((Q * L.log().unsqueeze(-2).to(dtype)) @ Q.mH)).real.sum()

    assert rel_err(autograd_grad(ours, A), autograd_grad(ref, A)) < 1e-10


def test_psd_validation():
    with pytest.raises(ValueError, match="positive semidefinite"):
        safesvd.sqrtm(torch.diag(torch.tensor([1.0, -1.0], dtype=torch.float64)))
    # rounding-size negative eigenvalues are clamped
    Y = safesvd.sqrtm(torch.diag(torch.tensor([4.0, -1e-14], dtype=torch.float64)))
    torch.testing.assert_close(Y, torch.diag(torch.tensor([2.0, 0.0], dtype=torch.float64)))
    with pytest.raises(ValueError, match="positive definite"):
        safesvd.invsqrtm(torch.diag(torch.tensor([1.0, 0.0], dtype=torch.float64)))
    with pytest.raises(ValueError, match="positive definite"):
        safesvd.logm(-torch.eye(3))


def test_sqrtm_of_singular_psd_matrix_has_finite_gradient():
    A = with_eigenvalues([0, 0, 2]).requires_grad_()
    safesvd.sqrtm(A).sum().backward()
    assert torch.isfinite(A.grad).all()


# -------------------------------------------------------------- svd family

SHAPES = [(4, 4), (6, 4), (4, 6)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_svd_fn_identity_function_returns_upstream_gradient(dtype, shape):
    """f(s) = s: Y = A, so the gradient must be G exactly, even at repeated and zero S."""
    k = min(shape)
    A = with_singular_values([2, 2, 1, 0][:k], *shape, dtype=dtype).requires_grad_()
    G = torch.randn(*shape, dtype=dtype)
    Y = safesvd.svd_fn(A, lambda s: s, torch.ones_like)
    (g,) = torch.autograd.grad(Y, A, G)
    torch.testing.assert_close(Y.detach(), A.detach())
    torch.testing.assert_close(g, G, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name,f,df", [
    ("s^3", lambda s: s ** 3, lambda s: 3 * s ** 2),
    ("tanh", torch.tanh, lambda s: 1 - torch.tanh(s) ** 2),
])
def test_svd_fn_exact_at_repeated_singular_values(dtype, shape, name, f, df):
    k = min(shape)
    A = with_singular_values([2, 2, 1, 0.5][:k], *shape, dtype=dtype)
    W = torch.randn(*shape, dtype=dtype)

    def loss(X):
        return (W * safesvd.svd_fn(X, f, df)).real.sum()

    assert rel_err(autograd_grad(loss, A), finite_difference_grad(loss, A)) < 1e-6


@pytest.mark.parametrize("dtype", DTYPES)
def test_svd_fn_rank_deficient_with_f0_zero(dtype):
    A = with_singular_values([3, 0, 0, 0], 4, 5, dtype=dtype)
    W = torch.randn(4, 5, dtype=dtype)

    def loss(X):
        return (W * safesvd.svd_fn(X, torch.sinh, torch.cosh)).real.sum()

    assert rel_err(autograd_grad(loss, A), finite_difference_grad(loss, A)) < 1e-6


def test_design_counterexample_guarded_svd_off_svd_fn_exact():
    """docs/math.md, "What the guard gets right, and what it cannot": A = R1 diag(1, 1, 2, 3) R2, loss = sum(W * U diag(S) Vh): true gradient W."""
    A = with_singular_values([3, 2, 1, 1], 4, 4)
    W = torch.randn(4, 4, dtype=torch.float64)

    def guarded(X):
        U, S, Vh = safesvd.svd(X)
        return (W * ((U * S.unsqueeze(-2)) @ Vh)).sum()

    def exact(X):
        return (W * safesvd.svd_fn(X, lambda s: s, torch.ones_like)).sum()

    # The size of the error depends on W (about 10% typically); exact is 1e-12.
    assert rel_err(autograd_grad(guarded, A), W) > 1e-3
    torch.testing.assert_close(autograd_grad(exact, A), W, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 5), (7, 4), (4, 7), (2, 3, 3)])
def test_svd_fn_matches_torch_on_generic_input(dtype, shape):
    A = torch.randn(*shape, dtype=dtype)
    W = torch.randn(*shape, dtype=dtype)

    def ours(X):
        return (W * safesvd.svd_fn(X, lambda s: s ** 2 + s, lambda s: 2 * s + 1)).real.sum()

    def ref(X):
        U, S, Vh = torch.linalg.svd(X, full_matrices=False)
        return (W * ((U * (S ** 2 + S).unsqueeze(-2).to(dtype)) @ Vh)).real.sum()

    assert rel_err(autograd_grad(ours, A), autograd_grad(ref, A)) < 1e-10


def _reference_svd_fn_backward(G, U, S, Vh, fS, dfS, tol):
    """Singular value function backward written out with tensors (docs/math.md),
    an independent reference for the operator (exact merges only, at the test inputs)."""
    V = Vh.mH
    si, sj = S.unsqueeze(-1), S.unsqueeze(-2)
    fi, fj, di, dj = fS.unsqueeze(-1), fS.unsqueeze(-2), dfS.unsqueeze(-1), dfS.unsqueeze(-2)
    near_m, near_p = (si - sj).abs() <= tol, (si + sj) <= tol
    Dm = torch.where(near_m, 0.5 * (di + dj), (fi - fj) / torch.where(near_m, 1.0, si - sj))
    Dp = torch.where(near_p, 0.5 * (di + dj), (fi + fj) / torch.where(near_p, 1.0, si + sj))
    M = U.mH @ G @ V
    X = 0.5 * (M + M.mH) * Dm + 0.5 * (M - M.mH) * Dp
    F = Dp.diagonal(dim1=-2, dim2=-1)
    m, n = U.shape[-2], Vh.shape[-1]
    gA = U @ X @ Vh
    if m > n:
        gA = gA + (G @ V - U @ M) * F.unsqueeze(-2) @ Vh
    elif n > m:
        gA = gA + U @ (F.unsqueeze(-1) * (U.mH @ G - M @ Vh))
    return gA, M.diagonal(dim1=-2, dim2=-1).real


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n", [(4, 4), (6, 5), (5, 6), (8, 8), (8, 3), (3, 8), (12, 12), (14, 10), (10, 14),
                                 (16, 4), (40, 4), (3, 40)])
def test_fn_backward_fused_and_batched_equal_reference(dtype, m, n):
    """The fused per-matrix path (on the CPU: max(m, n) <= 7, and for real input a side of
    8, small rectangular shapes, small batches) and the batched path (complex input above
    7, larger batches) agree with an independent tensor formula, at exactly repeated and
    zero singular values too."""
    for B in (3, 1) if max(m, n) < 8 else (60, 3, 1):
        _check_fn_backward_against_reference(dtype, m, n, B)


@pytest.mark.parametrize("shape, batch, fused", [
    ((8, 3), 2000, True), ((3, 8), 20, True), ((16, 4), 1000, True), ((12, 10), 27, True), ((12, 10), 28, False),
    ((64, 16), 2, True), ((64, 16), 3, False), ((2, 64), 300, True), ((64, 2), 129, False), ((3, 32), 400, True),
    ((4, 64), 129, False),
    ((8, 8), 8, True), ((8, 8), 9, False), ((9, 9), 5, True), ((9, 9), 6, False)])
def test_fn_backward_routing(shape, batch, fused):
    """Which real float64 svd_fn backward takes the per-matrix kernel (not the batched
    path) on the CPU (csrc/cpu/cpu.cpp, fn_backward_fused_cpu): a side of 8 at every batch
    size if rectangular, both sides <= 16 with m n k <= 256 or wide with m <= 3 at every
    batch size, else B m n k <= 32768 (rectangular) or B n^3 <= 4096 (square)."""
    m, n = shape
    U, S, Vh = torch.linalg.svd(torch.randn(batch, m, n, dtype=torch.float64), full_matrices=False)
    G = torch.randn(batch, m, n, dtype=torch.float64)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as p:
        torch.ops.safesvd._svd_fn_backward(G, U, S, Vh, S.sqrt(), 0.5 / S.sqrt(), None, None)
    # The batched path works on slices of the batch (in_backward_slices: aten::narrow); its
    # square products may run on the library's own kernel, which the profiler does not see.
    assert all(e.name != "aten::narrow" for e in p.events()) == fused


def _check_fn_backward_against_reference(dtype, m, n, B):
    k = min(m, n)
    A = torch.stack([with_singular_values([2, 2] + [1] * (k - 3) + [0], m, n, dtype) for _ in range(B)])
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    G = torch.randn_like(A)
    fS, dfS = torch.tanh(S), 1 - torch.tanh(S) ** 2
    gA, gf = torch.ops.safesvd._svd_fn_backward(G, U, S, Vh, fS, dfS, None, None)
    ref, ref_gf = _reference_svd_fn_backward(G, U, S, Vh, fS, dfS, 1e-10)
    torch.testing.assert_close(gA, ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(gf, ref_gf, rtol=1e-12, atol=1e-12)
    if m == n:
        H = sym(A)
        L, Q = torch.linalg.eigh(H)
        fL = torch.exp(L)
        gA, gf = torch.ops.safesvd._eigh_fn_backward(G, L, Q, fL, fL, None, None)
        li, lj = L.unsqueeze(-1), L.unsqueeze(-2)
        near = (li - lj).abs() <= 1e-10
        D = torch.where(near, 0.5 * (fL.unsqueeze(-1) + fL.unsqueeze(-2)),
                        (fL.unsqueeze(-1) - fL.unsqueeze(-2)) / torch.where(near, 1.0, li - lj))
        M = Q.mH @ sym(G) @ Q
        torch.testing.assert_close(gA, Q @ (M * D) @ Q.mH, rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(gf, M.diagonal(dim1=-2, dim2=-1).real, rtol=1e-12, atol=1e-12)


# -------------------------------------------------------- polar, procrustes


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 3), (5, 3), (3, 5)])
def test_polar_factors_exact_at_repeated_singular_values(dtype, shape):
    A = with_singular_values([2, 2, 1], *shape, dtype=dtype)
    Q, P = safesvd.polar(A)
    torch.testing.assert_close(Q @ P, A)
    WQ, WP = torch.randn(*Q.shape, dtype=dtype), torch.randn(*P.shape, dtype=dtype)
    for loss in (lambda X: (WQ * safesvd.polar(X)[0]).real.sum(), lambda X: (WP * safesvd.polar(X)[1]).real.sum()):
        assert rel_err(autograd_grad(loss, A), finite_difference_grad(loss, A)) < 1e-6


@pytest.mark.parametrize("det_sign", [1, -1])
def test_special_procrustes_exact_at_repeated_singular_values(det_sign):
    A = with_singular_values([2, 2, 1], 3, 3)
    if torch.linalg.det(A).sign() != det_sign:
        A = A @ torch.diag(torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64))
    R = safesvd.procrustes(A, special=True)
    torch.testing.assert_close(R @ R.mT, torch.eye(3, dtype=torch.float64))
    torch.testing.assert_close(torch.linalg.det(R), torch.tensor(1.0, dtype=torch.float64))
    W = torch.randn(3, 3, dtype=torch.float64)

    def loss(X):
        return (W * safesvd.procrustes(X, special=True)).sum()

    assert rel_err(autograd_grad(loss, A), finite_difference_grad(loss, A)) < 1e-6


def test_procrustes_not_special_is_polar_factor():
    A = torch.randn(4, 4, dtype=torch.float64)
    torch.testing.assert_close(safesvd.procrustes(A), safesvd.polar(A)[0])


def test_non_unique_results_warn():
    with pytest.warns(safesvd.GaugeWarning, match="rank deficient"):
        safesvd.polar(with_singular_values([2, 1, 0], 3, 3))
    A = with_singular_values([3, 1, 1], 3, 3)
    if torch.linalg.det(A) > 0:
        A = -A
    with pytest.warns(safesvd.GaugeWarning, match="not unique"):
        R = safesvd.procrustes(A.requires_grad_(), special=True)
    R.sum().backward()
    assert torch.isfinite(A.grad).all()
    with pytest.warns(safesvd.GaugeWarning, match="f\\(0\\) != 0"):
        safesvd.svd_fn(with_singular_values([1, 0], 2, 2), torch.exp, torch.exp)


def test_procrustes_errors():
    with pytest.raises(ValueError, match="square"):
        safesvd.procrustes(torch.randn(3, 4), special=True)
    with pytest.raises(TypeError, match="real"):
        safesvd.procrustes(torch.randn(3, 3, dtype=torch.complex64), special=True)


def _procrustes_flip_reference(U, S, Vh):
    """The flip of procrustes(special=True) from its definition, op by op: d = sign det(U Vh);
    not unique where d < 0 and the two smallest singular values are within the guard
    tolerance, or where the second smallest is zero up to the divided differences' floor."""
    from safesvd import _guards

    n = S.shape[-1]
    d = torch.linalg.det(U.double() @ Vh.double()).sign().to(S.dtype)
    fS = torch.ones_like(S)
    fS[..., -1] = d
    if n == 1:
        return fS, torch.zeros(S.shape[:-1], dtype=torch.bool)
    p = _guards.params(S, None, 0, "pinv")
    diff = _guards.scaled(S[..., -2] - S[..., -1], p, 0)
    note = torch.ops.safesvd._guard_coefficients(diff.unsqueeze(-1), torch.ones_like(diff).unsqueeze(-1), p, "pinv")[2]
    return fS, (note[..., 0] > 0) & (d < 0) | _guards.merged_with_zero(S, index=-2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 8, 17])
def test_procrustes_flip(dtype, n):
    """torch.ops.safesvd._procrustes_flip: the CPU's one-pass loop (contiguous S) and
    its ATen path (any other input) equal the definition, on random matrices with and
    without reflection, a repeated smallest singular value (with and without reflection), a
    nearly repeated pair just outside and inside the tolerance, rank deficiency by one and
    by two, and the zero matrix."""
    g = torch.Generator().manual_seed(n)
    eps = torch.finfo(dtype).eps
    rtol = torch.ops.safesvd._guard_defaults(dtype, None, None, False)[0]
    tails = [[3.0, 2.0, 1.0, 0.5], [2.0, 1.0, 1.0, 1.0], [2.0, 1.0, 1.0 + 0.5 * rtol, 1.0],
             [2.0, 1.0, 1.0 + 4 * rtol, 1.0], [1.0, 1.0, 0.0, 0.0], [2.0, 1.0, 1.0, 0.0],
             [0.0] * 4, [1e-30, 5e-31, 5e-31, 1e-31]]
    # n > 4: larger singular values above the four smallest (the cases are in the smallest).
    spectra = [t[:n] if n <= 4 else [max(t) * (2 + k) for k in range(n - 4, 0, -1)] + t for t in tails]
    flip = torch.ones(n, 1, dtype=torch.float64)
    flip[0] = -1  # a row's sign: the other sign of det, the same singular values
    A = torch.stack([with_singular_values(s, n, n) * f for s in spectra for f in (1.0, flip)]).to(dtype)
    A = torch.cat([A, torch.randn(20, n, n, dtype=dtype, generator=g)])
    U, S, Vh = torch.linalg.svd(A)
    ref = _procrustes_flip_reference(U, S, Vh)
    fused = torch.ops.safesvd._procrustes_flip(U, S, Vh)
    aten = torch.ops.safesvd._procrustes_flip(U, torch.stack([S, S], -1)[..., 0], Vh)
    for got in (fused, aten):
        assert torch.equal(got[0], ref[0]) and torch.equal(got[1], ref[1])
    assert (ref[1].any() or n == 1) and not ref[1].all()  # the cases above reach both answers
    assert (ref[0][..., -1] < 0).any() and (ref[0][..., -1] > 0).any()
    batched = torch.ops.safesvd._procrustes_flip(U.reshape(2, -1, n, n), S.reshape(2, -1, n), Vh.reshape(2, -1, n, n))
    assert torch.equal(batched[0].reshape(S.shape), ref[0]) and torch.equal(batched[1].reshape(-1), ref[1])
    empty = torch.ops.safesvd._procrustes_flip(U[:0], S[:0], Vh[:0])
    assert empty[0].shape == (0, n) and empty[1].shape == (0,)
    with pytest.raises(ValueError, match="square"):
        torch.ops.safesvd._procrustes_flip(torch.cat([U, U], -1), S, Vh)
    with pytest.raises(TypeError, match="real"):
        torch.ops.safesvd._procrustes_flip(U.to(torch.complex128), S, Vh.to(torch.complex128))


# ------------------------------------------------- the forward product


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex128])
@pytest.mark.parametrize("shape", [(5, 3, 3), (2, 3, 7, 7), (40, 8, 3), (40, 3, 8), (6, 7, 2), (1, 16, 16),
                                   (2, 12, 12), (40, 16, 16), (4, 1, 1), (0, 3, 3)])
def test_forward_product(dtype, shape):
    """The forward products U diag(f) Vh (svd_fn) and Q diag(f) Q^H (eigh_fn): the CPU's
    per-matrix kernel (real, both sides <= 7 or a small batch) and batched BLAS (elsewhere)
    agree with the product in float64 to rounding, whatever the factors' and f's strides
    (LAPACK's column-major factors, row-major copies, a strided f), and a layout does not
    change the kernel's result."""
    g = torch.Generator().manual_seed(sum(shape))
    A = torch.randn(*shape, dtype=dtype, generator=g)
    eps = torch.finfo(A.real.dtype).eps
    wide = torch.complex128 if dtype.is_complex else torch.float64

    def check(Y, U, f, Vh):
        ref = (U.to(wide) * f.to(torch.float64).unsqueeze(-2)) @ Vh.to(wide)
        scale = (U.abs().amax((-2, -1), keepdim=True) ** 2 * f.abs().amax(-1, keepdim=True).unsqueeze(-1)
                 if U.numel() else 1)
        assert Y.dtype == dtype and Y.shape == ref.shape
        assert ((Y.to(wide) - ref).abs() <= 8 * U.shape[-1] * eps * scale).all()

    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    f = torch.sinh(S)
    Y = torch.ops.safesvd.svd_fn(A, U, S, Vh, f, f, None, None)
    check(Y, U, f, Vh)
    strided_f = torch.stack([f, -f], -1)[..., 0]
    Y2 = torch.ops.safesvd.svd_fn(A, U.contiguous(), S, Vh.contiguous(), strided_f, f, None, None)
    check(Y2, U, f, Vh)
    if max(shape[-2:]) <= 7 and not dtype.is_complex:
        assert torch.equal(Y, Y2)
    if shape[-1] == shape[-2]:
        H = A @ A.mH
        L, Q = torch.linalg.eigh(H)
        for Qx in (Q, Q.contiguous()):
            check(torch.ops.safesvd.eigh_fn(H, L, Qx, torch.sin(L), L, None, None), Q, torch.sin(L), Q.mH)


# ------------------------------------------------- edge cases, opcheck, grads


@pytest.mark.parametrize("shape", [(0, 3, 3), (1, 1), (2, 0, 0)])
def test_empty_and_tiny(shape):
    A = torch.rand(*shape, dtype=torch.float64).requires_grad_()
    Y = safesvd.sqrtm(A @ A.mT)
    Z = safesvd.svd_fn(A, torch.sinh, torch.cosh)
    (Y.sum() + Z.sum()).backward()
    assert A.grad.shape == A.shape and torch.isfinite(A.grad).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_opcheck(dtype, device):
    A = torch.randn(2, 5, 3, dtype=dtype, device=device)
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    fS, dfS, d2fS = torch.sinh(S), torch.cosh(S), torch.sinh(S)
    df0 = torch.ones(2, 1, dtype=S.dtype, device=device)
    torch.library.opcheck(torch.ops.safesvd.svd_fn.default, (A.clone().requires_grad_(), U, S, Vh, fS, dfS, None, None))
    torch.library.opcheck(torch.ops.safesvd.svd_fn.default, (A.clone().requires_grad_(), U, S, Vh, fS, dfS, d2fS, df0))
    G, H = torch.randn_like(A), torch.randn_like(A)
    torch.library.opcheck(torch.ops.safesvd._svd_fn_backward.default, (G, U, S, Vh, fS, dfS, None, None))
    torch.library.opcheck(torch.ops.safesvd._svd_fn_second_order.default, (H, G, U, S, Vh, fS, dfS, d2fS, df0, None, None))
    B = sym(torch.randn(2, 4, 4, dtype=dtype, device=device))
    L, Q = torch.linalg.eigh(B)
    torch.library.opcheck(torch.ops.safesvd.eigh_fn.default, (B.clone().requires_grad_(), L, Q, L.exp(), L.exp(), None, None))
    G, H = torch.randn_like(B), torch.randn_like(B)
    torch.library.opcheck(torch.ops.safesvd._eigh_fn_backward.default, (G, L, Q, L.exp(), L.exp(), None, None))
    torch.library.opcheck(torch.ops.safesvd._eigh_fn_second_order.default, (H, G, L, Q, L.exp(), L.exp(), L.exp(), None, None))
    p = torch.ops.safesvd._guard_params(L.abs(), L.new_ones(2), 8, "pinv", None, None, False)
    torch.library.opcheck(torch.ops.safesvd._guard_params.default, (L.abs(), L.new_ones(2), 8, "lorentz", None, None, False))
    torch.library.opcheck(torch.ops.safesvd._guard_coefficients.default, (torch.randn_like(Q.real), Q.real.abs(), p, "pinv"))
    torch.library.opcheck(torch.ops.safesvd._merged_with_zero.default, (L.abs(), None, None, -2))
    if not dtype.is_complex:
        for n in (3, 4):  # the CPU's loop and the ATen path
            U3, S3, Vh3 = torch.linalg.svd(torch.randn(2, n, n, dtype=dtype, device=device))
            torch.library.opcheck(torch.ops.safesvd._procrustes_flip.default, (U3, S3, Vh3))
    C = B @ B.mH + torch.eye(4, dtype=dtype, device=device)
    for name in ("sqrtm", "logm"):
        torch.library.opcheck(torch.ops.safesvd._eigh_spectral.default, (C, "U", name, True))
    torch.library.opcheck(torch.ops.safesvd._svd_polar.default, (A,))


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradcheck_and_gradgradcheck(dtype, device):
    A = torch.randn(2, 4, 3, dtype=dtype, device=device, requires_grad=True)
    f = lambda X: safesvd.svd_fn(X, lambda s: s ** 3, lambda s: 3 * s ** 2)  # noqa: E731
    assert torch.autograd.gradcheck(f, (A,))
    assert torch.autograd.gradgradcheck(f, (A,))
    X = torch.randn(2, 4, 4, dtype=dtype, device=device)
    H = (X @ X.mH + torch.eye(4, dtype=dtype, device=device)).requires_grad_()
    g = lambda Y: safesvd.logm(sym(Y))  # noqa: E731
    assert torch.autograd.gradcheck(g, (H,))
    assert torch.autograd.gradgradcheck(g, (H,))
    assert torch.autograd.gradcheck(lambda Y: safesvd.polar(Y), (A,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ["sqrtm", "invsqrtm"])
def test_spectral_function_fused_cpu(name, dtype):
    """The CPU's one-pass f, f', f'' of sqrtm / invsqrtm (csrc/aten/fn.cpp): the operations of
    the ATen composition, each correctly rounded, so they equal numpy's IEEE float32 /
    float64 evaluation of the same sequence bit for bit; the ATen path (a strided spectrum)
    agrees to its own rounding (its float32 sqrt is not always correctly rounded). Spectra
    with zeros, rounding-level negatives (sqrtm), tiny and huge scales, n = 1 and many."""
    np = pytest.importorskip("numpy")
    nd = np.float32 if dtype == torch.float32 else np.float64
    eps = torch.finfo(dtype).eps
    g = torch.Generator().manual_seed(11)
    for n, B in [(1, 5), (3, 1), (4, 7), (9, 3000)]:
        for scale in (1e-30, 1e-3, 1.0, 1e25):
            L = torch.rand(B, n, dtype=torch.float64, generator=g).sort(-1).values.to(dtype) * scale
            if name == "sqrtm":
                L[::3, 0] = 0
                if n > 1:
                    L[1::4, 0] = -L[1::4, -1] * eps  # rounding of a semidefinite matrix
            else:
                L = L + L[..., -1:] * 1e-3 + torch.finfo(dtype).tiny  # definite
            fused = torch.ops.safesvd._spectral_function(L, name, True)
            x = L.numpy()
            with np.errstate(all="ignore"):  # float32 at 1e-30 / 1e25: x * x under- / overflows, in both
                if name == "sqrtm":
                    top = np.abs(x).max(-1, keepdims=True)
                    top = np.where(top > 0, top, nd(1))
                    root_top = np.sqrt(top)
                    r = np.maximum(x / top, nd(eps))
                    ref = (np.sqrt(np.maximum(x, nd(0))), nd(0.5) / (root_top * np.sqrt(r)),
                           nd(-0.25) / (root_top * top * r * np.sqrt(r)))
                else:
                    rs = nd(1) / np.sqrt(x)
                    ref = (rs, nd(-0.5) * rs / x, nd(0.75) * rs / (x * x))
            strided = torch.empty(B, 2 * n, dtype=dtype)[:, ::2].copy_(L)
            aten = torch.ops.safesvd._spectral_function(strided, name, True)
            for a, b, c in zip(fused, ref, aten):
                assert torch.equal(a, torch.from_numpy(np.ascontiguousarray(b))), (n, B, scale)
                torch.testing.assert_close(a, c, rtol=4 * eps, atol=0)
    # The domain check raises the same error on both paths.
    bad = torch.tensor([[-1.0, 2.0, 3.0]], dtype=dtype)
    for spectrum in (bad, torch.empty(1, 6, dtype=dtype)[:, ::2].copy_(bad)):
        with pytest.raises(ValueError, match="smallest eigenvalue is -1"):
            torch.ops.safesvd._spectral_function(spectrum, name, True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 3), (1, 5, 5), (4, 2, 8, 8), (0, 3, 3), (1, 1), (6, 20, 20)])
def test_eigh_spectral_is_eigh_then_spectral_function(shape, dtype, device):
    """_eigh_spectral (sqrtm / invsqrtm / logm before their product) returns what eigh
    and _spectral_function of its spectrum return, bit for bit, layout included, for
    both triangles; its domain check raises the same error; sqrtm / invsqrtm / logm go
    through it and record nothing in it (the product carries A's gradient)."""
    g = torch.Generator().manual_seed(len(shape) * 10 + shape[-1])
    X = torch.randn(*shape, dtype=dtype, generator=g).to(device)
    C = X @ X.mH + 0.5 * torch.eye(shape[-1], dtype=dtype, device=device)
    for UPLO in ("L", "U"):
        for name in ("sqrtm", "invsqrtm", "logm"):
            got = torch.ops.safesvd._eigh_spectral(C, UPLO, name, True)
            L, Q = safesvd.eigh(C, UPLO)
            expected = (L, Q, *torch.ops.safesvd._spectral_function(L, name, True))
            for a, b in zip(got, expected):
                assert a.shape == b.shape and a.stride() == b.stride() and torch.equal(a, b), (UPLO, name)
    if shape[-1] > 1 and C.numel():
        D = C - 2 * torch.linalg.eigvalsh(C)[..., -1:, None] * torch.eye(shape[-1], dtype=dtype, device=device)
        with pytest.raises(ValueError, match="positive semidefinite"):
            torch.ops.safesvd._eigh_spectral(D, "L", "sqrtm", True)
        torch.ops.safesvd._eigh_spectral(D, "L", "sqrtm", False)  # the check can be skipped
    A = C.clone().requires_grad_()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        Y = safesvd.sqrtm(A)
    names = [e.name for e in prof.events()]
    assert "safesvd::_eigh_spectral" in names and "safesvd::eigh" in names
    assert Y.requires_grad


def _same(a, b):
    return a.shape == b.shape and a.stride() == b.stride() and a.dtype == b.dtype and torch.equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 3), (1, 5, 5), (4, 2, 8, 8), (0, 3, 3), (1, 1), (6, 7, 4), (2, 3, 9)])
def test_svd_polar_is_svd_then_merged_with_zero(shape, dtype, device):
    """_svd_polar (polar / procrustes in one call) returns svd's factors, ones, zeros,
    _merged_with_zero of S and svd_fn's product U Vh, bit for bit, layout included, on
    full-rank and rank-deficient input (special=True: _procrustes_flip's f and ambiguity,
    and U diag(f) Vh); without product an empty Q. polar and procrustes go through it, and
    return the same Q whether they record a gradient (svd_fn's forward) or not (its Q)."""
    g = torch.Generator().manual_seed(len(shape) * 10 + shape[-1])
    A = torch.randn(*shape, dtype=dtype, generator=g).to(device)
    deficient = A.clone()
    if min(shape[-2:]) > 1:  # rank deficient: a repeated column (row of a wide matrix)
        if shape[-2] >= shape[-1]:
            deficient[..., -1] = deficient[..., 0]
        else:
            deficient[..., -1, :] = deficient[..., 0, :]
    square_real = shape[-1] == shape[-2] and not dtype.is_complex
    for X in (A, deficient):
        U, S, Vh = safesvd.svd(X)
        zeros = torch.zeros_like(S)
        df0 = zeros[..., :1] if shape[-1] != shape[-2] else None
        for special in (False, True) if square_real else (False,):
            f, amb = torch.ops.safesvd._procrustes_flip(U, S, Vh) if special else \
                (torch.ones_like(S), torch.ops.safesvd._merged_with_zero(S))
            Q = torch.ops.safesvd.svd_fn(X, U, S, Vh, f, zeros, zeros, df0)
            got = torch.ops.safesvd._svd_polar(X, special)
            for a, b in zip(got, (U, S, Vh, f, zeros, amb, Q)):
                assert _same(a, b)
            without = torch.ops.safesvd._svd_polar(X, special, False)
            assert all(_same(a, b) for a, b in zip(without[:6], got[:6])) and without[6].shape == (0,)
            for grad in (False, True):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", safesvd.GaugeWarning)  # the deficient input
                    Y = safesvd.procrustes(X.clone().requires_grad_(grad), special=special)
                assert Y.requires_grad == grad and torch.equal(Y, Q)
    if not square_real:
        with pytest.raises((ValueError, TypeError), match="special=True"):
            torch.ops.safesvd._svd_polar(A, True)
    if min(shape[-2:]) > 1 and A.numel():
        assert bool(torch.ops.safesvd._svd_polar(deficient)[5].all())  # the test sees the deficiency
        assert not bool(torch.ops.safesvd._svd_polar(A)[5].any())  # and not in full-rank Gaussian input
    for grad in (False, True):
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            Q = safesvd.procrustes(A.clone().requires_grad_(grad))
        names = [e.name for e in prof.events()]
        assert "safesvd::_svd_polar" in names and "safesvd::svd" in names and Q.requires_grad == grad
        assert ("safesvd::svd_fn" in names) == grad  # recording nothing: the operator's product


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_merged_with_zero_fused_cpu(dtype):
    """The CPU's one-pass rank-deficiency test (csrc/aten/guards.cpp) answers as its ATen
    path (a strided spectrum takes it) and as the composition written out here with
    _guard_params: spectra with exact zeros, values at the rounding floor and just above,
    NaN, Inf, subnormals, scales 1e-30..1e30, every index form; errors are the ATen path's."""
    g = torch.Generator().manual_seed(5)
    eps = torch.finfo(dtype).eps
    for k, B in [(1, 9), (2, 40), (3, 4000), (8, 300)]:
        for scale in (1e-30, 1e-3, 1.0, 1e20, 1e30):
            S = (torch.rand(B, k, dtype=torch.float64, generator=g) * scale).to(dtype)
            S[::5, -1] = 0
            S[1::7, -1] = S[1::7, 0] * eps * 0.25  # near the floor, both sides of it
            S[2::7, -1] = S[2::7, 0] * eps * 4
            S[3::11, 0] = -S[3::11, 0]
            S[4::13, -1] = torch.finfo(dtype).tiny / 4  # subnormal
            S[5::17, 0] = float("nan")
            S[6::19, -1] = float("inf")
            S[7::23, -1] = float("nan")
            if k >= 3:  # NaN inside, a zero after it: min |x| is NaN (amin), not 0
                S[8::29, 1], S[8::29, -1] = float("nan"), 0
            for rtol, atol in ((None, None), (1e-3, None), (None, 1e-12 * scale)):
                for index in (None, 0, -1, k - 1, -k):
                    fused = torch.ops.safesvd._merged_with_zero(S, rtol, atol, index)
                    strided = torch.empty(B, 2 * k, dtype=dtype)[:, ::2].copy_(S)
                    aten = torch.ops.safesvd._merged_with_zero(strided, rtol, atol, index)
                    p = torch.ops.safesvd._guard_params(S, S.new_zeros(B), 0, "pinv", rtol, atol, True)
                    m = S.abs().amin(-1) if index is None else S.abs()[:, index]
                    ref = (m * p[:, 0]) * p[:, 1] <= p[:, 3]
                    assert torch.equal(fused, aten) and torch.equal(fused, ref), (k, scale, rtol, atol, index)
                    assert fused.dtype == torch.bool and fused.shape == (B,)
                    if B > 100 and index is None:
                        assert 0 < int(fused.sum()) < B  # both answers occur
    # Batch dimensions, an empty batch, and the errors of both paths.
    S = torch.rand(2, 3, 4, dtype=dtype)
    assert torch.ops.safesvd._merged_with_zero(S, None, None, None).shape == (2, 3)
    assert torch.ops.safesvd._merged_with_zero(S[:0], None, None, None).shape == (0, 3)
    for spectrum in (S, S.transpose(0, 1)):
        with pytest.raises(IndexError):
            torch.ops.safesvd._merged_with_zero(spectrum, None, None, 4)
        with pytest.raises(ValueError, match="rtol must be finite"):
            torch.ops.safesvd._merged_with_zero(spectrum, -1.0, None, None)

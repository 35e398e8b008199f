"""safesvd.svd and safesvd.svdvals: forward, backward vs torch and finite differences."""

import math
import warnings

import pytest
import torch

import safesvd
from helpers import autograd_grad, finite_difference_grad, rel_err, with_singular_values

SHAPES = [(3, 3), (5, 3), (3, 5), (2, 4, 3), (2, 3, 4), (1, 1), (2, 2, 6, 6), (40, 40), (45, 36), (36, 45)]
SUBSETS = [("U",), ("S",), ("Vh",), ("U", "S"), ("U", "Vh"), ("S", "Vh"), ("U", "S", "Vh")]


def make_loss(shape, dtype, subset, full_matrices):
    """A random loss of the chosen outputs of decompose(A, full_matrices);
    phase invariant for complex input (torch refuses phase-dependent losses)."""
    m, n = shape[-2:]
    k = min(m, n)
    batch = shape[:-2]
    WU = torch.randn(*batch, m, k, dtype=torch.float64).to(dtype)
    WS = torch.randn(*batch, k, dtype=torch.float64)
    WV = torch.randn(*batch, k, n, dtype=torch.float64).to(dtype)

    def loss(A, decompose):
        U, S, Vh = decompose(A, full_matrices)
        U, Vh = U[..., :k], Vh[..., :k, :]
        total = A.new_zeros((), dtype=S.dtype)
        if "U" in subset:
            total = total + ((WU * U).sum() if not dtype.is_complex else (WU.real * U.abs() ** 2).sum())
        if "S" in subset:
            total = total + (WS * S).sum()
        if "Vh" in subset:
            total = total + ((WV * Vh).sum() if not dtype.is_complex else (WV.real * Vh.abs() ** 2).sum())
        return total

    return loss


def safesvd_decompose(A, full):
    # The losses read U and Vh themselves: compare with torch on LAPACK's singular
    # vectors (the engine's may differ by sign; tests/test_engine.py covers it).
    return safesvd.svd(A, full, driver="lapack")


def torch_decompose(A, full):
    return torch.linalg.svd(A, full_matrices=full)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("subset", SUBSETS)
@pytest.mark.parametrize("full_matrices", [False, True])
def test_gradient_matches_torch_on_generic_input(dtype, shape, subset, full_matrices, device):
    A = torch.randn(*shape, dtype=dtype)
    loss = make_loss(shape, dtype, subset, full_matrices)
    g = autograd_grad(lambda X: loss(X.to(device), safesvd_decompose), A)
    ref = autograd_grad(lambda X: loss(X, torch_decompose), A)
    assert torch.isfinite(g).all()
    assert rel_err(g, ref) < 1e-10


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex64, torch.complex128])
def test_forward_matches_torch(dtype):
    A = torch.randn(3, 5, 4, dtype=dtype)
    U, S, Vh = safesvd.svd(A)
    U2, S2, Vh2 = torch.linalg.svd(A, full_matrices=False)
    torch.testing.assert_close(S, S2)
    torch.testing.assert_close((U * S.unsqueeze(-2).to(dtype)) @ Vh, A, rtol=1e-4, atol=1e-4)
    assert safesvd.svdvals(A).shape == (3, 4)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("shape", [(4, 4), (6, 3), (3, 6), (2, 5, 5)])
@pytest.mark.parametrize("guard", ["pinv", "lorentz", "clamp", "none"])
@pytest.mark.parametrize("subset", SUBSETS)
def test_fused_loop_equals_composite(dtype, shape, guard, subset, device):
    """The per-matrix template (CPU loop, CUDA kernel) and the ATen composite are the same math."""
    m, n = shape[-2:]
    A = torch.randn(*shape, dtype=dtype, device=device)
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    g = {"U": torch.randn_like(U), "S": torch.randn_like(S), "Vh": torch.randn_like(Vh)}
    args = [g[name] if name in subset else None for name in ("U", "S", "Vh")]
    fused = torch.ops.safesvd._svd_backward(*args, U, S, Vh, guard, None, None)
    composite = torch.ops.safesvd._svd_backward_composite(*args, U, S, Vh, guard, None, None)
    torch.testing.assert_close(fused[0], composite[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fused[1], composite[1], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("guard", ["pinv", "lorentz", "clamp"])
@pytest.mark.parametrize("m,n", [(4, 4), (6, 4), (4, 6), (20, 20), (24, 20), (20, 24)])
def test_fused_equals_composite_at_degeneracy(dtype, guard, m, n, device):
    """Every backward path (fused loop for n <= 7, batched matmul above,
    differentiable composite) agrees, gradient and gauge info, at repeated and
    zero singular values."""
    k = min(m, n)
    spectra = [[2, 2, 1, 0] + [0.5] * (k - 4), [3] + [1] * (k - 1), [1] + [0] * (k - 1)]
    A = torch.stack([with_singular_values(s, m, n, dtype) for s in spectra]).to(device)
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    gU, gS, gVh = torch.randn_like(U), torch.randn_like(S), torch.randn_like(Vh)
    fused = torch.ops.safesvd._svd_backward(gU, gS, gVh, U, S, Vh, guard, None, None)
    composite = torch.ops.safesvd._svd_backward_composite(gU, gS, gVh, U, S, Vh, guard, None, None)
    assert torch.isfinite(fused[0]).all()
    torch.testing.assert_close(fused[0], composite[0], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(fused[1], composite[1], rtol=1e-9, atol=1e-12)
    assert (fused[1][..., 0] > 1e-3).all()  # a random cotangent is basis dependent there


# ---------------------------------------------------------------- exact degeneracy
# Basis-independent losses at exactly repeated / zero singular values: the
# guarded gradient must equal float64 finite differences (docs/math.md, "What the guard gets right").


def _seed000(A):
    U, S, Vh = safesvd.svd(A)
    return torch.linalg.norm((U * S.unsqueeze(-2).to(U.dtype)) @ Vh)


def test_seed000_norm_at_diag_1123():
    A = torch.diag(torch.tensor([1.0, 1.0, 2.0, 3.0], dtype=torch.float64))
    g = autograd_grad(_seed000, A)
    expected = torch.diag(torch.tensor([0.2581989, 0.2581989, 0.5163978, 0.7745967], dtype=torch.float64))
    torch.testing.assert_close(g, expected, rtol=0, atol=1e-7)
    torch.testing.assert_close(g, finite_difference_grad(_seed000, A), rtol=0, atol=1e-8)
    # torch itself is NaN here: the reason the project exists.
    At = A.clone().requires_grad_()
    U, S, Vh = torch.linalg.svd(At)
    torch.linalg.norm((U * S) @ Vh).backward()
    assert torch.isnan(At.grad).any()


def _polar_loss(W):
    def loss(A):
        U, S, Vh = safesvd.svd(A)
        return (W * (U @ Vh)).real.sum()
    return loss


def _top2_projector_loss(W, side):
    def loss(A):
        U, S, Vh = safesvd.svd(A)
        P = U[..., :2] @ U[..., :2].mH if side == "U" else Vh[..., :2, :].mH @ Vh[..., :2, :]
        return (W * P).real.sum()
    return loss


def _gram_loss(W):
    def loss(A):
        U, S, Vh = safesvd.svd(A)
        return (W * ((U * (S ** 2).unsqueeze(-2).to(U.dtype)) @ U.mH)).real.sum()
    return loss


DEGENERATE_CASES = [
    # (name, spectrum, m, n, loss factory taking W of shape (r, c))
    ("polar square (2,2,1)", [2, 2, 1], 3, 3, _polar_loss, (3, 3)),
    ("polar tall (2,2,1)", [2, 2, 1], 5, 3, _polar_loss, (5, 3)),
    ("polar wide (2,2,1)", [2, 2, 1], 3, 5, _polar_loss, (3, 5)),
    ("top-2 U projector (3,3,1,.5)", [3, 3, 1, 0.5], 4, 4, lambda W: _top2_projector_loss(W, "U"), (4, 4)),
    ("top-2 V projector (3,3,1,.5) wide", [3, 3, 1, 0.5], 4, 6, lambda W: _top2_projector_loss(W, "V"), (6, 6)),
    ("top-2 U projector tall", [3, 3, 1, 0.5], 7, 4, lambda W: _top2_projector_loss(W, "U"), (7, 7)),
    ("U S^2 U^H rank 2 tall", [2, 1, 0, 0], 6, 4, _gram_loss, (6, 6)),
    ("U S^2 U^H rank 1 wide", [3, 0, 0], 3, 5, _gram_loss, (3, 3)),
]


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("case", DEGENERATE_CASES, ids=[c[0] for c in DEGENERATE_CASES])
def test_basis_independent_losses_exact_at_degeneracy(case, dtype, device):
    _, spectrum, m, n, factory, wshape = case
    A = with_singular_values(spectrum, m, n, dtype)
    W = torch.randn(*wshape, dtype=dtype)
    g = autograd_grad(factory(W.to(device)), A.to(device)).cpu()  # a GaugeWarning would be an error here
    fd = finite_difference_grad(factory(W), A)
    assert torch.isfinite(g).all()
    assert rel_err(g, fd) < 1e-6


@pytest.mark.parametrize("guard", ["pinv", "lorentz", "clamp"])
def test_every_guard_is_exact_for_seed000(guard):
    A = torch.diag(torch.tensor([1.0, 1.0, 2.0, 3.0], dtype=torch.float64))

    def loss(X):
        U, S, Vh = safesvd.svd(X, guard=guard)
        return torch.linalg.norm((U * S.unsqueeze(-2)) @ Vh)

    torch.testing.assert_close(autograd_grad(loss, A), A / torch.linalg.norm(A), rtol=0, atol=1e-10)


def test_guard_none_reproduces_torch_nan():
    A = torch.diag(torch.tensor([1.0, 1.0, 2.0, 3.0], dtype=torch.float64))

    def loss(X):
        U, S, Vh = safesvd.svd(X, guard="none")
        return torch.linalg.norm((U * S.unsqueeze(-2)) @ Vh)

    assert not torch.isfinite(autograd_grad(loss, A)).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64])
def test_float32_degenerate_batches_are_finite(dtype, device):
    """No NaN/Inf in float32 for exactly degenerate and rank-deficient batches."""
    mats = [
        torch.eye(4, dtype=dtype),
        torch.zeros(4, 4, dtype=dtype),
        torch.diag(torch.tensor([1.0, 1.0, 2.0, 3.0])).to(dtype),
        torch.ones(4, 4, dtype=dtype),  # rank 1: three zero singular values
        with_singular_values([2, 2, 0, 0], 4, 4, torch.complex128 if dtype.is_complex else torch.float64).to(dtype),
    ]
    A = torch.stack(mats).to(device).requires_grad_()
    U, S, Vh = safesvd.svd(A)
    W = torch.randn(4, 4, dtype=dtype, device=device)
    with safesvd.gauge_mode("ignore"):  # include basis-dependent terms on purpose
        loss = (S ** 2).sum() + (W * (U @ Vh)).real.sum() + (U.real.sum()) + Vh.real.sum()
        loss.backward()
    assert torch.isfinite(A.grad).all()


@pytest.mark.parametrize("shape", [(0, 3, 3), (3, 0), (0, 4), (2, 0, 0), (0, 2, 5)])
@pytest.mark.parametrize("full_matrices", [False, True])
def test_empty(shape, full_matrices, device):
    A = torch.randn(*shape, dtype=torch.float64, device=device, requires_grad=True)
    U, S, Vh = safesvd.svd(A, full_matrices)
    U2, S2, Vh2 = torch.linalg.svd(A.detach(), full_matrices=full_matrices)
    assert (U.shape, S.shape, Vh.shape) == (U2.shape, S2.shape, Vh2.shape)
    (U.sum() + S.sum() + Vh.sum()).backward()
    assert A.grad.shape == A.shape
    assert (A.grad == 0).all()


def test_one_by_one():
    A = torch.tensor([[-3.0]], dtype=torch.float64, requires_grad=True)
    U, S, Vh = safesvd.svd(A)
    (2 * S.sum()).backward()
    torch.testing.assert_close(A.grad, torch.tensor([[-2.0]], dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_non_contiguous_and_transposed(dtype):
    base = torch.randn(6, 10, 8, dtype=dtype)
    for A in (base.mT, base[::2, 1::2, :], base.transpose(0, 1)[:, :, :5], base[..., ::2].mT):
        W = torch.randn(*A.shape, dtype=dtype)

        def ours(X):
            U, S, Vh = safesvd.svd(X)
            return (W * ((U * S.sqrt().unsqueeze(-2).to(dtype)) @ Vh)).real.sum()

        def ref(X):
            U, S, Vh = torch.linalg.svd(X, full_matrices=False)
            return (W * ((U * S.sqrt().unsqueeze(-2).to(dtype)) @ Vh)).real.sum()

        assert rel_err(autograd_grad(ours, A), autograd_grad(ref, A)) < 1e-10


def test_op_accepts_non_contiguous_cotangents():
    A = torch.randn(4, 5, 3, dtype=torch.float64)
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    gU = torch.randn(4, 3, 5, dtype=torch.float64).mT
    gVh = torch.randn(4, 3, 6, dtype=torch.float64)[..., ::2]
    fused = torch.ops.safesvd._svd_backward(gU, None, gVh, U, S, Vh, "pinv", None, None)
    composite = torch.ops.safesvd._svd_backward_composite(gU.contiguous(), None, gVh.contiguous(), U, S, Vh, "pinv", None, None)
    torch.testing.assert_close(fused[0], composite[0], rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------- errors


def test_bad_input_errors():
    with pytest.raises(TypeError, match="float32, float64, complex64 or complex128"):
        safesvd.svd(torch.ones(3, 3, dtype=torch.int64))
    with pytest.raises(TypeError):
        safesvd.svd(torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least 2"):
        safesvd.svd(torch.ones(3))
    with pytest.raises(ValueError, match="NaN or Inf"):
        safesvd.svd(torch.tensor([[1.0, float("nan")], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="guard must be one of"):
        safesvd.svd(torch.eye(2), guard="magic")
    with pytest.raises(ValueError, match="guard must be one of"):
        torch.ops.safesvd.svd(torch.eye(2), False, "magic")
    with pytest.raises(ValueError, match="rtol"):
        safesvd.svd(torch.eye(2), rtol=-1.0)


def test_guard_defaults_cache_keys_and_errors():
    """The gauge check's threshold comes from a cache of the library's answers
    (python/safesvd/_guards.py): keyed by the real dtype and the tolerances, and a bad
    tolerance raises on every call (an exception is not cached)."""
    from safesvd import _guards

    r32, a32, t32 = _guards.defaults(torch.float32)
    r64, a64, t64 = _guards.defaults(torch.float64)
    assert r32 > r64 > 0 and a32 == a64 == 0
    assert t32 == max(math.sqrt(torch.finfo(torch.float32).eps), 10 * r32)  # docs/math.md, "Gauge check"
    assert t64 == max(math.sqrt(torch.finfo(torch.float64).eps), 10 * r64)
    assert _guards.defaults(torch.complex64) == (r32, a32, t32)
    assert _guards.defaults(torch.complex128) == (r64, a64, t64)
    assert _guards.defaults(torch.float64, 1e-3) == (1e-3, 0.0, 1e-2)
    assert _guards.defaults(torch.float64) == (r64, a64, t64)  # the default is not overwritten
    for _ in range(2):
        with pytest.raises(ValueError, match="rtol"):
            _guards.defaults(torch.float64, -1.0)
        with pytest.raises(ValueError, match="atol"):
            _guards.defaults(torch.float32, None, float("inf"))
    # The check uses the threshold of the rtol it is given, call after call: a loss whose
    # basis-dependent part is 1e-5 of its cotangent (the top singular vector's projector,
    # basis-free, plus 1e-5 of one vector of the repeated pair) warns under the default
    # (threshold ~1.5e-8), not under rtol = 1e-3 (threshold 1e-2), then warns again.
    A = with_singular_values([2.0, 1.0, 1.0], 3, 3)
    W = torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    for rtol, warns in ((None, True), (1e-3, False), (None, True), (1e-3, False)):
        X = A.clone().requires_grad_()
        U, S, Vh = safesvd.svd(X, rtol=rtol)
        loss = ((U[:, :1] @ U[:, :1].T) * W).sum() + 1e-5 * U[:, 1].sum()
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            loss.backward()
        assert any(issubclass(x.category, safesvd.GaugeWarning) for x in w) == warns, rtol


def test_backward_op_checks_shapes_and_dtypes():
    A = torch.randn(4, 3, dtype=torch.float64)
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    with pytest.raises(ValueError, match="grad of U has shape"):
        torch.ops.safesvd._svd_backward(torch.randn(3, 3, dtype=torch.float64), None, None, U, S, Vh, "pinv", None, None)
    with pytest.raises(TypeError, match="grad of S has dtype"):
        torch.ops.safesvd._svd_backward(None, S.float(), None, U, S, Vh, "pinv", None, None)
    with pytest.raises(TypeError, match="do not match"):
        torch.ops.safesvd._svd_backward(None, None, None, U.float(), S, Vh, "pinv", None, None)


# ----------------------------------------------------------------- gauge check


def test_complex_phase_dependent_loss_warns_instead_of_erroring():
    A = torch.randn(4, 4, dtype=torch.complex128, requires_grad=True)
    U, S, Vh = safesvd.svd(A)
    with pytest.warns(safesvd.GaugeWarning, match="phase"):
        U[0, 0].real.backward()  # torch raises "the loss is not invariant under phase"
    assert torch.isfinite(A.grad).all()


def test_degenerate_basis_dependent_loss_warns_and_names_the_pair():
    A = with_singular_values([3, 2, 2, 1], 4, 4).requires_grad_()
    U, S, Vh = safesvd.svd(A)
    with pytest.warns(safesvd.GaugeWarning, match=r"S\[1\] = 2 and S\[2\] = 2"):
        U[:, 1].sum().backward()
    assert torch.isfinite(A.grad).all()


def test_gauge_modes():
    A = with_singular_values([3, 2, 2, 1], 4, 4)

    def run():
        X = A.clone().requires_grad_()
        U, S, Vh = safesvd.svd(X)
        U[:, 1].sum().backward()
        return X.grad

    with safesvd.gauge_mode("raise"), pytest.raises(safesvd.GaugeWarning):
        run()
    with safesvd.gauge_mode("ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        g = run()
    assert torch.isfinite(g).all()
    assert safesvd.get_gauge_mode() == "warn"
    with pytest.raises(ValueError):
        safesvd.set_gauge_mode("loud")


@pytest.mark.parametrize("where", [0, 12_345, 19_999])
def test_gauge_check_finds_one_matrix_in_a_large_batch(where):
    """The CPU check scans the residuals over the batch in parallel (_gauge_worst): one
    basis-dependent matrix anywhere in a batch of 20000 is named."""
    A = torch.randn(20_000, 4, 4, dtype=torch.float64)
    A[where] = with_singular_values([3, 2, 2, 1], 4, 4).to(torch.float64)
    X = A.clone().requires_grad_()
    U, S, Vh = safesvd.svd(X)
    with pytest.warns(safesvd.GaugeWarning, match=rf"matrix \({where},\)"):
        U[where, :, 1].sum().backward()
    assert torch.isfinite(X.grad).all()


def test_gauge_worst():
    g = torch.zeros(20_000, 3)
    assert torch.ops.safesvd._gauge_worst(g) == 0.0
    g[17_000, 0] = 0.25
    g[3, 0] = 0.125
    assert torch.ops.safesvd._gauge_worst(g) == 0.25
    assert torch.ops.safesvd._gauge_worst(g[:100]) == 0.125
    g[1, 0] = float("nan")
    assert math.isnan(torch.ops.safesvd._gauge_worst(g))
    assert torch.ops.safesvd._gauge_worst(torch.zeros(0, 3, dtype=torch.float64)) == 0.0
    # The first, middle and last matrix of batches smaller and larger than one chunk of
    # the parallel scan, in float64 too.
    for B in (1, 7, 9, 20_003):
        for where in {0, B // 2, B - 1}:
            h = torch.rand(B, 3, dtype=torch.float64) * 0.5
            h[where, 0] = 0.75
            assert torch.ops.safesvd._gauge_worst(h) == 0.75
            h[where, 0] = float("nan")
            assert math.isnan(torch.ops.safesvd._gauge_worst(h))
    with pytest.raises(ValueError, match="gauge"):
        torch.ops.safesvd._gauge_worst(torch.zeros(5, 2))


def test_full_matrices_extra_columns_warn():
    A = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    U, S, Vh = safesvd.svd(A, full_matrices=True)
    with pytest.warns(safesvd.GaugeWarning, match="extra columns"):
        U[:, 4].sum().backward()
    # Their cotangent is dropped, as in torch.
    assert (A.grad == 0).all()


def test_gauge_minimum_norm_choice_in_degenerate_block():
    """At S = (2, 2) the basis-dependent part (a + b inside the block) is removed."""
    A = torch.diag(torch.tensor([2.0, 2.0], dtype=torch.float64))
    U, S, Vh = torch.linalg.svd(A)
    gU = torch.tensor([[0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)  # rotates the basis
    gA, gauge = torch.ops.safesvd._svd_backward(gU, None, None, U, S, Vh, "pinv", None, None)
    # Only the (a - b)/(S_i + S_j) part survives: gA = U [(a - b)/2 Fp] Vh.
    a = U.mT @ gU - gU.mT @ U
    expected = U @ (0.5 * a / 4.0) @ Vh
    torch.testing.assert_close(gA, expected)
    assert gauge[0] > 0.1 and gauge[1:].tolist() in ([0.0, 1.0], [1.0, 0.0])


# ------------------------------------------------------ opcheck, gradcheck, compile


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@safesvd.gauge_mode("ignore")  # opcheck backpropagates random, basis-dependent cotangents
def test_opcheck(dtype, device):
    A = torch.randn(2, 5, 3, dtype=dtype, device=device)
    torch.library.opcheck(torch.ops.safesvd.svd.default, (A, False, "pinv", None, None))
    torch.library.opcheck(torch.ops.safesvd.svd.default, (A.requires_grad_(), True, "lorentz", 1e-3, None))
    U, S, Vh = torch.linalg.svd(A.detach(), full_matrices=False)
    for args in [(torch.randn_like(U), torch.randn_like(S), torch.randn_like(Vh)), (None, torch.randn_like(S), None)]:
        torch.library.opcheck(torch.ops.safesvd._svd_backward.default, (*args, U, S, Vh, "pinv", None, None))
        torch.library.opcheck(torch.ops.safesvd._svd_backward_composite.default, (*args, U, S, Vh, "pinv", None, None))


def _gauge_invariant_outputs(A):
    U, S, Vh = safesvd.svd(A)
    return U @ Vh, S, (U * S.unsqueeze(-2).to(A.dtype) ** 2) @ U.mH


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (2, 3, 5)])
def test_gradcheck_and_gradgradcheck(dtype, shape, device):
    A = torch.randn(*shape, dtype=dtype, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(_gauge_invariant_outputs, (A,))
    assert torch.autograd.gradgradcheck(_gauge_invariant_outputs, (A,))


def test_second_order_matches_torch():
    A = torch.randn(4, 4, dtype=torch.float64)

    def hvp(decompose):
        X = A.clone().requires_grad_()
        U, S, Vh = decompose(X)
        loss = (S ** 3).sum() + (U @ Vh).sum()
        (g,) = torch.autograd.grad(loss, X, create_graph=True)
        (h,) = torch.autograd.grad((g ** 2).sum(), X)
        return h

    ours = hvp(lambda X: safesvd.svd(X))
    ref = hvp(lambda X: torch.linalg.svd(X, full_matrices=False))
    assert rel_err(ours, ref) < 1e-9


@pytest.mark.slow
def test_torch_compile_fullgraph(device):
    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 3, dtype=torch.float64, device=device)

        def forward(self, x):
            U, S, Vh = safesvd.svd(self.lin(x))
            return (U @ Vh).sum() + S.sum()

    model = Model()
    x = torch.randn(8, 3, 3, dtype=torch.float64, device=device)
    compiled = torch.compile(model, fullgraph=True)  # default backend: inductor
    loss = compiled(x)
    loss.backward()
    g_compiled = model.lin.weight.grad.clone()
    model.zero_grad()
    model(x).backward()
    torch.testing.assert_close(g_compiled, model.lin.weight.grad)

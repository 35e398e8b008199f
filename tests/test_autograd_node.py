"""The C++ autograd nodes of svd, eigh, svd_fn and eigh_fn (csrc/aten/autograd.cpp, docs/architecture.md
"Autograd in Python"): which calls take it, and that it gives the Function's results bit
for bit, first and second order, warnings and errors included."""

import warnings

import pytest
import torch
from torch.overrides import TorchFunctionMode

import safesvd
from safesvd import _gauge, _ops

from helpers import with_eigenvalues, with_singular_values


def node_name(t):
    return t.grad_fn.name()


def all_paths(run):
    """run() through the node (its backward in C++ where it may skip Python, then always
    through the Python hook) and through the Function, with the warnings each raised."""
    out = []
    for use, cpp_backward in ((True, True), (True, False), (False, True)):
        previous, _ops.use_cpp_node = _ops.use_cpp_node, use
        previous_backward = _gauge.set_cpp_backward(cpp_backward)
        try:
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                res = run()
            out.append((res, [(x.category, str(x.message)) for x in w]))
        finally:
            _ops.use_cpp_node = previous
            _gauge.set_cpp_backward(previous_backward)
    return out


def assert_same(node, *others):
    a, wa = node
    for b, wb in others:
        assert wa == wb
        for x, y in zip(a, b):
            if x is None:
                assert y is None
                continue
            assert x.dtype == y.dtype and x.shape == y.shape
            assert torch.equal(x, y) or (x.isnan() == y.isnan()).all() and torch.equal(x.nan_to_num(), y.nan_to_num())


def test_routing():
    A = torch.randn(4, 3, 3, dtype=torch.float64, requires_grad=True)
    assert "SvdNode" in node_name(safesvd.svd(A)[1])
    assert "EighNode" in node_name(safesvd.eigh(A)[0])
    # The operator itself, through its Autograd kernel.
    assert "SvdNode" in node_name(torch.ops.safesvd.svd(A)[1])
    assert "EighNode" in node_name(torch.ops.safesvd.eigh(A)[0])
    _ops.use_cpp_node = False
    try:
        assert node_name(safesvd.svd(A)[1]) == "SafesvdSvdBackward"
        assert node_name(torch.ops.safesvd.eigh(A)[0]) == "SafesvdEighBackward"
    finally:
        _ops.use_cpp_node = True
    # An nn.Parameter (a learnable matrix passed straight in) takes the node.
    P = torch.nn.Parameter(A.detach().clone())
    assert "SvdNode" in node_name(safesvd.svd(P)[1])
    spd = torch.nn.Parameter(A.detach() @ A.detach().mT + torch.eye(3, dtype=A.dtype))
    assert "EighFnNode" in node_name(safesvd.sqrtm(spd))
    # No gradient asked: no graph at all.
    with torch.no_grad():
        assert safesvd.svd(A)[1].grad_fn is None
    assert safesvd.eigh(A.detach())[0].grad_fn is None


def test_function_where_the_node_cannot_go():
    A = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)

    class Mode(TorchFunctionMode):
        seen: list = []

        def __torch_function__(self, func, types, args=(), kwargs=None):
            Mode.seen.append(str(func))
            return func(*args, **(kwargs or {}))

    with Mode():  # the mode sees the public operator once, and never the node's operator
        S = safesvd.svd(A)[1]
    assert [f for f in Mode.seen if "safesvd" in f] == ["safesvd.svd.default"]
    (g,) = torch.autograd.grad(S.sum(), A)
    U, _, Vh = torch.linalg.svd(A.detach(), full_matrices=False)
    assert torch.allclose(g, U @ Vh, atol=1e-12)
    # Forward mode: the node has no jvp; the Function's runs.
    import torch.autograd.forward_ad as fwAD

    T = torch.randn_like(A)
    with fwAD.dual_level():
        S = safesvd.svd(fwAD.make_dual(A.detach(), T))[1]
        dS = fwAD.unpack_dual(S).tangent
    U, S0, Vh = torch.linalg.svd(A.detach(), full_matrices=False)
    assert torch.allclose(dS, (U.mH @ T @ Vh.mH).diagonal(dim1=-2, dim2=-1), atol=1e-12)
    # torch.func: the Function and its vmap rule.
    g = torch.func.grad(lambda X: safesvd.svd(X)[1].sum())(A.detach())
    assert torch.allclose(g, U @ Vh, atol=1e-12)
    # A tensor subclass keeps the Function.
    class Sub(torch.Tensor):
        pass

    S = safesvd.svd(A.detach().as_subclass(Sub).requires_grad_())[1]
    assert "Node" not in node_name(S)


CASES = [
    ("svd", (3, 3), {}),
    ("svd", (5, 3), {}),
    ("svd", (3, 5), {}),
    ("svd", (4, 3), {"full_matrices": True}),
    ("svd", (20, 20), {}),
    ("svd", (64, 16), {}),
    ("eigh", (3, 3), {}),
    ("eigh", (4, 4), {"UPLO": "U"}),
    ("eigh", (24, 24), {}),
    # The guard options travel through the node to the backward (Lorentz changes every
    # coefficient: a lost rtol would show).
    ("svd", (4, 4), {"guard": "lorentz", "rtol": 0.3}),
    ("eigh", (4, 4), {"guard": "clamp", "atol": 0.5}),
]


@pytest.mark.parametrize("op,shape,kw", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex128])
def test_node_equals_function(op, shape, kw, dtype):
    g = torch.Generator().manual_seed(sum(shape))
    A0 = torch.randn(3, *shape, dtype=dtype, generator=g)
    if op == "eigh":
        A0 = A0 + A0.mH
    f = getattr(safesvd, op)

    def run(which):
        def go():
            A = A0.clone().requires_grad_()
            outs = f(A, **kw)
            loss = 0
            for i in which:
                o = outs[i]
                w = torch.randn(o.shape, dtype=o.dtype, generator=torch.Generator().manual_seed(i))
                loss = loss + (o.abs() if o.is_complex() else o).mul(w.real if o.is_complex() else w).sum()
            (gA,) = torch.autograd.grad(loss, A)
            return (gA,)
        return go

    subsets = [(1,), (0,), tuple(range(3 if op == "svd" else 2))]
    for which in subsets:
        assert_same(*all_paths(run(which)))


@pytest.mark.parametrize("op", ["svd", "eigh"])
def test_node_degenerate_warns_as_function(op):
    # Exactly repeated spectrum, a basis-dependent loss: the same GaugeWarning, the same gA.
    A0 = with_singular_values([2.0, 2.0, 1.0], 3, 3) if op == "svd" else with_eigenvalues([1.0, 1.0, 3.0])
    f = getattr(safesvd, op)

    def go():
        A = A0.clone().requires_grad_()
        out = f(A)
        basis = out[0] if op == "svd" else out[1]
        (gA,) = torch.autograd.grad(basis[..., 0, 0], A)
        return (gA,)

    node, *others = all_paths(go)
    assert node[1] and any(c is safesvd.GaugeWarning for c, _ in node[1])
    assert_same(node, *others)
    # Mode "raise": the GaugeWarning crosses the C++ node as itself.
    with safesvd.gauge_mode("raise"), pytest.raises(safesvd.GaugeWarning):
        go()


@pytest.mark.parametrize("op", ["svd", "eigh"])
def test_node_second_order_equals_function(op):
    g = torch.Generator().manual_seed(7)
    A0 = torch.randn(2, 4, 4, dtype=torch.float64, generator=g)
    if op == "eigh":
        A0 = A0 + A0.mT
    f = getattr(safesvd, op)

    def go():
        A = A0.clone().requires_grad_()
        out = f(A)
        loss = (out[1] ** 2).sum() + out[0].pow(3).sum()
        (gA,) = torch.autograd.grad(loss, A, create_graph=True)
        (h,) = torch.autograd.grad((gA * gA).sum(), A)
        return gA.detach(), h

    assert_same(*all_paths(go))
    A = A0.clone().requires_grad_()
    sym = (lambda X: X + X.mT) if op == "eigh" else (lambda X: X)  # eigh reads one triangle
    torch.autograd.gradgradcheck(lambda X: f(sym(X))[1 if op == "svd" else 0], (A,))
    # At a degeneracy the second order warns through the node as through the Function.
    D = (with_singular_values([2.0, 2.0, 1.0], 3, 3) if op == "svd" else with_eigenvalues([1.0, 1.0, 3.0])).requires_grad_()
    out = f(D)
    spectrum = out[1] if op == "svd" else out[0]
    (gD,) = torch.autograd.grad(spectrum.pow(3).sum(), D, create_graph=True)
    with pytest.warns(safesvd.GaugeWarning, match="second derivative"):
        torch.autograd.grad(gD.sum(), D)


def test_node_autograd_contracts():
    A = torch.randn(3, 4, 4, dtype=torch.float64, requires_grad=True)
    # An output modified in place after the forward: its saved value is stale.
    U, S, Vh = safesvd.svd(A)
    S.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        U.sum().backward()
    # retain_graph: a second backward needs it, and gives the same result.
    U, S, Vh = safesvd.svd(A)
    loss = (U[..., 0] ** 2).sum() + S.sum()
    (g1,) = torch.autograd.grad(loss, A, retain_graph=True)
    (g2,) = torch.autograd.grad(loss, A)
    assert torch.equal(g1, g2)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        torch.autograd.grad(loss, A)
    # Saved-tensor hooks see the node's saved outputs.
    packed = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: packed.append(t) or t, lambda t: t):
        L, Q = safesvd.eigh(A + A.mT)
    assert len(packed) == 2
    (gL,) = torch.autograd.grad(L.sum(), A)
    assert torch.allclose(gL, 2 * torch.eye(4, dtype=A.dtype).expand(3, 4, 4), atol=1e-12)
    # Non-contiguous input and an empty batch.
    B = torch.randn(4, 4, 3, dtype=torch.float64).transpose(0, 2).requires_grad_()
    safesvd.svd(B)[1].sum().backward()
    assert torch.allclose(B.grad, torch.linalg.svd(B.detach())[0] @ torch.linalg.svd(B.detach())[2], atol=1e-12)
    E = torch.randn(0, 3, 3, requires_grad=True)
    safesvd.eigh(E)[0].sum().backward()
    assert E.grad.shape == E.shape


def test_node_batched_grads():
    """vmap over the node's backward (is_grads_batched, gradcheck's batched check): the hook
    runs the Python backward on batched tensors, which takes the composite."""
    A = torch.randn(2, 4, 4, dtype=torch.float64, requires_grad=True)
    for f in (lambda X: safesvd.svd(X)[1], lambda X: safesvd.eigh(X + X.mT)[0]):
        out = f(A)
        assert "Node" in node_name(out)
        V = torch.randn(3, *out.shape, dtype=out.dtype)
        (g,) = torch.autograd.grad(out, A, V, is_grads_batched=True)
        ref = torch.stack([torch.autograd.grad(f(A), A, v)[0] for v in V])
        torch.testing.assert_close(g, ref, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda X: safesvd.svd(X)[1], (A,), check_batched_grad=True)


def _spd(B, n, dtype, seed, rank=None):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(B, n, rank or 2 * n, dtype=dtype, generator=g)
    return X @ X.mH / (rank or 2 * n)


FN_CASES = {
    "sqrtm": lambda A, p: safesvd.sqrtm(A),
    "sqrtm rank-deficient": lambda A, p: safesvd.sqrtm(A),
    "invsqrtm": lambda A, p: safesvd.invsqrtm(A + torch.eye(A.shape[-1], dtype=A.dtype)),
    "logm": lambda A, p: safesvd.logm(A + torch.eye(A.shape[-1], dtype=A.dtype)),
    "eigh_fn with a parameter": lambda A, p: safesvd.eigh_fn(A, lambda x: torch.exp(p * x), lambda x: p * torch.exp(p * x)),
    "svd_fn tall with a parameter": lambda A, p: safesvd.svd_fn(A[..., :, :3], lambda s: s ** p, lambda s: p * s ** (p - 1)),
    "polar": lambda A, p: safesvd.polar(A)[0] + safesvd.polar(A)[1],
    "procrustes special": lambda A, p: safesvd.procrustes(A - 0.5 * A.mT, special=True),
}


@pytest.mark.parametrize("case", list(FN_CASES))
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_matrix_function_node_equals_function(case, dtype):
    if dtype.is_complex and ("procrustes" in case or "parameter" in case):
        pytest.skip("real input only (procrustes special) / real parameter")
    A0 = _spd(3, 4, dtype, 5, rank=2 if "deficient" in case else None)
    f = FN_CASES[case]
    W = torch.randn(3, 4, 4, dtype=dtype, generator=torch.Generator().manual_seed(1))

    def go():
        A = A0.clone().requires_grad_()
        p = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
        Y = f(A, p)
        loss = (Y * W[..., : Y.shape[-2], : Y.shape[-1]]).real.sum()
        gA, gp = torch.autograd.grad(loss, (A, p), allow_unused=True)
        # second order through the matrix function (its exact second derivative)
        A2 = A0.clone().requires_grad_()
        (g,) = torch.autograd.grad((f(A2, p.detach()) * W[..., : Y.shape[-2], : Y.shape[-1]]).real.sum(), A2,
                                   create_graph=True)
        (h,) = torch.autograd.grad((g.abs() ** 2).sum(), A2)
        return gA, gp, h

    assert_same(*all_paths(go))
    A = A0.clone().requires_grad_()
    names = graph_names(f(A, torch.tensor(0.7, dtype=torch.float64)))
    assert any("FnNode" in name for name in names)
    # The decomposition under the matrix function records nothing: the function's node
    # carries A's whole gradient.
    assert not any("SvdNode" in name or "EighNode" in name or "SafesvdSvdBackward" in name for name in names)


def graph_names(t):
    """The names of every node of t's graph."""
    seen, todo, names = set(), [t.grad_fn], []
    while todo:
        fn = todo.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        names.append(fn.name())
        todo.extend(f for f, _ in fn.next_functions)
    return names


def hook_calls(loss_fn, **grad_kw):
    """The safesvd operators a backward called (the profiler records every dispatcher call),
    and the gradient."""
    A, loss = loss_fn()
    with torch.autograd.profiler.profile() as prof:
        (gA,) = torch.autograd.grad(loss, A, **grad_kw)
    return {e.name for e in prof.function_events if e.name.startswith("safesvd::")}, gA


def svd_loss(shape=(2, 4, 4), dtype=torch.float64):
    A = torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(3)).requires_grad_()
    U, S, Vh = safesvd.svd(A)
    return A, (U[..., 0] ** 3).sum() + S.sum() + Vh.pow(3).sum()


def eigh_loss(shape=(2, 4, 4), dtype=torch.float64):
    A = torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(4)).requires_grad_()
    L, Q = safesvd.eigh(A + A.mT)
    return A, L.pow(2).sum() + Q.pow(3).sum()


def assert_backward_skips_python(loss_fn, hook):
    """The backward calls the operator, not the Python hook; with the switch off or
    create_graph=True the hook; the gradient is the same bit for bit."""
    ops, fast = hook_calls(loss_fn)
    assert hook not in ops and hook.replace("_hook", "") in ops
    previous = _gauge.set_cpp_backward(False)
    try:
        ops, slow = hook_calls(loss_fn)
    finally:
        _gauge.set_cpp_backward(previous)
    assert hook in ops and torch.equal(fast, slow)
    ops, g = hook_calls(loss_fn, create_graph=True)
    assert hook in ops and torch.equal(g.detach(), fast)


@pytest.mark.parametrize("loss_fn,hook", [(svd_loss, "safesvd::_svd_backward_hook"),
                                          (eigh_loss, "safesvd::_eigh_backward_hook")])
def test_cpu_backward_without_python(loss_fn, hook):
    """A first-order CPU backward with nothing to report calls the backward operator from the
    node, not the Python hook; a check queued for later, create_graph=True or the switch off
    take the hook. The gradient is the same bit for bit (all_paths above compares the paths on
    the cases of the other tests)."""
    assert_backward_skips_python(loss_fn, hook)
    # A check queued for a later report (CUDA's mode "warn"): every backward goes to Python,
    # which reports the queued one first, until the queue is empty.
    _gauge._pending.append(_gauge._Pending(torch.tensor([0.0, 0, 0, 0]), torch.tensor([1.0]),
                                           _gauge._ReadyEvent(), "op", "S", 1.0, ()))
    _gauge._sync_cpp_backward()
    try:
        ops, _ = hook_calls(loss_fn)
        assert hook in ops and not _gauge._pending
        ops, _ = hook_calls(loss_fn)
        assert hook not in ops
    finally:
        _gauge._pending.clear()
        _gauge._sync_cpp_backward()


def sqrtm_loss(shape=(2, 5, 5), dtype=torch.float64):
    X = torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(5))
    A = (X @ X.mT).requires_grad_()
    return A, safesvd.sqrtm(A).pow(3).sum()


def svd_fn_loss(shape=(2, 6, 3), dtype=torch.float64):
    A = torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(6)).requires_grad_()
    return A, safesvd.svd_fn(A, torch.tanh, lambda s: 1 - torch.tanh(s) ** 2).pow(3).sum()


@pytest.mark.parametrize("loss_fn,hook", [(sqrtm_loss, "safesvd::_eigh_fn_backward_hook"),
                                          (svd_fn_loss, "safesvd::_svd_fn_backward_hook")])
def test_matrix_function_cpu_backward_without_python(loss_fn, hook):
    """The matrix functions' nodes: a first-order CPU backward calls the backward operator
    from C++ (they have no gauge to check), create_graph=True or the switch off the Python
    hook; the same gradient bit for bit."""
    assert_backward_skips_python(loss_fn, hook)


@pytest.mark.parametrize("op", ["svd", "eigh"])
def test_cpu_backward_without_python_reports_through_python(op):
    """Above the gauge threshold the node calls Python's check, which warns, raises or
    ignores as its mode says; the same message as the Python backward's."""
    A0 = with_singular_values([2.0, 2.0, 1.0], 3, 3) if op == "svd" else with_eigenvalues([1.0, 1.0, 3.0])
    f = getattr(safesvd, op)

    def loss_fn():
        A = A0.clone().requires_grad_()
        out = f(A)
        return A, (out[0] if op == "svd" else out[1])[..., 0, 0]

    with pytest.warns(safesvd.GaugeWarning) as fast:
        ops, _ = hook_calls(loss_fn)
    assert "safesvd::_gauge_check_hook" in ops and not any(name.endswith("backward_hook") for name in ops)
    previous = _gauge.set_cpp_backward(False)
    try:
        with pytest.warns(safesvd.GaugeWarning) as slow:
            hook_calls(loss_fn)
    finally:
        _gauge.set_cpp_backward(previous)
    assert [str(w.message) for w in fast] == [str(w.message) for w in slow]
    with safesvd.gauge_mode("raise"), pytest.raises(safesvd.GaugeWarning, match="degenerate subspace"):
        hook_calls(loss_fn)
    with safesvd.gauge_mode("ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        hook_calls(loss_fn)


def test_cpu_backward_without_python_only_for_plain_tensors():
    """Cotangents that are not plain CPU tensors (a forward-mode dual, a batched cotangent of
    is_grads_batched) take the Python hook, which knows what to do with them."""
    import torch.autograd.forward_ad as fwAD

    A, loss = svd_loss()
    with fwAD.dual_level():
        v = fwAD.make_dual(torch.ones((), dtype=loss.dtype), torch.ones((), dtype=loss.dtype))
        with torch.autograd.profiler.profile() as prof:
            (gA,) = torch.autograd.grad(loss, A, v)
        _, tangent = fwAD.unpack_dual(gA)
    assert "safesvd::_svd_backward_hook" in {e.name for e in prof.function_events}
    A2, loss2 = svd_loss()
    assert torch.equal(fwAD.unpack_dual(gA).primal, torch.autograd.grad(loss2, A2)[0])
    A3, loss3 = svd_loss()
    with torch.autograd.profiler.profile() as prof:
        (gb,) = torch.autograd.grad(loss3, A3, torch.tensor([1.0, 2.0], dtype=loss3.dtype), is_grads_batched=True)
    assert "safesvd::_svd_backward_hook" in {e.name for e in prof.function_events}
    assert torch.allclose(gb[1], 2 * gb[0], rtol=1e-13, atol=0)

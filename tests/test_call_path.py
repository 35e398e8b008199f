"""The call that records nothing (python/safesvd/_ops.py, apply and _direct_cpu_call;
docs/architecture.md, "Calls that record nothing"): plain real CPU tensors go straight to
the CPU kernel, everything else through the dispatcher below autograd. Both give the
same results; the direct call is taken only where no key above the kernel would act."""

import warnings

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

import safesvd
from safesvd import _ops


def symmetric(*shape, dtype=torch.float64):
    A = torch.randn(*shape, dtype=dtype)
    return A + A.mT


def through_dispatcher(monkeypatch):
    monkeypatch.setattr(_ops, "_direct_cpu_call", lambda tensors: False)


class DispatcherCalled(Exception):
    pass


def forbid_dispatcher(monkeypatch):
    def below(op, *args):
        raise DispatcherCalled(str(op))
    monkeypatch.setattr(_ops, "_below_autograd", below)


CALLS = [
    ("svd 3x3", lambda X: safesvd.svd(X), (3, 3)),
    ("svd batch", lambda X: safesvd.svd(X), (4, 5, 5)),
    ("svd tall full", lambda X: safesvd.svd(X, full_matrices=True), (2, 64, 16)),
    ("svd wide lapack", lambda X: safesvd.svd(X, driver="lapack"), (3, 4, 9)),
    ("svd jacobi rtol", lambda X: safesvd.svd(X, driver="jacobi", rtol=1e-3), (6, 6)),
    ("svd transposed", lambda X: safesvd.svd(X.mT), (5, 7, 4)),
    ("svd empty batch", lambda X: safesvd.svd(X), (0, 3, 3)),
    ("svd 1x1", lambda X: safesvd.svd(X), (1, 1)),
    ("eigh 3x3", lambda X: safesvd.eigh(X + X.mT), (3, 3)),
    ("eigh U lapack", lambda X: safesvd.eigh(X, "U", driver="lapack"), (2, 8, 8)),
    ("eigh strided", lambda X: safesvd.eigh((X + X.mT)[:, ::2, ::2]), (3, 10, 10)),
    ("eigh guard", lambda X: safesvd.eigh(X + X.mT, guard="clamp", atol=1e-6), (4, 4)),
    ("svd_fn", lambda X: safesvd.svd_fn(X, torch.sqrt, lambda s: 0.5 / torch.sqrt(s)), (3, 4, 4)),
    ("eigh_fn", lambda X: safesvd.eigh_fn(X + X.mT, torch.exp, torch.exp), (3, 4, 4)),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name, call, shape", CALLS, ids=[c[0] for c in CALLS])
def test_direct_call_equals_dispatcher(monkeypatch, name, call, shape, dtype):
    X = torch.randn(*shape, dtype=dtype)
    with monkeypatch.context() as m:
        forbid_dispatcher(m)  # the direct call is taken: the dispatcher path would raise
        direct = call(X)
    through_dispatcher(monkeypatch)
    dispatched = call(X)
    assert len(direct) == len(dispatched)
    for a, b in zip(direct, dispatched):
        assert a.dtype == b.dtype and a.shape == b.shape and a.stride() == b.stride()
        assert torch.equal(a, b)


def test_direct_call_not_taken_when_recording():
    X = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    U, S, Vh = safesvd.svd(X)
    assert S.requires_grad and S.grad_fn is not None
    with torch.no_grad():
        assert not safesvd.svd(X)[1].requires_grad


@pytest.mark.parametrize("make", [
    lambda: torch.randn(3, 3, dtype=torch.complex128),
    lambda: torch.nn.Parameter(torch.randn(3, 3, dtype=torch.float64), requires_grad=False),
    lambda: torch.randn(3, 3, dtype=torch.float64).as_subclass(type("Sub", (torch.Tensor,), {})),
    lambda: torch._neg_view(torch.randn(3, 3, dtype=torch.float64)),
    lambda: torch._to_functional_tensor(torch.randn(3, 3, dtype=torch.float64)),
    lambda: torch._efficientzerotensor((3, 3), dtype=torch.float64),
], ids=["complex", "parameter", "subclass", "negative view", "functional", "zero tensor"])
def test_other_tensors_go_through_the_dispatcher(monkeypatch, make):
    X = make()
    assert not _ops._direct_cpu_call((X,))
    forbid_dispatcher(monkeypatch)
    with pytest.raises(DispatcherCalled):
        safesvd.svd(X)


def test_plain_tensors_take_the_direct_call():
    X = torch.randn(3, 3)
    assert _ops._direct_cpu_call((X,)) and _ops._direct_cpu_call((X.double().mT, None, X[0]))
    assert not _ops._direct_cpu_call((X, torch.randn(3, dtype=torch.complex64)))


def test_storage_free_tensors_are_computed():
    # A functional tensor and a zero tensor hold no data of their own: their dispatch keys
    # supply it, so the kernel must not be called with them directly.
    S = symmetric(4, 4)
    for a, b in zip(safesvd.eigh(torch._to_functional_tensor(S)), safesvd.eigh(S)):
        assert torch.equal(torch._from_functional_tensor(a), b)
    Z = torch._efficientzerotensor((3, 4, 4), dtype=torch.float64)
    assert torch.equal(safesvd.svd(Z)[1], torch.zeros(3, 4, dtype=torch.float64))
    assert torch.equal(safesvd.procrustes(torch._to_functional_tensor(S)),
                       torch._to_functional_tensor(safesvd.procrustes(S)))


def test_negative_bit_is_resolved():
    # A real tensor with the negative bit: the imaginary part of a conjugate view. Its
    # memory holds S, its value is -S; the kernel must see -S.
    S = symmetric(4, 4)
    X = torch.complex(torch.zeros_like(S), S).conj().imag
    assert X.is_neg()
    for f in (safesvd.eigh, safesvd.svd):
        for a, b in zip(f(X), f(-S)):
            assert torch.equal(a, b)


def test_dispatch_mode_sees_the_call():
    class Log(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops.append(str(func))
            return func(*args, **(kwargs or {}))

    A = symmetric(3, 3)
    with Log() as log:
        L, Q = safesvd.eigh(A)
    assert "safesvd.eigh.default" in log.ops
    assert torch.equal(L, safesvd.eigh(A)[0])


def test_fake_tensors():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode() as mode:
        A = mode.from_tensor(torch.randn(5, 4, 3))
        U, S, Vh = safesvd.svd(A)
        L, Q = safesvd.eigh(torch.randn(2, 6, 6))
    assert (U.shape, S.shape, Vh.shape) == ((5, 4, 3), (5, 3), (5, 3, 3))
    assert (L.shape, Q.shape) == ((2, 6), (2, 6, 6))


def test_torch_function_mode_sees_the_call():
    class Log(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.calls = []

        def __torch_function__(self, func, types, args=(), kwargs=None):
            self.calls.append(str(func))
            return func(*args, **(kwargs or {}))

    A = torch.randn(3, 3)
    with Log() as log:
        safesvd.svd(A)
    assert "safesvd.svd.default" in log.calls


def test_jit_trace_records_the_call():
    A, B = symmetric(3, 3), symmetric(3, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(lambda X: safesvd.eigh(X)[0], (A,))
    assert "safesvd::eigh" in str(traced.graph)
    torch.testing.assert_close(traced(B), torch.linalg.eigvalsh(B))


@pytest.mark.parametrize("fn, name", [
    (lambda A: safesvd.svd(A), "safesvd::svd"),
    (lambda A: safesvd.eigh(A + A.mT), "safesvd::eigh"),
    (lambda A: safesvd.procrustes(A), "safesvd::_svd_polar"),
    (lambda A: safesvd.procrustes(A, special=True), "safesvd::_svd_polar"),
], ids=["svd", "eigh", "procrustes", "procrustes special"])
def test_profiler_sees_the_operator(fn, name):
    A = torch.randn(4, 4, dtype=torch.float64)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        fn(A)
    assert name in [e.name for e in prof.events()]


@pytest.mark.parametrize("special", [False, True])
def test_jit_trace_of_polar_keeps_the_gradient(special):
    # Traced with an example that records nothing, the graph must still hold the
    # differentiable product (svd_fn), for the inputs that will require grad.
    A = torch.randn(3, 3, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(lambda X: safesvd.procrustes(X, special=special), (A,))
    assert "safesvd::svd_fn" in str(traced.graph)
    X = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    Y = traced(X)
    assert Y.requires_grad
    torch.testing.assert_close(Y, safesvd.procrustes(X.detach(), special=special))
    (g,) = torch.autograd.grad((Y * A).sum(), X)
    (h,) = torch.autograd.grad((safesvd.procrustes(X, special=special) * A).sum(), X)
    torch.testing.assert_close(g, h)


def test_inference_mode():
    A = torch.randn(4, 4, dtype=torch.float64)
    with torch.inference_mode():
        X = A.clone()
        U, S, Vh = safesvd.svd(X)
    assert torch.equal(S, safesvd.svd(A)[1])


def _other_layouts():
    E = torch.eye(3, dtype=torch.float64) + 0.1
    out = {"sparse_coo": lambda: E.to_sparse(), "sparse_csr": lambda: E.to_sparse_csr(),
           "nested": lambda: torch.nested.nested_tensor([E, E])}
    if torch.backends.mkldnn.is_available():
        out["mkldnn"] = lambda: E.float().to_mkldnn()
    return out


@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("layout", list(_other_layouts()))
@pytest.mark.parametrize("fn", [safesvd.svd, safesvd.eigh, safesvd.svdvals, safesvd.sqrtm, safesvd.polar],
                         ids=lambda f: f.__name__)
def test_non_strided_input_is_refused(layout, fn, requires_grad):
    if requires_grad and layout != "sparse_coo":
        pytest.skip("only sparse COO tensors of these layouts can require grad here")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # beta / prototype layout warnings
        X = _other_layouts()[layout]()
    if requires_grad:
        X.requires_grad_()
    if layout == "nested" and fn in (safesvd.sqrtm, safesvd.polar):
        # Composite operators without a kernel for the nested key: the dispatcher refuses.
        with pytest.raises(NotImplementedError, match="NestedTensor"):
            fn(X)
    else:
        with pytest.raises(TypeError, match=r"expected a dense \(strided\) tensor"):
            fn(X)

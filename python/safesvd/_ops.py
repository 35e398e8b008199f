"""Autograd (reverse and forward mode), fake and vmap registrations of the
torch.ops.safesvd operators.

Each differentiable operator has one ``torch.autograd.Function`` (setup_context
style, with ``backward``, ``jvp`` and a vmap rule), registered as the
operator's Autograd kernel by ``_autograd_kernel``. So a caller of
``torch.ops.safesvd.svd`` gets reverse mode, forward mode
(``torch.autograd.forward_ad``) and double backward. (``torch.library.register_autograd``
is not used: its generated kernel has no jvp and silently drops forward-mode
tangents.)

torch.func transforms: a Function applied inside a dispatcher kernel reaches
the ``custom_function_call`` higher-order operator at the Autograd key, which
has no kernel there (torch 2.13); so while a transform is active the public
functions apply the Function directly (``apply``). This path can go once
custom operators are handled by torch.func's transforms natively.

Where none of that is needed (a plain tensor recording a gradient, no forward mode,
transform or mode), svd, eigh, svd_fn and eigh_fn run in a C++ autograd node instead, whose
backward is this module's backward function (``_takes_node``; docs/architecture.md, "The
C++ nodes of svd, eigh, svd_fn and eigh_fn"): the Function's fixed cost was most of a small
call.

The backward runs the fused operator (``_svd_backward``); when the backward
itself must be differentiable (create_graph=True, forward-over-reverse) it runs
the composite of the same decisions (``_svd_backward_composite``), and for the
matrix functions an explicit, exact second order.
"""

from __future__ import annotations

import torch
import torch.autograd.forward_ad as _fwAD
from torch import _C

from . import _gauge, _guards

_registered = False


class _Operators:
    """The operators the public functions call on every call (torch.ops.safesvd.<name>.default),
    looked up once by register(): the lookup through torch.ops is four attribute reads,
    ~0.14 us of a 4.5 us call (eigh 3x3 at B = 1)."""


OPS = _Operators()
_PUBLIC_OPERATORS = ("svd", "eigh", "svd_fn", "eigh_fn", "_svd_polar", "_eigh_spectral")


def _below_autograd(op, *args):
    with _C._AutoDispatchBelowAutograd():
        return op(*args)


# The CPU kernel's dispatch key: a call with this key set goes straight to it.
_CPU_KEYSET = _C.DispatchKeySet(_C.DispatchKey.CPU)
_REAL = (torch.float32, torch.float64)


def _direct_cpu_call(tensors) -> bool:
    """May a call that records nothing go straight to the CPU kernel (the operator
    redispatched with the CPU key alone) rather than through the dispatcher below autograd?

    The same kernel either way: the direct call skips the guard object and the key
    computation (~0.5 us of a 5 us eigh 3x3 at B = 1; docs/architecture.md, "Calls that
    record nothing"). It also skips every key above the kernel, so it is taken only where
    none of them would act: no dispatch mode (fake tensors, make_fx), torch function mode,
    jit trace (whose Tracer key records the call) or profiler (the dispatcher's call, not a
    redispatch, records the operator's event), and every tensor argument a real CPU
    `torch.Tensor` (no subclass) without a negative bit (which the Negative fallback
    resolves) that is no functional (functionalization) or zero tensor (whose data the
    Functionalize and ZeroTensor keys supply). Anything else goes through the dispatcher. (A
    sparse, mkldnn or nested tensor reaches the kernel either way, which refuses it.)"""
    if _dispatch_stack_len() or _function_mode_enabled() or _tracing_state() is not None or _profiler_enabled():
        return False
    for t in tensors:
        if t is not None and (type(t) is not _Tensor or t.dtype not in _REAL or not t.is_cpu or t.is_neg()
                              or t._is_zerotensor() or _is_functional(t)):
            return False
    return True


# Bound once: each attribute read of a module costs ~0.02 us in a path of ~0.3 us.
_dispatch_stack_len, _function_mode_enabled = _C._len_torch_dispatch_stack, _C._is_torch_function_mode_enabled
_tracing_state, _profiler_enabled, _Tensor = _C._get_tracing_state, _C._autograd._profiler_enabled, torch.Tensor
_is_functional = torch._is_functional_tensor


def records_nothing(A: torch.Tensor) -> bool:
    """Would a differentiable operator applied to A (the only tensor that can require
    grad) record nothing: no gradient, forward-mode level, torch.func transform or jit
    trace (whose graph must hold the differentiable operator, for inputs that will)?"""
    return not (_C._are_functorch_transforms_active() or _fwAD._current_level >= 0
                or (A.requires_grad and torch.is_grad_enabled()) or _tracing_state() is not None)


def call_detached(op, *args, tensors: int = 1):
    """Call an operator whose (leading `tensors`) tensor arguments record nothing (detached):
    straight to the CPU kernel where _direct_cpu_call allows it, else through the
    dispatcher (whose autograd fallback then finds nothing to record)."""
    if not _C._are_functorch_transforms_active() and not torch.compiler.is_compiling() \
            and _direct_cpu_call(args[:tensors]):
        return op._handle.redispatch_boxed(_CPU_KEYSET, *args)
    return op(*args)


def _differentiable_backward(*tensors) -> bool:
    """Must the backward be recorded by autograd (create_graph=True, torch.func
    forward-over-reverse, a forward-mode level)?"""
    if _C._are_functorch_transforms_active() or _fwAD._current_level >= 0:
        return True
    return torch.is_grad_enabled() and any(isinstance(t, torch.Tensor) and t.requires_grad for t in tensors)


def apply(function, op, *args):
    """How the public functions call an operator: directly, through its Function while a
    torch.func transform is active (see the module docstring), or, for the four operators
    with a C++ node, straight to the node's operator when a gradient is recorded and the
    node applies (_takes_node; what the operator's Autograd kernel would do one call
    later), or straight below autograd when nothing is recorded."""
    if _C._are_functorch_transforms_active():
        return function.apply(*args)
    if torch.compiler.is_compiling():  # traced: the operator (dynamo cannot key a dict by a Function)
        return op(*args)
    entry = _NODES.get(function)
    if entry is not None:
        node, tensors, options = entry
        if torch.is_grad_enabled() and _C._any_requires_grad(*args[:tensors]):
            if _takes_node(args):
                return node(*args)
        elif _fwAD._current_level < 0:  # nothing to record: the kernel below autograd
            # Options all at their defaults are left out: the operator call parses each
            # argument it is given against the schema, ~0.05 us apiece.
            call = args[:tensors] if args[tensors:] == options else args
            if _direct_cpu_call(args[:tensors]):
                return op._handle.redispatch_boxed(_CPU_KEYSET, *call)
            return _below_autograd(op, *call)
    return op(*args)


# svd, eigh, svd_fn and eigh_fn take their C++ node (csrc/aten/autograd.cpp) where the
# Function adds nothing (_takes_node); False: always the Function (tests compare the two,
# and bench/bench_latency.py times both).
use_cpp_node = True
# Function -> (the operator of its C++ node, the number of leading (optional) tensor
# arguments of its operator, the defaults of the options after them), filled by register().
# Only tensors can require grad: _any_requires_grad over the options costs ~0.2 us of a
# 6 us call (svd 3x3, B = 1).
_NODES: dict = {}


def _node_entry(node, op) -> tuple:
    arguments = op._schema.arguments

    def is_tensor(a) -> bool:
        t = a.type
        return isinstance(t, _C.TensorType) or (isinstance(t, _C.OptionalType)
                                                 and isinstance(t.getElementType(), _C.TensorType))
    tensors = next((i for i, a in enumerate(arguments) if not is_tensor(a)), len(arguments))
    if any(is_tensor(a) for a in arguments[tensors:]):
        raise AssertionError(f"{op}: a tensor argument after the options")
    missing = object()  # an option without a default: never left out
    return node, tensors, tuple(a.default_value if a.has_default_value() else missing for a in arguments[tensors:])


def _takes_node(args) -> bool:
    """Can a gradient-recording call with these arguments take the C++ node instead of
    the Function? Not under forward mode (the node has no jvp), a torch.func transform or
    a functorch-wrapped tensor (the Function's vmap rule and custom_function_call), a
    dispatch mode (fake tensors, tracing) or a tensor subclass (nn.Parameter aside), nor
    a torch function mode (it would see the node's operator as a second call). The
    caller has checked the transforms."""
    if not use_cpp_node or _fwAD._current_level >= 0 or _C._len_torch_dispatch_stack() \
            or _C._is_torch_function_mode_enabled():
        return False
    for a in args:
        if isinstance(a, torch.Tensor) and (type(a) not in _PLAIN_TENSOR_TYPES
                                            or _C._functorch.is_functorch_wrapped_tensor(a)):
            return False
    return True


# nn.Parameter is a plain tensor for dispatch (it disables __torch_function__): a learnable
# matrix passed straight to svd takes the node too.
_PLAIN_TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter)


# ------------------------------------------------------------ second-order check


class SafesvdSecondOrderCheck(torch.autograd.Function):
    """Identity on a first-order gradient of plain svd/eigh. Its backward (and jvp)
    runs when a second derivative passes through that gradient, and warns when the
    spectrum has a pair within the guard tolerance: there the second derivative
    loses the limit of a divided difference and cannot be exact (docs/math.md,
    "Second order"); svd_fn / eigh_fn are exact there."""

    generate_vmap_rule = True

    @staticmethod
    def forward(gA, spectrum, name, guard, rtol, atol, dims, singular_values):
        return gA.clone()

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, spectrum, *options = inputs
        ctx.options = options
        ctx.save_for_backward(spectrum)
        ctx.save_for_forward(spectrum)

    @staticmethod
    def _check(ctx):
        (spectrum,) = ctx.saved_tensors
        name, guard, rtol, atol, dims, singular_values = ctx.options
        if _gauge.get_gauge_mode() == "ignore" or _gauge.is_tracing(spectrum):
            return
        if bool(_guards.inside_pairs(spectrum, guard, rtol, atol, dims, singular_values).any()):
            what = "singular values" if singular_values else "eigenvalues"
            _gauge.report(
                f"{name}: a second derivative passes through repeated (or zero) {what}; there "
                "the second derivative of a decomposition loses the limit of a divided difference "
                "and is not exact (docs/math.md, 'Second order'). Matrix functions "
                "(safesvd.svd_fn, eigh_fn, sqrtm, invsqrtm, logm, polar, procrustes) have an exact "
                "second order.", stacklevel=4)

    @staticmethod
    def backward(ctx, g):
        SafesvdSecondOrderCheck._check(ctx)
        return g, None, None, None, None, None, None, None

    @staticmethod
    def jvp(ctx, tg, *_):
        SafesvdSecondOrderCheck._check(ctx)
        return tg


# ----------------------------------------------------------------------- svd


def svd_backward(gU, gS, gVh, U, S, Vh, guard, rtol, atol, name="safesvd.svd backward"):
    """gA of the svd backward (fused, or differentiable when it must be), with the gauge check."""
    if _differentiable_backward(gU, gS, gVh, U, S, Vh):
        gA, gauge = torch.ops.safesvd._svd_backward_composite(gU, gS, gVh, U, S, Vh, guard, rtol, atol)
        gA = SafesvdSecondOrderCheck.apply(gA, S, name, guard, rtol, atol, U.shape[-2] + Vh.shape[-1], True)
    else:
        gA, gauge = torch.ops.safesvd._svd_backward(gU, gS, gVh, U, S, Vh, guard, rtol, atol)
    _gauge.check(gauge, S, name, "S", rtol)
    return gA


def svd_jvp(tA, U, S, Vh, full_matrices, guard, rtol, atol):
    """Tangents (dU, dS, dVh) of the thin SVD for a tangent tA (docs/math.md, "Forward mode"):
    dP = U^H tA V, dS = Re diag(dP), dU = U Om_U + (I - U U^H) tA V D, dV = V Om_V + (I - V V^H) tA^H U D,
    Om_U/V = 1/2 [(dP + dP^H) o Fm +/- (dP - dP^H) o Fp], the phase split evenly between U and V."""
    m, n, k = U.shape[-2], Vh.shape[-1], S.shape[-1]
    if full_matrices and m != n:
        raise NotImplementedError(
            "safesvd.svd: forward-mode AD with full_matrices=True on rectangular input is not defined "
            "(the extra columns of U / rows of Vh are an arbitrary basis); use full_matrices=False")
    Un, Vhn = U[..., :k], Vh[..., :k, :]
    V = Vhn.mH
    dP = Un.mH @ tA @ V
    dS = dP.diagonal(dim1=-2, dim2=-1).real
    if k == 0:
        return torch.zeros_like(U), dS, torch.zeros_like(Vh)
    p = _guards.params(S, None, m + n, guard, rtol, atol)  # no cotangent: the plain guard
    Sh = _guards.scaled(S, p, 1)
    Fm = _guards.coefficient(Sh.unsqueeze(-2) - Sh.unsqueeze(-1), None, p, guard)[0]  # [i, j] = S_j - S_i
    Fp = _guards.coefficient(Sh.unsqueeze(-2) + Sh.unsqueeze(-1), None, p, guard)[0]
    D = _guards.coefficient(Sh, None, p, guard)[0]
    off = ~torch.eye(k, dtype=torch.bool, device=S.device)
    a = _guards.scaled(dP + dP.mH, p, 2) * Fm
    b = _guards.scaled(dP - dP.mH, p, 2) * Fp
    om_u = torch.where(off, 0.5 * (a + b), 0)
    om_v = torch.where(off, 0.5 * (a - b), 0)
    if dP.is_complex():
        phase = torch.diag_embed(0.5j * _guards.scaled(dP.diagonal(dim1=-2, dim2=-1).imag, p, 1) * D)
        om_u, om_v = om_u + phase, om_v - phase
    dU, dV = Un @ om_u, V @ om_v
    if m > k:
        dU = dU + _guards.scaled(tA @ V - Un @ dP, p, 2) * D.unsqueeze(-2)
    if n > k:
        dV = dV + _guards.scaled(tA.mH @ Un - V @ dP.mH, p, 2) * D.unsqueeze(-2)
    return dU, dS, dV.mH


class SafesvdSvd(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(A, full_matrices, guard, rtol, atol, driver):
        return _below_autograd(torch.ops.safesvd.svd.default, A, full_matrices, guard, rtol, atol, driver)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, full_matrices, guard, rtol, atol, _ = inputs
        ctx.options = (full_matrices, guard, rtol, atol)
        ctx.save_for_backward(*output)
        ctx.save_for_forward(*output)
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx, gU, gS, gVh):
        if gU is None and gS is None and gVh is None:  # e.g. reached only through svd_fn
            return None, None, None, None, None, None
        U, S, Vh = ctx.saved_tensors
        _, guard, rtol, atol = ctx.options
        return svd_backward(gU, gS, gVh, U, S, Vh, guard, rtol, atol), None, None, None, None, None

    @staticmethod
    def jvp(ctx, tA, *_):
        U, S, Vh = ctx.saved_tensors
        return svd_jvp(tA, U, S, Vh, *ctx.options)


# ---------------------------------------------------------------------- eigh


def eigh_jvp(tA, L, Q, guard, rtol, atol):
    """Tangents (dL, dQ) for a Hermitian tangent tA: dP = Q^H tA Q, dL = Re diag(dP),
    dQ = Q (dP o F), F_ij = g(L_j - L_i) off the diagonal."""
    n = L.shape[-1]
    dP = Q.mH @ tA @ Q
    dL = dP.diagonal(dim1=-2, dim2=-1).real
    if n == 0:
        return dL, torch.zeros_like(Q)
    p = _guards.params(L, None, 2 * n, guard, rtol, atol)
    Lh = _guards.scaled(L, p, 1)
    F = _guards.coefficient(Lh.unsqueeze(-2) - Lh.unsqueeze(-1), None, p, guard)[0]
    off = ~torch.eye(n, dtype=torch.bool, device=L.device)
    return dL, Q @ torch.where(off, _guards.scaled(dP, p, 2) * F, 0)


def eigh_backward(gL, gQ, L, Q, guard, rtol, atol):
    """gA of the eigh backward (fused, or differentiable when it must be), with the gauge check."""
    if _differentiable_backward(gL, gQ, L, Q):
        gA, gauge = torch.ops.safesvd._eigh_backward_composite(gL, gQ, L, Q, guard, rtol, atol)
        gA = SafesvdSecondOrderCheck.apply(gA, L, "safesvd.eigh backward", guard, rtol, atol, 2 * L.shape[-1], False)
    else:
        gA, gauge = torch.ops.safesvd._eigh_backward(gL, gQ, L, Q, guard, rtol, atol)
    _gauge.check(gauge, L, "safesvd.eigh backward", "L", rtol)
    return gA


class SafesvdEigh(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(A, UPLO, guard, rtol, atol, driver):
        return _below_autograd(torch.ops.safesvd.eigh.default, A, UPLO, guard, rtol, atol, driver)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, _, guard, rtol, atol, _ = inputs
        ctx.options = (guard, rtol, atol)
        ctx.save_for_backward(*output)
        ctx.save_for_forward(*output)
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx, gL, gQ):
        if gL is None and gQ is None:
            return None, None, None, None, None, None
        L, Q = ctx.saved_tensors
        return eigh_backward(gL, gQ, L, Q, *ctx.options), None, None, None, None, None

    @staticmethod
    def jvp(ctx, tA, *_):
        L, Q = ctx.saved_tensors
        return eigh_jvp(tA, L, Q, *ctx.options)


# ---------------------------------------------------------- matrix functions
#
# f(S), f'(S), f''(S) come from the caller, evaluated on the DETACHED spectrum:
# the operator's gradient with respect to A is complete (the divided differences
# include f'), so f(S) receives only the cotangent Re diag(U^H G V) that its
# parameters need, and nothing is counted twice.

_MIXED_SECOND_ORDER = (
    "{name}: second derivatives that mix the parameters of f with the matrix are not "
    "implemented (the first derivatives with respect to both, and the second derivative "
    "with respect to the matrix, are)")


def _no_third_order(name, *tensors):
    if not _C._are_functorch_transforms_active() and _differentiable_backward(*tensors):
        raise NotImplementedError(f"{name}: third and higher derivatives are not implemented")


def svd_fn_backward(G, A, U, S, Vh, fS, dfS, d2fS, df0, rtol, atol):
    """(gA, gf) of svd_fn: the fused operator, or the Function whose backward is the exact
    second order when the backward must be differentiable."""
    if _differentiable_backward(G, A):
        return SafesvdSvdFnBackward.apply(G, A, U, S, Vh, fS, dfS, d2fS, df0, rtol, atol)
    return torch.ops.safesvd._svd_fn_backward(G, U, S, Vh, fS, dfS, rtol, atol)


class SafesvdSvdFn(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(A, U, S, Vh, fS, dfS, d2fS, df0, rtol, atol):
        return _below_autograd(torch.ops.safesvd.svd_fn.default, A, U, S, Vh, fS, dfS, d2fS, df0, rtol, atol)

    @staticmethod
    def setup_context(ctx, inputs, output):
        A, U, S, Vh, fS, dfS, d2fS, df0, rtol, atol = inputs
        ctx.options = (rtol, atol)
        ctx.save_for_backward(A, U, S, Vh, fS, dfS, d2fS, df0)
        ctx.save_for_forward(U, S, Vh, fS, dfS)

    @staticmethod
    def backward(ctx, G):
        gA, gf = svd_fn_backward(G, *ctx.saved_tensors, *ctx.options)
        return gA, None, None, None, gf, None, None, None, None, None

    @staticmethod
    def jvp(ctx, tA, tU, tS, tVh, tfS, *_):
        U, S, Vh, fS, dfS = ctx.saved_tensors
        rtol, atol = ctx.options
        # The map is self-adjoint: its jvp is the backward applied to the tangent.
        dY = (torch.ops.safesvd._svd_fn_backward(tA, U, S, Vh, fS, dfS, rtol, atol)[0] if tA is not None
              else torch.zeros((*U.shape[:-1], Vh.shape[-1]), dtype=U.dtype, device=U.device))
        if tfS is not None:
            dY = dY + (U * tfS.unsqueeze(-2).to(U.dtype)) @ Vh
        return dY


class SafesvdSvdFnBackward(torch.autograd.Function):
    """The first-order svd_fn backward as a differentiable function of (G, A): its own
    backward is the exact second order (`_svd_fn_second_order`)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(G, A, U, S, Vh, fS, dfS, d2fS, df0, rtol, atol):
        return _below_autograd(torch.ops.safesvd._svd_fn_backward.default, G, U, S, Vh, fS, dfS, rtol, atol)

    @staticmethod
    def setup_context(ctx, inputs, output):
        G, A, U, S, Vh, fS, dfS, d2fS, df0, rtol, atol = inputs
        ctx.options = (rtol, atol)
        ctx.f_has_parameters = fS.requires_grad or dfS.requires_grad
        ctx.save_for_backward(G, U, S, Vh, fS, dfS, d2fS, df0)
        ctx.save_for_forward(G, U, S, Vh, fS, dfS, d2fS, df0)
        ctx.set_materialize_grads(False)

    @staticmethod
    def _second(ctx, H):
        G, U, S, Vh, fS, dfS, d2fS, df0 = ctx.saved_tensors
        if d2fS is None:
            raise RuntimeError("safesvd.svd_fn: the second derivative needs f'' (pass d2f=, or use an f' "
                               "that torch.func can differentiate)")
        return torch.ops.safesvd._svd_fn_second_order(H, G, U, S, Vh, fS, dfS, d2fS, df0, *ctx.options)

    @staticmethod
    def backward(ctx, hA, hf):
        if hf is not None:
            raise NotImplementedError(_MIXED_SECOND_ORDER.format(name="safesvd.svd_fn"))
        if hA is None:
            return (None,) * 11
        _no_third_order("safesvd.svd_fn", hA, *ctx.saved_tensors)
        G, U, S, Vh, fS, dfS, d2fS, df0 = ctx.saved_tensors
        gG = torch.ops.safesvd._svd_fn_backward(hA, U, S, Vh, fS, dfS, *ctx.options)[0]
        gA, gfS, gdfS = SafesvdSvdFnBackward._second(ctx, hA)
        return gG, gA, None, None, None, gfS, gdfS, None, None, None, None

    @staticmethod
    def jvp(ctx, tG, tA, *_):
        if ctx.f_has_parameters:
            raise NotImplementedError(_MIXED_SECOND_ORDER.format(name="safesvd.svd_fn"))
        G, U, S, Vh, fS, dfS, d2fS, df0 = ctx.saved_tensors
        d = None
        if tG is not None:
            d = torch.ops.safesvd._svd_fn_backward(tG, U, S, Vh, fS, dfS, *ctx.options)[0]
        if tA is not None:  # the Hessian is symmetric: its jvp is the second-order vjp
            s = SafesvdSvdFnBackward._second(ctx, tA)[0]
            d = s if d is None else d + s
        # f(S) has no parameters (checked above): the tangent of its cotangent is never used.
        return d, torch.zeros_like(ctx.saved_tensors[2])


def eigh_fn_backward(G, A, L, Q, fL, dfL, d2fL, rtol, atol):
    """(gA, gf) of eigh_fn (see svd_fn_backward)."""
    if _differentiable_backward(G, A):
        return SafesvdEighFnBackward.apply(G, A, L, Q, fL, dfL, d2fL, rtol, atol)
    return torch.ops.safesvd._eigh_fn_backward(G, L, Q, fL, dfL, rtol, atol)


class SafesvdEighFn(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(A, L, Q, fL, dfL, d2fL, rtol, atol):
        return _below_autograd(torch.ops.safesvd.eigh_fn.default, A, L, Q, fL, dfL, d2fL, rtol, atol)

    @staticmethod
    def setup_context(ctx, inputs, output):
        A, L, Q, fL, dfL, d2fL, rtol, atol = inputs
        ctx.options = (rtol, atol)
        ctx.save_for_backward(A, L, Q, fL, dfL, d2fL)
        ctx.save_for_forward(L, Q, fL, dfL)

    @staticmethod
    def backward(ctx, G):
        gA, gf = eigh_fn_backward(G, *ctx.saved_tensors, *ctx.options)
        return gA, None, None, gf, None, None, None, None

    @staticmethod
    def jvp(ctx, tA, tL, tQ, tfL, *_):
        L, Q, fL, dfL = ctx.saved_tensors
        rtol, atol = ctx.options
        dY = (torch.ops.safesvd._eigh_fn_backward(tA, L, Q, fL, dfL, rtol, atol)[0] if tA is not None
              else torch.zeros_like(Q))
        if tfL is not None:
            dY = dY + (Q * tfL.unsqueeze(-2).to(Q.dtype)) @ Q.mH
        return dY


class SafesvdEighFnBackward(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(G, A, L, Q, fL, dfL, d2fL, rtol, atol):
        return _below_autograd(torch.ops.safesvd._eigh_fn_backward.default, G, L, Q, fL, dfL, rtol, atol)

    @staticmethod
    def setup_context(ctx, inputs, output):
        G, A, L, Q, fL, dfL, d2fL, rtol, atol = inputs
        ctx.options = (rtol, atol)
        ctx.f_has_parameters = fL.requires_grad or dfL.requires_grad
        ctx.save_for_backward(G, L, Q, fL, dfL, d2fL)
        ctx.save_for_forward(G, L, Q, fL, dfL, d2fL)
        ctx.set_materialize_grads(False)

    @staticmethod
    def _second(ctx, H):
        G, L, Q, fL, dfL, d2fL = ctx.saved_tensors
        if d2fL is None:
            raise RuntimeError("safesvd.eigh_fn: the second derivative needs f'' (pass d2f=, or use an f' "
                               "that torch.func can differentiate)")
        return torch.ops.safesvd._eigh_fn_second_order(H, G, L, Q, fL, dfL, d2fL, *ctx.options)

    @staticmethod
    def backward(ctx, hA, hf):
        if hf is not None:
            raise NotImplementedError(_MIXED_SECOND_ORDER.format(name="safesvd.eigh_fn"))
        if hA is None:
            return (None,) * 9
        _no_third_order("safesvd.eigh_fn", hA, *ctx.saved_tensors)
        G, L, Q, fL, dfL, d2fL = ctx.saved_tensors
        gG = torch.ops.safesvd._eigh_fn_backward(hA, L, Q, fL, dfL, *ctx.options)[0]
        gA, gfL, gdfL = SafesvdEighFnBackward._second(ctx, hA)
        return gG, gA, None, None, gfL, gdfL, None, None, None

    @staticmethod
    def jvp(ctx, tG, tA, *_):
        if ctx.f_has_parameters:
            raise NotImplementedError(_MIXED_SECOND_ORDER.format(name="safesvd.eigh_fn"))
        G, L, Q, fL, dfL, d2fL = ctx.saved_tensors
        d = None
        if tG is not None:
            d = torch.ops.safesvd._eigh_fn_backward(tG, L, Q, fL, dfL, *ctx.options)[0]
        if tA is not None:
            s = SafesvdEighFnBackward._second(ctx, tA)[0]
            d = s if d is None else d + s
        return d, torch.zeros_like(ctx.saved_tensors[1])


# ------------------------------------------------------------- registration


def _autograd_kernel(function, op, node=None):
    """The Autograd kernel of `op`: its Function when gradients or forward-mode tangents
    are involved, else straight to the kernel below autograd.

    `node` (svd, eigh, svd_fn, eigh_fn): the operator that runs `op` in a C++ autograd node
    whose backward calls the same Python backward as the Function (svd_backward, ...,
    through the `_*_backward_hook` operators), taken where _takes_node says: there the
    Function's extras (jvp, vmap rule, custom_function_call) have nothing to do, and its
    fixed cost was most of a small call (docs/architecture.md, "The C++ nodes of svd, eigh,
    svd_fn and eigh_fn").

    The dispatcher drops trailing arguments equal to their defaults: the kernel puts them
    back from the schema's defaults, read once here. With every argument present,
    ``Function.apply``'s own binding of defaults (``inspect.signature`` on every call)
    has nothing left to do, so outside torch.func transforms the kernel goes on as
    ``apply`` does after it: dead functorch wrappers unwrapped, then the C++ ``apply``.
    Inside a transform it calls ``Function.apply`` itself. Together with the schema
    read once, this took a quarter of the fixed cost of a call: forward + backward of
    8 matrices 231-289 -> 166-168 us (svd 8x3), 203-205 -> 139-141 us (eigh 3x3)."""
    arguments = op._schema.arguments
    if any(a.kwarg_only for a in arguments):
        raise AssertionError(f"{op}: keyword-only arguments are not passed on by this kernel")
    defaults = tuple(a.default_value for a in arguments)
    base_apply = super(torch.autograd.Function, function).apply  # what Function.apply ends in
    from torch._functorch.utils import unwrap_dead_wrappers

    def kernel(keyset, *args):
        if (torch.is_grad_enabled() and _C._any_requires_grad(*args)) or _fwAD._current_level >= 0:
            args = args + defaults[len(args):]
            if _C._are_functorch_transforms_active():
                return function.apply(*args)
            args = unwrap_dead_wrappers(args)
            if node is not None and _takes_node(args):
                return node(*args)
            return base_apply(*args)
        with _C._AutoDispatchBelowAutograd():
            return op.redispatch(keyset & _C._after_autograd_keyset, *args)
    return kernel


def _batch_leading_vmap(op):
    """Every safesvd op takes leading batch dimensions: move the mapped dim to the front."""
    def rule(info, in_dims, *args):
        moved = []
        for arg, dim in zip(args, in_dims):
            if isinstance(arg, torch.Tensor):
                arg = arg.movedim(dim, 0) if dim is not None else arg.expand(info.batch_size, *arg.shape)
            moved.append(arg)
        out = op(*moved)
        return out, (tuple(0 for _ in out) if isinstance(out, tuple) else 0)
    return rule


_FAKES = {
    "svd": lambda A, full_matrices=False, guard="pinv", rtol=None, atol=None, driver=None: torch.linalg.svd(
        A, full_matrices=full_matrices),
    "eigh": lambda A, UPLO="L", guard="pinv", rtol=None, atol=None, driver=None: torch.linalg.eigh(A, UPLO=UPLO),
    "_svd_backward": lambda gU, gS, gVh, U, S, Vh, guard, rtol, atol: (
        U.new_empty((*U.shape[:-1], Vh.shape[-1])), S.new_empty((*S.shape[:-1], 3))),
    "_eigh_backward": lambda gL, gQ, L, Q, guard, rtol, atol: (Q.new_empty(Q.shape), L.new_empty((*L.shape[:-1], 3))),
    "svd_fn": lambda A, U, S, Vh, fS, dfS, d2fS=None, df0=None, rtol=None, atol=None: U.new_empty(
        (*U.shape[:-1], Vh.shape[-1])),
    "eigh_fn": lambda A, L, Q, fL, dfL, d2fL=None, rtol=None, atol=None: Q.new_empty(Q.shape),
    "_svd_fn_backward": lambda G, U, S, Vh, fS, dfS, rtol, atol: (G.new_empty(G.shape), S.new_empty(S.shape)),
    "_eigh_fn_backward": lambda G, L, Q, fL, dfL, rtol, atol: (G.new_empty(G.shape), L.new_empty(L.shape)),
    "_svd_fn_second_order": lambda H, G, U, S, Vh, fS, dfS, d2fS, df0, rtol, atol: (
        G.new_empty(G.shape), S.new_empty(S.shape), S.new_empty(S.shape)),
    "_eigh_fn_second_order": lambda H, G, L, Q, fL, dfL, d2fL, rtol, atol: (
        G.new_empty(G.shape), L.new_empty(L.shape), L.new_empty(L.shape)),
    "_guard_params": lambda spectrum, cotangent_scale, dims, guard, rtol, atol, divided_difference=False: (
        spectrum.new_empty((*spectrum.shape[:-1], 6))),
    "_merged_with_zero": lambda spectrum, rtol=None, atol=None, index=None: spectrum.new_empty(
        spectrum.shape[:-1], dtype=torch.bool),
    "_procrustes_flip": lambda U, S, Vh: (S.new_empty(S.shape), S.new_empty(S.shape[:-1], dtype=torch.bool)),
    "_guard_coefficients": lambda d, xabs, params, guard: (d.new_empty(d.shape), d.new_empty(d.shape),
                                                           d.new_empty(d.shape)),
    "_spectral_function": lambda L, name, check=True: (L.new_empty(L.shape), L.new_empty(L.shape),
                                                       L.new_empty(L.shape)),
    "_eigh_spectral": lambda A, UPLO, name, check=True: _eigh_spectral_fake(A, UPLO),
    "_svd_polar": lambda A, special=False, product=True: _svd_polar_fake(A, special, product),
}


def register_autograd(lib, name: str, function, node=None) -> None:
    """Make `function` (an autograd.Function over the op) the Autograd kernel of safesvd::<name>."""
    lib.impl(name, _autograd_kernel(function, getattr(torch.ops.safesvd, name).default, node), "Autograd",
             with_keyset=True)


def _eigh_spectral_fake(A, UPLO):
    L, Q = _FAKES["eigh"](A, UPLO)
    return L, Q, L.new_empty(L.shape), L.new_empty(L.shape), L.new_empty(L.shape)


def _svd_polar_fake(A, special=False, product=True):
    U, S, Vh = _FAKES["svd"](A)
    Q = U.new_empty((*A.shape[:-2], U.shape[-2], Vh.shape[-1])) if product else U.new_empty((0,))
    return U, S, Vh, S.new_empty(S.shape), S.new_empty(S.shape), S.new_empty(S.shape[:-1], dtype=torch.bool), Q


def register_vmap(name: str) -> None:
    torch.library.register_vmap(f"safesvd::{name}", _batch_leading_vmap(getattr(torch.ops.safesvd, name).default))


def register() -> None:
    """Autograd, fake and vmap kernels of this module's operators (once the library is loaded)."""
    global _registered
    if _registered:
        return
    lib = torch.library.Library("safesvd", "IMPL")  # noqa: TOR901 (kept alive below)
    functions = {
        "svd": SafesvdSvd,
        "eigh": SafesvdEigh,
        "svd_fn": SafesvdSvdFn,
        "eigh_fn": SafesvdEighFn,
    }
    for name, fake in _FAKES.items():
        torch.library.register_fake(f"safesvd::{name}")(fake)
    nodes = {"svd": torch.ops.safesvd._svd_autograd.default, "eigh": torch.ops.safesvd._eigh_autograd.default,
             "svd_fn": torch.ops.safesvd._svd_fn_autograd.default,
             "eigh_fn": torch.ops.safesvd._eigh_fn_autograd.default}
    for name, function in functions.items():
        _NODES[function] = _node_entry(nodes[name], getattr(torch.ops.safesvd, name).default)
        register_autograd(lib, name, function, nodes[name])
    # The backward of the C++ nodes: the Functions' own (csrc/aten/autograd.cpp).
    lib.impl("_svd_backward_hook", svd_backward, "CompositeImplicitAutograd")
    lib.impl("_eigh_backward_hook", eigh_backward, "CompositeImplicitAutograd")
    lib.impl("_svd_fn_backward_hook", svd_fn_backward, "CompositeImplicitAutograd")
    lib.impl("_eigh_fn_backward_hook", eigh_fn_backward, "CompositeImplicitAutograd")
    lib.impl("_gauge_check_hook", _gauge.check, "CompositeImplicitAutograd")
    for name in (*functions, "_svd_backward", "_eigh_backward", "_svd_backward_composite",
                 "_eigh_backward_composite", "_svd_fn_backward", "_eigh_fn_backward",
                 "_svd_fn_second_order", "_eigh_fn_second_order", "_guard_params", "_guard_coefficients",
                 "_merged_with_zero", "_spectral_function", "_eigh_spectral", "_svd_polar", "_procrustes_flip"):
        register_vmap(name)
    for name in _PUBLIC_OPERATORS:
        setattr(OPS, name, getattr(torch.ops.safesvd, name).default)
    register._lib = lib
    _registered = True
    _gauge.set_cpp_backward(True)

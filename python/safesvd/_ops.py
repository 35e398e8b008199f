"""Autograd and fake (meta) registrations for the torch.ops.safesvd operators.

Called once, after the C++ library is loaded (see _loader.py). The backward
uses the fused private op ``_svd_backward`` / ``_eigh_backward``; when autograd
records the backward itself (``create_graph=True``) it uses the composite form
of the same math, which is differentiable.
"""

from __future__ import annotations

import torch

from . import _gauge

_registered = False


def _needs_double_backward(*tensors) -> bool:
    return torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in tensors
    )


# ---------------------------------------------------------------------------- svd


def _svd_fake(A, full_matrices=False, guard="pinv", rtol=None, atol=None):
    return torch.linalg.svd(A, full_matrices=full_matrices)


def _svd_backward_fake(gU, gS, gVh, U, S, Vh, guard, rtol, atol):
    shape = (*U.shape[:-1], Vh.shape[-1])
    return U.new_empty(shape), S.new_empty((*S.shape[:-1], 3))


def _svd_setup_context(ctx, inputs, output):
    _, _, guard, rtol, atol = inputs
    ctx.save_for_backward(*output)
    ctx.options = (guard, rtol, atol)
    ctx.set_materialize_grads(False)


def _svd_backward(ctx, gU, gS, gVh):
    if gU is None and gS is None and gVh is None:  # e.g. reached only through svd_fn
        return None, None, None, None, None
    U, S, Vh = ctx.saved_tensors
    guard, rtol, atol = ctx.options
    if _needs_double_backward(gU, gS, gVh, U, S, Vh):
        op = torch.ops.safesvd._svd_backward_composite
    else:
        op = torch.ops.safesvd._svd_backward
    gA, gauge = op(gU, gS, gVh, U, S, Vh, guard, rtol, atol)
    _gauge.check(gauge, S, "safesvd.svd backward", "S", rtol)
    return gA, None, None, None, None


# --------------------------------------------------------------------------- eigh


def _eigh_fake(A, UPLO="L", guard="pinv", rtol=None, atol=None):
    return torch.linalg.eigh(A, UPLO=UPLO)


def _eigh_backward_fake(gL, gQ, L, Q, guard, rtol, atol):
    return Q.new_empty(Q.shape), L.new_empty((*L.shape[:-1], 3))


def _eigh_setup_context(ctx, inputs, output):
    _, _, guard, rtol, atol = inputs
    ctx.save_for_backward(*output)
    ctx.options = (guard, rtol, atol)
    ctx.set_materialize_grads(False)


def _eigh_backward(ctx, gL, gQ):
    if gL is None and gQ is None:
        return None, None, None, None, None
    L, Q = ctx.saved_tensors
    guard, rtol, atol = ctx.options
    if _needs_double_backward(gL, gQ, L, Q):
        op = torch.ops.safesvd._eigh_backward_composite
    else:
        op = torch.ops.safesvd._eigh_backward
    gA, gauge = op(gL, gQ, L, Q, guard, rtol, atol)
    _gauge.check(gauge, L, "safesvd.eigh backward", "L", rtol)
    return gA, None, None, None, None


# ------------------------------------------------------------ matrix functions


def _svd_fn_fake(A, U, S, Vh, fS, dfS, rtol=None, atol=None):
    return U.new_empty((*U.shape[:-1], Vh.shape[-1]))


def _svd_fn_backward_fake(G, U, S, Vh, fS, dfS, rtol, atol):
    return G.new_empty(G.shape)


def _svd_fn_setup_context(ctx, inputs, output):
    _, U, S, Vh, fS, dfS, rtol, atol = inputs
    ctx.save_for_backward(U, S, Vh, fS, dfS)
    ctx.options = (rtol, atol)


def _svd_fn_backward(ctx, G):
    U, S, Vh, fS, dfS = ctx.saved_tensors
    rtol, atol = ctx.options
    if _needs_double_backward(G, U, S, Vh, fS, dfS):
        gA = torch.ops.safesvd._svd_fn_backward_composite(G, U, S, Vh, fS, dfS, rtol, atol)
    else:
        gA = torch.ops.safesvd._svd_fn_backward(G, U, S, Vh, fS, dfS, rtol, atol)
    # U, S, Vh, f(S), df(S) are functions of A: the whole gradient goes to A.
    return gA, None, None, None, None, None, None, None


def _eigh_fn_fake(A, L, Q, fL, dfL, rtol=None, atol=None):
    return Q.new_empty(Q.shape)


def _eigh_fn_backward_fake(G, L, Q, fL, dfL, rtol, atol):
    return G.new_empty(G.shape)


def _eigh_fn_setup_context(ctx, inputs, output):
    _, L, Q, fL, dfL, rtol, atol = inputs
    ctx.save_for_backward(L, Q, fL, dfL)
    ctx.options = (rtol, atol)


def _eigh_fn_backward(ctx, G):
    L, Q, fL, dfL = ctx.saved_tensors
    rtol, atol = ctx.options
    if _needs_double_backward(G, L, Q, fL, dfL):
        gA = torch.ops.safesvd._eigh_fn_backward_composite(G, L, Q, fL, dfL, rtol, atol)
    else:
        gA = torch.ops.safesvd._eigh_fn_backward(G, L, Q, fL, dfL, rtol, atol)
    return gA, None, None, None, None, None, None


# ---------------------------------------------------------------- torch.func
#
# The autograd.Function that register_autograd generates keeps ctx in forward,
# which torch.func transforms reject. While a transform is active, the public
# functions go through an equivalent Function with setup_context (same setup
# and backward functions as above), and every op has a vmap rule: all of them
# take leading batch dimensions, so vmap moves the mapped dim to the front.

_FUNCTIONS: dict = {}


def _make_function(name, op, setup_context, backward):
    def forward(*args):
        return op(*args)

    return type(f"SafeSVD_{name}", (torch.autograd.Function,), {
        "generate_vmap_rule": True,
        "forward": staticmethod(forward),
        "setup_context": staticmethod(setup_context),
        "backward": staticmethod(backward),
    })


def call(name: str, *args):
    """Run torch.ops.safesvd.<name>, through its torch.func-compatible Function
    while a transform (grad, vmap, jacrev, ...) is active."""
    if torch._C._are_functorch_transforms_active():
        return _FUNCTIONS[name].apply(*args)
    return getattr(torch.ops.safesvd, name)(*args)


def _batch_leading_vmap(op):
    def rule(info, in_dims, *args):
        moved = []
        for arg, dim in zip(args, in_dims):
            if isinstance(arg, torch.Tensor):
                arg = arg.movedim(dim, 0) if dim is not None else arg.expand(info.batch_size, *arg.shape)
            moved.append(arg)
        out = op(*moved)
        return out, (tuple(0 for _ in out) if isinstance(out, tuple) else 0)
    return rule


def register() -> None:
    global _registered
    if _registered:
        return
    lib = torch.library
    lib.register_fake("safesvd::svd")(_svd_fake)
    lib.register_fake("safesvd::_svd_backward")(_svd_backward_fake)
    lib.register_fake("safesvd::eigh")(_eigh_fake)
    lib.register_fake("safesvd::_eigh_backward")(_eigh_backward_fake)
    lib.register_fake("safesvd::svd_fn")(_svd_fn_fake)
    lib.register_fake("safesvd::_svd_fn_backward")(_svd_fn_backward_fake)
    lib.register_fake("safesvd::eigh_fn")(_eigh_fn_fake)
    lib.register_fake("safesvd::_eigh_fn_backward")(_eigh_fn_backward_fake)
    lib.register_autograd("safesvd::svd", _svd_backward, setup_context=_svd_setup_context)
    lib.register_autograd("safesvd::svd_fn", _svd_fn_backward, setup_context=_svd_fn_setup_context)
    lib.register_autograd("safesvd::eigh_fn", _eigh_fn_backward, setup_context=_eigh_fn_setup_context)
    from . import _topk

    _topk.register()
    for name in ("svd", "eigh", "svd_fn", "eigh_fn", "svd_topk", "_svd_backward", "_eigh_backward",
                 "_svd_fn_backward", "_eigh_fn_backward", "_svd_backward_composite", "_eigh_backward_composite",
                 "_svd_fn_backward_composite", "_eigh_fn_backward_composite"):
        lib.register_vmap(f"safesvd::{name}", _batch_leading_vmap(getattr(torch.ops.safesvd, name).default))
    _FUNCTIONS.update(
        svd=_make_function("svd", torch.ops.safesvd.svd.default, _svd_setup_context, _svd_backward),
        eigh=_make_function("eigh", torch.ops.safesvd.eigh.default, _eigh_setup_context, _eigh_backward),
        svd_fn=_make_function("svd_fn", torch.ops.safesvd.svd_fn.default, _svd_fn_setup_context, _svd_fn_backward),
        eigh_fn=_make_function("eigh_fn", torch.ops.safesvd.eigh_fn.default, _eigh_fn_setup_context,
                               _eigh_fn_backward),
        svd_topk=_make_function("svd_topk", torch.ops.safesvd.svd_topk.default, _topk._setup_context,
                                _topk._backward),
    )
    lib.register_autograd("safesvd::eigh", _eigh_backward, setup_context=_eigh_setup_context)
    _registered = True

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
    L, Q = ctx.saved_tensors
    guard, rtol, atol = ctx.options
    if _needs_double_backward(gL, gQ, L, Q):
        op = torch.ops.safesvd._eigh_backward_composite
    else:
        op = torch.ops.safesvd._eigh_backward
    gA, gauge = op(gL, gQ, L, Q, guard, rtol, atol)
    _gauge.check(gauge, L, "safesvd.eigh backward", "L", rtol)
    return gA, None, None, None, None


def register() -> None:
    global _registered
    if _registered:
        return
    lib = torch.library
    lib.register_fake("safesvd::svd")(_svd_fake)
    lib.register_fake("safesvd::_svd_backward")(_svd_backward_fake)
    lib.register_fake("safesvd::eigh")(_eigh_fake)
    lib.register_fake("safesvd::_eigh_backward")(_eigh_backward_fake)
    lib.register_autograd("safesvd::svd", _svd_backward, setup_context=_svd_setup_context)
    lib.register_autograd("safesvd::eigh", _eigh_backward, setup_context=_eigh_setup_context)
    _registered = True

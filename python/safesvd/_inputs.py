"""Input handling shared by the public functions."""

from __future__ import annotations

import functools

import torch

_HALF = (torch.float16, torch.bfloat16)


def promote(A, name: str) -> torch.Tensor:
    """The tensor a public function computes with.

    float16 / bfloat16 input is computed in float32 and the results are float32, as
    torch's autocast does for the linear-algebra ops it runs in float32 (torch.linalg
    itself refuses half input). The gradient flows back to the half tensor through the
    cast. Anything that is not a tensor is a TypeError.
    """
    if not isinstance(A, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(A).__name__}")
    return A.float() if A.dtype in _HALF else A


def outside_autocast(fn):
    """Run a public function with autocast off for its input's device.

    The operators have no autocast kernel, so inside ``torch.autocast`` they already
    compute in float32 (half input is promoted above). The functions that combine
    results in Python (``polar``'s ``U @ Vh``, ``procrustes``' determinant, the top-k
    solves) would otherwise run those products in the autocast dtype, return bfloat16 /
    float16, or fail (``det`` has no bfloat16 kernel). Outside autocast this costs one
    check."""

    @functools.wraps(fn)
    def wrapper(A, *args, **kwargs):
        if isinstance(A, torch.Tensor) and torch.is_autocast_enabled(A.device.type):
            with torch.autocast(A.device.type, enabled=False):
                return fn(A, *args, **kwargs)
        return fn(A, *args, **kwargs)

    return wrapper

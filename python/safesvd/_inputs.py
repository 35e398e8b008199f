"""Input handling shared by the public functions."""

from __future__ import annotations

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

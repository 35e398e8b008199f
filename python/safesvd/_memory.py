"""The CPU output cache (csrc/aten/output_cache.cpp, docs/architecture.md "CPU output memory")."""

from __future__ import annotations

import operator

import torch

from . import _library


def cpu_output_cache(limit_bytes: int | None = None, clear: bool = False) -> dict[str, int]:
    """Read, limit or empty the memory safesvd keeps for its CPU outputs.

    The CPU operators take the memory of their outputs (and large temporaries) of 64 KiB
    or more from a cache: a block freed by one call serves the next request of the same
    size with its pages already mapped, instead of going back to the C library and
    faulting in again (for large batches of small matrices the faults can cost as much as
    the computation). Idle blocks are kept up to a limit, the oldest dropped first;
    blocks held by live tensors do not count. The limit starts at the environment
    variable ``SAFESVD_CPU_CACHE_MB`` (MiB; default 256; 0 turns the cache off). Each
    process keeps its own (every DataLoader worker or distributed rank that runs safesvd
    on the CPU); the memory is not returned under memory pressure, only by a lower limit
    or ``clear=True``.

    Args:
        limit_bytes: when given, the new limit of idle bytes (0 empties the cache and turns
            it off until a positive limit is set).
        clear: free every idle block now.

    Returns:
        ``idle_bytes``, ``limit_bytes``, ``idle_blocks``, and the counts since the process
        started of ``reuses`` (requests served from the cache) and ``new_blocks``.
    """
    _library.require()
    if limit_bytes is not None:
        if isinstance(limit_bytes, bool):
            raise TypeError("safesvd.cpu_output_cache: limit_bytes must be an int or None, got a bool")
        try:
            limit_bytes = operator.index(limit_bytes)
        except TypeError:
            raise TypeError(f"safesvd.cpu_output_cache: limit_bytes must be an int or None, got {limit_bytes!r}") from None
        if limit_bytes < 0:
            raise ValueError(f"safesvd.cpu_output_cache: limit_bytes must be >= 0, got {limit_bytes}")
    values = torch.ops.safesvd._cpu_output_cache(limit_bytes, bool(clear))
    return dict(zip(("idle_bytes", "limit_bytes", "idle_blocks", "reuses", "new_blocks"), values))

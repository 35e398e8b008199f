"""safesvd: SVD and Hermitian eigendecomposition with gradients that stay finite.

PyTorch's ``svd``/``eigh`` backward divides by differences of singular values
(eigenvalues) and by singular values themselves, and returns NaN/Inf when two
are equal or one is zero. safesvd computes the same gradient in a split form
with guarded reciprocals (docs/math.md): it equals PyTorch's wherever that is
accurate, and is exact at degeneracies for every loss that does not depend on
the basis inside a degenerate subspace (singular values, subspace projectors,
the polar factor, norms). Losses that do depend on that basis get a finite,
minimum-norm gradient and a :class:`GaugeWarning`. Matrix functions
(:func:`svd_fn`, :func:`eigh_fn`, :func:`sqrtm`, ...) are exact at
degeneracies, to second order.

All functions take batched input ``(..., m, n)`` of dtype float32, float64,
complex64 or complex128 (float16/bfloat16 computed in float32), on CPU (and
CUDA where built). This module only hands the public names on; each lives in
its own module.
"""

from ._eigh import eigh
from ._functions import eigh_fn, invsqrtm, logm, polar, procrustes, sqrtm, svd_fn
from ._gauge import GaugeWarning, flush_gauge_warnings, gauge_mode, get_gauge_mode, set_gauge_mode
from ._loader import load
from ._memory import cpu_output_cache
from ._override import override_torch
from ._svd import svd, svdvals
from ._topk import svd_rank1, svd_topk

__version__ = "0.1.0"

__all__ = [
    "svd",
    "svdvals",
    "eigh",
    "svd_fn",
    "eigh_fn",
    "sqrtm",
    "invsqrtm",
    "logm",
    "polar",
    "procrustes",
    "svd_topk",
    "svd_rank1",
    "GaugeWarning",
    "gauge_mode",
    "set_gauge_mode",
    "get_gauge_mode",
    "flush_gauge_warnings",
    "load",
    "cpu_output_cache",
    "override_torch",
]

from . import _loader as _loader_module  # noqa: E402

_loader_module.start()

"""Test helpers: the package's own (shared with the demo), plus rel_err and find_nvcc."""

import os
import shutil

from safesvd._testing import (  # noqa: F401
    autograd_grad,
    finite_difference_grad,
    unitary,
    with_eigenvalues,
    with_singular_values,
)


def rel_err(a, b):
    # The floor keeps a gradient that is exactly 0 (rounding noise on both sides) from failing.
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-6)).item()


def find_nvcc():
    """The nvcc to compile-check the CUDA sources with, or None."""
    from torch.utils import cpp_extension

    candidates = [shutil.which("nvcc")]
    if cpp_extension.CUDA_HOME:
        candidates.append(os.path.join(cpp_extension.CUDA_HOME, "bin", "nvcc"))
    candidates.append("/usr/local/cuda/bin/nvcc")
    return next((c for c in candidates if c and os.path.exists(c)), None)

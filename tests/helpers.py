"""Test helpers: the package's own (shared with the demo), plus rel_err, find_nvcc and nvcc_compile."""

import os
import shutil
import subprocess
import sysconfig
import tempfile
from concurrent.futures import Future
from pathlib import Path

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


_NVCC_JOBS: dict = {}


def nvcc_compile(source, nvcc) -> Future:
    """Start (once per source) the nvcc compile check of csrc/cuda/<source> in the
    background; the Future's result is the CompletedProcess-like outcome. Against the
    installed torch's headers, sm_90 with `-Xptxas -v` (register-spill report)."""
    if source in _NVCC_JOBS:
        return _NVCC_JOBS[source]
    import threading

    import torch
    from torch.utils import cpp_extension

    root = Path(__file__).resolve().parent.parent
    work = Path(tempfile.mkdtemp(prefix="safesvd-nvcc-"))
    # A CPU-only torch lacks this generated header; the CUDA build of torch has it.
    macros = work / "include" / "c10" / "cuda" / "impl" / "cuda_cmake_macros.h"
    macros.parent.mkdir(parents=True, exist_ok=True)
    macros.write_text("#define C10_CUDA_BUILD_SHARED_LIBS\n")
    includes = [str(work / "include"), *cpp_extension.include_paths(), sysconfig.get_paths()["include"]]
    abi = int(torch.compiled_with_cxx11_abi())
    cmd = [nvcc, "-c", str(root / "csrc" / "cuda" / source), "-o", str(work / "out.o"),
           "-std=c++20", "--expt-relaxed-constexpr", "-arch=sm_90", "-Xptxas", "-v", "-Xcompiler", "-fPIC",
           f"-D_GLIBCXX_USE_CXX11_ABI={abi}", *(f"-I{d}" for d in includes)]
    future: Future = Future()

    def run():
        try:
            future.set_result(subprocess.run(cmd, capture_output=True, text=True))
        except BaseException as e:  # noqa: BLE001 - reported by the test that waits
            future.set_exception(e)

    threading.Thread(target=run, daemon=True).start()
    _NVCC_JOBS[source] = future
    return future

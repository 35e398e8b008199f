"""Test helpers: the package's own (shared with the demo), plus rel_err, find_nvcc, nvcc_compile
and build_emulated."""

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
_NVCC_POOL = None


def _run_in(work: Path, cmd: list) -> subprocess.CompletedProcess:
    """Run cmd, then remove its scratch folder (the object file is not kept)."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def nvcc_compile(source, nvcc) -> Future:
    """Start (once per source) the nvcc compile check of a CUDA source of csrc/manifest.txt
    (root-relative path) in the background, as many at a time as there are cores; the
    Future's result is the CompletedProcess. Against the installed torch's headers, sm_90
    with `-Xptxas -v` (register-spill report), with the macros of every CUDA group."""
    global _NVCC_POOL
    if source in _NVCC_JOBS:
        return _NVCC_JOBS[source]
    from concurrent.futures import ThreadPoolExecutor

    import torch
    from torch.utils import cpp_extension

    from safesvd import _manifest

    root = Path(__file__).resolve().parent.parent
    manifest = _manifest.read(root)
    work = Path(tempfile.mkdtemp(prefix="safesvd-nvcc-"))
    # A CPU-only torch lacks this generated header; the CUDA build of torch has it.
    macros = work / "include" / "c10" / "cuda" / "impl" / "cuda_cmake_macros.h"
    macros.parent.mkdir(parents=True, exist_ok=True)
    macros.write_text("#define C10_CUDA_BUILD_SHARED_LIBS\n")
    includes = [str(work / "include"), *cpp_extension.include_paths(), sysconfig.get_paths()["include"]]
    abi = int(torch.compiled_with_cxx11_abi())
    defines = [f"-D{m}" for m in manifest.macros(["cuda", "cuda_jacobi"])]
    cmd = [nvcc, "-c", str(root / source), "-o", str(work / "out.o"), "-std=c++20", *manifest.flags["nvcc"],
           "-arch=sm_90", "-Xptxas", "-v", "-Xcompiler", "-fPIC", f"-D_GLIBCXX_USE_CXX11_ABI={abi}", *defines,
           *(f"-I{d}" for d in includes)]
    if _NVCC_POOL is None:
        _NVCC_POOL = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="nvcc")
    future = _NVCC_POOL.submit(_run_in, work, cmd)
    _NVCC_JOBS[source] = future
    return future


def build_emulated():
    """tests/emulation/emulated_cuda.cpp and every CUDA kernel unit of csrc/manifest.txt
    (groups cuda and cuda_jacobi), compiled by the host compiler: a .cpp file per unit
    that includes it, built in parallel by ninja."""
    from torch.utils import cpp_extension

    from safesvd import _manifest

    import hashlib

    root = Path(__file__).resolve().parent.parent
    manifest = _manifest.read(root)
    groups = ["cuda", "cuda_jacobi"]
    checkout = hashlib.sha1(str(root).encode()).hexdigest()[:12]
    wrappers = Path(tempfile.gettempdir()) / f"safesvd-emulated-units-{os.getuid()}-{checkout}"
    wrappers.mkdir(exist_ok=True)
    sources = [str(root / "tests" / "emulation" / "emulated_cuda.cpp")]
    for unit in manifest.sources:
        if unit.group in groups and unit.path.endswith(".cu"):
            wrapper = wrappers / f"emu_{Path(unit.path).stem}.cpp"
            text = f'#include "{root / unit.path}"\n'
            if not wrapper.exists() or wrapper.read_text() != text:  # keep ninja's timestamps
                wrapper.write_text(text)
            sources.append(str(wrapper))
    defines = [f"-D{m}" for m in manifest.macros(groups)]
    return cpp_extension.load(
        name="safesvd_emulated_cuda",
        sources=sources,
        extra_include_paths=[str(root / "csrc")],
        extra_cflags=["-O1", "-std=c++20", *defines],
        extra_ldflags=["-ldl"],
        verbose=False,
    )

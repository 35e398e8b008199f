"""Finite-difference and matrix-construction helpers shared by the demo and the tests,
and the library's test hooks (exported C symbols, csrc/testing.h)."""

from __future__ import annotations

import contextlib
import ctypes
import functools

import torch

from . import _library


@functools.lru_cache(maxsize=None)
def _hooks(path: str) -> ctypes.CDLL:
    lib = ctypes.CDLL(path)
    lib.safesvd_testing_install_cpu_kernels.argtypes = [ctypes.c_void_p]
    lib.safesvd_testing_install_cpu_kernels.restype = ctypes.c_int
    lib.safesvd_testing_cpu_soa_mode.argtypes = [ctypes.c_int]
    lib.safesvd_testing_cpu_soa_mode.restype = ctypes.c_int
    lib.safesvd_testing_cpu_fused_rectangular.argtypes = [ctypes.c_int]
    lib.safesvd_testing_cpu_fused_rectangular.restype = ctypes.c_int
    lib.safesvd_testing_cpu_small_bmm.argtypes = [ctypes.c_int]
    lib.safesvd_testing_cpu_small_bmm.restype = ctypes.c_int
    lib.safesvd_testing_cpu_direct_lapack.argtypes = [ctypes.c_int]
    lib.safesvd_testing_cpu_direct_lapack.restype = ctypes.c_int
    lib.safesvd_testing_cpu_cache_poison.argtypes = [ctypes.c_int]
    lib.safesvd_testing_cpu_cache_poison.restype = ctypes.c_int
    lib.safesvd_testing_gauge_reads_block.argtypes = [ctypes.c_int]
    lib.safesvd_testing_gauge_reads_block.restype = ctypes.c_int
    ll = ctypes.c_longlong
    lib.safesvd_testing_max_abs.argtypes = [ctypes.c_void_p, ctypes.c_int, ll, ll, ll, ll, ctypes.c_int, ctypes.c_void_p]
    lib.safesvd_testing_max_abs.restype = ctypes.c_int
    return lib


def hooks() -> ctypes.CDLL:
    """The loaded operator library's test hooks (csrc/testing.h)."""
    _library.require()
    return _hooks(_library.path())


@contextlib.contextmanager
def cpu_kernels(table_address: int):
    """Run the CPU operators with the DeviceKernels table at `table_address` (a test
    library's, e.g. the CUDA kernels through the emulation) inside the block."""
    hooks().safesvd_testing_install_cpu_kernels(ctypes.c_void_p(table_address))
    try:
        yield
    finally:
        hooks().safesvd_testing_install_cpu_kernels(None)


def _set_mode(name: str, mode: int, allowed: str = "-1, 0 or 1") -> int:
    """Call the mode hook safesvd_testing_<name> (csrc/testing.h): the previous mode, or
    ValueError for a mode the hook refuses (it answers -2)."""
    previous = getattr(hooks(), f"safesvd_testing_{name}")(mode)
    if previous == -2:
        raise ValueError(f"{name}: mode must be {allowed}, got {mode}")
    return previous


def cpu_soa_mode(mode: int = -1) -> int:
    """Set the CPU's SoA backward mode (1 on, 0 off, 2 per-matrix kernels over its range;
    -1 reads); returns the previous mode (docs/soa_backward.md)."""
    return _set_mode("cpu_soa_mode", mode, "-1, 0, 1 or 2")


def cpu_soa_calls(kind: str = "backward") -> int:
    """How many calls the CPU's SoA tiles have run in this process: kind "backward" (the
    fused svd / eigh backward), "builder" (the J builders of the batched backward) or
    "gemm" (the batched backward's products that took the CPU's own kernel)."""
    which = {"backward": 0, "builder": 1, "gemm": 2}[kind]
    fn = hooks().safesvd_testing_cpu_soa_calls
    fn.restype = ctypes.c_longlong
    fn.argtypes = [ctypes.c_int]
    return int(fn(which))


@contextlib.contextmanager
def cpu_cache_poison():
    """Inside the block, every block the CPU output cache hands out (new or reused) is
    first filled with 0xff bytes (NaN in float32 / float64, -1 in int32)."""
    previous = hooks().safesvd_testing_cpu_cache_poison(1)
    try:
        yield
    finally:
        hooks().safesvd_testing_cpu_cache_poison(previous)


def cpu_fused_rectangular(mode: int = -1) -> int:
    """Set how the CPU's svd backward runs rectangular input (1 the default: the SoA
    tiles for a short side <= 8 or 16, batched BLAS otherwise; 0 batched BLAS for every shape with
    a side above 7; -1 reads); returns the previous mode."""
    return _set_mode("cpu_fused_rectangular", mode)


def cpu_small_bmm(mode: int = -1) -> int:
    """Set whether the CPU's batched backward forms its real square products up to 64 x 64
    with its own kernel (1, the default) or batched BLAS (0); -1 reads. Returns the previous
    mode."""
    return _set_mode("cpu_small_bmm", mode)


def cpu_direct_lapack(mode: int = -1) -> int:
    """Set whether the CPU calls LAPACK's gesdd / syevd directly, as torch calls them (1,
    the default), or through torch.linalg.svd / eigh (0); -1 reads. Returns the previous
    setting as it took effect: 0 where this torch does not export the routines
    (csrc/cpu/lapack.h)."""
    return _set_mode("cpu_direct_lapack", mode)


def cpu_max_abs(x: torch.Tensor, over: int) -> torch.Tensor:
    """The CPU's max |x| of one float32 / float64 matrix x (any strides, csrc/aten/common.cpp):
    over 0 the whole matrix (shape (1,)), 1 per column, 2 per row; NaN wins."""
    assert x.dim() == 2 and x.dtype in (torch.float32, torch.float64) and x.device.type == "cpu"
    r, c = x.shape
    out = torch.empty(1 if over == 0 else c if over == 1 else r, dtype=x.dtype)
    status = hooks().safesvd_testing_max_abs(ctypes.c_void_p(x.data_ptr()), int(x.dtype == torch.float64), r, c,
                                             x.stride(0), x.stride(1), over, ctypes.c_void_p(out.data_ptr()))
    if status != 0:
        raise ValueError(f"cpu_max_abs: over must be 0, 1 or 2, got {over}")
    return out


def unitary(n: int, dtype: torch.dtype) -> torch.Tensor:
    """A random n x n orthogonal (real) or unitary (complex) matrix."""
    Q, R = torch.linalg.qr(torch.randn(n, n, dtype=dtype))
    d = torch.diagonal(R)
    return Q * (d / d.abs()).unsqueeze(-2) if n else Q


def with_singular_values(s, m: int, n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """An m x n matrix with singular values s (length min(m, n)) and random singular vectors."""
    s = torch.as_tensor(s, dtype=torch.float64)
    k = min(m, n)
    if s.numel() != k:
        raise ValueError(f"need {k} singular values, got {s.numel()}")
    U, V = unitary(m, dtype), unitary(n, dtype)
    return (U[:, :k] * s.to(dtype)) @ V[:, :k].mH


def with_eigenvalues(lam, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A Hermitian matrix with eigenvalues lam and random eigenvectors."""
    lam = torch.as_tensor(lam, dtype=torch.float64)
    Q = unitary(lam.numel(), dtype)
    A = (Q * lam.to(dtype)) @ Q.mH
    return (A + A.mH) / 2


def finite_difference_grad(loss, A: torch.Tensor, h: float = 1e-6) -> torch.Tensor:
    """Central-difference gradient of a real scalar loss(A).

    For complex A it is dL/dRe + i dL/dIm, PyTorch's convention for the gradient
    of a real function of complex input.
    """
    A = A.detach()
    g = torch.zeros_like(A)
    flat, gflat = A.reshape(-1), g.reshape(-1)
    directions = [1.0] + ([1j] if A.is_complex() else [])
    with torch.no_grad():
        for idx in range(flat.numel()):
            for d in directions:
                E = torch.zeros_like(flat)
                E[idx] = d * h
                fp = float(loss((flat + E).reshape(A.shape)))
                fm = float(loss((flat - E).reshape(A.shape)))
                gflat[idx] += d * (fp - fm) / (2 * h)
    return g


def autograd_grad(loss, A: torch.Tensor) -> torch.Tensor:
    A = A.detach().clone().requires_grad_()
    (g,) = torch.autograd.grad(loss(A), A)
    return g

// Test hooks of the library (docs/architecture.md, "Testing hooks"): exported C
// symbols, not operators of the schema. Tests reach them through ctypes
// (python/safesvd/_testing.py) or the C++ linker; users have no reason to.
#pragma once

#define SAFESVD_TESTING_API __attribute__((visibility("default")))

extern "C" {

// Run the CPU operators with another device table: `table` points to a
// safesvd::DeviceKernels built by a test library (the CUDA kernels compiled through
// the CUDA emulation, tests/emulation/emulated_cuda.cpp); null restores the CPU's own.
// Returns 1 when a table was installed or restored, 0 when there was nothing to
// restore. Swaps are serialized; no operator may run during one.
SAFESVD_TESTING_API int safesvd_testing_install_cpu_kernels(const void* table);

// The CPU's SoA backward (docs/soa_backward.md): 1 on (the default), 0 off (the
// per-matrix kernels, as before it), 2 the per-matrix kernels over the SoA's range
// (tests compare 1 with 2); -1 only reads. Returns the previous mode, -2 for a bad one.
SAFESVD_TESTING_API int safesvd_testing_cpu_soa_mode(int mode);

// How many calls the CPU's SoA tiles have run since the library was loaded: which = 0
// the fused svd / eigh backward, 1 the J builders of the batched backward, 2 the batched
// backward's products on the CPU's own kernel (safesvd_testing_cpu_small_bmm); -1 for
// another `which` (tests check which shapes take them).
SAFESVD_TESTING_API long long safesvd_testing_cpu_soa_calls(int which);

// The CPU's svd backward of rectangular input (csrc/cpu/cpu.cpp, backward_fused_cpu):
// 1 the default (the SoA tiles where the short side is <= 8 or 16 and m n <= 16384, batched
// BLAS above), 0 batched BLAS for every rectangular shape with a side above 7; -1 only
// reads. Returns the previous mode, -2 for a bad one.
SAFESVD_TESTING_API int safesvd_testing_cpu_fused_rectangular(int mode);

// The CPU output cache (csrc/aten/output_cache.cpp): 1 fills every block it hands out,
// new or reused, with 0xff bytes (NaN in float32 / float64, -1 in int32) first, so that an
// entry an operator does not write shows in its result; 0 off (the default); -1 only
// reads. Returns the previous mode, -2 for a bad one.
SAFESVD_TESTING_API int safesvd_testing_cpu_cache_poison(int mode);

// The CPU's own products for the batched backward's real square matrices up to 64
// (csrc/cpu/cpu.cpp, small_bmm_cpu): 1 on (the default), 0 off (batched BLAS for every
// product); -1 only reads. Returns the previous mode, -2 for a bad one.
SAFESVD_TESTING_API int safesvd_testing_cpu_small_bmm(int mode);

// The CPU's LAPACK calls (csrc/cpu/lapack.h): 1 gesdd / syevd called directly, as torch
// calls them (the default), 0 through torch.linalg.svd / eigh; -1 only reads. Returns the
// previous setting as it took effect (0 where this torch does not export the routines),
// -2 for a bad mode.
SAFESVD_TESTING_API int safesvd_testing_cpu_direct_lapack(int mode);

// The C++ API's gauge check (csrc/api/api.cpp) treats CPU tensors as on a device whose
// reads make the host wait (as CUDA's), so that its non-blocking queue runs in a
// CPU-only test. Returns the previous setting.
SAFESVD_TESTING_API int safesvd_testing_gauge_reads_block(int on);

// The CPU's max |x| of one r x c matrix at x (strides sr, sc; float32 unless is_double)
// into out (csrc/aten/common.cpp, max_abs_matrix): over = 0 the whole matrix (out[0]),
// 1 per column (out[c]), 2 per row (out[r]); NaN wins. Returns 0, -1 for a bad `over`.
SAFESVD_TESTING_API int safesvd_testing_max_abs(const void* x, int is_double, long long r, long long c,
                                                long long sr, long long sc, int over, void* out);
}

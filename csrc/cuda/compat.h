// Portable kernel-launch macros: the same source compiles with nvcc (real
// CUDA) and with a host compiler through the CPU emulation (cuda_emulation.h).
//
//   SAFESVD_DYNAMIC_SHARED(T, name);       // in a kernel: dynamic shared memory
//   SAFESVD_LAUNCH(kernel, grid, block, shared_bytes, stream)(args...);
//   SAFESVD_LAUNCH_CHECK();                // after a launch
//   safesvd_set_max_dynamic_shared(kernel, bytes);  // before launching with > 48 KiB
//
// `kernel` may be a template-id with commas (k<float, 4>); grid and block must
// not be brace-initializers (their commas would split the macro arguments):
// write dim3(x, y).
#pragma once

#include <stdexcept>
#include <string>

#if defined(__CUDACC__)

#include <cuda_runtime.h>

#define SAFESVD_DYNAMIC_SHARED(type, name) extern __shared__ __align__(16) type name[]
#define SAFESVD_LAUNCH_IMPL_(k, grid, block, shared, stream) \
  SAFESVD_PP_UNPAREN_ k<<<grid, block, shared, stream>>>

inline void safesvd_check_cuda(cudaError_t err, const char* what, const char* file, int line) {
  if (err != cudaSuccess)
    throw std::runtime_error(std::string(what) + " failed at " + file + ":" + std::to_string(line) + ": " +
                             cudaGetErrorString(err));
}
#define SAFESVD_LAUNCH_CHECK() safesvd_check_cuda(cudaGetLastError(), "CUDA kernel launch", __FILE__, __LINE__)

template <typename Kernel>
inline void safesvd_set_max_dynamic_shared(Kernel* kernel, int bytes) {
  safesvd_check_cuda(cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel),
                                          cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
                     "cudaFuncSetAttribute(MaxDynamicSharedMemorySize)", __FILE__, __LINE__);
}

#else  // host compiler: run kernels on the CPU

#include "../emulation/cuda_emulation.h"

#define SAFESVD_DYNAMIC_SHARED(type, name) \
  type* const name = static_cast<type*>(::safesvd_emu::detail::dynamic_shared())
#define SAFESVD_LAUNCH_IMPL_(k, grid, block, shared, stream) \
  ::safesvd_emu::launch(SAFESVD_PP_UNPAREN_ k, grid, block, shared, stream, #k)
// Launch errors throw from the launch itself.
#define SAFESVD_LAUNCH_CHECK() \
  do {                         \
  } while (0)

template <typename Kernel>
inline void safesvd_set_max_dynamic_shared(Kernel* kernel, int bytes) {
  ::safesvd_emu::set_max_dynamic_shared(reinterpret_cast<const void*>(kernel), bytes);
}

#endif

// SAFESVD_LAUNCH(...) counts its arguments: the last four are grid, block,
// shared bytes and stream, everything before them is the kernel (a template-id
// may contain up to four commas).
#define SAFESVD_PP_UNPAREN_(...) __VA_ARGS__
#define SAFESVD_PP_CAT_(a, b) a##b
#define SAFESVD_PP_CAT(a, b) SAFESVD_PP_CAT_(a, b)
#define SAFESVD_PP_NARGS_(_1, _2, _3, _4, _5, _6, _7, _8, _9, n, ...) n
#define SAFESVD_PP_NARGS(...) SAFESVD_PP_NARGS_(__VA_ARGS__, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define SAFESVD_LAUNCH(...) SAFESVD_PP_CAT(SAFESVD_LAUNCH_, SAFESVD_PP_NARGS(__VA_ARGS__))(__VA_ARGS__)
#define SAFESVD_LAUNCH_5(k, g, b, s, st) SAFESVD_LAUNCH_IMPL_((k), g, b, s, st)
#define SAFESVD_LAUNCH_6(k1, k2, g, b, s, st) SAFESVD_LAUNCH_IMPL_((k1, k2), g, b, s, st)
#define SAFESVD_LAUNCH_7(k1, k2, k3, g, b, s, st) SAFESVD_LAUNCH_IMPL_((k1, k2, k3), g, b, s, st)
#define SAFESVD_LAUNCH_8(k1, k2, k3, k4, g, b, s, st) SAFESVD_LAUNCH_IMPL_((k1, k2, k3, k4), g, b, s, st)
#define SAFESVD_LAUNCH_9(k1, k2, k3, k4, k5, g, b, s, st) SAFESVD_LAUNCH_IMPL_((k1, k2, k3, k4, k5), g, b, s, st)

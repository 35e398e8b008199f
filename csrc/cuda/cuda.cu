// CUDA kernels: a Runner that launches a per-matrix Op over a batch on the
// current stream under a device guard (docs/architecture.md). Nothing
// synchronizes with the host, so the ops are safe under CUDA graph capture.
//
// Headers: c10/cuda/CUDAStream.h and CUDAGuard.h only (not ATen/cuda/CUDAContext.h,
// which needs cuSPARSE headers), so the file also compiles against a CPU-only
// torch in CI's nvcc check (tests/test_cuda.py).
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "../aten/entries.h"
#include "runner.cuh"

namespace safesvd {
namespace {

struct CudaRunner {
  template <class Op>
  static void run(const Op& op, int64_t count, const c10::Device& device, int64_t) {
    const c10::cuda::CUDAGuard device_guard(device);
    kernels::cuda::launch_ops(op, count, c10::cuda::getCurrentCUDAStream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
};

const DeviceKernelsRegistration kRegistration(c10::DeviceType::CUDA,
                                              make_device_kernels<CudaRunner, /*jacobi_per_thread=*/true>(kernels::cuda::kFusedMaxDim));

}  // namespace
}  // namespace safesvd

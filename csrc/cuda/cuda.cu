// CUDA kernels: a Runner that launches a per-matrix Op (or a band kernel of the
// backward) over a batch on the current stream under a device guard
// (docs/architecture.md, docs/cuda_backward.md). Nothing
// synchronizes with the host, so the ops are safe under CUDA graph capture.
//
// Headers: c10/cuda/CUDAStream.h and CUDAGuard.h only (not ATen/cuda/CUDAContext.h,
// which needs cuSPARSE headers), so the file also compiles against a CPU-only
// torch in CI's nvcc check (tests/test_cuda.py).
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "cuda_table.h"

namespace safesvd {
namespace {

struct CudaRunner {
  template <class Op>
  static void run(const Op& op, int64_t count, const c10::Device& device, int64_t) {
    const c10::cuda::CUDAGuard device_guard(device);
    kernels::cuda::launch_ops(op, count, c10::cuda::getCurrentCUDAStream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  template <class F>
  static void launch(const c10::Device& device, int64_t count, const F& f) {
    const c10::cuda::CUDAGuard device_guard(device);
    f(c10::cuda::getCurrentCUDAStream().stream(), count);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
};

const DeviceKernelsRegistration kRegistration(c10::DeviceType::CUDA, cuda_table::make_cuda_kernels<CudaRunner>());

}  // namespace
}  // namespace safesvd

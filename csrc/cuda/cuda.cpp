// The CUDA device: its Launch (the current stream of the tensors' device, under a
// device guard) and the registration of the table of csrc/cuda/table.h
// (docs/architecture.md, docs/cuda_backward.md). Host code only, compiled by the
// host compiler: the kernels are in the units of csrc/cuda/inst/ (csrc/manifest.txt).
// Nothing synchronizes with the host, so the ops are safe under CUDA graph capture.
//
// Headers: c10/cuda/CUDAStream.h and CUDAGuard.h only (not ATen/cuda/CUDAContext.h,
// which needs cuSPARSE headers), so the file also compiles against a CPU-only torch
// in CI's compile check (tests/test_cuda.py).
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "table.h"

namespace safesvd {
namespace {

struct CudaLaunch {
  template <class F>
  static void launch(const c10::Device& device, int64_t count, const F& f) {
    const c10::cuda::CUDAGuard device_guard(device);
    f(c10::cuda::getCurrentCUDAStream().stream(), count);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
};

const DeviceKernelsRegistration kRegistration(c10::DeviceType::CUDA, cuda_table::make_cuda_kernels<CudaLaunch>());

}  // namespace
}  // namespace safesvd

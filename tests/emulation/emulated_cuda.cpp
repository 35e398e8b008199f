// The CUDA kernels of csrc/cuda/ compiled by the host compiler through the CUDA
// emulation (csrc/emulation/): every thread of every block runs on the CPU, with
// NaN-filled shared memory and CUDA's barrier and warp semantics. The table is
// installed in place of the CPU one (safesvd::_testing_swap_cpu_kernels) so that
// the ordinary operators run these kernels on CPU tensors (tests/test_cuda_emulated.py).
#include <torch/extension.h>

#include "aten/entries.h"
#include "cuda/runner.cuh"

namespace {

struct EmulatedCudaRunner {
  template <class Op>
  static void run(const Op& op, int64_t count, const c10::Device&, int64_t) {
    safesvd::kernels::cuda::launch_ops(op, count, cudaStream_t{});
  }
};

// A deliberately broken runner (the last matrix is never computed), so a test can
// show the comparison detects a skipped matrix.
struct SkipLastRunner {
  template <class Op>
  static void run(const Op& op, int64_t count, const c10::Device&, int64_t) {
    safesvd::kernels::cuda::launch_ops(op, count > 0 ? count - 1 : 0, cudaStream_t{});
  }
};

const safesvd::DeviceKernels kEmulated =
    safesvd::make_device_kernels<EmulatedCudaRunner, true>(safesvd::kernels::cuda::kFusedMaxDim);
const safesvd::DeviceKernels kSkipLast =
    safesvd::make_device_kernels<SkipLastRunner>(safesvd::kernels::cuda::kFusedMaxDim);

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("table", [] { return reinterpret_cast<int64_t>(&kEmulated); });
  m.def("broken_table", [] { return reinterpret_cast<int64_t>(&kSkipLast); });
  m.attr("fused_max_dim") = safesvd::kernels::cuda::kFusedMaxDim;
}

// The CUDA device's table (csrc/cuda/table.h) over the CUDA emulation: the kernel
// units of csrc/cuda/inst/ are compiled by the host compiler beside this file (the
// test builds them from csrc/manifest.txt), so every thread of every block runs on
// the CPU, with NaN-filled shared memory and CUDA's barrier and warp semantics. The
// table is installed in place of the CPU one (safesvd_testing_install_cpu_kernels,
// csrc/testing.h) so that the ordinary operators run these kernels on CPU tensors
// (tests/test_cuda_emulated.py).
#include <torch/extension.h>

#include "cuda/table.h"

namespace {

struct EmulatedLaunch {
  template <class F>
  static void launch(const c10::Device&, int64_t count, const F& f) {
    f(cudaStream_t{}, count);
  }
};

// A deliberately broken launch (the last matrix is never computed), so a test can
// show the comparison detects a skipped matrix.
struct SkipLastLaunch {
  template <class F>
  static void launch(const c10::Device&, int64_t count, const F& f) {
    f(cudaStream_t{}, count > 0 ? count - 1 : 0);
  }
};

const safesvd::DeviceKernels kEmulated = safesvd::cuda_table::make_cuda_kernels<EmulatedLaunch>();
const safesvd::DeviceKernels kSkipLast = safesvd::cuda_table::make_cuda_kernels<SkipLastLaunch>();

// The forward engine's kernels called directly (the operators check for NaN/Inf on
// CPU tensors before any kernel runs; on CUDA they do not, and a non-finite matrix
// must come back as NaN outputs with info != 0 while its neighbours are untouched).
std::vector<torch::Tensor> svd_jacobi(const torch::Tensor& A, bool full) {
  const int64_t B = A.size(0), m = A.size(1), n = A.size(2), k = std::min(m, n);
  torch::Tensor U = torch::empty({B, full ? m : k, m}, A.options()).mT(), S = torch::empty({B, k}, A.options()),
                Vh = torch::empty({B, n, full ? n : k}, A.options()).mT(),
                info = torch::empty({B}, A.options().dtype(torch::kInt));
  kEmulated.svd_jacobi(A, full, U, S, Vh, info);
  return {U, S, Vh, info};
}
std::vector<torch::Tensor> eigh_jacobi(const torch::Tensor& A, bool lower) {
  const int64_t B = A.size(0), n = A.size(1);
  torch::Tensor L = torch::empty({B, n}, A.options()), Q = torch::empty({B, n, n}, A.options()).mT(),
                info = torch::empty({B}, A.options().dtype(torch::kInt));
  kEmulated.eigh_jacobi(A, lower, L, Q, info);
  return {L, Q, info};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("table", [] { return reinterpret_cast<int64_t>(&kEmulated); });
  m.def("broken_table", [] { return reinterpret_cast<int64_t>(&kSkipLast); });
  m.def("svd_jacobi", &svd_jacobi);
  m.def("eigh_jacobi", &eigh_jacobi);
  m.attr("fused_max_dim") = safesvd::kernels::cuda::kFusedMaxDim;
  m.attr("jacobi") = kEmulated.svd_jacobi != nullptr;
}

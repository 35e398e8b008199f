// CPU kernels: a Runner that calls a per-matrix Op for every matrix of a batch,
// in parallel over the batch (docs/architecture.md). Everything else is shared
// with the other devices (csrc/aten/entries.h, csrc/kernels/).
#include <ATen/Parallel.h>

#include <vector>

#include "../aten/entries.h"

namespace safesvd {
namespace {

// Largest max(m, n) handled by the fused per-matrix loop; above it batched BLAS
// does the products. Measured on 2 cores (bench/bench_backward.py): fused is
// 1.6-2.7x faster than torch at n = 6 but 0.7-0.9x at n = 8, where the batched
// path is 1.0-1.4x.
constexpr int64_t kFusedMaxDimCPU = 7;

struct CpuRunner {
  template <class Op>
  static void run(const Op& op, int64_t count, const c10::Device&, int64_t work) {
    const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, work));
    at::parallel_for(0, count, grain, [&](int64_t begin, int64_t end) {
      std::vector<typename Op::scalar_t> scratch(static_cast<size_t>(op.scratch()));
      for (int64_t b = begin; b < end; ++b) op(b, scratch.data());
    });
  }
};

const DeviceKernelsRegistration kRegistration(c10::DeviceType::CPU,
                                              make_device_kernels<CpuRunner>(kFusedMaxDimCPU));

}  // namespace
}  // namespace safesvd

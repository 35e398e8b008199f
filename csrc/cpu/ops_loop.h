// OpsLoop<Op>::run of launch.h: the CPU's parallel loop over a batch of per-matrix
// Ops. Included only by the kernel units csrc/cpu/inst/cpu_ops_*.cpp (generated from
// csrc/manifest.txt): ATen's parallel_for, not csrc/aten/.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "launch.h"

namespace safesvd {
namespace kernels {
namespace cpu {

template <class Op>
void OpsLoop<Op>::run(const Op& op, int64_t count, int64_t work) {
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, work));
  at::parallel_for(0, count, grain, [&](int64_t begin, int64_t end) {
    std::vector<typename Op::scalar_t> scratch(static_cast<size_t>(op.scratch()));
    for (int64_t b = begin; b < end; ++b) op(b, scratch.data());
  });
}

}  // namespace cpu
}  // namespace kernels
}  // namespace safesvd

// The CPU launcher of the per-matrix Ops, declared without its loop
// (docs/architecture.md, "Build"). The host glue (csrc/cpu/cpu.cpp, with ATen) calls
// only what this header declares; OpsLoop<Op>::run is defined in ops_loop.h and
// explicitly instantiated in the units csrc/cpu/inst/cpu_ops_*.cpp, which
// scripts/gen_units.py writes from csrc/manifest.txt. So editing csrc/aten/
// recompiles no kernel unit, and an Op the glue reaches without an instance is a
// link error. No ATen here.
#pragma once

#include <cstdint>

#include "../kernels/batch_ops.h"

namespace safesvd {
namespace kernels {
namespace cpu {

// op(b, scratch) for b in [0, count), in parallel over the batch (at::parallel_for),
// each thread with its own scratch; `work` estimates the flops per matrix (the grain).
template <class Op>
struct OpsLoop {
  static void run(const Op& op, int64_t count, int64_t work);
};

}  // namespace cpu
}  // namespace kernels
}  // namespace safesvd

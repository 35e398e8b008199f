// Generated from csrc/manifest.txt by scripts/gen_units.py: do not edit.
#include "../runner.cuh"

namespace safesvd::kernels::cuda {
template struct OpsKernel<JacobiEighOp<float, 2>>;
template struct OpsKernel<JacobiEighOp<float, 3>>;
template struct OpsKernel<JacobiEighOp<float, 4>>;
template struct OpsKernel<JacobiEighOp<float, 5>>;
template struct OpsKernel<JacobiEighOp<float, 6>>;
template struct OpsKernel<JacobiEighOp<float, 7>>;
template struct OpsKernel<JacobiEighOp<float, 8>>;
template struct OpsKernel<JacobiEighOp<float, 9>>;
template struct OpsKernel<JacobiEighOp<float, 10>>;
template struct OpsKernel<JacobiEighOp<float, 11>>;
template struct OpsKernel<JacobiEighOp<float, 12>>;
template struct OpsKernel<JacobiEighOp<float, 13>>;
template struct OpsKernel<JacobiEighOp<float, 14>>;
template struct OpsKernel<JacobiEighOp<float, 15>>;
template struct OpsKernel<JacobiEighOp<float, 16>>;
template struct OpsKernel<JacobiEighOp<double, 2>>;
template struct OpsKernel<JacobiEighOp<double, 3>>;
template struct OpsKernel<JacobiEighOp<double, 4>>;
template struct OpsKernel<JacobiEighOp<double, 5>>;
template struct OpsKernel<JacobiEighOp<double, 6>>;
template struct OpsKernel<JacobiEighOp<double, 7>>;
template struct OpsKernel<JacobiEighOp<double, 8>>;
template struct OpsKernel<JacobiEighOp<double, 9>>;
template struct OpsKernel<JacobiEighOp<double, 10>>;
template struct OpsKernel<JacobiEighOp<double, 11>>;
template struct OpsKernel<JacobiEighOp<double, 12>>;
template struct OpsKernel<JacobiEighOp<double, 13>>;
template struct OpsKernel<JacobiEighOp<double, 14>>;
template struct OpsKernel<JacobiEighOp<double, 15>>;
template struct OpsKernel<JacobiEighOp<double, 16>>;
}  // namespace safesvd::kernels::cuda

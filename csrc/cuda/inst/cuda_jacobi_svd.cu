// Generated from csrc/manifest.txt by scripts/gen_units.py: do not edit.
#include "../runner.cuh"

namespace safesvd::kernels::cuda {
template struct OpsKernel<JacobiSquareSvdOp<float, 2>>;
template struct OpsKernel<JacobiSquareSvdOp<float, 3>>;
template struct OpsKernel<JacobiSquareSvdOp<float, 4>>;
template struct OpsKernel<JacobiSquareSvdOp<float, 5>>;
template struct OpsKernel<JacobiSquareSvdOp<float, 6>>;
template struct OpsKernel<JacobiSquareSvdOp<float, 7>>;
template struct OpsKernel<JacobiSquareSvdOp<float, 8>>;
template struct OpsKernel<JacobiSquareSvdOp<float, 9>>;
template struct OpsKernel<JacobiSquareSvdOp<float, 10>>;
template struct OpsKernel<JacobiSquareSvdOp<float, 11>>;
template struct OpsKernel<JacobiSquareSvdOp<float, 12>>;
template struct OpsKernel<JacobiSquareSvdOp<float, 13>>;
template struct OpsKernel<JacobiSquareSvdOp<float, 14>>;
template struct OpsKernel<JacobiSquareSvdOp<float, 15>>;
template struct OpsKernel<JacobiSquareSvdOp<float, 16>>;
template struct OpsKernel<JacobiSquareSvdOp<double, 2>>;
template struct OpsKernel<JacobiSquareSvdOp<double, 3>>;
template struct OpsKernel<JacobiSquareSvdOp<double, 4>>;
template struct OpsKernel<JacobiSquareSvdOp<double, 5>>;
template struct OpsKernel<JacobiSquareSvdOp<double, 6>>;
template struct OpsKernel<JacobiSquareSvdOp<double, 7>>;
template struct OpsKernel<JacobiSquareSvdOp<double, 8>>;
template struct OpsKernel<JacobiSquareSvdOp<double, 9>>;
template struct OpsKernel<JacobiSquareSvdOp<double, 10>>;
template struct OpsKernel<JacobiSquareSvdOp<double, 11>>;
template struct OpsKernel<JacobiSquareSvdOp<double, 12>>;
template struct OpsKernel<JacobiSquareSvdOp<double, 13>>;
template struct OpsKernel<JacobiSquareSvdOp<double, 14>>;
template struct OpsKernel<JacobiSquareSvdOp<double, 15>>;
template struct OpsKernel<JacobiSquareSvdOp<double, 16>>;
}  // namespace safesvd::kernels::cuda

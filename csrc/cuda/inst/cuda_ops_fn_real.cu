// Generated from csrc/manifest.txt by scripts/gen_units.py: do not edit.
#include "../runner.cuh"

namespace safesvd::kernels::cuda {
template struct OpsKernel<SvdFnBackwardOp<float, SquareDims<1>>>;
template struct OpsKernel<SvdFnBackwardOp<float, SquareDims<2>>>;
template struct OpsKernel<SvdFnBackwardOp<float, SquareDims<3>>>;
template struct OpsKernel<SvdFnBackwardOp<float, SquareDims<4>>>;
template struct OpsKernel<SvdFnBackwardOp<float, SquareDims<5>>>;
template struct OpsKernel<SvdFnBackwardOp<float, SquareDims<6>>>;
template struct OpsKernel<SvdFnBackwardOp<float, SquareDims<7>>>;
template struct OpsKernel<SvdFnBackwardOp<float, SquareDims<8>>>;
template struct OpsKernel<SvdFnBackwardOp<double, SquareDims<1>>>;
template struct OpsKernel<SvdFnBackwardOp<double, SquareDims<2>>>;
template struct OpsKernel<SvdFnBackwardOp<double, SquareDims<3>>>;
template struct OpsKernel<SvdFnBackwardOp<double, SquareDims<4>>>;
template struct OpsKernel<SvdFnBackwardOp<double, SquareDims<5>>>;
template struct OpsKernel<SvdFnBackwardOp<double, SquareDims<6>>>;
template struct OpsKernel<SvdFnBackwardOp<double, SquareDims<7>>>;
template struct OpsKernel<SvdFnBackwardOp<double, SquareDims<8>>>;
template struct OpsKernel<SvdFnBackwardOp<float, RuntimeDims>>;
template struct OpsKernel<SvdFnBackwardOp<double, RuntimeDims>>;
template struct OpsKernel<EighFnBackwardOp<float, SquareDims<1>>>;
template struct OpsKernel<EighFnBackwardOp<float, SquareDims<2>>>;
template struct OpsKernel<EighFnBackwardOp<float, SquareDims<3>>>;
template struct OpsKernel<EighFnBackwardOp<float, SquareDims<4>>>;
template struct OpsKernel<EighFnBackwardOp<float, SquareDims<5>>>;
template struct OpsKernel<EighFnBackwardOp<float, SquareDims<6>>>;
template struct OpsKernel<EighFnBackwardOp<float, SquareDims<7>>>;
template struct OpsKernel<EighFnBackwardOp<float, SquareDims<8>>>;
template struct OpsKernel<EighFnBackwardOp<double, SquareDims<1>>>;
template struct OpsKernel<EighFnBackwardOp<double, SquareDims<2>>>;
template struct OpsKernel<EighFnBackwardOp<double, SquareDims<3>>>;
template struct OpsKernel<EighFnBackwardOp<double, SquareDims<4>>>;
template struct OpsKernel<EighFnBackwardOp<double, SquareDims<5>>>;
template struct OpsKernel<EighFnBackwardOp<double, SquareDims<6>>>;
template struct OpsKernel<EighFnBackwardOp<double, SquareDims<7>>>;
template struct OpsKernel<EighFnBackwardOp<double, SquareDims<8>>>;
}  // namespace safesvd::kernels::cuda

// Generated from csrc/manifest.txt by scripts/gen_units.py: do not edit.
#include "../ops_loop.h"

namespace safesvd::kernels::cpu {
template struct OpsLoop<SvdFnBackwardOp<float, SquareDims<1>>>;
template struct OpsLoop<SvdFnBackwardOp<float, SquareDims<2>>>;
template struct OpsLoop<SvdFnBackwardOp<float, SquareDims<3>>>;
template struct OpsLoop<SvdFnBackwardOp<float, SquareDims<4>>>;
template struct OpsLoop<SvdFnBackwardOp<float, SquareDims<5>>>;
template struct OpsLoop<SvdFnBackwardOp<float, SquareDims<6>>>;
template struct OpsLoop<SvdFnBackwardOp<float, SquareDims<7>>>;
template struct OpsLoop<SvdFnBackwardOp<float, SquareDims<8>>>;
template struct OpsLoop<SvdFnBackwardOp<double, SquareDims<1>>>;
template struct OpsLoop<SvdFnBackwardOp<double, SquareDims<2>>>;
template struct OpsLoop<SvdFnBackwardOp<double, SquareDims<3>>>;
template struct OpsLoop<SvdFnBackwardOp<double, SquareDims<4>>>;
template struct OpsLoop<SvdFnBackwardOp<double, SquareDims<5>>>;
template struct OpsLoop<SvdFnBackwardOp<double, SquareDims<6>>>;
template struct OpsLoop<SvdFnBackwardOp<double, SquareDims<7>>>;
template struct OpsLoop<SvdFnBackwardOp<double, SquareDims<8>>>;
template struct OpsLoop<SvdFnBackwardOp<float, RuntimeDims>>;
template struct OpsLoop<SvdFnBackwardOp<double, RuntimeDims>>;
template struct OpsLoop<EighFnBackwardOp<float, SquareDims<1>>>;
template struct OpsLoop<EighFnBackwardOp<float, SquareDims<2>>>;
template struct OpsLoop<EighFnBackwardOp<float, SquareDims<3>>>;
template struct OpsLoop<EighFnBackwardOp<float, SquareDims<4>>>;
template struct OpsLoop<EighFnBackwardOp<float, SquareDims<5>>>;
template struct OpsLoop<EighFnBackwardOp<float, SquareDims<6>>>;
template struct OpsLoop<EighFnBackwardOp<float, SquareDims<7>>>;
template struct OpsLoop<EighFnBackwardOp<float, SquareDims<8>>>;
template struct OpsLoop<EighFnBackwardOp<double, SquareDims<1>>>;
template struct OpsLoop<EighFnBackwardOp<double, SquareDims<2>>>;
template struct OpsLoop<EighFnBackwardOp<double, SquareDims<3>>>;
template struct OpsLoop<EighFnBackwardOp<double, SquareDims<4>>>;
template struct OpsLoop<EighFnBackwardOp<double, SquareDims<5>>>;
template struct OpsLoop<EighFnBackwardOp<double, SquareDims<6>>>;
template struct OpsLoop<EighFnBackwardOp<double, SquareDims<7>>>;
template struct OpsLoop<EighFnBackwardOp<double, SquareDims<8>>>;
template struct OpsLoop<EighFnBackwardOp<float, RuntimeDims>>;
template struct OpsLoop<EighFnBackwardOp<double, RuntimeDims>>;
}  // namespace safesvd::kernels::cpu

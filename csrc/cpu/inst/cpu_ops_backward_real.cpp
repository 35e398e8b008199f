// Generated from csrc/manifest.txt by scripts/gen_units.py: do not edit.
#include "../ops_loop.h"

namespace safesvd::kernels::cpu {
template struct OpsLoop<SvdBackwardOp<float, SquareDims<1>>>;
template struct OpsLoop<SvdBackwardOp<float, SquareDims<2>>>;
template struct OpsLoop<SvdBackwardOp<float, SquareDims<3>>>;
template struct OpsLoop<SvdBackwardOp<float, SquareDims<4>>>;
template struct OpsLoop<SvdBackwardOp<float, SquareDims<5>>>;
template struct OpsLoop<SvdBackwardOp<float, SquareDims<6>>>;
template struct OpsLoop<SvdBackwardOp<float, SquareDims<7>>>;
template struct OpsLoop<SvdBackwardOp<float, SquareDims<8>>>;
template struct OpsLoop<SvdBackwardOp<double, SquareDims<1>>>;
template struct OpsLoop<SvdBackwardOp<double, SquareDims<2>>>;
template struct OpsLoop<SvdBackwardOp<double, SquareDims<3>>>;
template struct OpsLoop<SvdBackwardOp<double, SquareDims<4>>>;
template struct OpsLoop<SvdBackwardOp<double, SquareDims<5>>>;
template struct OpsLoop<SvdBackwardOp<double, SquareDims<6>>>;
template struct OpsLoop<SvdBackwardOp<double, SquareDims<7>>>;
template struct OpsLoop<SvdBackwardOp<double, SquareDims<8>>>;
template struct OpsLoop<SvdBackwardOp<float, RuntimeDims>>;
template struct OpsLoop<SvdBackwardOp<double, RuntimeDims>>;
template struct OpsLoop<EighBackwardOp<float, SquareDims<1>>>;
template struct OpsLoop<EighBackwardOp<float, SquareDims<2>>>;
template struct OpsLoop<EighBackwardOp<float, SquareDims<3>>>;
template struct OpsLoop<EighBackwardOp<float, SquareDims<4>>>;
template struct OpsLoop<EighBackwardOp<float, SquareDims<5>>>;
template struct OpsLoop<EighBackwardOp<float, SquareDims<6>>>;
template struct OpsLoop<EighBackwardOp<float, SquareDims<7>>>;
template struct OpsLoop<EighBackwardOp<float, SquareDims<8>>>;
template struct OpsLoop<EighBackwardOp<double, SquareDims<1>>>;
template struct OpsLoop<EighBackwardOp<double, SquareDims<2>>>;
template struct OpsLoop<EighBackwardOp<double, SquareDims<3>>>;
template struct OpsLoop<EighBackwardOp<double, SquareDims<4>>>;
template struct OpsLoop<EighBackwardOp<double, SquareDims<5>>>;
template struct OpsLoop<EighBackwardOp<double, SquareDims<6>>>;
template struct OpsLoop<EighBackwardOp<double, SquareDims<7>>>;
template struct OpsLoop<EighBackwardOp<double, SquareDims<8>>>;
template struct OpsLoop<EighBackwardOp<float, RuntimeDims>>;
template struct OpsLoop<EighBackwardOp<double, RuntimeDims>>;
}  // namespace safesvd::kernels::cpu

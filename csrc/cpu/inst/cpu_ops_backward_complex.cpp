// Generated from csrc/manifest.txt by scripts/gen_units.py: do not edit.
#include "../ops_loop.h"

namespace safesvd::kernels::cpu {
template struct OpsLoop<SvdBackwardOp<c10::complex<float>, SquareDims<1>>>;
template struct OpsLoop<SvdBackwardOp<c10::complex<float>, SquareDims<2>>>;
template struct OpsLoop<SvdBackwardOp<c10::complex<float>, SquareDims<3>>>;
template struct OpsLoop<SvdBackwardOp<c10::complex<float>, SquareDims<4>>>;
template struct OpsLoop<SvdBackwardOp<c10::complex<float>, SquareDims<5>>>;
template struct OpsLoop<SvdBackwardOp<c10::complex<float>, SquareDims<6>>>;
template struct OpsLoop<SvdBackwardOp<c10::complex<float>, SquareDims<7>>>;
template struct OpsLoop<SvdBackwardOp<c10::complex<float>, SquareDims<8>>>;
template struct OpsLoop<SvdBackwardOp<c10::complex<double>, SquareDims<1>>>;
template struct OpsLoop<SvdBackwardOp<c10::complex<double>, SquareDims<2>>>;
template struct OpsLoop<SvdBackwardOp<c10::complex<double>, SquareDims<3>>>;
template struct OpsLoop<SvdBackwardOp<c10::complex<double>, SquareDims<4>>>;
template struct OpsLoop<SvdBackwardOp<c10::complex<double>, SquareDims<5>>>;
template struct OpsLoop<SvdBackwardOp<c10::complex<double>, SquareDims<6>>>;
template struct OpsLoop<SvdBackwardOp<c10::complex<double>, SquareDims<7>>>;
template struct OpsLoop<SvdBackwardOp<c10::complex<double>, SquareDims<8>>>;
template struct OpsLoop<SvdBackwardOp<c10::complex<float>, RuntimeDims>>;
template struct OpsLoop<SvdBackwardOp<c10::complex<double>, RuntimeDims>>;
template struct OpsLoop<EighBackwardOp<c10::complex<float>, SquareDims<1>>>;
template struct OpsLoop<EighBackwardOp<c10::complex<float>, SquareDims<2>>>;
template struct OpsLoop<EighBackwardOp<c10::complex<float>, SquareDims<3>>>;
template struct OpsLoop<EighBackwardOp<c10::complex<float>, SquareDims<4>>>;
template struct OpsLoop<EighBackwardOp<c10::complex<float>, SquareDims<5>>>;
template struct OpsLoop<EighBackwardOp<c10::complex<float>, SquareDims<6>>>;
template struct OpsLoop<EighBackwardOp<c10::complex<float>, SquareDims<7>>>;
template struct OpsLoop<EighBackwardOp<c10::complex<float>, SquareDims<8>>>;
template struct OpsLoop<EighBackwardOp<c10::complex<double>, SquareDims<1>>>;
template struct OpsLoop<EighBackwardOp<c10::complex<double>, SquareDims<2>>>;
template struct OpsLoop<EighBackwardOp<c10::complex<double>, SquareDims<3>>>;
template struct OpsLoop<EighBackwardOp<c10::complex<double>, SquareDims<4>>>;
template struct OpsLoop<EighBackwardOp<c10::complex<double>, SquareDims<5>>>;
template struct OpsLoop<EighBackwardOp<c10::complex<double>, SquareDims<6>>>;
template struct OpsLoop<EighBackwardOp<c10::complex<double>, SquareDims<7>>>;
template struct OpsLoop<EighBackwardOp<c10::complex<double>, SquareDims<8>>>;
}  // namespace safesvd::kernels::cpu

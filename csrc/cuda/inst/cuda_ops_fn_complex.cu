// Generated from csrc/manifest.txt by scripts/gen_units.py: do not edit.
#include "../runner.cuh"

namespace safesvd::kernels::cuda {
template struct OpsKernel<SvdFnBackwardOp<c10::complex<float>, SquareDims<1>>>;
template struct OpsKernel<SvdFnBackwardOp<c10::complex<float>, SquareDims<2>>>;
template struct OpsKernel<SvdFnBackwardOp<c10::complex<float>, SquareDims<3>>>;
template struct OpsKernel<SvdFnBackwardOp<c10::complex<float>, SquareDims<4>>>;
template struct OpsKernel<SvdFnBackwardOp<c10::complex<float>, SquareDims<5>>>;
template struct OpsKernel<SvdFnBackwardOp<c10::complex<float>, SquareDims<6>>>;
template struct OpsKernel<SvdFnBackwardOp<c10::complex<float>, SquareDims<7>>>;
template struct OpsKernel<SvdFnBackwardOp<c10::complex<float>, SquareDims<8>>>;
template struct OpsKernel<SvdFnBackwardOp<c10::complex<double>, SquareDims<1>>>;
template struct OpsKernel<SvdFnBackwardOp<c10::complex<double>, SquareDims<2>>>;
template struct OpsKernel<SvdFnBackwardOp<c10::complex<double>, SquareDims<3>>>;
template struct OpsKernel<SvdFnBackwardOp<c10::complex<double>, SquareDims<4>>>;
template struct OpsKernel<SvdFnBackwardOp<c10::complex<double>, SquareDims<5>>>;
template struct OpsKernel<SvdFnBackwardOp<c10::complex<double>, SquareDims<6>>>;
template struct OpsKernel<SvdFnBackwardOp<c10::complex<double>, SquareDims<7>>>;
template struct OpsKernel<SvdFnBackwardOp<c10::complex<double>, SquareDims<8>>>;
template struct OpsKernel<SvdFnBackwardOp<c10::complex<float>, RuntimeDims>>;
template struct OpsKernel<SvdFnBackwardOp<c10::complex<double>, RuntimeDims>>;
template struct OpsKernel<EighFnBackwardOp<c10::complex<float>, SquareDims<1>>>;
template struct OpsKernel<EighFnBackwardOp<c10::complex<float>, SquareDims<2>>>;
template struct OpsKernel<EighFnBackwardOp<c10::complex<float>, SquareDims<3>>>;
template struct OpsKernel<EighFnBackwardOp<c10::complex<float>, SquareDims<4>>>;
template struct OpsKernel<EighFnBackwardOp<c10::complex<float>, SquareDims<5>>>;
template struct OpsKernel<EighFnBackwardOp<c10::complex<float>, SquareDims<6>>>;
template struct OpsKernel<EighFnBackwardOp<c10::complex<float>, SquareDims<7>>>;
template struct OpsKernel<EighFnBackwardOp<c10::complex<float>, SquareDims<8>>>;
template struct OpsKernel<EighFnBackwardOp<c10::complex<double>, SquareDims<1>>>;
template struct OpsKernel<EighFnBackwardOp<c10::complex<double>, SquareDims<2>>>;
template struct OpsKernel<EighFnBackwardOp<c10::complex<double>, SquareDims<3>>>;
template struct OpsKernel<EighFnBackwardOp<c10::complex<double>, SquareDims<4>>>;
template struct OpsKernel<EighFnBackwardOp<c10::complex<double>, SquareDims<5>>>;
template struct OpsKernel<EighFnBackwardOp<c10::complex<double>, SquareDims<6>>>;
template struct OpsKernel<EighFnBackwardOp<c10::complex<double>, SquareDims<7>>>;
template struct OpsKernel<EighFnBackwardOp<c10::complex<double>, SquareDims<8>>>;
}  // namespace safesvd::kernels::cuda

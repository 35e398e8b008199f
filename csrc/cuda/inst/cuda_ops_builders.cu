// Generated from csrc/manifest.txt by scripts/gen_units.py: do not edit.
#include "../runner.cuh"

namespace safesvd::kernels::cuda {
template struct OpsKernel<SvdBuildJOp<float>>;
template struct OpsKernel<SvdBuildJOp<double>>;
template struct OpsKernel<SvdBuildJOp<c10::complex<float>>>;
template struct OpsKernel<SvdBuildJOp<c10::complex<double>>>;
template struct OpsKernel<EighBuildJOp<float>>;
template struct OpsKernel<EighBuildJOp<double>>;
template struct OpsKernel<EighBuildJOp<c10::complex<float>>>;
template struct OpsKernel<EighBuildJOp<c10::complex<double>>>;
template struct OpsKernel<FnBuildXOp<float>>;
template struct OpsKernel<FnBuildXOp<double>>;
template struct OpsKernel<FnBuildXOp<c10::complex<float>>>;
template struct OpsKernel<FnBuildXOp<c10::complex<double>>>;
template struct OpsKernel<FnSecondOrderOp<float>>;
template struct OpsKernel<FnSecondOrderOp<double>>;
template struct OpsKernel<FnSecondOrderOp<c10::complex<float>>>;
template struct OpsKernel<FnSecondOrderOp<c10::complex<double>>>;
template struct OpsKernel<GuardParamsOp<float>>;
template struct OpsKernel<GuardParamsOp<double>>;
template struct OpsKernel<GuardCoefficientsOp<float>>;
template struct OpsKernel<GuardCoefficientsOp<double>>;
}  // namespace safesvd::kernels::cuda

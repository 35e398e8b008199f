// Generated from csrc/manifest.txt by scripts/gen_units.py: do not edit.
#include "../ops_loop.h"

namespace safesvd::kernels::cpu {
template struct OpsLoop<SvdBuildJOp<float>>;
template struct OpsLoop<SvdBuildJOp<double>>;
template struct OpsLoop<SvdBuildJOp<c10::complex<float>>>;
template struct OpsLoop<SvdBuildJOp<c10::complex<double>>>;
template struct OpsLoop<EighBuildJOp<float>>;
template struct OpsLoop<EighBuildJOp<double>>;
template struct OpsLoop<EighBuildJOp<c10::complex<float>>>;
template struct OpsLoop<EighBuildJOp<c10::complex<double>>>;
template struct OpsLoop<FnBuildXOp<float>>;
template struct OpsLoop<FnBuildXOp<double>>;
template struct OpsLoop<FnBuildXOp<c10::complex<float>>>;
template struct OpsLoop<FnBuildXOp<c10::complex<double>>>;
template struct OpsLoop<FnSecondOrderOp<float>>;
template struct OpsLoop<FnSecondOrderOp<double>>;
template struct OpsLoop<FnSecondOrderOp<c10::complex<float>>>;
template struct OpsLoop<FnSecondOrderOp<c10::complex<double>>>;
template struct OpsLoop<GuardParamsOp<float>>;
template struct OpsLoop<GuardParamsOp<double>>;
template struct OpsLoop<GuardCoefficientsOp<float>>;
template struct OpsLoop<GuardCoefficientsOp<double>>;
}  // namespace safesvd::kernels::cpu

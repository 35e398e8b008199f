// Generated from csrc/manifest.txt by scripts/gen_units.py: do not edit.
#include "../backward_bands.cuh"

namespace safesvd::kernels::cuda {
template struct SvdRegistersBand<1, 1, double>;
template struct SvdRegistersBand<1, 2, double>;
template struct SvdRegistersBand<1, 3, double>;
template struct SvdRegistersBand<1, 4, double>;
template struct SvdRegistersBand<2, 1, double>;
template struct SvdRegistersBand<2, 2, double>;
template struct SvdRegistersBand<2, 3, double>;
template struct SvdRegistersBand<2, 4, double>;
template struct SvdRegistersBand<3, 1, double>;
template struct SvdRegistersBand<3, 2, double>;
template struct SvdRegistersBand<3, 3, double>;
template struct SvdRegistersBand<3, 4, double>;
template struct SvdRegistersBand<4, 1, double>;
template struct SvdRegistersBand<4, 2, double>;
template struct SvdRegistersBand<4, 3, double>;
template struct SvdRegistersBand<4, 4, double>;
template struct EighRegistersBand<1, double>;
template struct EighRegistersBand<2, double>;
template struct EighRegistersBand<3, double>;
template struct EighRegistersBand<4, double>;
}  // namespace safesvd::kernels::cuda

// Generated from csrc/manifest.txt by scripts/gen_units.py: do not edit.
#include "../backward_bands.cuh"

namespace safesvd::kernels::cuda {
template struct SvdRegistersBand<1, 1, float>;
template struct SvdRegistersBand<1, 2, float>;
template struct SvdRegistersBand<1, 3, float>;
template struct SvdRegistersBand<1, 4, float>;
template struct SvdRegistersBand<2, 1, float>;
template struct SvdRegistersBand<2, 2, float>;
template struct SvdRegistersBand<2, 3, float>;
template struct SvdRegistersBand<2, 4, float>;
template struct SvdRegistersBand<3, 1, float>;
template struct SvdRegistersBand<3, 2, float>;
template struct SvdRegistersBand<3, 3, float>;
template struct SvdRegistersBand<3, 4, float>;
template struct SvdRegistersBand<4, 1, float>;
template struct SvdRegistersBand<4, 2, float>;
template struct SvdRegistersBand<4, 3, float>;
template struct SvdRegistersBand<4, 4, float>;
template struct EighRegistersBand<1, float>;
template struct EighRegistersBand<2, float>;
template struct EighRegistersBand<3, float>;
template struct EighRegistersBand<4, float>;
}  // namespace safesvd::kernels::cuda

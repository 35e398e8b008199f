// Generated from csrc/manifest.txt by scripts/gen_units.py: do not edit.
#include "../backward_bands.cuh"

namespace safesvd::kernels::cuda {
template struct TeamBand<false, 8, float>;
template struct TeamBand<false, 12, float>;
template struct TeamBand<false, 16, float>;
template struct TeamBand<false, 24, float>;
template struct TeamBand<false, 32, float>;
}  // namespace safesvd::kernels::cuda

// Generated from csrc/manifest.txt by scripts/gen_units.py: do not edit.
#include "../backward_bands.cuh"

namespace safesvd::kernels::cuda {
template struct TeamBand<false, 8, double>;
template struct TeamBand<false, 12, double>;
template struct TeamBand<false, 16, double>;
template struct TeamBand<false, 24, double>;
template struct TeamBand<false, 32, double>;
}  // namespace safesvd::kernels::cuda

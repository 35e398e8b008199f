// Generated from csrc/manifest.txt by scripts/gen_units.py: do not edit.
#include "../backward_bands.cuh"

namespace safesvd::kernels::cuda {
template struct TeamBand<true, 8, float>;
template struct TeamBand<true, 12, float>;
template struct TeamBand<true, 16, float>;
}  // namespace safesvd::kernels::cuda

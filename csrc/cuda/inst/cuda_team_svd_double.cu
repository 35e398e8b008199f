// Generated from csrc/manifest.txt by scripts/gen_units.py: do not edit.
#include "../backward_bands.cuh"

namespace safesvd::kernels::cuda {
template struct TeamBand<true, 8, double>;
template struct TeamBand<true, 12, double>;
template struct TeamBand<true, 16, double>;
}  // namespace safesvd::kernels::cuda

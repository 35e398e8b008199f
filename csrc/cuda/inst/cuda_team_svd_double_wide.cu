// Generated from csrc/manifest.txt by scripts/gen_units.py: do not edit.
#include "../backward_bands.cuh"

namespace safesvd::kernels::cuda {
template struct TeamBand<true, 24, double>;
template struct TeamBand<true, 32, double>;
}  // namespace safesvd::kernels::cuda

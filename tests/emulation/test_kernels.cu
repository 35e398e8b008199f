// nvcc side of the emulation self-test: compiles test_kernels.cuh for real
// hardware (tests/test_cuda_emulation.py runs `nvcc -c -arch=sm_90` on it), so
// the kernels the emulation runs are known to be valid CUDA.
#include "test_kernels.cuh"

namespace emu_test {
template void launch_block_sum<128, false>(const float*, int, float*, cudaStream_t);
template void launch_block_sum<128, true>(const float*, int, float*, cudaStream_t);
template void launch_gram<false>(const double*, int64_t, double*, int, bool, cudaStream_t);
template void launch_gram<true>(const double*, int64_t, double*, int, bool, cudaStream_t);
template void launch_stencil<64, false>(const float*, int, float*, cudaStream_t);
template void launch_stencil<64, true>(const float*, int, float*, cudaStream_t);
template void launch_argmax<128>(const float*, int, float*, int*, cudaStream_t);
template void launch_half_warp<false>(const int*, int, int*, int*, int*, cudaStream_t);
template void launch_half_warp<true>(const int*, int, int*, int*, int*, cudaStream_t);
template void launch_warp_sync_sum<false>(const float*, int, float*, cudaStream_t);
template void launch_warp_sync_sum<true>(const float*, int, float*, cudaStream_t);
}  // namespace emu_test

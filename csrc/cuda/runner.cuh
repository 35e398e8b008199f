// The generic CUDA runner: one thread per matrix, each with its Op's scratch in
// dynamic shared memory (docs/architecture.md), and OpsKernel<Op>::launch of
// launch.h. No ATen here: nvcc compiles it for the GPU and g++ through the CUDA
// emulation for the tests, from the same text, in the kernel units csrc/cuda/inst/.
#pragma once

#include <algorithm>

#include "compat.h"
#include "launch.h"

namespace safesvd {
namespace kernels {
namespace cuda {

constexpr int kMaxThreadsPerBlock = 128;
constexpr int64_t kSharedBytesPerBlock = 48 * 1024;  // no opt-in needed on any GPU

template <class Op>
__global__ void run_ops_kernel(Op op, int64_t count, int64_t stride) {
  SAFESVD_DYNAMIC_SHARED(unsigned char, shared_raw);
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= count) return;
  using T = typename Op::scalar_t;
  op(b, reinterpret_cast<T*>(shared_raw) + threadIdx.x * stride);
}

// As many threads per block as fit the per-thread scratch into 48 KiB.
struct LaunchShape {
  int threads;
  int64_t blocks;
  size_t shared_bytes;
};
inline LaunchShape launch_shape(int64_t count, int64_t scratch_bytes) {
  int threads = kMaxThreadsPerBlock;
  if (scratch_bytes > 0)
    threads = static_cast<int>(std::max<int64_t>(
        1, std::min<int64_t>(kMaxThreadsPerBlock, kSharedBytesPerBlock / scratch_bytes)));
  return {threads, (count + threads - 1) / threads, static_cast<size_t>(threads * scratch_bytes)};
}

// Threads' scratch areas start `stride` scalars apart, stride odd: when the threads of a
// warp touch the same element of their own scratch, the addresses t * stride + e fall in
// 32 different banks (float; double and complex: 16 per half-warp transaction), where an
// even stride (e.g. 576 at n = 8) put every lane of the warp in the same bank. (The
// registers band of backward_bands.cuh takes its SoA lane stride from here too.)
SAFESVD_HD int64_t conflict_free_stride(int64_t scratch) { return scratch % 2 == 0 ? scratch + 1 : scratch; }

template <class Op>
void OpsKernel<Op>::launch(const Op& op, int64_t count, cudaStream_t stream) {
  if (count == 0) return;
  const int64_t stride = conflict_free_stride(op.scratch());
  const LaunchShape shape = launch_shape(count, stride * static_cast<int64_t>(sizeof(typename Op::scalar_t)));
  SAFESVD_LAUNCH(run_ops_kernel<Op>, dim3(static_cast<unsigned>(shape.blocks)), dim3(shape.threads),
                 shape.shared_bytes, stream)(op, count, stride);
  SAFESVD_LAUNCH_CHECK();
}

}  // namespace cuda
}  // namespace kernels
}  // namespace safesvd

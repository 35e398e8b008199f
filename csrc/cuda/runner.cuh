// The generic CUDA runner: one thread per matrix, each with its Op's scratch in
// dynamic shared memory (docs/architecture.md). No ATen here.
#pragma once

#include <cuda_runtime.h>

#include "../kernels/batch_ops.h"

namespace safesvd {
namespace kernels {
namespace cuda {

constexpr int kMaxThreadsPerBlock = 128;
constexpr size_t kSharedBytesPerBlock = 48 * 1024;  // no opt-in needed on any GPU

template <class Op>
__global__ void run_ops_kernel(Op op, int64_t count, int64_t scratch) {
  extern __shared__ __align__(16) unsigned char shared_raw[];
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= count) return;
  using T = typename Op::scalar_t;
  op(b, reinterpret_cast<T*>(shared_raw) + threadIdx.x * scratch);
}

// Threads per block as many as fit the per-thread scratch into 48 KiB.
template <class Op>
void launch_ops(const Op& op, int64_t count, cudaStream_t stream) {
  if (count == 0) return;
  const int64_t scratch = op.scratch();
  const int64_t bytes = scratch * static_cast<int64_t>(sizeof(typename Op::scalar_t));
  int threads = kMaxThreadsPerBlock;
  if (bytes > 0)
    threads = static_cast<int>(std::max<int64_t>(
        1, std::min<int64_t>(kMaxThreadsPerBlock, static_cast<int64_t>(kSharedBytesPerBlock) / bytes)));
  const int64_t blocks = (count + threads - 1) / threads;
  run_ops_kernel<Op><<<static_cast<unsigned>(blocks), threads, static_cast<size_t>(threads) * bytes, stream>>>(
      op, count, scratch);
}

}  // namespace cuda
}  // namespace kernels
}  // namespace safesvd

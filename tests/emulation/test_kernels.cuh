// Small kernels in ordinary CUDA style for the emulation's self-test, with
// their host launchers. The same source compiles with nvcc (test_kernels.cu)
// and with g++ through csrc/emulation (emulation_selftest.cpp, emulation_so.cpp).
//
// Correct kernels have exact expected results (integer-valued data). The
// BROKEN variants carry a realistic bug that the emulation must detect:
//   block_sum<.., kMissingSync=true>   no barrier between filling shared memory and reading it
//   gram<kSkipLast=true>, launch_gram(.., floor_blocks=true)   one matrix (thread) never processed
//   stencil<.., kForgetRightHalo=true> reads a shared halo element nobody wrote
//   half_warp<kSkipSyncwarp=true>      half-warp exchange through shared memory without __syncwarp
//   warp_sync_sum<kLegacy=true>        pre-Volta warp-synchronous reduction (no __syncwarp)
#pragma once

#include <cassert>
#include <climits>
#include <cmath>
#include <cstdint>

#include "cuda/compat.h"

namespace emu_test {

constexpr unsigned kFullMask = 0xffffffffu;

// ------------------------------------------------ block-level tree reduction
// out[block] = sum of the block's slice of x.
template <int BLOCK, bool kMissingSync>
__global__ void __launch_bounds__(BLOCK) block_sum_kernel(const float* __restrict__ x, int n, float* __restrict__ out) {
  __shared__ float partial[BLOCK];
  const int t = threadIdx.x;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  partial[t] = i < n ? x[i] : 0.f;
  if (!kMissingSync) __syncthreads();  // BROKEN without it: the tree reads partial[t + s] too early
  for (int s = BLOCK / 2; s > 0; s >>= 1) {
    if (t < s) partial[t] += partial[t + s];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = partial[0];
}

template <int BLOCK, bool kMissingSync>
inline void launch_block_sum(const float* x, int n, float* out, cudaStream_t stream) {
  const int blocks = (n + BLOCK - 1) / BLOCK;
  SAFESVD_LAUNCH(block_sum_kernel<BLOCK, kMissingSync>, blocks, BLOCK, 0, stream)(x, n, out);
  SAFESVD_LAUNCH_CHECK();
}

// ----------------------------- one thread per matrix, dynamic shared scratch
// The layout of csrc/cuda's fused kernels: thread b stages its 3x3 matrix A_b
// in its slice of dynamic shared memory and writes out_b = A_b^T A_b.
constexpr int kGramScratch = 9;  // doubles per thread

template <bool kSkipLast>
__global__ void gram_kernel(const double* __restrict__ a, int64_t B, double* __restrict__ out) {
  SAFESVD_DYNAMIC_SHARED(unsigned char, shared_raw);
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= (kSkipLast ? B - 1 : B)) return;  // BROKEN with kSkipLast: off by one
  double* buf = reinterpret_cast<double*>(shared_raw) + threadIdx.x * kGramScratch;
  for (int i = 0; i < 9; ++i) buf[i] = a[b * 9 + i];
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      double acc = 0;
      for (int l = 0; l < 3; ++l) acc += buf[l * 3 + i] * buf[l * 3 + j];
      out[b * 9 + i * 3 + j] = acc;
    }
}

// floor_blocks: BROKEN host code that rounds the block count down.
template <bool kSkipLast>
inline void launch_gram(const double* a, int64_t B, double* out, int threads, bool floor_blocks, cudaStream_t stream) {
  const int64_t blocks = floor_blocks ? B / threads : (B + threads - 1) / threads;
  const size_t shared = static_cast<size_t>(threads) * kGramScratch * sizeof(double);
  if (blocks == 0) return;
  SAFESVD_LAUNCH(gram_kernel<kSkipLast>, dim3(static_cast<unsigned>(blocks)), dim3(threads), shared, stream)(a, B, out);
  SAFESVD_LAUNCH_CHECK();
}

// ------------------------------------------------- stencil with a shared halo
// out[i] = x[i-1] + x[i] + x[i+1] (zero outside), the neighbours staged in a
// tile with one halo element on each side.
template <int BLOCK, bool kForgetRightHalo>
__global__ void stencil_kernel(const float* __restrict__ x, int n, float* __restrict__ out) {
  __shared__ float tile[BLOCK + 2];
  const int t = threadIdx.x, i = blockIdx.x * BLOCK + t;
  tile[t + 1] = i < n ? x[i] : 0.f;
  if (t == 0) tile[0] = i > 0 ? x[i - 1] : 0.f;
  if (!kForgetRightHalo && t == BLOCK - 1) tile[BLOCK + 1] = i + 1 < n ? x[i + 1] : 0.f;  // BROKEN without it
  __syncthreads();
  if (i < n) out[i] = tile[t] + tile[t + 1] + tile[t + 2];
}

template <int BLOCK, bool kForgetRightHalo>
inline void launch_stencil(const float* x, int n, float* out, cudaStream_t stream) {
  SAFESVD_LAUNCH(stencil_kernel<BLOCK, kForgetRightHalo>, (n + BLOCK - 1) / BLOCK, BLOCK, 0, stream)(x, n, out);
  SAFESVD_LAUNCH_CHECK();
}

// ------------------------------------------ warp-shuffle max + argmax reduction
// Per block: the largest x and its index (the smallest index among ties). A
// butterfly (xor) shuffle reduction in each warp, the warps' results through
// shared memory, then a shuffle-down reduction in warp 0.
__device__ __forceinline__ void argmax_merge(float& v, int& idx, float ov, int oidx) {
  if (ov > v || (ov == v && oidx < idx)) {
    v = ov;
    idx = oidx;
  }
}

template <int BLOCK>
__global__ void argmax_kernel(const float* __restrict__ x, int n, float* __restrict__ out_val,
                              int* __restrict__ out_idx) {
  static_assert(BLOCK % 32 == 0 && BLOCK <= 1024, "whole warps");
  constexpr int kWarps = BLOCK / 32;
  __shared__ float warp_val[kWarps];
  __shared__ int warp_idx[kWarps];
  const int t = threadIdx.x, lane = t % 32, warp = t / 32;
  const int i = blockIdx.x * BLOCK + t;
  float v = i < n ? x[i] : -INFINITY;
  int idx = i < n ? i : INT_MAX;
  for (int m = 16; m > 0; m >>= 1) {
    const float ov = __shfl_xor_sync(kFullMask, v, m);
    const int oidx = __shfl_xor_sync(kFullMask, idx, m);
    argmax_merge(v, idx, ov, oidx);
  }
  if (lane == 0) {
    warp_val[warp] = v;
    warp_idx[warp] = idx;
  }
  __syncthreads();
  if (warp == 0) {
    v = lane < kWarps ? warp_val[lane] : -INFINITY;
    idx = lane < kWarps ? warp_idx[lane] : INT_MAX;
    for (int d = 16; d > 0; d >>= 1) {
      const float ov = __shfl_down_sync(kFullMask, v, d);
      const int oidx = __shfl_down_sync(kFullMask, idx, d);
      argmax_merge(v, idx, ov, oidx);
    }
    if (lane == 0) {
      out_val[blockIdx.x] = v;
      out_idx[blockIdx.x] = idx;
    }
  }
}

template <int BLOCK>
inline void launch_argmax(const float* x, int n, float* out_val, int* out_idx, cudaStream_t stream) {
  SAFESVD_LAUNCH(argmax_kernel<BLOCK>, (n + BLOCK - 1) / BLOCK, BLOCK, 0, stream)(x, n, out_val, out_idx);
  SAFESVD_LAUNCH_CHECK();
}

// --------------------------------------------------------- votes and barriers
// Per warp (lane 0 writes kVoteOut words): ballot, its popcount, ffs and clz,
// any, all, activemask; per block: __syncthreads_count / _and / _or.
constexpr int kVoteOut = 10;
__global__ void vote_kernel(const int* __restrict__ x, unsigned* __restrict__ out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  const int v = x[i];
  const unsigned ballot = __ballot_sync(kFullMask, v > 0);
  const int any = __any_sync(kFullMask, v > 5);
  const int all = __all_sync(kFullMask, v >= 0);
  const unsigned active = __activemask();
  const int count = __syncthreads_count(v > 0);
  const int all_block = __syncthreads_and(v >= 0);
  const int any_block = __syncthreads_or(v > 8);
  if (threadIdx.x % 32 == 0) {
    unsigned* o = out + (i / 32) * kVoteOut;
    o[0] = ballot;
    o[1] = __popc(ballot);
    o[2] = __ffs(static_cast<int>(ballot));
    o[3] = __clz(static_cast<int>(ballot));
    o[4] = any;
    o[5] = all;
    o[6] = active;
    o[7] = count;
    o[8] = all_block;
    o[9] = any_block;
  }
}

inline void launch_vote(const int* x, unsigned* out, int blocks, int threads, cudaStream_t stream) {
  SAFESVD_LAUNCH(vote_kernel, blocks, threads, 0, stream)(x, out);
  SAFESVD_LAUNCH_CHECK();
}

// ---------------------------------------------------------- partial masks
// Each half warp works alone with its own mask, in its own branch, so two
// collectives with different masks are in flight at once: an inclusive scan
// with __shfl_up_sync (width 16), a broadcast of the half's first x, and a
// neighbour exchange through shared memory ordered by __syncwarp(mask).
template <bool kSkipSyncwarp>
__global__ void half_warp_kernel(const int* __restrict__ x, int* __restrict__ scan, int* __restrict__ first,
                                 int* __restrict__ neighbour) {
  __shared__ int stage[64];  // blocks of 64 threads
  const int t = threadIdx.x, lane = t % 32, i = blockIdx.x * blockDim.x + t;
  int v = x[i];
  if (lane < 16) {
    const unsigned mask = 0x0000ffffu;
    for (int d = 1; d < 16; d <<= 1) {
      const int o = __shfl_up_sync(mask, v, d, 16);
      if (lane >= d) v += o;
    }
    first[i] = __shfl_sync(mask, x[i], 0, 16);
    stage[t] = v;
    if (!kSkipSyncwarp) __syncwarp(mask);  // BROKEN without it: reads the neighbour's slot too early
    neighbour[i] = stage[t ^ 1];
  } else {
    const unsigned mask = 0xffff0000u;
    for (int d = 1; d < 16; d <<= 1) {
      const int o = __shfl_up_sync(mask, v, d, 16);
      if ((lane & 15) >= d) v += o;
    }
    first[i] = __shfl_sync(mask, x[i], 0, 16);
    stage[t] = v;
    if (!kSkipSyncwarp) __syncwarp(mask);
    neighbour[i] = stage[t ^ 1];
  }
  scan[i] = v;
}

template <bool kSkipSyncwarp>
inline void launch_half_warp(const int* x, int blocks, int* scan, int* first, int* neighbour, cudaStream_t stream) {
  SAFESVD_LAUNCH(half_warp_kernel<kSkipSyncwarp>, blocks, 64, 0, stream)(x, scan, first, neighbour);
  SAFESVD_LAUNCH_CHECK();
}

// ---------------------------------------- multi-dimensional grids and blocks
// Every thread writes 4 words at its global linear position: its linear block
// and thread index, the thread index of lane 0 of its warp, and that of its
// mirror lane (xor 31), which checks that lanes are consecutive linear indices.
__global__ void index_kernel(unsigned* __restrict__ out) {
  const unsigned tid = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned threads = blockDim.x * blockDim.y * blockDim.z;
  unsigned* o = out + 4 * (static_cast<uint64_t>(block) * threads + tid);
  o[0] = block;
  o[1] = tid;
  o[2] = __shfl_sync(kFullMask, tid, 0);
  o[3] = __shfl_xor_sync(kFullMask, tid, 31);
}

inline void launch_index(unsigned* out, dim3 grid, dim3 block, cudaStream_t stream) {
  SAFESVD_LAUNCH(index_kernel, grid, block, 0, stream)(out);
  SAFESVD_LAUNCH_CHECK();
}

// Transpose of a rows x cols matrix through a padded 2-D shared tile.
template <int TILE, int ROWS>
__global__ void transpose_kernel(const float* __restrict__ in, int rows, int cols, float* __restrict__ out) {
  __shared__ float tile[TILE][TILE + 1];
  int x = blockIdx.x * TILE + threadIdx.x, y = blockIdx.y * TILE + threadIdx.y;
  for (int j = 0; j < TILE; j += ROWS)
    if (x < cols && y + j < rows) tile[threadIdx.y + j][threadIdx.x] = in[(y + j) * cols + x];
  __syncthreads();
  x = blockIdx.y * TILE + threadIdx.x;
  y = blockIdx.x * TILE + threadIdx.y;
  for (int j = 0; j < TILE; j += ROWS)
    if (x < rows && y + j < cols) out[(y + j) * rows + x] = tile[threadIdx.x][threadIdx.y + j];
}

inline void launch_transpose(const float* in, int rows, int cols, float* out, cudaStream_t stream) {
  const dim3 grid((cols + 31) / 32, (rows + 31) / 32), block(32, 8);
  SAFESVD_LAUNCH(transpose_kernel<32, 8>, grid, block, 0, stream)(in, rows, cols, out);
  SAFESVD_LAUNCH_CHECK();
}

// ----------------------------------------- warp-synchronous reduction (64 threads)
template <bool kLegacy>
__global__ void warp_sync_sum_kernel(const float* __restrict__ x, float* __restrict__ out) {
  __shared__ float s[64];
  const int t = threadIdx.x;
  s[t] = x[blockIdx.x * 64 + t];
  __syncthreads();
  if (t >= 32) return;
  if (kLegacy) {
    // BROKEN since Volta: assumes the 32 lanes execute in lock-step.
    volatile float* vs = s;
    vs[t] += vs[t + 32];
    vs[t] += vs[t + 16];
    vs[t] += vs[t + 8];
    vs[t] += vs[t + 4];
    vs[t] += vs[t + 2];
    vs[t] += vs[t + 1];
    if (t == 0) out[blockIdx.x] = vs[0];
  } else {
    float v = s[t] + s[t + 32];
    for (int off = 16; off > 0; off >>= 1) {
      s[t] = v;
      __syncwarp();
      v += s[t + off];
      __syncwarp();
    }
    if (t == 0) out[blockIdx.x] = v;
  }
}

template <bool kLegacy>
inline void launch_warp_sync_sum(const float* x, int blocks, float* out, cudaStream_t stream) {
  SAFESVD_LAUNCH(warp_sync_sum_kernel<kLegacy>, blocks, 64, 0, stream)(x, out);
  SAFESVD_LAUNCH_CHECK();
}

// ------------------------------------------------- shared memory poisoning
// Thread 0 ANDs the bits of static and dynamic shared memory before anyone
// writes them (0xffffffff when poisoned), then every thread overwrites both,
// so the next block checks that poisoning is redone per block.
__global__ void poison_probe_kernel(unsigned* __restrict__ out, int dyn_words) {
  __shared__ unsigned st[32];
  SAFESVD_DYNAMIC_SHARED(unsigned, dyn);
  if (threadIdx.x == 0) {
    unsigned acc = ~0u;
    for (int k = 0; k < 32; ++k) acc &= st[k];
    for (int k = 0; k < dyn_words; ++k) acc &= dyn[k];
    out[blockIdx.x] = acc;
  }
  __syncthreads();
  st[threadIdx.x % 32] = threadIdx.x;
  for (int k = threadIdx.x; k < dyn_words; k += blockDim.x) dyn[k] = 0;
}

inline void launch_poison_probe(unsigned* out, int blocks, int threads, size_t dyn_bytes, cudaStream_t stream) {
  SAFESVD_LAUNCH(poison_probe_kernel, blocks, threads, dyn_bytes, stream)(out, static_cast<int>(dyn_bytes / 4));
  SAFESVD_LAUNCH_CHECK();
}

inline void allow_large_poison_probe(int bytes) { safesvd_set_max_dynamic_shared(poison_probe_kernel, bytes); }

// ------------------------------------------------------- misuse
// Threads at and above `active` return before the barrier.
__global__ void early_exit_barrier_kernel(int active, int* __restrict__ out) {
  __shared__ int s[1024];
  const int t = threadIdx.x;
  if (t >= active) return;
  s[t] = 10 * t;
  __syncthreads();
  out[t] = s[(t + 1) % active];
}

// Odd and even threads wait at different __syncthreads.
__global__ void split_barrier_kernel(int* __restrict__ out) {
  if (threadIdx.x % 2) {
    __syncthreads();
    out[threadIdx.x] = 1;
  } else {
    __syncthreads();
    out[threadIdx.x] = 2;
  }
}

// Lane 5 returns; the others shuffle with a full mask that names it.
__global__ void exited_lane_shuffle_kernel(int* __restrict__ out) {
  const int lane = threadIdx.x % 32;
  if (lane == 5) return;
  out[threadIdx.x] = __shfl_down_sync(kFullMask, lane, 1);
}

// The low half warp waits in __syncwarp for the high half, which waits at __syncthreads.
__global__ void warp_barrier_deadlock_kernel(int* __restrict__ out) {
  if (threadIdx.x < 16) __syncwarp();
  else __syncthreads();
  out[threadIdx.x] = 1;
}

__global__ void assert_positive_kernel(const float* __restrict__ x, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) assert(x[i] > 0.f);
}

inline void launch_early_exit_barrier(int threads, int active, int* out, cudaStream_t stream) {
  SAFESVD_LAUNCH(early_exit_barrier_kernel, 1, threads, 0, stream)(active, out);
  SAFESVD_LAUNCH_CHECK();
}
inline void launch_split_barrier(int* out, cudaStream_t stream) {
  SAFESVD_LAUNCH(split_barrier_kernel, 1, 64, 0, stream)(out);
  SAFESVD_LAUNCH_CHECK();
}
inline void launch_exited_lane_shuffle(int* out, cudaStream_t stream) {
  SAFESVD_LAUNCH(exited_lane_shuffle_kernel, 1, 32, 0, stream)(out);
  SAFESVD_LAUNCH_CHECK();
}
inline void launch_warp_barrier_deadlock(int* out, cudaStream_t stream) {
  SAFESVD_LAUNCH(warp_barrier_deadlock_kernel, 1, 32, 0, stream)(out);
  SAFESVD_LAUNCH_CHECK();
}
inline void launch_assert_positive(const float* x, int n, cudaStream_t stream) {
  SAFESVD_LAUNCH(assert_positive_kernel, (n + 63) / 64, 64, 0, stream)(x, n);
  SAFESVD_LAUNCH_CHECK();
}
// Any launch configuration, for the limit checks.
inline void launch_poison_probe_config(unsigned* out, dim3 grid, dim3 block, size_t dyn_bytes, cudaStream_t stream) {
  SAFESVD_LAUNCH(poison_probe_kernel, grid, block, dyn_bytes, stream)(out, static_cast<int>(dyn_bytes / 4));
  SAFESVD_LAUNCH_CHECK();
}

}  // namespace emu_test

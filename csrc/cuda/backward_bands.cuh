// The GPU backward of svd and eigh by size band (docs/cuda_backward.md): one
// fused kernel per band, no global intermediates, J, the guarded reciprocals,
// the gauge residual and the cotangent scale in the same kernel.
//
//   band "registers" (real, max(m, n) <= 4): one thread per matrix. A block
//     stages its matrices' inputs through shared memory in structure-of-arrays
//     form (element e of the block's matrix t at e * ld + t), so the global
//     loads are coalesced and the compute phase's shared reads are
//     conflict-free (the staging stores are not: docs/cuda_backward.md); each
//     thread then runs svd_backward_tile / eigh_backward_tile of
//     csrc/kernels/soa_backward.h with W = 1, its scratch in registers.
//   band "team" (real, square 5 <= n <= 32): a team of n threads per matrix,
//     thread r owning row r, floor(32 / n) teams per warp; tiles in shared
//     memory with an odd row stride (n + 1 or n + 2), phases separated by
//     __syncwarp. The same sums in the same order as svd_backward_matrix /
//     eigh_backward_matrix (csrc/kernels/svd_backward.h, eigh_backward.h), the
//     same decisions (matrix_guard, MatrixGuard, GaugeTracker of guards.h).
//
// Loaders: one strided copy whose walk order follows the source's fastest
// index, so batch-contiguous row-major and column-major input (cuSOLVER / LAPACK
// return U column-major) are read with consecutive threads on consecutive
// addresses; any other strides are read correctly, uncoalesced.
//
// No ATen: nvcc compiles this for the GPU and g++ through the CUDA emulation for
// the tests, in the kernel units csrc/cuda/inst/ (the launchers: launch.h).
#pragma once

#include <type_traits>

#include "../kernels/soa_backward.h"
#include "runner.cuh"

// Full unrolling of the loops over a compile-time n keeps the per-thread rows
// in registers on the GPU; the emulation does not need it.
#if defined(__CUDACC__)
#define SAFESVD_BAND_UNROLL _Pragma("unroll")
#else
#define SAFESVD_BAND_UNROLL
#endif

namespace safesvd {
namespace kernels {
namespace cuda {

// Blocks of at most kMaxThreadsPerBlock threads and kSharedBytesPerBlock bytes of
// shared memory (runner.cuh), as the generic runner. BandArgs, the band limits and
// the band of a shape: launch.h.

// Copy matrices b0 .. b0 + count - 1 (R x C each) of `src` to shared memory:
// element (i, j) of matrix t to dst[t * ts + i * is + j * js]. Consecutive
// threads take consecutive elements in the source's memory order (columns
// first when its column stride is the smaller), so batch-contiguous input is
// read coalesced.
template <typename T>
__device__ __forceinline__ void stage(const BatchedRef<T>& src, int R, int C, int64_t b0, int count, T* dst, int ts,
                                      int is, int js) {
  const int E = R * C;
  const bool columns_first = R > 1 && C > 1 && src.rs < src.cs;
  const T* base = src.p + b0 * src.sb;
  for (int q = threadIdx.x; q < count * E; q += blockDim.x) {
    const int t = q / E, e = q - t * E;
    const int i = columns_first ? e % R : e / C;
    const int j = columns_first ? e / R : e % C;
    dst[t * ts + i * is + j * js] = base[t * src.sb + i * src.rs + j * src.cs];
  }
}

// The reverse, to a contiguous (B, E) output: element e of matrix t from
// src[t * ts + (e / C) * is + (e % C) * js].
template <typename T>
__device__ __forceinline__ void unstage(const T* src, int R, int C, int ts, int is, int js, int64_t b0, int count,
                                        T* out) {
  const int E = R * C;
  T* base = out + b0 * E;
  for (int q = threadIdx.x; q < count * E; q += blockDim.x) {
    const int t = q / E, e = q - t * E;
    base[q] = src[t * ts + (e / C) * is + (e % C) * js];
  }
}

// ------------------------------------------------------------ band "registers"

// Scalars per matrix in shared memory: U, Vh, gU, gVh, S, gS, gA and the
// three gauge values (eigh: Q, gQ, L, gL, gA, gauge).
template <int M, int N>
SAFESVD_HD constexpr int registers_band_elements(bool svd) {
  return svd ? 2 * M * (M < N ? M : N) + 2 * (M < N ? M : N) * N + 2 * (M < N ? M : N) + M * N + 3
             : 3 * N * N + 2 * N + 3;
}

// (Min. blocks 1, here and for the team kernel: without it ptxas spilled a few
// bytes at ~72 registers for some shapes, sm_90, nvcc 13.0.)
template <bool SVD, int M, int N, typename T>
__global__ void __launch_bounds__(kMaxThreadsPerBlock, 1) registers_band_kernel(BandArgs<T> a) {
  constexpr int K = M < N ? M : N;
  SAFESVD_DYNAMIC_SHARED(unsigned char, shared_raw);
  T* sh = reinterpret_cast<T*>(shared_raw);
  // The lane stride: odd (consecutive elements of one matrix are ld apart).
  const int ld = static_cast<int>(conflict_free_stride(blockDim.x));
  const int64_t b0 = static_cast<int64_t>(blockIdx.x) * blockDim.x;
  const int count = static_cast<int>(a.count - b0 < blockDim.x ? a.count - b0 : blockDim.x);
  // SoA: element e of matrix t at e * ld + t.
  T *sU = sh, *sVh = sU + (SVD ? M * K : N * N) * ld, *sgU = sVh + (SVD ? K * N : 0) * ld;
  T *sgVh = sgU + M * K * ld, *sS = sgVh + (SVD ? K * N : 0) * ld, *sgS = sS + K * ld, *sgA = sgS + K * ld;
  T* sG = sgA + M * N * ld;
  stage(a.U, M, K, b0, count, sU, 1, K * ld, ld);
  if (SVD) stage(a.Vh, K, N, b0, count, sVh, 1, N * ld, ld);
  if (a.gU.p) stage(a.gU, M, K, b0, count, sgU, 1, K * ld, ld);
  if (SVD && a.gVh.p) stage(a.gVh, K, N, b0, count, sgVh, 1, N * ld, ld);
  stage(a.S, 1, K, b0, count, sS, 1, 0, ld);
  if (a.gS.p) stage(a.gS, 1, K, b0, count, sgS, 1, 0, ld);
  __syncthreads();
  const int t = threadIdx.x;
  if (t < count) {
    if (SVD) {
      T scratch[svd_backward_tile_scratch<M, N, 1>()];
      svd_backward_tile<M, N, 1, T>(sU + t, sVh + t, a.gU.p ? sgU + t : nullptr, a.gVh.p ? sgVh + t : nullptr,
                                    sS + t, a.gS.p ? sgS + t : nullptr, a.params, sgA + t, sG + t, ld, scratch);
    } else {
      T scratch[eigh_backward_tile_scratch<N, 1>()];
      eigh_backward_tile<N, 1, T>(sU + t, a.gU.p ? sgU + t : nullptr, sS + t, a.gS.p ? sgS + t : nullptr,
                                  a.params, sgA + t, sG + t, ld, scratch);
    }
  }
  __syncthreads();
  unstage(sgA, M, N, 1, N * ld, ld, b0, count, a.gA);
  unstage(sG, 1, 3, 1, 0, ld, b0, count, a.gauge);
}

// ------------------------------------------------------------ band "team"

// The odd row stride of a team tile (conflict-free row reads across a warp).
SAFESVD_HD int team_row_stride(int n) { return n % 2 == 0 ? n + 1 : n + 2; }
// Scalars per matrix: the tiles (svd: U, Vh, gU, gVh; eigh: Q, gQ, gA), the
// vectors S, gS, the row maxima (2 n) and the rows' gauge notes (3 n).
SAFESVD_HD int team_band_elements(int n, bool svd) { return (svd ? 4 : 3) * n * team_row_stride(n) + 7 * n; }

// The team kernel is compiled per capacity NC (8, 12, 16, 24, 32: the n in
// (NC - 4 or NC - 8, NC]), with n a run-time value: the loops run to NC with
// the steps past n predicated off, so the rows stay in registers (compile-time
// indices) while one kernel serves several sizes (a kernel per n took 11.5 min
// of nvcc for sm_90 alone, docs/cuda_backward.md).
template <int NC>
struct TeamLoop {
  // f(j) for j = 0 .. n - 1, in order, unrolled to NC.
  template <typename F>
  __device__ __forceinline__ static void run(int n, F&& f) {
    SAFESVD_BAND_UNROLL
    for (int j = 0; j < NC; ++j)
      if (j < n) f(j);
  }
};

// The max over a team's per-row values (every thread reads all n).
template <typename T>
__device__ __forceinline__ T team_max(const T* rows, int n) {
  T mx = T(0);
  for (int q = 0; q < n; ++q) mx = max_of(mx, rows[q]);
  return mx;
}

// The rows' gauge trackers merged in row order: the first largest note of the
// matrix, as GaugeTracker over the reference's row-major order of notes.
template <typename T>
__device__ __forceinline__ void team_write_gauge(const T* res, const T* gi, const T* gj, int n, T scale, T* out) {
  GaugeTracker<T> g;
  g.scale = scale;
  for (int q = 0; q < n; ++q) g.note(res[q], static_cast<int64_t>(gi[q]), static_cast<int64_t>(gj[q]));
  g.write(out);
}

template <bool SVD, int NC, typename T>
__global__ void __launch_bounds__(kMaxThreadsPerBlock, 1) team_band_kernel(BandArgs<T> a, int n) {
  using Loop = TeamLoop<NC>;
  const int P = team_row_stride(n), TILE = n * P, TEAMS = 32 / n;
  SAFESVD_DYNAMIC_SHARED(unsigned char, shared_raw);
  T* sh = reinterpret_cast<T*>(shared_raw);
  const int per_block = TEAMS * static_cast<int>(blockDim.x / 32);
  const int64_t b0 = static_cast<int64_t>(blockIdx.x) * per_block;
  const int count = static_cast<int>(a.count - b0 < per_block ? a.count - b0 : per_block);
  // Arrays of the block's matrices, each array contiguous over them.
  T *sU = sh, *sgU = sU + per_block * TILE, *sVh = sgU + per_block * TILE;
  T *sgVh = sVh + (SVD ? per_block * TILE : 0), *sS = sgVh + per_block * TILE, *sgS = sS + per_block * n;
  T *smaxU = sgS + per_block * n, *smaxV = smaxU + per_block * n, *sres = smaxV + per_block * n;
  T *sgi = sres + per_block * n, *sgj = sgi + per_block * n;
  stage(a.U, n, n, b0, count, sU, TILE, P, 1);
  if (a.gU.p) stage(a.gU, n, n, b0, count, sgU, TILE, P, 1);
  if (SVD) stage(a.Vh, n, n, b0, count, sVh, TILE, P, 1);
  if (SVD && a.gVh.p) stage(a.gVh, n, n, b0, count, sgVh, TILE, P, 1);
  stage(a.S, 1, n, b0, count, sS, n, 0, 1);
  if (a.gS.p) stage(a.gS, 1, n, b0, count, sgS, n, 0, 1);
  __syncthreads();

  // Thread -> (matrix, row). Lanes past the last team of a warp, and teams past
  // the batch's end, only take part in the warp barriers.
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int mt = warp * TEAMS + lane / n, r = lane % n;
  const bool active = lane < TEAMS * n && mt < count;
  const bool has_gU = a.gU.p != nullptr, has_gVh = SVD && a.gVh.p != nullptr;
  T *U = sU + mt * TILE, *gU = sgU + mt * TILE, *Vh = sVh + mt * TILE, *gVh = sgVh + mt * TILE;
  const T *S = sS + mt * n, *gS = sgS + mt * n;
  // Where the product tiles go once their inputs are read: svd's U^H gU and
  // Y = J Vh into gU, gVh V and gA into gVh; eigh's Q^H gQ and Y = J Q^H into
  // gQ, gA into the third tile (sVh).
  T* gA_tile = SVD ? gVh : Vh;

  // Phase 1: row r of U^H gU (p ascending, as matmul_adjoint_rows) and the row
  // maxima of |gU|; once the team has read gU, the product replaces it. Then the
  // same for gVh V (svd), into gVh. One row of accumulators is live at a time.
  T acc[NC];
  T cu = T(0), cv = T(0);
  if (active) {
    Loop::run(n, [&](int j) { acc[j] = T(0); });
    if (has_gU) {
      Loop::run(n, [&](int p) {
        const T u = U[p * P + r];
        Loop::run(n, [&](int j) { acc[j] += u * gU[p * P + j]; });
      });
      Loop::run(n, [&](int j) { cu = max_of(cu, abs_of(gU[r * P + j])); });
    }
    smaxU[mt * n + r] = cu;
  }
  __syncwarp();
  if (active) {
    Loop::run(n, [&](int j) { gU[r * P + j] = acc[j]; });
    if (SVD) {
      Loop::run(n, [&](int j) { acc[j] = T(0); });
      if (has_gVh) {
        Loop::run(n, [&](int p) {
          const T g = gVh[r * P + p];
          Loop::run(n, [&](int j) { acc[j] += g * Vh[j * P + p]; });
        });
        Loop::run(n, [&](int j) { cv = max_of(cv, abs_of(gVh[r * P + j])); });
      }
      smaxV[mt * n + r] = cv;
    }
  }
  __syncwarp();
  // Phase 2: gVh V replaces gVh; the cotangent scale and the matrix's guard.
  MatrixGuard<T> mg;
  T cscale = T(0);
  if (active) {
    if (SVD) Loop::run(n, [&](int j) { gVh[r * P + j] = acc[j]; });
    cscale = (has_gU ? team_max(smaxU + mt * n, n) : T(0)) + (has_gVh ? team_max(smaxV + mt * n, n) : T(0));
    mg = matrix_guard(a.params, max_abs(S, 1, n), cscale, 2 * n);
  }
  __syncwarp();
  // Phase 3: row r of J (svd_build_J / eigh_build_J for real input, notes in
  // their order), and as each J[r][j] is known, its term of row r of
  // Y = J Vh (svd) or J Q^H (eigh), so the sum over j runs in matmul_rows' order.
  T y[NC];
  if (active) {
    GaugeTracker<T> gauge;
    const T sr = mg.scale(S[r]);
    Loop::run(n, [&](int c) { y[c] = T(0); });
    Loop::run(n, [&](int j) {
      T Jrj;
      if (j == r) {
        Jrj = a.gS.p ? gS[r] : T(0);
      } else if (SVD) {
        const T am = gU[r * P + j] - gU[j * P + r];
        const T bm = gVh[j * P + r] - gVh[r * P + j];
        Jrj = svd_J_entry(mg, am, bm, sr, mg.scale(S[j]), gauge, r, j);
      } else {
        const T am = T(0.5) * (gU[r * P + j] - gU[j * P + r]);
        Jrj = eigh_J_entry(mg, am, mg.scale(S[j]) - sr, gauge, r, j);
      }
      // Vh[j][c] (svd); Q^H[j][c] = Q[c][j] (eigh, real).
      Loop::run(n, [&](int c) { y[c] += Jrj * (SVD ? Vh[j * P + c] : U[c * P + j]); });
    });
    sres[mt * n + r] = gauge.residual;
    sgi[mt * n + r] = T(gauge.i);
    sgj[mt * n + r] = T(gauge.j);
  }
  __syncwarp();
  if (active) {
    Loop::run(n, [&](int c) { gU[r * P + c] = y[c]; });
    if (r == 0) team_write_gauge(sres + mt * n, sgi + mt * n, sgj + mt * n, n, cscale, a.gauge + 3 * (b0 + mt));
  }
  __syncwarp();
  // Phase 4: row r of gA = U Y (svd) / Q Y (eigh), p ascending.
  if (active) {
    T g[NC];
    Loop::run(n, [&](int c) { g[c] = T(0); });
    Loop::run(n, [&](int p) {
      const T u = U[r * P + p];
      Loop::run(n, [&](int c) { g[c] += u * gU[p * P + c]; });
    });
    Loop::run(n, [&](int c) { gA_tile[r * P + c] = g[c]; });
  }
  __syncthreads();
  unstage(SVD ? sgVh : sVh, n, n, TILE, P, 1, b0, count, a.gA);
}

// ------------------------------------------------------------ launch shapes

// Band "registers": the most threads (a multiple of 32, at most
// kMaxThreadsPerBlock) whose matrices fit in kSharedBytesPerBlock.
inline LaunchShape registers_band_shape(int64_t count, int elements, int scalar_bytes) {
  int threads = kMaxThreadsPerBlock;
  while (threads > 32 && elements * conflict_free_stride(threads) * scalar_bytes > kSharedBytesPerBlock) threads -= 32;
  return {threads, (count + threads - 1) / threads,
          static_cast<size_t>(elements * conflict_free_stride(threads) * scalar_bytes)};
}

// Band "team": the most warps (at most kMaxThreadsPerBlock / 32) whose matrices
// fit in kSharedBytesPerBlock.
inline LaunchShape team_band_shape(int64_t count, int n, int elements, int scalar_bytes) {
  const int teams = 32 / n;
  int warps = kMaxThreadsPerBlock / 32;
  while (warps > 1 && int64_t(warps) * teams * elements * scalar_bytes > kSharedBytesPerBlock) --warps;
  const int per_block = warps * teams;
  return {32 * warps, (count + per_block - 1) / per_block,
          static_cast<size_t>(int64_t(per_block) * elements * scalar_bytes)};
}

template <bool SVD, int M, int N, typename T>
void launch_registers_band(const BandArgs<T>& a, cudaStream_t stream) {
  if (a.count == 0) return;
  const LaunchShape s = registers_band_shape(a.count, registers_band_elements<M, N>(SVD), sizeof(T));
  SAFESVD_LAUNCH(registers_band_kernel<SVD, M, N, T>, dim3(static_cast<unsigned>(s.blocks)), dim3(s.threads),
                 s.shared_bytes, stream)(a);
  SAFESVD_LAUNCH_CHECK();
}

template <int M, int N, typename T>
void SvdRegistersBand<M, N, T>::launch(const BandArgs<T>& a, cudaStream_t stream) {
  launch_registers_band<true, M, N, T>(a, stream);
}
template <int N, typename T>
void EighRegistersBand<N, T>::launch(const BandArgs<T>& a, cudaStream_t stream) {
  launch_registers_band<false, N, N, T>(a, stream);
}

// n in 5..32 on the kernel of capacity NC >= n.
template <bool SVD, int NC, typename T>
void TeamBand<SVD, NC, T>::launch(const BandArgs<T>& a, int n, cudaStream_t stream) {
  if (a.count == 0) return;
  const LaunchShape s = team_band_shape(a.count, n, team_band_elements(n, SVD), sizeof(T));
  SAFESVD_LAUNCH(team_band_kernel<SVD, NC, T>, dim3(static_cast<unsigned>(s.blocks)), dim3(s.threads),
                 s.shared_bytes, stream)(a, n);
  SAFESVD_LAUNCH_CHECK();
}

}  // namespace cuda
}  // namespace kernels
}  // namespace safesvd

#undef SAFESVD_BAND_UNROLL

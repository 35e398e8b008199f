// D = X Y for one real n x n product of the batched backward's matrix products on the CPU
// (docs/architecture.md, "Batched backward"): D column-major (D(i, j) at D[j * ldd + i]),
// X with unit stride down its columns (X(i, k) at X[k * ldx + i]), Y any strides
// (Y(k, j) at Y[k * ysk + j * ysj]). Blocks of IB rows by JB columns of D are summed in
// registers over k, each step a run of IB contiguous entries of X's column k times one
// entry of Y (broadcast): IB / lanes loads and one broadcast for JB IB / lanes fmas.
// Measured (2-core AMD EPYC Zen 4, AVX-512, one thread, 500 products of 64 x 64 in
// float64): 33 GFLOP/s where torch's bmm (MKL) reached 19 (MKL: 28 at 128 x 128, 43 at
// 512; this kernel is used, and was measured, up to 64 only). The same 64 x 64 products
// with their operands in cache: 52 GFLOP/s, the core's fma peak; the batch streams them
// from memory. Sizes that are not a multiple of the rows of a block (float32 24, 31, 40,
// 56: 7-18 GFLOP/s with their last rows one at a time) run at 52-77 GFLOP/s since the last
// rows take a zero-padded vector block.
//
// Host only; compiled per instruction set inside a namespace of the variant's own
// (csrc/cpu/isa/soa_isa.inc, band "builders"), with the vector's lanes for T as the
// template parameter V of small_gemm. The sums run k = 0, 1, ..., n - 1 in order, one fma a term
// where the ISA has FMA: the result differs from BLAS's in the rounding only.
#pragma once

// (The standard headers come from the includer, csrc/cpu/isa/isa_prelude.h.)
#include "jacobi.h"

#if defined(_OPENMP)
#define SAFESVD_GEMM_SIMD _Pragma("omp simd")
#elif defined(__GNUC__)
#define SAFESVD_GEMM_SIMD _Pragma("GCC ivdep")
#else
#define SAFESVD_GEMM_SIMD
#endif

namespace safesvd {
namespace kernels {

// The largest n the kernel takes (the CPU's small_bmm sends larger products to BLAS).
constexpr int64_t kSmallGemmMaxDim = 64;

namespace gemm_detail {

using jacobi_detail::jfma;

// One fma a term: the hardware instruction where the unit's instruction set has it
// (SAFESVD_ISA_FMA, set by the generated unit from csrc/manifest.txt), else jfma. Not jfma
// alone: jacobi.h tests __FMA__, which GCC's target pragma does not define, and the units
// that compile this kernel (soa_isa.inc) turn FMA contraction off, so jfma there was a
// multiply and an add. On Intel cores, whose adds and multiplies share the two FMA ports,
// that halved the kernel's rate (docs/architecture.md, "Batched backward"); AMD's Zen 4
// adds on pipes of their own and lost nothing.
#if SAFESVD_ISA_PRAGMAS && defined(SAFESVD_ISA_FMA) && SAFESVD_ISA_FMA
inline float gemm_fma(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
inline double gemm_fma(double a, double b, double c) { return __builtin_fma(a, b, c); }
#else
template <typename T>
inline T gemm_fma(T a, T b, T c) {
  return jfma(a, b, c);
}
#endif

// The next product's operands, brought into the cache a line per step of the k loops of
// this one (two regions, X's then Y's). A batch streams its matrices from memory, and the
// hardware prefetcher does not run ahead across the jumps between a block's columns:
// measured (standalone, one thread, 2-core Intel Xeon with AVX-512, 500 products of
// 64 x 64 float64 streaming from memory), 33-44 GFLOP/s without, 46-51 with; 52-57 with
// the 6-column blocks below. No effect on the results (a prefetch changes no value).
struct GemmPrefetch {
  const char* p[2] = {nullptr, nullptr};
  int64_t bytes[2] = {0, 0};
  int64_t at = 0;  // bytes done, over both regions
  inline void step() {
    if (at < bytes[0])
      __builtin_prefetch(p[0] + at, 0, 3);
    else if (at - bytes[0] < bytes[1])
      __builtin_prefetch(p[1] + (at - bytes[0]), 0, 3);
    else
      return;
    at += 64;
  }
};

// Rows [i0, i0 + IB) by columns [j0, j0 + JB) of D.
template <int IB, int JB, typename T>
inline void gemm_block(int64_t n, const T* __restrict__ X, int64_t ldx, const T* __restrict__ Y, int64_t ysk,
                       int64_t ysj, T* __restrict__ D, int64_t ldd, int64_t i0, int64_t j0, GemmPrefetch& pf) {
  T acc[JB][IB];
  for (int j = 0; j < JB; ++j) {
    SAFESVD_GEMM_SIMD
    for (int i = 0; i < IB; ++i) acc[j][i] = T(0);
  }
  for (int64_t k = 0; k < n; ++k) {
    const T* x = X + k * ldx + i0;
    pf.step();
    for (int j = 0; j < JB; ++j) {
      const T y = Y[k * ysk + (j0 + j) * ysj];
      SAFESVD_GEMM_SIMD
      for (int i = 0; i < IB; ++i) acc[j][i] = gemm_fma(x[i], y, acc[j][i]);
    }
  }
  for (int j = 0; j < JB; ++j) {
    SAFESVD_GEMM_SIMD
    for (int i = 0; i < IB; ++i) D[(j0 + j) * ldd + i0 + i] = acc[j][i];
  }
}

// Rows [i0, i0 + IB) by every column, JB at a time, the last columns 4, 2, then 1 at a time.
template <int IB, int JB, typename T>
inline void gemm_rows(int64_t n, const T* X, int64_t ldx, const T* Y, int64_t ysk, int64_t ysj, T* D, int64_t ldd,
                      int64_t i0, GemmPrefetch& pf) {
  int64_t j0 = 0;
  for (; j0 + JB <= n; j0 += JB) gemm_block<IB, JB, T>(n, X, ldx, Y, ysk, ysj, D, ldd, i0, j0, pf);
  if constexpr (JB > 4) {
    if (j0 + 4 <= n) {
      gemm_block<IB, 4, T>(n, X, ldx, Y, ysk, ysj, D, ldd, i0, j0, pf);
      j0 += 4;
    }
  }
  if constexpr (JB > 2) {
    if (j0 + 2 <= n) {
      gemm_block<IB, 2, T>(n, X, ldx, Y, ysk, ysj, D, ldd, i0, j0, pf);
      j0 += 2;
    }
  }
  for (; j0 < n; ++j0) gemm_block<IB, 1, T>(n, X, ldx, Y, ysk, ysj, D, ldd, i0, j0, pf);
}

// The last t = n - i0 rows, 2 <= t < V (n <= kSmallGemmMaxDim). Half a vector or more
// (V >= 8): a block of V / 2 rows straight from X (a vector of half the width), then the
// rest the same way with V / 2. Fewer: X's rows copied into a panel of V rows with zeros
// below them, one block of V rows over it, its first t rows copied out. (One row at a
// time, the rows were scalar code: float 24 x 24 ran at a quarter of the speed of 32 x 32
// on AVX-512, its last 8 rows taking most of the time. Padded to a whole vector they cost
// what 16 rows cost: the eigh backward at float32 24 x 24 ran 1.2x the time it took with
// torch.bmm on the 2-core Intel Xeon, 1.0x with the half vector.)
template <int V, typename T>
inline void gemm_tail_rows(int64_t n, const T* X, int64_t ldx, const T* Y, int64_t ysk, int64_t ysj, T* D,
                           int64_t ldd, int64_t i0, GemmPrefetch& pf) {
  if constexpr (V >= 8) {
    if (n - i0 >= V / 2) {
      gemm_rows<V / 2, 8, T>(n, X, ldx, Y, ysk, ysj, D, ldd, i0, pf);
      i0 += V / 2;
    }
    if (n - i0 >= 2)
      gemm_tail_rows<V / 2, T>(n, X, ldx, Y, ysk, ysj, D, ldd, i0, pf);
    else if (n - i0 == 1)
      gemm_rows<1, 4, T>(n, X, ldx, Y, ysk, ysj, D, ldd, i0, pf);
    return;
  }
  alignas(64) T Xt[kSmallGemmMaxDim * V];
  alignas(64) T Dt[kSmallGemmMaxDim * V];
  const int64_t t = n - i0;
  for (int64_t k = 0; k < n; ++k)
    for (int64_t i = 0; i < V; ++i) Xt[k * V + i] = i < t ? X[k * ldx + i0 + i] : T(0);
  gemm_rows<V, 8, T>(n, Xt, V, Y, ysk, ysj, Dt, V, 0, pf);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t i = 0; i < t; ++i) D[j * ldd + i0 + i] = Dt[j * V + i];
}

}  // namespace gemm_detail

// D = X Y (the layouts above), 0 <= n <= kSmallGemmMaxDim. V: the ISA's lanes for T. Row
// blocks of 4 vectors by 6 columns (24 accumulators) where there are 32 vector registers
// (V = 8 doubles or 16 floats: AVX-512), else 3 vectors by 4 columns (12 of 16 registers);
// of the whole vectors left, two in one block by 6 columns, three in one by 8, one by 8;
// the last n % V rows from half a vector up in half-width blocks, then a zero-padded block
// (gemm_tail_rows), or as scalar code when one row is left. Measured on AVX-512 when the
// kernel was written (500 products, one thread, GFLOP/s): float64 48 (two vectors left)
// 34-36 -> 39-42 with the 6-column block; three single vectors by 4 columns (float64 24)
// 50, as one block of three by 6 or 8 columns 45. On the 2-core Intel Xeon the other way
// round: inside the backward op, three single vectors by 4 columns (float32 48) took 1.2x
// MKL's time, the block of three by 8 1.0x (docs/architecture.md, "Batched backward");
// 64 x 64 float64 with its operands in cache, 4 vectors by 4 columns 60-68, by 6 71-75.
// Every entry of D is the same k-ordered sum whichever block computes it.
// next_X, next_Y: the next product's operands (same layouts), prefetched (GemmPrefetch);
// null for none.
template <int V, typename T>
void small_gemm(int64_t n, const T* X, int64_t ldx, const T* Y, int64_t ysk, int64_t ysj, T* D, int64_t ldd,
                const T* next_X = nullptr, const T* next_Y = nullptr) {
  using namespace gemm_detail;
  constexpr bool wide = V * sizeof(T) >= 64;  // 32 vector registers
  constexpr int R = wide ? 4 : 3;             // vectors per row block
  constexpr int JB = wide ? 6 : 4;            // columns per row block
  GemmPrefetch pf;
  if (next_X != nullptr && next_Y != nullptr && n > 0) {
    // The entries' extents: X(i, k) at k ldx + i, Y(k, j) at k ysk + j ysj.
    const int64_t ylo = (ysk < 0 ? (n - 1) * ysk : 0) + (ysj < 0 ? (n - 1) * ysj : 0);
    const int64_t yhi = (ysk > 0 ? (n - 1) * ysk : 0) + (ysj > 0 ? (n - 1) * ysj : 0);
    pf.p[0] = reinterpret_cast<const char*>(next_X);
    pf.bytes[0] = ((n - 1) * ldx + n) * int64_t(sizeof(T));
    pf.p[1] = reinterpret_cast<const char*>(next_Y + ylo);
    pf.bytes[1] = (yhi - ylo + 1) * int64_t(sizeof(T));
  }
  int64_t i0 = 0;
  for (; i0 + R * V <= n; i0 += R * V) gemm_rows<R * V, JB, T>(n, X, ldx, Y, ysk, ysj, D, ldd, i0, pf);
  if ((n - i0) / V == 2) {
    gemm_rows<2 * V, 6, T>(n, X, ldx, Y, ysk, ysj, D, ldd, i0, pf);  // two whole vectors left
    i0 += 2 * V;
  }
  if ((n - i0) / V == 3) {
    gemm_rows<3 * V, 8, T>(n, X, ldx, Y, ysk, ysj, D, ldd, i0, pf);  // three whole vectors left
    i0 += 3 * V;
  }
  for (; i0 + V <= n; i0 += V) gemm_rows<V, 8, T>(n, X, ldx, Y, ysk, ysj, D, ldd, i0, pf);
  if (n - i0 >= 2 && n <= kSmallGemmMaxDim)  // (the panel's size; the caller keeps n within it)
    gemm_tail_rows<V, T>(n, X, ldx, Y, ysk, ysj, D, ldd, i0, pf);
  else  // one row: cheaper as scalar code than padded
    for (; i0 < n; ++i0) gemm_rows<1, 4, T>(n, X, ldx, Y, ysk, ysj, D, ldd, i0, pf);
}

}  // namespace kernels
}  // namespace safesvd

#undef SAFESVD_GEMM_SIMD

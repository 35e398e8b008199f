// The SVD of tall (and, transposed, wide) matrices through QR (docs/jacobi.md, "Tall and
// wide input"): A = Q R by Householder reflections, the square engine on R = U_R S V^T,
// then U = Q [U_R; 0]. One matrix per SIMD lane, as jacobi.h; M (the long side) is a
// run-time value, N (the short side, 2..16) a template argument.
//
// Layout: a tile holds W matrices column by column: element (i, j) of lane l at
// A[(j * M + i) * W + l], so every column is contiguous over its rows and lanes (the
// reflections and the final product walk columns). The caller scales nothing: the
// tile is scaled here by a power of two (max |a_ij| in [1, 2), as scale_tile), so
// sums of squares neither overflow nor underflow on any finite input.
//
// Host+device templates, no ATen; the CPU compiles this per instruction set inside a
// namespace of the variant's own (csrc/cpu/isa/jacobi_band.inc, band "tall").
#pragma once

#include "strided.h"  // SAFESVD_HD before jacobi.h, which undefines its own
#include "jacobi.h"

#if defined(__CUDACC__)
#define SAFESVD_TALL_SIMD
#elif defined(_OPENMP)
#define SAFESVD_TALL_SIMD _Pragma("omp simd")
#elif defined(__GNUC__)
#define SAFESVD_TALL_SIMD _Pragma("GCC ivdep")
#else
#define SAFESVD_TALL_SIMD
#endif

namespace safesvd {
namespace kernels {
namespace tall_detail {

using jacobi_detail::jfma;
using jacobi_detail::jsqrt;
using jacobi_detail::recip_where;
using jacobi_detail::Tr;

// Scale lanes of an E-element tile (E at run time) by powers of two so that max |a| is in
// [1, 2); inv[l] undoes it, ok[l] = 0 marks a non-finite lane (its entries zeroed). The
// run-time form of jacobi_detail::scale_tile.
template <int W, typename T>
SAFESVD_HD void scale_columns(T* A, int64_t E, T* inv, typename Tr<T>::I* ok) {
  using I = typename Tr<T>::I;
  using B = typename Tr<T>::B;
  T amax[W];
  SAFESVD_TALL_SIMD
  for (int l = 0; l < W; ++l) {
    amax[l] = T(0);
    ok[l] = I(1);
  }
  for (int64_t e = 0; e < E; ++e) {
    SAFESVD_TALL_SIMD
    for (int l = 0; l < W; ++l) {
      const T a = jacobi_detail::jabs(A[e * W + l]);
      amax[l] = a > amax[l] ? a : amax[l];
      ok[l] &= I(a <= Tr<T>::max_finite());
    }
  }
  T scale[W];
  SAFESVD_TALL_SIMD
  for (int l = 0; l < W; ++l) {
    const T lo = jacobi_detail::from_bits<T>(B(Tr<T>::kBias - Tr<T>::kExpClamp) << Tr<T>::kMant);
    const T hi = jacobi_detail::from_bits<T>(B(Tr<T>::kBias + Tr<T>::kExpClamp) << Tr<T>::kMant);
    T m = amax[l] < lo ? lo : amax[l];
    m = m > hi ? hi : m;
    const B be = jacobi_detail::to_bits(m) >> Tr<T>::kMant;
    const B bias = B(Tr<T>::kBias);
    scale[l] = jacobi_detail::from_bits<T>((bias + bias - be) << Tr<T>::kMant);
    inv[l] = jacobi_detail::from_bits<T>(be << Tr<T>::kMant);
  }
  for (int64_t e = 0; e < E; ++e) {
    SAFESVD_TALL_SIMD
    for (int l = 0; l < W; ++l) {
      const T a = ok[l] ? A[e * W + l] : T(0);
      A[e * W + l] = a * scale[l];
    }
  }
}

// out[l] = sum over rows i in [i0, i1) of x[i * W + l] * y[i * W + l], accumulated in
// kParts interleaved partial sums added pairwise: the rounding error grows with
// (i1 - i0) / kParts rather than with the length (a long side of 1000 rows in float32
// otherwise loses a factor ~10 of accuracy against LAPACK's blocked dot products).
constexpr int kParts = 8;
template <int W, typename T>
SAFESVD_HD void column_dot(const T* x, const T* y, int64_t i0, int64_t i1, T* out) {
  T part[kParts][W];
  for (int r = 0; r < kParts; ++r) {
    SAFESVD_TALL_SIMD
    for (int l = 0; l < W; ++l) part[r][l] = T(0);
  }
  int64_t i = i0;
  for (; i + kParts <= i1; i += kParts)
    for (int r = 0; r < kParts; ++r) {
      SAFESVD_TALL_SIMD
      for (int l = 0; l < W; ++l) part[r][l] = jfma(x[(i + r) * W + l], y[(i + r) * W + l], part[r][l]);
    }
  for (int r = 0; i < i1; ++i, ++r) {
    SAFESVD_TALL_SIMD
    for (int l = 0; l < W; ++l) part[r][l] = jfma(x[i * W + l], y[i * W + l], part[r][l]);
  }
  SAFESVD_TALL_SIMD
  for (int l = 0; l < W; ++l)
    out[l] = ((part[0][l] + part[1][l]) + (part[2][l] + part[3][l])) +
             ((part[4][l] + part[5][l]) + (part[6][l] + part[7][l]));
}

// Apply H_j = I - tau v v^T (v = [1, A(j+1.., j)] stored below the diagonal of column j)
// to rows j.. of the columns [c0, c1) of the M-row column-major tile X.
template <int W, typename T>
SAFESVD_HD void apply_reflector(const T* A, int64_t M, int j, const T* tau, T* X, int c0, int c1) {
  static_assert(kParts == 8, "column_dot adds eight partial sums");
  const T* v = A + (int64_t(j) * M) * W;
  for (int c = c0; c < c1; ++c) {
    T* x = X + (int64_t(c) * M) * W;
    T w[W];
    column_dot<W, T>(v, x, j + 1, M, w);
    SAFESVD_TALL_SIMD
    for (int l = 0; l < W; ++l) w[l] += x[j * W + l];
    SAFESVD_TALL_SIMD
    for (int l = 0; l < W; ++l) {
      w[l] *= tau[j * W + l];
      x[j * W + l] -= w[l];
    }
    for (int64_t i = j + 1; i < M; ++i) {
      SAFESVD_TALL_SIMD
      for (int l = 0; l < W; ++l) x[i * W + l] = jfma(-w[l], v[i * W + l], x[i * W + l]);
    }
  }
}

}  // namespace tall_detail

// Scratch (in T) of tall_svd_tile<N, W, T> besides the M x N tile and the M x N U tile:
// R, U_R, S, V (the square engine's tiles) and tau.
template <int N, int W>
SAFESVD_HD constexpr int64_t tall_svd_scratch() {
  return int64_t(N * N + N * N + N + N * N + N) * W;
}

// SVD of W tall matrices M x N (M >= N, column-major lane tile A, destroyed): U (M x N,
// same layout), S (N values per lane, descending), V (N x N, the square engine's
// row-major lane layout, V not V^T). info as jacobi_svd_tile (2: non-finite input,
// outputs NaN). scratch: tall_svd_scratch<N, W>() values.
template <int N, int W, typename T>
SAFESVD_HD void tall_svd_tile(T* A, int64_t M, T* U, T* S, T* V, int* info, int max_sweeps, T* scratch) {
  static_assert(N >= 2 && N <= 16, "the short side is 2..16");
  using namespace tall_detail;
  using I = typename Tr<T>::I;
  T* R = scratch;               // N x N, row-major lanes (the square engine's input)
  T* UR = R + N * N * W;        // N x N
  T* SR = UR + N * N * W;       // N
  T* VR = SR + N * W;           // N x N
  T* tau = VR + N * N * W;      // N
  T inv[W];
  I ok[W];
  scale_columns<W, T>(A, M * N, inv, ok);

  // Householder QR (LAPACK's larfg): column j's reflector maps A(j.., j) to beta e_1,
  // beta = -sign(a_jj) ||A(j.., j)||, v = [1, A(j+1.., j) / (a_jj - beta)],
  // tau = (beta - a_jj) / beta; tau = 0 (H = I) where the column below the diagonal is 0.
  for (int j = 0; j < N; ++j) {
    T* a = A + (int64_t(j) * M) * W;
    T sum2[W], scale_v[W];
    column_dot<W, T>(a, a, j + 1, M, sum2);
    SAFESVD_TALL_SIMD
    for (int l = 0; l < W; ++l) {
      const T x0 = a[j * W + l];
      const bool reflect = sum2[l] > T(0);
      const T nrm = jsqrt(jfma(x0, x0, sum2[l]));
      const T beta = reflect ? (x0 >= T(0) ? -nrm : nrm) : x0;
      tau[j * W + l] = (beta - x0) * recip_where(reflect, beta);
      scale_v[l] = recip_where(reflect, x0 - beta);
      a[j * W + l] = beta;  // R(j, j)
    }
    for (int64_t i = j + 1; i < M; ++i) {
      SAFESVD_TALL_SIMD
      for (int l = 0; l < W; ++l) a[i * W + l] *= scale_v[l];
    }
    apply_reflector<W, T>(A, M, j, tau, A, j + 1, N);
  }
  // R (upper triangle of the tile's first N rows) into the square engine's layout.
  for (int i = 0; i < N; ++i)
    for (int c = 0; c < N; ++c) {
      SAFESVD_TALL_SIMD
      for (int l = 0; l < W; ++l) R[(i * N + c) * W + l] = c >= i ? A[(int64_t(c) * M + i) * W + l] : T(0);
    }
  jacobi_svd_tile<N, N, false, W, T>(R, UR, SR, VR, W, info, max_sweeps);

  // U = Q [U_R; 0] = H_0 H_1 ... H_{N-1} [U_R; 0], the reflectors applied last to first.
  for (int c = 0; c < N; ++c) {
    T* u = U + (int64_t(c) * M) * W;
    for (int i = 0; i < N; ++i) {
      SAFESVD_TALL_SIMD
      for (int l = 0; l < W; ++l) u[i * W + l] = UR[(i * N + c) * W + l];
    }
    for (int64_t i = N; i < M; ++i) {
      SAFESVD_TALL_SIMD
      for (int l = 0; l < W; ++l) u[i * W + l] = T(0);
    }
  }
  for (int j = N - 1; j >= 0; --j) apply_reflector<W, T>(A, M, j, tau, U, 0, N);

  // Undo the scaling; NaN for non-finite input (the engine saw zeros there).
  for (int j = 0; j < N; ++j) {
    SAFESVD_TALL_SIMD
    for (int l = 0; l < W; ++l) S[j * W + l] = (ok[l] ? SR[j * W + l] : jacobi_detail::quiet_nan<T>()) * inv[l];
  }
  for (int e = 0; e < N * N; ++e) {
    SAFESVD_TALL_SIMD
    for (int l = 0; l < W; ++l) V[e * W + l] = ok[l] ? VR[e * W + l] : jacobi_detail::quiet_nan<T>();
  }
  for (int64_t e = 0; e < M * N; ++e) {
    SAFESVD_TALL_SIMD
    for (int l = 0; l < W; ++l) U[e * W + l] = ok[l] ? U[e * W + l] : jacobi_detail::quiet_nan<T>();
  }
  for (int l = 0; l < W; ++l) info[l] = ok[l] ? info[l] : 2;
}

}  // namespace kernels
}  // namespace safesvd

#undef SAFESVD_TALL_SIMD

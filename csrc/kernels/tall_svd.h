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

// Scaling of lane tiles by powers of two, in three steps: lane_max_abs_finite over the
// entries that count, lane_power_of_two_scale from those maxima, lane_scale_entries over
// the entries to scale.
// amax[l] = max(amax[l], |x|) and ok[l] &= finite over E entries of lane layout.
template <int W, typename T>
SAFESVD_HD void lane_max_abs_finite(const T* x, int64_t E, T* amax, typename Tr<T>::I* ok) {
  using I = typename Tr<T>::I;
  for (int64_t e = 0; e < E; ++e) {
    SAFESVD_TALL_SIMD
    for (int l = 0; l < W; ++l) {
      const T a = jacobi_detail::jabs(x[e * W + l]);
      amax[l] = a > amax[l] ? a : amax[l];
      ok[l] &= I(a <= Tr<T>::max_finite());
    }
  }
}
// The power of two scale[l] that takes amax[l] into [1, 2) (clamped to the exponent range
// kExpClamp), and inv[l] = 1 / scale[l].
template <int W, typename T>
SAFESVD_HD void lane_power_of_two_scale(const T* amax, T* scale, T* inv) {
  using B = typename Tr<T>::B;
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
}
// x *= scale lane by lane over E entries; a lane with ok[l] = 0 is zeroed.
template <int W, typename T>
SAFESVD_HD void lane_scale_entries(T* x, int64_t E, const T* scale, const typename Tr<T>::I* ok) {
  for (int64_t e = 0; e < E; ++e) {
    SAFESVD_TALL_SIMD
    for (int l = 0; l < W; ++l) {
      const T a = ok[l] ? x[e * W + l] : T(0);
      x[e * W + l] = a * scale[l];
    }
  }
}

// Scale lanes of an E-element tile (E at run time) by powers of two so that max |a| is in
// [1, 2); inv[l] undoes it, ok[l] = 0 marks a non-finite lane (its entries zeroed). The
// run-time form of jacobi_detail::scale_tile.
template <int W, typename T>
SAFESVD_HD void scale_columns(T* A, int64_t E, T* inv, typename Tr<T>::I* ok) {
  T amax[W], scale[W];
  SAFESVD_TALL_SIMD
  for (int l = 0; l < W; ++l) {
    amax[l] = T(0);
    ok[l] = 1;
  }
  lane_max_abs_finite<W, T>(A, E, amax, ok);
  lane_power_of_two_scale<W, T>(amax, scale, inv);
  lane_scale_entries<W, T>(A, E, scale, ok);
}

// The same for the lower triangle of a column-major n x n lane tile (its diagonal and
// below: for a symmetric matrix the same max |a| as the whole tile); the strict upper
// triangle is neither read nor written.
template <int W, typename T>
SAFESVD_HD void scale_lower_triangle(T* A, int64_t n, T* inv, typename Tr<T>::I* ok) {
  T amax[W], scale[W];
  SAFESVD_TALL_SIMD
  for (int l = 0; l < W; ++l) {
    amax[l] = T(0);
    ok[l] = 1;
  }
  for (int64_t j = 0; j < n; ++j) lane_max_abs_finite<W, T>(A + (j * n + j) * W, n - j, amax, ok);
  lane_power_of_two_scale<W, T>(amax, scale, inv);
  for (int64_t j = 0; j < n; ++j) lane_scale_entries<W, T>(A + (j * n + j) * W, n - j, scale, ok);
}

constexpr int kParts = 8;
// out[l] = sum over rows i in [i0, i1) of x[i * W + l] * y[i * W + l], accumulated in
// kParts interleaved partial sums added pairwise: the rounding error grows with
// (i1 - i0) / kParts rather than with the length (a long side of 1000 rows in float32
// otherwise loses a factor ~10 of accuracy against LAPACK's blocked dot products).
// Each partial sum starts at its first row, fma(x, y, 0) (as accumulating into a zero),
// or at zero where the range is shorter than kParts: filled with zeros first, the
// kParts W sums became a `rep stos` (g++ 12's memset idiom), 7% of the 9x3 float64
// forward's profile (docs/jacobi.md, "Tall and wide input", has the timings).
template <int W, typename T>
SAFESVD_HD void column_dot(const T* x, const T* y, int64_t i0, int64_t i1, T* out) {
  T part[kParts][W];
  for (int r = 0; r < kParts; ++r) {
    if (i0 + r < i1) {
      SAFESVD_TALL_SIMD
      for (int l = 0; l < W; ++l) part[r][l] = jfma(x[(i0 + r) * W + l], y[(i0 + r) * W + l], T(0));
    } else {
      SAFESVD_TALL_SIMD
      for (int l = 0; l < W; ++l) part[r][l] = T(0);
    }
  }
  int64_t i = i0 + kParts;  // past i1 where the range is shorter: the loops below do nothing
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

// x(0:m) = T(0:m, 0:m) x(0:m) in place for an upper triangular T (element (p, q) of lane
// l at Tm[(p * ld + q) * W + l]), x's element q at x[q * xs * W + l], each row times
// scale[l] when kScaled: row p reads x[q] for q >= p only, so ascending rows need no copy.
// The WY form's T column (wy_t_column) and the z = T y of its application
// (tridiag_eigh.h, apply_reflector_block).
template <bool kScaled, int W, typename T>
SAFESVD_HD void upper_times_in_place(const T* Tm, int ld, int m, T* x, int xs, const T* scale) {
  for (int p = 0; p < m; ++p) {
    T acc[W];
    SAFESVD_TALL_SIMD
    for (int l = 0; l < W; ++l) acc[l] = T(0);
    for (int q = p; q < m; ++q) {
      SAFESVD_TALL_SIMD
      for (int l = 0; l < W; ++l) acc[l] = jfma(Tm[(p * ld + q) * W + l], x[q * xs * W + l], acc[l]);
    }
    SAFESVD_TALL_SIMD
    for (int l = 0; l < W; ++l) x[p * xs * W + l] = kScaled ? scale[l] * acc[l] : acc[l];
  }
}

// Column j of the compact WY form's T (LAPACK's larft, forward, columnwise): on entry
// Tm(0:j, j) holds g = Y(:, 0:j)^T y_j; on exit T(0:j, j) = -tau_j T(0:j, 0:j) g, in place,
// and T_jj = tau_j. Element (p, q) of lane l at Tm[(p * ld + q) * W + l]. Shared by
// form_u_wy and the mid-size eigh's back-transformation (tridiag_eigh.h,
// apply_reflector_block).
template <int W, typename T>
SAFESVD_HD void wy_t_column(T* Tm, int ld, int j, const T* tau_j) {
  T minus_tau[W];
  SAFESVD_TALL_SIMD
  for (int l = 0; l < W; ++l) minus_tau[l] = -tau_j[l];
  upper_times_in_place<true, W, T>(Tm, ld, j, Tm + j * W, ld, minus_tau);
  SAFESVD_TALL_SIMD
  for (int l = 0; l < W; ++l) Tm[(j * ld + j) * W + l] = tau_j[l];
}

// U = Q [U_R; 0] for Q = H_0 H_1 ... H_{N-1} in the compact WY form Q = I - Y T Y^T
// (LAPACK's larft, forward, columnwise): Y (M x N, unit lower trapezoidal) holds the
// reflectors below the diagonal of the QR tile A, T is upper triangular with T_jj = tau_j
// and T(0:j, j) = -tau_j T(0:j, 0:j) Y(:, 0:j)^T y_j. Then U = [U_R; 0] - Y Z with
// Z = T (Y_1^T U_R), Y_1 the top N x N block: one pass over the long side, each row of U
// a sum of N products (applying the N reflectors one column at a time walked the tile
// 2 N^2 times, docs/jacobi.md "Tall and wide input"). The dot products Y^T y_j run over
// the long side with column_dot's partial sums. Tm, Z: N x N each (stride W).
constexpr int kWyFrom = 4;
template <int N, int W, typename T>
SAFESVD_HD void form_u_wy(const T* A, int64_t M, const T* tau, const T* UR, T* U, T* Tm, T* Z) {
  for (int j = 0; j < N; ++j) {
    const T* yj = A + (int64_t(j) * M) * W;
    for (int p = 0; p < j; ++p) {  // y_p^T y_j: y_j is 0 above row j and 1 at row j
      const T* yp = A + (int64_t(p) * M) * W;
      T g[W];
      column_dot<W, T>(yp, yj, j + 1, M, g);
      SAFESVD_TALL_SIMD
      for (int l = 0; l < W; ++l) Tm[(p * N + j) * W + l] = g[l] + yp[j * W + l];
    }
    wy_t_column<W, T>(Tm, N, j, tau + j * W);
  }
  // Z = Y_1^T U_R, then Z = T Z in place (row p reads rows q >= p).
  for (int p = 0; p < N; ++p) {
    T acc[N][W];
    for (int c = 0; c < N; ++c) {
      SAFESVD_TALL_SIMD
      for (int l = 0; l < W; ++l) acc[c][l] = UR[(p * N + c) * W + l];
    }
    for (int i = p + 1; i < N; ++i)
      for (int c = 0; c < N; ++c) {
        SAFESVD_TALL_SIMD
        for (int l = 0; l < W; ++l)
          acc[c][l] = jfma(A[(int64_t(p) * M + i) * W + l], UR[(i * N + c) * W + l], acc[c][l]);
      }
    for (int c = 0; c < N; ++c) {
      SAFESVD_TALL_SIMD
      for (int l = 0; l < W; ++l) Z[(p * N + c) * W + l] = acc[c][l];
    }
  }
  for (int p = 0; p < N; ++p) {
    T acc[N][W];
    for (int c = 0; c < N; ++c) {
      SAFESVD_TALL_SIMD
      for (int l = 0; l < W; ++l) acc[c][l] = T(0);
    }
    for (int q = p; q < N; ++q)
      for (int c = 0; c < N; ++c) {
        SAFESVD_TALL_SIMD
        for (int l = 0; l < W; ++l) acc[c][l] = jfma(Tm[(p * N + q) * W + l], Z[(q * N + c) * W + l], acc[c][l]);
      }
    for (int c = 0; c < N; ++c) {
      SAFESVD_TALL_SIMD
      for (int l = 0; l < W; ++l) Z[(p * N + c) * W + l] = acc[c][l];
    }
  }
  // U = [U_R; 0] - Y Z: the top N rows (Y unit lower triangular there), then the rest.
  for (int i = 0; i < N; ++i) {
    T acc[N][W];
    for (int c = 0; c < N; ++c) {
      SAFESVD_TALL_SIMD
      for (int l = 0; l < W; ++l) acc[c][l] = Z[(i * N + c) * W + l];
    }
    for (int p = 0; p < i; ++p)
      for (int c = 0; c < N; ++c) {
        SAFESVD_TALL_SIMD
        for (int l = 0; l < W; ++l) acc[c][l] = jfma(A[(int64_t(p) * M + i) * W + l], Z[(p * N + c) * W + l], acc[c][l]);
      }
    for (int c = 0; c < N; ++c) {
      SAFESVD_TALL_SIMD
      for (int l = 0; l < W; ++l) U[(int64_t(c) * M + i) * W + l] = UR[(i * N + c) * W + l] - acc[c][l];
    }
  }
  for (int64_t i = N; i < M; ++i) {
    T acc[N][W];
    for (int c = 0; c < N; ++c) {
      SAFESVD_TALL_SIMD
      for (int l = 0; l < W; ++l) acc[c][l] = T(0);
    }
    for (int p = 0; p < N; ++p) {
      const T* y = A + (int64_t(p) * M + i) * W;
      for (int c = 0; c < N; ++c) {
        SAFESVD_TALL_SIMD
        for (int l = 0; l < W; ++l) acc[c][l] = jfma(y[l], Z[(p * N + c) * W + l], acc[c][l]);
      }
    }
    for (int c = 0; c < N; ++c) {
      SAFESVD_TALL_SIMD
      for (int l = 0; l < W; ++l) U[(int64_t(c) * M + i) * W + l] = -acc[c][l];
    }
  }
}

// Before a Householder reflector is made from rows i0..i1-1 of a column x (lane
// layout; x[i0] the entry it keeps, sum2 = the sum of squares of rows i0+1..): where a
// lane's x_i0^2 + sum2 lies below min_normal / eps^2 (or is not finite), the rows are
// scaled by the power of two that takes their largest entry into [1, 2) and sum2 is
// made again from them; inv = the inverse scale (1 where nothing was scaled), by which
// the reflector's beta goes back. Such a column is rounding noise that earlier
// reflections left near or below the square root of the smallest normal number (the
// matrix itself is scaled to max |a| in [1, 2)): its squares fell into the subnormal
// range or vanished, the norm lost its digits and the reflector was not orthogonal (the
// all-ones 64 x 16 float64 svd: ||U^T U - I|| = 2.4e-4; the all-ones 24 x 24 float32
// eigh: ||Q^T Q - I|| = 0.25), as LAPACK's larfg rescales. The scaling is exact, and a
// lane that needs none runs as before, bit for bit, at the cost of one test per column
// (docs/jacobi.md, "Tall and wide input").
template <int W, typename T>
SAFESVD_HD void rescale_tiny_column(T* x, int64_t i0, int64_t i1, T* sum2, T* inv) {
  using I = typename Tr<T>::I;
  constexpr T low = Tr<T>::min_normal() / (Tr<T>::eps() * Tr<T>::eps());
  I need[W], finite[W];
  SAFESVD_TALL_SIMD
  for (int l = 0; l < W; ++l) {
    const T x0 = x[i0 * W + l], n2 = jfma(x0, x0, sum2[l]);
    need[l] = I(n2 > T(0) && !(n2 >= low && n2 <= Tr<T>::max_finite()));
    inv[l] = T(1);
    finite[l] = I(1);
  }
  if (!jacobi_detail::any_lane<W>(need)) return;
  T amax[W], scale[W];
  SAFESVD_TALL_SIMD
  for (int l = 0; l < W; ++l) amax[l] = T(0);
  lane_max_abs_finite<W, T>(x + i0 * W, i1 - i0, amax, finite);
  lane_power_of_two_scale<W, T>(amax, scale, inv);
  SAFESVD_TALL_SIMD
  for (int l = 0; l < W; ++l) {  // only the lanes that need it: each lane's result its own
    scale[l] = need[l] ? scale[l] : T(1);
    inv[l] = need[l] ? inv[l] : T(1);
  }
  lane_scale_entries<W, T>(x + i0 * W, i1 - i0, scale, finite);
  column_dot<W, T>(x, x, i0 + 1, i1, sum2);
}

}  // namespace tall_detail

// Scratch (in T) of tall_svd_tile<N, W, T> besides the M x N tile and the M x N U tile:
// R, U_R, S, V (the square engine's tiles), tau and Z (form_u_wy; T takes R's place).
template <int N, int W>
SAFESVD_HD constexpr int64_t tall_svd_scratch() {
  return int64_t(N * N + N * N + N + N * N + N + N * N) * W;
}

// The square engine on R: one-sided Jacobi (jacobi_svd_tile), R, U_R, V_R in its row-major
// lane layout. The CPU passes the mid-size engine for float64 from N = kMidFromDouble
// (csrc/cpu/isa/jacobi_band.inc, MidOnR).
struct JacobiOnR {
  template <int N, int W, typename T>
  SAFESVD_HD void run(T* R, T* UR, T* SR, T* VR, int* info, int max_sweeps) const {
    jacobi_svd_tile<N, N, false, W, T>(R, UR, SR, VR, W, info, max_sweeps);
  }
};

// SVD of W tall matrices M x N (M >= N, column-major lane tile A, destroyed): U (M x N,
// same layout), S (N values per lane, descending), V (N x N, the square engine's
// row-major lane layout, V not V^T). info as jacobi_svd_tile (2: non-finite input,
// outputs NaN). scratch: tall_svd_scratch<N, W>() values. `square` decomposes R
// (JacobiOnR's interface).
template <int N, int W, typename T, typename Square = JacobiOnR>
SAFESVD_HD void tall_svd_tile(T* A, int64_t M, T* U, T* S, T* V, int* info, int max_sweeps, T* scratch,
                              const Square& square = Square()) {
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
    T sum2[W], scale_v[W], ics[W];
    column_dot<W, T>(a, a, j + 1, M, sum2);
    rescale_tiny_column<W, T>(a, j, M, sum2, ics);
    SAFESVD_TALL_SIMD
    for (int l = 0; l < W; ++l) {
      const T x0 = a[j * W + l];
      const bool reflect = sum2[l] > T(0);
      const T nrm = jsqrt(jfma(x0, x0, sum2[l]));
      const T beta = reflect ? (x0 >= T(0) ? -nrm : nrm) : x0;
      tau[j * W + l] = (beta - x0) * recip_where(reflect, beta);
      scale_v[l] = recip_where(reflect, x0 - beta);
      a[j * W + l] = beta * ics[l];  // R(j, j)
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
  square.template run<N, W, T>(R, UR, SR, VR, info, max_sweeps);

  // U = Q [U_R; 0] = H_0 H_1 ... H_{N-1} [U_R; 0] (R's scratch is free now: T goes there).
  // From N = 4 in the WY form (64x16 float64: 3.0 -> 1.3 us a matrix, 256x8 3.9 -> 2.1);
  // below, the reflectors one at a time, last to first: the WY form gains nothing
  // measurable there (9x2, 12x3: 0.01 us) and rounds differently, 4.6x LAPACK's
  // reconstruction error on a rank-deficient 2x9 set without FMA (the gate is 4x).
  if constexpr (N >= kWyFrom) {
    form_u_wy<N, W, T>(A, M, tau, UR, U, R, tau + N * W);
  } else {
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
  }

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

// The mid-size symmetric eigendecomposition (docs/jacobi.md, "Mid-size eigh"): Householder
// tridiagonalization, the implicit QL algorithm with Wilkinson shifts on the tridiagonal
// matrix (its recurrences in a wider type), and the rotations accumulated into Q. About
// 9 n^3 flops, where two-sided Jacobi takes some 40 n^3; n is a run-time value (17..64 on
// the CPU).
//
// One matrix per SIMD lane, as jacobi.h. Layout: element (i, j) of lane l at
// A[(j * n + i) * W + l] (column-major lanes: the reflections and rotations walk
// columns). Every lane runs the same instructions: the QL sweeps run over the union of
// the lanes' active windows, a lane outside its window applies the identity rotation
// (c = 1, s = 0: exact) and keeps its recurrence, and the loop ends when every lane has
// deflated.
//
// Host+device templates, no ATen, no heap; the CPU compiles this per instruction set
// inside a namespace of the variant's own (csrc/cpu/isa/jacobi_band.inc, band "mid").
#pragma once

#include "strided.h"  // SAFESVD_HD before jacobi.h, which undefines its own
#include "tall_svd.h"

#if defined(__CUDACC__)
#define SAFESVD_MID_SIMD
#elif defined(_OPENMP)
#define SAFESVD_MID_SIMD _Pragma("omp simd")
#elif defined(__GNUC__)
#define SAFESVD_MID_SIMD _Pragma("GCC ivdep")
#else
#define SAFESVD_MID_SIMD
#endif

namespace safesvd {
namespace kernels {

// The type of the QL recurrences for T: float's run in double; double's in double, with
// the eigenvalues then refined by Rayleigh quotients (step 4 of tridiag_eigh_tile: the
// x87 long double would cost 1.6x in all).
template <typename T>
struct MidCompute {
  using type = double;
};

namespace mid_detail {
template <typename U> SAFESVD_HD U compute_fma(U a, U b, U c) { return a * b + c; }
template <typename U> SAFESVD_HD U compute_sqrt(U x) { return ::sqrt(x); }
SAFESVD_HD float compute_sqrt(float x) { return ::sqrtf(x); }
template <typename U> SAFESVD_HD U compute_abs(U x) { return x < U(0) ? -x : x; }
template <typename U> SAFESVD_HD U compute_recip_where(bool c, U x) { return c ? U(1) / x : U(0); }
}  // namespace mid_detail

// The stable sorting permutation of W lanes of n values (v[j * W + l]), ascending or
// descending: order[r * W + l] = the index of lane l's r-th value, equal values in index
// order. By ranks, r_j = #{k : v_k before v_j, or v_k = v_j and k < j}: n^2 comparisons
// for all lanes at once, without branches (the insertion sort it replaces, n^2 / 4
// mispredicted swaps per lane, was half the time of the mid-size eigh outside the
// kernel). The permutation is the insertion sort's. NaN (a lane of non-finite input, whose
// outputs are NaN) leaves ranks tied: order stays a list of valid indices.
template <int W, typename T>
SAFESVD_HD void lane_stable_order(const T* v, int64_t n, bool descending, int64_t* order) {
  for (int64_t j = 0; j < n; ++j) {
    SAFESVD_MID_SIMD
    for (int l = 0; l < W; ++l) order[j * W + l] = j;
  }
  for (int64_t j = 0; j < n; ++j) {
    int64_t rank[W];
    SAFESVD_MID_SIMD
    for (int l = 0; l < W; ++l) rank[l] = 0;
    for (int64_t k = 0; k < n; ++k) {
      SAFESVD_MID_SIMD
      for (int l = 0; l < W; ++l) {
        const T a = v[k * W + l], b = v[j * W + l];
        const bool before = descending ? a > b : a < b;
        rank[l] += (before || (a == b && k < j)) ? 1 : 0;
      }
    }
    for (int l = 0; l < W; ++l) order[(rank[l] < n ? rank[l] : n - 1) * W + l] = j;
  }
}

// QL rotations i0, i0-1, ..., i0-K+1 of one sweep applied to columns i0+1 .. i0-K+1 of Q,
// row by row: rotation i maps (z_i, z_i+1) to (c z_i - s z_i+1, c z_i+1 + s z_i), and the
// new z_i is the z_i+1 of rotation i-1. Every entry sees the same operations in the same
// order as K separate passes, with one load and one store per column instead of K.
template <int K, int W, typename T>
SAFESVD_HD void rotate_columns(T* Q, int64_t n, int64_t i0, const T (*cr)[W], const T (*sr)[W]) {
  using jacobi_detail::jfma;
  const T* top = Q + ((i0 + 1) * n) * W;
  for (int64_t row = 0; row < n; ++row) {
    SAFESVD_MID_SIMD
    for (int l = 0; l < W; ++l) {
      T x = top[row * W + l];
      for (int q = 0; q < K; ++q) {
        T* z = Q + ((i0 - q) * n + row) * W + l;
        const T a = *z;
        z[n * W] = jfma(cr[q][l], x, sr[q][l] * a);
        x = jfma(cr[q][l], a, -sr[q][l] * x);
      }
      Q[((i0 - K + 1) * n + row) * W + l] = x;
    }
  }
}

// Rotations per chunk of a QL sweep from n = kChunkedRotationsFrom: Q (64..256 KiB a tile
// at n = 48..64) no longer fits L1, and one pass over two of its columns per rotation was
// bound by L2 (QL step 10% faster at n = 64); below, the recurrence's latency dominates
// and the rotations are applied one by one, overlapping it.
constexpr int kRotationChunk = 8;
constexpr int64_t kChunkedRotationsFrom = 48;

// Q <- H_k0 H_k0+1 ... H_k0+B-1 Q for B reflectors of the tridiagonalization (v_k in
// column k of A, rows k+1.., v_k[k+1] = 1 stored), in the compact WY form I - V T V^T
// (LAPACK's larft, forward: T_jj = tau_j, T(0:j, j) = -tau_j T(0:j, 0:j) V(:, 0:j)^T v_j):
// per column of Q, y = V^T q with the B sums in registers, z = T y, q -= V z: two passes
// over the column (which stays in L1 between them) for the B reflectors, where applying
// them one at a time took 2 B passes, bound by L2 once the tile outgrows L1
// (docs/jacobi.md, "Mid-size eigh").
template <int B, int W, typename T>
SAFESVD_HD void apply_reflector_block(const T* A, int64_t n, int64_t k0, const T* tau, T* Q) {
  using jacobi_detail::jfma;
  const T* v[B];
  for (int p = 0; p < B; ++p) v[p] = A + ((k0 + p) * n) * W;
  T Tm[B * B * W];  // element (p, q) of lane l at Tm[(p * B + q) * W + l]
  for (int j = 0; j < B; ++j) {
    for (int p = 0; p < j; ++p) {  // v_p^T v_j over v_j's rows k0+j+1..
      T g[W];
      SAFESVD_MID_SIMD
      for (int l = 0; l < W; ++l) g[l] = T(0);
      for (int64_t i = k0 + j + 1; i < n; ++i) {
        SAFESVD_MID_SIMD
        for (int l = 0; l < W; ++l) g[l] = jfma(v[p][i * W + l], v[j][i * W + l], g[l]);
      }
      SAFESVD_MID_SIMD
      for (int l = 0; l < W; ++l) Tm[(p * B + j) * W + l] = g[l];
    }
    tall_detail::wy_t_column<W, T>(Tm, B, j, tau + (k0 + j) * W);
  }
  for (int64_t c = 0; c < n; ++c) {
    T* q = Q + (c * n) * W;
    T y[B][W];
    for (int p = 0; p < B; ++p) {
      SAFESVD_MID_SIMD
      for (int l = 0; l < W; ++l) y[p][l] = T(0);
    }
    // y = V^T q: rows k0+1 .. k0+B are inside the first r+1 reflectors only (r = i-k0-1).
    for (int r = 0; r < B; ++r) {
      const int64_t i = k0 + 1 + r;
      for (int p = 0; p <= r; ++p) {
        SAFESVD_MID_SIMD
        for (int l = 0; l < W; ++l) y[p][l] = jfma(v[p][i * W + l], q[i * W + l], y[p][l]);
      }
    }
    for (int64_t i = k0 + 1 + B; i < n; ++i)
      for (int p = 0; p < B; ++p) {
        SAFESVD_MID_SIMD
        for (int l = 0; l < W; ++l) y[p][l] = jfma(v[p][i * W + l], q[i * W + l], y[p][l]);
      }
    // z = T y in place (row p reads y[q], q >= p).
    for (int p = 0; p < B; ++p) {
      T acc[W];
      SAFESVD_MID_SIMD
      for (int l = 0; l < W; ++l) acc[l] = T(0);
      for (int qq = p; qq < B; ++qq) {
        SAFESVD_MID_SIMD
        for (int l = 0; l < W; ++l) acc[l] = jfma(Tm[(p * B + qq) * W + l], y[qq][l], acc[l]);
      }
      SAFESVD_MID_SIMD
      for (int l = 0; l < W; ++l) y[p][l] = acc[l];
    }
    // q -= V z.
    for (int r = 0; r < B; ++r) {
      const int64_t i = k0 + 1 + r;
      for (int p = 0; p <= r; ++p) {
        SAFESVD_MID_SIMD
        for (int l = 0; l < W; ++l) q[i * W + l] = jfma(-v[p][i * W + l], y[p][l], q[i * W + l]);
      }
    }
    for (int64_t i = k0 + 1 + B; i < n; ++i)
      for (int p = 0; p < B; ++p) {
        SAFESVD_MID_SIMD
        for (int l = 0; l < W; ++l) q[i * W + l] = jfma(-v[p][i * W + l], y[p][l], q[i * W + l]);
      }
  }
}
// Reflectors per block of the back-transformation (apply_reflector_block).
constexpr int kReflectorBlock = 8;

// Rows per register block of rows_times_vector (and of the mid-size svd's Gram matrix).
constexpr int kRowBlock = 8;
// out[(i0 + r) * W + l] = the sum over the columns c in [c0, c1), ascending from a zero
// accumulator, of X(i0 + r, c) v[c] (lane l), r < rows <= kRowBlock, for the column-major
// n-row lane tile X (element (i, c) at X[(c * n + i) * W + l]). The rows' sums stay in
// registers, so a load of v[c] feeds `rows` products and `out` is written once (a sum
// accumulated in memory is loaded and stored once per column). The tridiagonalization's
// p = A22 v and the mid-size svd's B = A V0 (mid_svd.h).
template <int W, typename T>
SAFESVD_HD void rows_times_vector(const T* __restrict__ X, int64_t n, int64_t i0, int rows, int64_t c0, int64_t c1,
                                  const T* __restrict__ v, T* __restrict__ out) {
  using jacobi_detail::jfma;
  T acc[kRowBlock][W];
  for (int r = 0; r < kRowBlock; ++r) {
    SAFESVD_MID_SIMD
    for (int l = 0; l < W; ++l) acc[r][l] = T(0);
  }
  if (rows == kRowBlock) {  // the full block, its row loop unrolled
    for (int64_t c = c0; c < c1; ++c)
      for (int r = 0; r < kRowBlock; ++r) {
        SAFESVD_MID_SIMD
        for (int l = 0; l < W; ++l) acc[r][l] = jfma(X[(c * n + i0 + r) * W + l], v[c * W + l], acc[r][l]);
      }
  } else {
    for (int64_t c = c0; c < c1; ++c)
      for (int r = 0; r < rows; ++r) {
        SAFESVD_MID_SIMD
        for (int l = 0; l < W; ++l) acc[r][l] = jfma(X[(c * n + i0 + r) * W + l], v[c * W + l], acc[r][l]);
      }
  }
  for (int r = 0; r < rows; ++r) {
    SAFESVD_MID_SIMD
    for (int l = 0; l < W; ++l) out[(i0 + r) * W + l] = acc[r][l];
  }
}

// Scratch of tridiag_eigh_tile: in T, d, e, tau and a work vector (4 n per lane); in the
// compute type (MidCompute<T>), d and e (2 n per lane).
template <int W>
SAFESVD_HD constexpr int64_t tridiag_eigh_scratch(int64_t n) {
  return 4 * n * W;
}
template <int W>
SAFESVD_HD constexpr int64_t tridiag_eigh_wide_scratch(int64_t n) {
  return 2 * n * W;
}

// Eigendecomposition of W symmetric n x n matrices (column-major lane tile A, full
// symmetric, destroyed). Outputs: L (n per lane, NOT sorted: the caller orders them),
// Q (n x n column-major lanes, column j the eigenvector of L[j]). info[l]: 0 converged,
// 1 not converged within max_sweeps * n QR sweeps, 2 non-finite input (outputs NaN).
// scratch, wide: tridiag_eigh_scratch<W>(n) values of T, tridiag_eigh_wide_scratch<W>(n)
// of MidCompute<T>::type.
template <int W, typename T>
SAFESVD_HD void tridiag_eigh_tile(T* A, int64_t n, T* L, T* Q, int* info, int max_sweeps, T* scratch,
                                  typename MidCompute<T>::type* wide) {
  using namespace tall_detail;
  using namespace mid_detail;
  using U = typename MidCompute<T>::type;
  using I = typename Tr<T>::I;
  T* d = scratch;        // diagonal (n)
  T* e = d + n * W;      // subdiagonal (n - 1 used)
  T* tau = e + n * W;    // reflector factors (n - 2 used)
  T* p = tau + n * W;    // work: tau A v, then w
  T inv[W];
  I ok[W];
  scale_columns<W, T>(A, n * n, inv, ok);
  auto at = [&](int64_t i, int64_t j) -> T* { return A + (j * n + i) * W; };

  // 1. Tridiagonalization: for column k, H_k = I - tau v v^T with v = [1, v_2, ...] over
  //    rows k+1.., mapping A(k+1.., k) to beta e_1; then A22 <- H_k A22 H_k as the
  //    symmetric rank-2 update A22 -= v w^T + w v^T, w = p - (tau / 2)(p . v) v,
  //    p = tau A22 v. v is kept in column k below the subdiagonal.
  for (int64_t k = 0; k + 2 < n; ++k) {
    T* col = at(0, k);
    T sum2[W], scale_v[W];
    column_dot<W, T>(col, col, k + 2, n, sum2);
    SAFESVD_MID_SIMD
    for (int l = 0; l < W; ++l) {
      const T x0 = col[(k + 1) * W + l];
      const bool reflect = sum2[l] > T(0);
      const T nrm = jsqrt(jfma(x0, x0, sum2[l]));
      const T beta = reflect ? (x0 >= T(0) ? -nrm : nrm) : x0;
      tau[k * W + l] = (beta - x0) * recip_where(reflect, beta);
      scale_v[l] = recip_where(reflect, x0 - beta);
      e[k * W + l] = beta;
      d[k * W + l] = col[k * W + l];
      col[(k + 1) * W + l] = T(1);  // v_1 = 1, stored explicitly for the products below
    }
    for (int64_t i = k + 2; i < n; ++i) {
      SAFESVD_MID_SIMD
      for (int l = 0; l < W; ++l) col[i * W + l] *= scale_v[l];
    }
    // p = A22 v (rows_times_vector: kRowBlock rows at a time, their sums over the columns
    //    ascending in registers), then p *= tau.
    for (int64_t i0 = k + 1; i0 < n; i0 += kRowBlock)
      rows_times_vector<W, T>(A, n, i0, n - i0 < kRowBlock ? int(n - i0) : kRowBlock, k + 1, n, col, p);
    T pv[W];
    for (int64_t i = k + 1; i < n; ++i) {
      SAFESVD_MID_SIMD
      for (int l = 0; l < W; ++l) p[i * W + l] *= tau[k * W + l];
    }
    column_dot<W, T>(p, col, k + 1, n, pv);
    SAFESVD_MID_SIMD
    for (int l = 0; l < W; ++l) pv[l] *= T(0.5) * tau[k * W + l];
    for (int64_t i = k + 1; i < n; ++i) {
      SAFESVD_MID_SIMD
      for (int l = 0; l < W; ++l) p[i * W + l] = jfma(-pv[l], col[i * W + l], p[i * W + l]);  // w
    }
    for (int64_t j = k + 1; j < n; ++j) {
      T* aj = at(0, j);
      T vj[W], wj[W];
      SAFESVD_MID_SIMD
      for (int l = 0; l < W; ++l) {
        vj[l] = col[j * W + l];
        wj[l] = p[j * W + l];
      }
      for (int64_t i = k + 1; i < n; ++i) {
        SAFESVD_MID_SIMD
        for (int l = 0; l < W; ++l)
          aj[i * W + l] = jfma(-col[i * W + l], wj[l], jfma(-p[i * W + l], vj[l], aj[i * W + l]));
      }
    }
  }
  SAFESVD_MID_SIMD
  for (int l = 0; l < W; ++l) {
    d[(n - 2) * W + l] = at(n - 2, n - 2)[l];
    d[(n - 1) * W + l] = at(n - 1, n - 1)[l];
    e[(n - 2) * W + l] = at(n - 1, n - 2)[l];
    e[(n - 1) * W + l] = T(0);
  }

  // 2. Z = I: the QL rotations accumulate the eigenvectors of the tridiagonal matrix
  //    into it; Q = H_0 H_1 ... H_{n-3} Z at the end (step 5).
  for (int64_t c = 0; c < n; ++c)
    for (int64_t i = 0; i < n; ++i) {
      SAFESVD_MID_SIMD
      for (int l = 0; l < W; ++l) Q[(c * n + i) * W + l] = i == c ? T(1) : T(0);
    }

  // 3. Implicit QL on (d, e) (LAPACK's dsteqr, EISPACK's tql2): lane l works on its
  //    unreduced block [top, end] (e_top-1 = 0 deflated, e_k != 0 inside), shifted by the
  //    eigenvalue of the top 2 x 2 nearer d_top, chasing the bulge bottom to top, until
  //    top reaches n - 1; e_k is negligible when e_k^2 <= eps^2 |d_k d_k+1| + safmin.
  //    The recurrences run in the wider type U where there is one (MidCompute): in the
  //    working precision their rounding dominates the eigenvalue error (step 4); the
  //    rotations applied to Z are rounded to T.
  U* du = wide;
  U* eu = du + n * W;
  for (int64_t i = 0; i < n * W; ++i) {
    du[i] = U(d[i]);
    eu[i] = U(e[i]);
  }
  int64_t top[W], end[W];
  for (int l = 0; l < W; ++l) top[l] = 0;
  const U eps = Tr<T>::eps(), eps2 = eps * eps, safmin = Tr<T>::min_normal();
  const int64_t max_iterations = int64_t(max_sweeps) * n;
  const int chunk = n >= kChunkedRotationsFrom ? kRotationChunk : 1;
  int64_t iteration = 0;
  for (;; ++iteration) {
    // Deflate at the top, then find the end m of each lane's unreduced block [top, m]: one
    // pass over k for all lanes at once, the same decisions as a scan per lane (which was
    // scalar, with a data-dependent exit per lane: ~10% of the QL step at n = 24).
    int64_t kfirst = n;
    for (int l = 0; l < W; ++l) kfirst = top[l] < kfirst ? top[l] : kfirst;
    int64_t found[W];
    SAFESVD_MID_SIMD
    for (int l = 0; l < W; ++l) {
      found[l] = 0;
      end[l] = n - 1;
    }
    for (int64_t k = kfirst; k < n - 1; ++k) {
      int64_t open = 0;
      SAFESVD_MID_SIMD
      for (int l = 0; l < W; ++l) {
        const U ek = eu[k * W + l];
        const bool small = ek * ek <= eps2 * compute_abs(du[k * W + l]) * compute_abs(du[(k + 1) * W + l]) + safmin;
        const bool advance = small && k == top[l];                          // e_top negligible
        const bool stop = small && !advance && k >= top[l] && !found[l];  // the block ends at k
        eu[k * W + l] = advance || stop ? U(0) : ek;
        top[l] = advance ? k + 1 : top[l];
        end[l] = stop ? k : end[l];
        found[l] = stop ? 1 : found[l];
        open |= found[l] ? 0 : 1;
      }
      if (!open) break;
    }
    int64_t kmin = n, kmax = -1;
    for (int l = 0; l < W; ++l) {
      if (end[l] > top[l]) {
        kmin = top[l] < kmin ? top[l] : kmin;
        kmax = end[l] > kmax ? end[l] : kmax;
      }
    }
    if (kmax < 0 || iteration >= max_iterations) break;
    U g[W], s[W], c[W], p[W];
    SAFESVD_MID_SIMD
    for (int l = 0; l < W; ++l) {
      const int64_t t = top[l] < n - 1 ? top[l] : n - 2, m = end[l];
      const U et = eu[t * W + l];
      const U dt = du[t * W + l];
      const U gg = (du[(t + 1) * W + l] - dt) * compute_recip_where(et != U(0), U(2) * et);
      const U r = compute_sqrt(compute_fma(gg, gg, U(1)));
      const U den = gg >= U(0) ? gg + r : gg - r;
      g[l] = du[m * W + l] - dt + et * compute_recip_where(den != U(0), den);
      s[l] = U(1);
      c[l] = U(1);
      p[l] = U(0);
    }
    // The sweep's rotations in chunks of `chunk` (1 below kChunkedRotationsFrom): the
    // recurrence of a chunk, then its rotations applied to Q together (rotate_columns).
    for (int64_t i0 = kmax - 1; i0 >= kmin;) {
      const int64_t left = i0 - kmin + 1;
      const int k = left >= chunk ? chunk : left >= 4 && chunk >= 4 ? 4 : left >= 2 && chunk >= 2 ? 2 : 1;
      T cr[kRotationChunk][W], sr[kRotationChunk][W];
      for (int q = 0; q < k; ++q) {
        const int64_t i = i0 - q;
        SAFESVD_MID_SIMD
        for (int l = 0; l < W; ++l) {
          const bool active = end[l] > top[l] && i >= top[l] && i < end[l];
          const U f = s[l] * eu[i * W + l], b = c[l] * eu[i * W + l];
          const U r = compute_sqrt(compute_fma(g[l], g[l], f * f));
          const U ir = compute_recip_where(r > U(0), r);
          const U cn = r > U(0) ? g[l] * ir : U(1), sn = r > U(0) ? f * ir : U(0);
          if (i + 1 < n) eu[(i + 1) * W + l] = active && i != end[l] - 1 ? r : eu[(i + 1) * W + l];
          const U gg = du[(i + 1) * W + l] - p[l];
          const U rr = compute_fma((du[i * W + l] - gg), sn, U(2) * cn * b);
          const U pn = sn * rr;
          du[(i + 1) * W + l] = active ? gg + pn : du[(i + 1) * W + l];
          g[l] = active ? compute_fma(cn, rr, -b) : g[l];
          p[l] = active ? pn : p[l];
          c[l] = active ? cn : c[l];
          s[l] = active ? sn : s[l];
          cr[q][l] = active ? T(cn) : T(1);
          sr[q][l] = active ? T(sn) : T(0);
        }
      }
      switch (k) {
        case 8: rotate_columns<8, W, T>(Q, n, i0, cr, sr); break;
        case 4: rotate_columns<4, W, T>(Q, n, i0, cr, sr); break;
        case 2: rotate_columns<2, W, T>(Q, n, i0, cr, sr); break;
        default: rotate_columns<1, W, T>(Q, n, i0, cr, sr); break;
      }
      i0 -= k;
    }
    SAFESVD_MID_SIMD
    for (int l = 0; l < W; ++l) {
      if (end[l] > top[l]) {
        du[top[l] * W + l] -= p[l];
        eu[top[l] * W + l] = g[l];
      }
    }
  }
  // 4. The eigenvalues. Where the recurrences ran in a wider type, d is accurate. Where
  //    they could not (float64 without a wider type at hand, MidCompute), their rounding
  //    would dominate the eigenvalue error (3-6x LAPACK's at n = 32..64): take instead the
  //    Rayleigh quotients z_i^T T z_i / z_i^T z_i of the eigenvectors of T (d, e still hold T), exact to
  //    second order in the vectors' error, also inside clusters (any vector of an
  //    invariant subspace of nearly equal eigenvalues gives one of them to within their gap).
  if (sizeof(U) > sizeof(T)) {
    for (int64_t i = 0; i < n * W; ++i) d[i] = T(du[i]);
  } else {
    // The sum of the terms d_k z_k^2 and 2 e_k z_k z_k+1 with its rounding errors carried
    // (Ogita, Rump and Oishi's Dot2: TwoProduct by fma, TwoSum), so that the quotient is
    // as accurate as its terms (a plain sum errs by ~sqrt(n) eps ||T||).
    for (int64_t j = 0; j < n; ++j) {
      const T* z = Q + (j * n) * W;
      T sum[W], err[W];
      SAFESVD_MID_SIMD
      for (int l = 0; l < W; ++l) sum[l] = err[l] = T(0);
      for (int64_t k = 0; k < n; ++k) {
        SAFESVD_MID_SIMD
        for (int l = 0; l < W; ++l) {
          const T zk = z[k * W + l], zk1 = k + 1 < n ? z[(k + 1) * W + l] : T(0);
          const T a = d[k * W + l] * zk, b = T(2) * e[k * W + l] * zk;
          // term = a zk + b zk1 (b = 0 past the last row), each product split exactly.
          const T p1 = a * zk, e1 = jfma(a, zk, -p1);
          const T p2 = b * zk1, e2 = jfma(b, zk1, -p2);
          T s = sum[l] + p1;
          T bv = s - sum[l];
          T es = (sum[l] - (s - bv)) + (p1 - bv);
          const T s2 = s + p2;
          bv = s2 - s;
          es += (s - (s2 - bv)) + (p2 - bv);
          sum[l] = s2;
          err[l] += (e1 + e2) + es;
        }
      }
      T zz[W];
      column_dot<W, T>(z, z, 0, n, zz);  // the rotations leave ||z|| = 1 only to ~sqrt(n) eps
      SAFESVD_MID_SIMD
      for (int l = 0; l < W; ++l) p[j * W + l] = (sum[l] + err[l]) / zz[l];
    }
    for (int64_t i = 0; i < n * W; ++i) d[i] = p[i];
  }

  // 5. Q = H_0 H_1 ... H_{n-3} Z, the reflectors applied last to first (H_k touches rows
  //    k+1.. of every column) in blocks of kReflectorBlock, the last block first.
  for (int64_t kb = n - 2; kb > 0;) {
    const int64_t k0 = kb > kReflectorBlock ? kb - kReflectorBlock : 0;
    static_assert(kReflectorBlock == 8, "one case per block size");
    switch (kb - k0) {
      case 8: apply_reflector_block<8, W, T>(A, n, k0, tau, Q); break;
      case 7: apply_reflector_block<7, W, T>(A, n, k0, tau, Q); break;
      case 6: apply_reflector_block<6, W, T>(A, n, k0, tau, Q); break;
      case 5: apply_reflector_block<5, W, T>(A, n, k0, tau, Q); break;
      case 4: apply_reflector_block<4, W, T>(A, n, k0, tau, Q); break;
      case 3: apply_reflector_block<3, W, T>(A, n, k0, tau, Q); break;
      case 2: apply_reflector_block<2, W, T>(A, n, k0, tau, Q); break;
      default: apply_reflector_block<1, W, T>(A, n, k0, tau, Q); break;
    }
    kb = k0;
  }
  // 6. Unit columns: the rounding of some 2n rotations per column leaves their norms 1
  //    only to ~sqrt(n) eps.
  for (int64_t c = 0; c < n; ++c) {
    T* q = Q + (c * n) * W;
    T qq[W];
    column_dot<W, T>(q, q, 0, n, qq);
    SAFESVD_MID_SIMD
    for (int l = 0; l < W; ++l) qq[l] = T(1) / jsqrt(qq[l]);
    for (int64_t i = 0; i < n; ++i) {
      SAFESVD_MID_SIMD
      for (int l = 0; l < W; ++l) q[i * W + l] *= qq[l];
    }
  }
  int64_t hi[W];
  for (int l = 0; l < W; ++l) hi[l] = top[l] < n - 1 ? 1 : 0;  // not converged

  for (int64_t j = 0; j < n; ++j) {
    SAFESVD_MID_SIMD
    for (int l = 0; l < W; ++l) L[j * W + l] = (ok[l] ? d[j * W + l] : jacobi_detail::quiet_nan<T>()) * inv[l];
  }
  for (int64_t i = 0; i < n * n; ++i) {
    SAFESVD_MID_SIMD
    for (int l = 0; l < W; ++l) Q[i * W + l] = ok[l] ? Q[i * W + l] : jacobi_detail::quiet_nan<T>();
  }
  for (int l = 0; l < W; ++l) info[l] = !ok[l] ? 2 : (hi[l] > 0 ? 1 : 0);
}

}  // namespace kernels
}  // namespace safesvd

#undef SAFESVD_MID_SIMD

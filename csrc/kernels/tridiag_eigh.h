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
// the eigenvalues then refined by Rayleigh quotients (step 4 of tridiag_eigh_tiles: the
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

// From n = kBufferedSweepsFrom the QL rotations are not applied to Z as each sweep makes
// them: the sweeps' (c, s) go to a buffer, which is then applied to Z a block of
// kSweepRows rows at a time, every buffered sweep to one block before the next block
// (apply_buffered_sweeps). A rotation mixes two columns within each row, so the rows are
// independent; the block (8 rows of n entries) stays in L1 across the buffered sweeps,
// where a sweep applied to the whole of Z passed over Z (in L2 at n = 64: 256 KiB) once
// per sweep. Every entry sees the same operations in the same order. Z then has its own
// leading dimension (mid_z_ld). Below kBufferedSweepsFrom, Z (in L1 or nearly) is Q
// and each rotation is applied as soon as it is made (rotate_rows): the out-of-order core
// overlaps it with the next rotation's recurrence, a latency chain through a square root
// and a division that the buffered application leaves exposed (measured: buffered 8%
// slower at n = 24..32, 10-20% faster from n = 40; docs/jacobi.md, "Mid-size eigh").
constexpr int64_t kBufferedSweepsFrom = 40;
constexpr int kSweepRows = 8;
constexpr int kMaxBufferedSweeps = 64;
// Columns of Z the zero-row bookkeeping holds (ql_tiles, "Zero rows"): n <= 64.
constexpr int kMaxZColumns = 64;
// Columns either side of a rotation whose stores may still be in flight when it loads.
constexpr int kAliasColumns = 6;
SAFESVD_HD constexpr int64_t rotation_buffer_capacity(int64_t n) { return 8 * n; }

// The leading dimension of Z: the first ld >= n at which no two entries of a row block
// (rows less than kSweepRows apart) in columns 1..kAliasColumns apart lie a multiple of
// 4 KiB apart. On x86 a load whose address matches an older in-flight store's in its low
// 12 bits waits for it ("4K aliasing"): at n = 64 in float64 (a column of 8-lane entries
// is exactly 4 KiB) the buffered sweeps ran 1.3x slower than one pass per sweep.
template <int W, typename T>
SAFESVD_HD constexpr int64_t mid_z_ld(int64_t n) {
  constexpr int64_t period = 4096 / int64_t(W * sizeof(T));  // entries per 4 KiB
  // ld and ld + period alias alike: one period of candidates decides. (Every entry size
  // of the CPU's variants, 16, 32 and 64 bytes, has a clear ld, e.g. 9 mod 64 for 64.)
  for (int64_t ld = n; period >= 4 * kSweepRows && ld < n + period; ++ld) {
    bool clear = true;
    for (int64_t k = 1; k <= kAliasColumns; ++k) {
      const int64_t o = (k * ld) % period;
      clear = clear && o >= kSweepRows && o <= period - kSweepRows;
    }
    if (clear) return ld;
  }
  return n;
}

// Rows [row0, row0 + RB) of Z (leading dimension ld) through `sweeps` buffered QL sweeps:
// sweep j applies its rotations i = hi[j], hi[j] - 1, ..., lo[j], rotation i mapping
// (z_i, z_i+1) to (c z_i - s z_i+1, c z_i+1 + s z_i), its (c, s) the next 2 W values of
// cs. Row by row the new z_i is the z_i+1 of rotation i - 1: it stays in a register,
// and each entry is loaded and stored once per sweep.
// A rotation's record in the buffer holds its c for CS lanes, then its s for CS lanes
// (CS = W P where P tiles' sweeps are made together, ql_tiles; cs then points at this
// tile's first lane).
// first_row: per sweep (n values from j * kMaxZColumns), column i's first row that may
// be nonzero as the sweep starts (ql_tiles, "Zero rows"): a rotation i with
// first_row[i] >= row0 + RB finds the block's rows zero in both of its columns and is
// skipped, as is every rotation above it (first_row grows with i).
template <int RB, int W, int CS, typename T>
SAFESVD_HD void apply_sweeps(T* __restrict__ Z, int64_t ld, int64_t row0, const T* __restrict__ cs,
                             const int64_t* hi, const int64_t* lo, const int8_t* first_row, int sweeps) {
  using jacobi_detail::jfma;
  T x[RB][W];
  for (int j = 0; j < sweeps; ++j) {
    const int8_t* fr = first_row + j * kMaxZColumns;
    int64_t h = hi[j];
    while (h >= lo[j] && fr[h] >= row0 + RB) --h;
    cs += 2 * CS * (hi[j] - h);  // the skipped rotations' records
    if (h < lo[j]) continue;
    const T* top = Z + ((h + 1) * ld + row0) * W;
    for (int r = 0; r < RB; ++r) {
      SAFESVD_MID_SIMD
      for (int l = 0; l < W; ++l) x[r][l] = top[r * W + l];
    }
    for (int64_t i = h; i >= lo[j]; --i, cs += 2 * CS) {
      T* z = Z + (i * ld + row0) * W;
      for (int r = 0; r < RB; ++r) {
        SAFESVD_MID_SIMD
        for (int l = 0; l < W; ++l) {
          const T a = z[r * W + l];
          z[(ld + r) * W + l] = jfma(cs[l], x[r][l], cs[CS + l] * a);
          x[r][l] = jfma(cs[l], a, -(cs[CS + l] * x[r][l]));
        }
      }
    }
    T* bottom = Z + (lo[j] * ld + row0) * W;
    for (int r = 0; r < RB; ++r) {
      SAFESVD_MID_SIMD
      for (int l = 0; l < W; ++l) bottom[r * W + l] = x[r][l];
    }
  }
}
// One rotation (as apply_sweeps) applied to rows row0.. of Z at once, as soon as it is
// made (below kBufferedSweepsFrom; the rows above row0 are zero in both columns).
template <int W, typename T>
SAFESVD_HD void rotate_rows(T* Z, int64_t n, int64_t ld, int64_t i, int64_t row0, const T* __restrict__ c,
                            const T* __restrict__ s) {
  using jacobi_detail::jfma;
  T* __restrict__ zi = Z + (i * ld) * W;
  T* __restrict__ zj = zi + ld * W;
  for (int64_t row = row0; row < n; ++row) {
    SAFESVD_MID_SIMD
    for (int l = 0; l < W; ++l) {
      const T x = zj[row * W + l], a = zi[row * W + l];
      zj[row * W + l] = jfma(c[l], x, s[l] * a);
      zi[row * W + l] = jfma(c[l], a, -(s[l] * x));
    }
  }
}
template <int W, int CS, typename T>
SAFESVD_HD void apply_buffered_sweeps(T* Z, int64_t n, int64_t ld, const T* cs, const int64_t* hi,
                                      const int64_t* lo, const int8_t* first_row, int sweeps) {
  static_assert(kSweepRows == 8, "one case per block size");
  int64_t row = 0;
  for (; row + 8 <= n; row += 8) apply_sweeps<8, W, CS, T>(Z, ld, row, cs, hi, lo, first_row, sweeps);
  if (row + 4 <= n) apply_sweeps<4, W, CS, T>(Z, ld, row, cs, hi, lo, first_row, sweeps), row += 4;
  if (row + 2 <= n) apply_sweeps<2, W, CS, T>(Z, ld, row, cs, hi, lo, first_row, sweeps), row += 2;
  if (row < n) apply_sweeps<1, W, CS, T>(Z, ld, row, cs, hi, lo, first_row, sweeps);
}

// Q <- H_k0 H_k0+1 ... H_k0+B-1 Q for B reflectors of the tridiagonalization (v_k in
// column k of A, rows k+1.., v_k[k+1] = 1 stored), in the compact WY form I - V T V^T
// (LAPACK's larft, forward: T_jj = tau_j, T(0:j, j) = -tau_j T(0:j, 0:j) V(:, 0:j)^T v_j):
// per column of Q, y = V^T q with the B sums in registers, z = T y, q -= V z: two passes
// over the column (which stays in L1 between them) for the B reflectors, where applying
// them one at a time took 2 B passes, bound by L2 once the tile outgrows L1. V is first
// copied row by row into `pack` (B (n - k0 - 1) W values: row i's B entries side by
// side), where A's columns lie n W values apart: at n = 64 in float64 that is 4 KiB, all
// B reflectors' rows in one set of the L1 cache, which held 8 of them at most (the pass
// ran 1.4x slower than from the copy; docs/jacobi.md, "Mid-size eigh").
template <int B, int W, typename T>
SAFESVD_HD void apply_reflector_block(const T* A, int64_t n, int64_t k0, const T* tau, T* Q, T* pack) {
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
  // pack[((i - k0 - 1) * B + p) * W + l] = v_p[i] for the rows i the products read.
  for (int64_t i = k0 + 1; i < n; ++i)
    for (int p = 0; p < B; ++p) {
      T* dst = pack + ((i - k0 - 1) * B + p) * W;
      SAFESVD_MID_SIMD
      for (int l = 0; l < W; ++l) dst[l] = i > k0 + p ? v[p][i * W + l] : T(0);
    }
  const T* vr = pack - (k0 + 1) * B * W;  // row i at vr + i B W
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
        for (int l = 0; l < W; ++l) y[p][l] = jfma(vr[(i * B + p) * W + l], q[i * W + l], y[p][l]);
      }
    }
    for (int64_t i = k0 + 1 + B; i < n; ++i)
      for (int p = 0; p < B; ++p) {
        SAFESVD_MID_SIMD
        for (int l = 0; l < W; ++l) y[p][l] = jfma(vr[(i * B + p) * W + l], q[i * W + l], y[p][l]);
      }
    tall_detail::upper_times_in_place<false, W, T>(Tm, B, B, &y[0][0], 1, nullptr);  // z = T y
    // q -= V z.
    for (int r = 0; r < B; ++r) {
      const int64_t i = k0 + 1 + r;
      for (int p = 0; p <= r; ++p) {
        SAFESVD_MID_SIMD
        for (int l = 0; l < W; ++l) q[i * W + l] = jfma(-vr[(i * B + p) * W + l], y[p][l], q[i * W + l]);
      }
    }
    for (int64_t i = k0 + 1 + B; i < n; ++i)
      for (int p = 0; p < B; ++p) {
        SAFESVD_MID_SIMD
        for (int l = 0; l < W; ++l) q[i * W + l] = jfma(-vr[(i * B + p) * W + l], y[p][l], q[i * W + l]);
      }
  }
}
// Reflectors per block of the back-transformation (apply_reflector_block).
constexpr int kReflectorBlock = 8;

// Rows j.. of column j of the tridiagonalization's trailing matrix (aj = its column j)
// through the rank-2 update A(i, j) -= vp_i wp_j + wp_i vp_j (update_and_symv's formula).
template <int W, typename T>
SAFESVD_HD void rank2_update_column(T* aj, int64_t n, int64_t j, const T* vp, const T* wp) {
  using jacobi_detail::jfma;
  T vj[W], wj[W];
  SAFESVD_MID_SIMD
  for (int l = 0; l < W; ++l) {
    vj[l] = vp[j * W + l];
    wj[l] = wp[j * W + l];
  }
  for (int64_t i = j; i < n; ++i) {
    SAFESVD_MID_SIMD
    for (int l = 0; l < W; ++l) aj[i * W + l] = jfma(-vp[i * W + l], wj[l], jfma(-wp[i * W + l], vj[l], aj[i * W + l]));
  }
}

// Columns per block of update_and_symv.
constexpr int kSymvColumns = 4;
// One pass over the lower triangle of the trailing matrix A(j0.., j0..) (column-major
// lane tile, n rows): with UPDATE, first A(i, j) -= vp_i wp_j + wp_i vp_j (the previous
// tridiagonalization step's rank-2 update, deferred to here); then p = A v over the
// updated trailing matrix, read from its lower triangle (p_i gets A(i, j) v_j from the
// columns j < i, and column i's own sum A(i, i) v_i + sum_{r > i} A(r, i) v_r). Columns
// in blocks of kSymvColumns: a load of a row's v, vp, wp and p serves the block, and the
// block's column sums are kSymvColumns independent chains in registers. (One pass of
// one read and one write over half the matrix, where the update and the product over the
// full square took three: the tridiagonalization was bound by L2.)
template <bool UPDATE, int W, typename T>
SAFESVD_HD void update_and_symv(T* A, int64_t n, int64_t j0, const T* vp, const T* wp, const T* v, T* p) {
  using jacobi_detail::jfma;
  constexpr int C = kSymvColumns;
  for (int64_t i = j0; i < n; ++i) {
    SAFESVD_MID_SIMD
    for (int l = 0; l < W; ++l) p[i * W + l] = T(0);
  }
  for (int64_t jb = j0; jb < n; jb += C) {
    const int cols = n - jb < C ? int(n - jb) : C;
    T vj[C][W], wj[C][W], xj[C][W], dot[C][W];
    for (int c = 0; c < C; ++c) {
      SAFESVD_MID_SIMD
      for (int l = 0; l < W; ++l) {
        const bool in = c < cols;
        vj[c][l] = UPDATE && in ? vp[(jb + c) * W + l] : T(0);
        wj[c][l] = UPDATE && in ? wp[(jb + c) * W + l] : T(0);
        xj[c][l] = in ? v[(jb + c) * W + l] : T(0);
        dot[c][l] = T(0);
      }
    }
    // The block's corner: rows jb .. jb + cols - 1, columns jb .. i.
    for (int r = 0; r < cols; ++r) {
      const int64_t i = jb + r;
      for (int c = 0; c <= r; ++c) {
        T* a = A + ((jb + c) * n + i) * W;
        SAFESVD_MID_SIMD
        for (int l = 0; l < W; ++l) {
          T x = a[l];
          if (UPDATE) x = jfma(-vp[i * W + l], wj[c][l], jfma(-wp[i * W + l], vj[c][l], x));
          a[l] = x;
          dot[c][l] = jfma(x, v[i * W + l], dot[c][l]);
          if (c < r) p[i * W + l] = jfma(x, xj[c][l], p[i * W + l]);
        }
      }
    }
    // The rows below the corner (a partial block is the last: it has none).
    T* a0 = A + (jb * n) * W;
    if (cols == C) {
      for (int64_t i = jb + C; i < n; ++i) {
        SAFESVD_MID_SIMD
        for (int l = 0; l < W; ++l) {
          const T vi = v[i * W + l];
          T pi = p[i * W + l];
          for (int c = 0; c < C; ++c) {
            T x = a0[(c * n + i) * W + l];
            if (UPDATE) x = jfma(-vp[i * W + l], wj[c][l], jfma(-wp[i * W + l], vj[c][l], x));
            a0[(c * n + i) * W + l] = x;
            dot[c][l] = jfma(x, vi, dot[c][l]);
            pi = jfma(x, xj[c][l], pi);
          }
          p[i * W + l] = pi;
        }
      }
    }
    for (int c = 0; c < cols; ++c) {
      SAFESVD_MID_SIMD
      for (int l = 0; l < W; ++l) p[(jb + c) * W + l] += dot[c][l];
    }
  }
}

// Scratch of the mid-size eigh, for P tiles made together (tridiag_eigh_tiles; one tile:
// P = 1): in T, each tile's d, e, tau and two work vectors (5 n per lane), the rotation
// buffer (2 per rotation and lane of the P tiles) and, where the sweeps are buffered
// (n >= kBufferedSweepsFrom; below, Z is Q), each tile's Z (n columns of mid_z_ld); in
// the compute type (MidCompute<T>), d and e (2 n per lane).
template <int W, typename T, int P = 1>
SAFESVD_HD constexpr int64_t tridiag_eigh_scratch(int64_t n) {
  return (5 * n + 2 * rotation_buffer_capacity(n) + (n >= kBufferedSweepsFrom ? mid_z_ld<W, T>(n) * n : 0)) * W * P;
}
template <int W, int P = 1>
SAFESVD_HD constexpr int64_t tridiag_eigh_wide_scratch(int64_t n) {
  return 2 * n * W * P;
}

// Step 1 of the mid-size eigh (tridiag_eigh_tiles) for one tile: the power-of-two scaling
// (inv, ok: scale_lower_triangle) and the Householder tridiagonalization of A, into d and
// e (n per lane; e_(n-1) = 0), the reflectors kept in A below the subdiagonal with their
// factors in tau. work: 2 n W values.
template <int W, typename T>
SAFESVD_HD void tridiagonalize_tile(T* A, int64_t n, T* d, T* e, T* tau, T* work, T* inv,
                                    typename tall_detail::Tr<T>::I* ok) {
  using namespace tall_detail;
  T* p = work;  // tau A v, then w
  scale_lower_triangle<W, T>(A, n, inv, ok);
  auto at = [&](int64_t i, int64_t j) -> T* { return A + (j * n + i) * W; };

  // 1. Tridiagonalization: for column k, H_k = I - tau v v^T with v = [1, v_2, ...] over
  //    rows k+1.., mapping A(k+1.., k) to beta e_1; then A22 <- H_k A22 H_k as the
  //    symmetric rank-2 update A22 -= v w^T + w v^T, w = p - (tau / 2)(p . v) v,
  //    p = tau A22 v. v is kept in column k below the subdiagonal. Only the lower triangle
  //    is read and written, and step k's update is deferred to step k + 1, whose one pass
  //    over the trailing triangle updates it and forms p from it (update_and_symv).
  T* w = p + n * W;  // the previous step's w (p and w swap roles each step)
  for (int64_t k = 0; k + 2 < n; ++k) {
    T* col = at(0, k);
    const T* vp = k > 0 ? at(0, k - 1) : nullptr;  // the previous reflector (rows k..)
    if (vp != nullptr) rank2_update_column<W, T>(col, n, k, vp, w);  // bring column k up to date
    T sum2[W], scale_v[W], ics[W];
    column_dot<W, T>(col, col, k + 2, n, sum2);
    rescale_tiny_column<W, T>(col, k + 1, n, sum2, ics);
    SAFESVD_MID_SIMD
    for (int l = 0; l < W; ++l) {
      const T x0 = col[(k + 1) * W + l];
      const bool reflect = sum2[l] > T(0);
      const T nrm = jsqrt(jfma(x0, x0, sum2[l]));
      const T beta = reflect ? (x0 >= T(0) ? -nrm : nrm) : x0;
      tau[k * W + l] = (beta - x0) * recip_where(reflect, beta);
      scale_v[l] = recip_where(reflect, x0 - beta);
      e[k * W + l] = beta * ics[l];
      d[k * W + l] = col[k * W + l];
      col[(k + 1) * W + l] = T(1);  // v_1 = 1, stored explicitly for the products below
    }
    for (int64_t i = k + 2; i < n; ++i) {
      SAFESVD_MID_SIMD
      for (int l = 0; l < W; ++l) col[i * W + l] *= scale_v[l];
    }
    // The previous step's update of the trailing triangle and p = A22 v in one pass.
    if (vp != nullptr)
      update_and_symv<true, W, T>(A, n, k + 1, vp, w, col, p);
    else
      update_and_symv<false, W, T>(A, n, k + 1, vp, w, col, p);
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
    T* t = p;  // this step's w becomes the previous step's
    p = w;
    w = t;
  }
  if (n >= 3) {  // the last step's update of the trailing 2 x 2 (lower triangle)
    for (int64_t j = n - 2; j < n; ++j) rank2_update_column<W, T>(at(0, j), n, j, at(0, n - 3), w);
  }
  SAFESVD_MID_SIMD
  for (int l = 0; l < W; ++l) {
    d[(n - 2) * W + l] = at(n - 2, n - 2)[l];
    d[(n - 1) * W + l] = at(n - 1, n - 1)[l];
    e[(n - 2) * W + l] = at(n - 1, n - 2)[l];
    e[(n - 1) * W + l] = T(0);
  }

}

// Steps 2 and 3 of the mid-size eigh (tridiag_eigh_tiles) for P tiles at once: their
// P W lanes run the QL recurrences side by side, so that the latency chain of one
// tile's step (a square root, a division and some eight dependent operations, ~55 TSC
// ticks at 8 float64 lanes on AVX-512, Intel Xeon) overlaps the other's: a step of two
// tiles took 1.3x the time of one's, not 2x (docs/jacobi.md, "Mid-size eigh"). The sweeps run over
// the union of the P W lanes' windows; each tile's Z gets the rotations of its own lanes
// (identity outside the lane's window: exact). Each lane's results are those of the tile
// alone.
// d[t], e[t]: tile t's tridiagonal (T, n per lane); Z[t]: its rotations' product (Q[t]
// itself where the sweeps are not buffered), copied to Q[t] at the end; ld: Z's leading
// dimension; rot: the rotation buffer (2 rotation_buffer_capacity(n) W P values); wide:
// tridiag_eigh_wide_scratch<W, P>(n) values (the recurrences' d and e, lane t W + l of
// tile t's lane l, left there for step 4); top: W P values, n - 1 for a lane that
// converged.
template <int W, int P, typename T>
SAFESVD_HD void ql_tiles(int64_t n, const T* const* d, const T* const* e, T* const* Z, T* const* Q, int64_t ld,
                         T* rot, typename MidCompute<T>::type* wide, int64_t* top, int max_sweeps) {
  using namespace tall_detail;
  using namespace mid_detail;
  using U = typename MidCompute<T>::type;
  constexpr int WQ = W * P;  // lanes of the recurrences
  const bool buffer = n >= kBufferedSweepsFrom;

  // 2. Z = I: the QL rotations accumulate the eigenvectors of the tridiagonal matrix
  //    into it; Q = H_0 H_1 ... H_{n-3} Z at the end (step 5).
  for (int t = 0; t < P; ++t)
    for (int64_t c = 0; c < n; ++c)
      for (int64_t i = 0; i < n; ++i) {
        SAFESVD_MID_SIMD
        for (int l = 0; l < W; ++l) Z[t][(c * ld + i) * W + l] = i == c ? T(1) : T(0);
      }

  // 3. Implicit QL on (d, e) (LAPACK's dsteqr, EISPACK's tql2): lane l works on its
  //    unreduced block [top, end] (e_top-1 = 0 deflated, e_k != 0 inside), shifted by the
  //    eigenvalue of the top 2 x 2 nearer d_top, chasing the bulge bottom to top, until
  //    top reaches n - 1; e_k is negligible when e_k^2 <= eps^2 |d_k d_k+1| + safmin.
  //    The recurrences run in the wider type U where there is one (MidCompute): in the
  //    working precision their rounding dominates the eigenvalue error (step 4); the
  //    rotations applied to Z are rounded to T.
  U* du = wide;
  U* eu = du + n * WQ;
  for (int64_t k = 0; k < n; ++k)
    for (int t = 0; t < P; ++t)
      for (int l = 0; l < W; ++l) {
        du[k * WQ + t * W + l] = U(d[t][k * W + l]);
        eu[k * WQ + t * W + l] = U(e[t][k * W + l]);
      }
  int64_t end[WQ];
  for (int l = 0; l < WQ; ++l) top[l] = 0;
  const U eps = Tr<T>::eps(), eps2 = eps * eps, safmin = Tr<T>::min_normal();
  const int64_t max_iterations = int64_t(max_sweeps) * n;
  int64_t iteration = 0;
  // Zero rows: Z starts as I, and a rotation i makes columns i and i + 1 nonzero in the
  // union of their rows, so that column k is zero above a row first[k] (the same for every
  // lane of the P tiles: their union), first[k] <= first[k + 1]. A sweep (rotations
  // hi .. lo, descending) sets first[k] = first[k - 1] for k = hi + 1 .. lo + 1: each
  // sweep fills one more row above the subdiagonal, and Z is full after some n sweeps. A
  // rotation i touches rows first[i].. only; the others are zero in both columns, where
  // it would store zeros. (Some n^3 / 6 of about n^3 row rotations a tile makes at
  // n = 64: docs/jacobi.md, "Mid-size eigh".) The buffered sweeps keep the state of first
  // as each starts (n <= kMaxZColumns <= 127: int8_t).
  static_assert(kMaxZColumns <= 127, "first rows are int8_t");
  int8_t first[kMaxZColumns], sweep_first[kMaxBufferedSweeps * kMaxZColumns];
  for (int64_t k = 0; k < n; ++k) first[k] = int8_t(k);
  int64_t buffered = 0, sweep_hi[kMaxBufferedSweeps], sweep_lo[kMaxBufferedSweeps];
  int sweeps = 0;
  auto apply_buffer = [&]() {
    for (int t = 0; t < P; ++t)
      apply_buffered_sweeps<W, WQ, T>(Z[t], n, ld, rot + t * W, sweep_hi, sweep_lo, sweep_first, sweeps);
    sweeps = 0;
    buffered = 0;
  };
  for (;; ++iteration) {
    // Deflate at the top, then find the end m of each lane's unreduced block [top, m]: one
    // pass over k for all lanes at once, the same decisions as a scan per lane (which was
    // scalar, with a data-dependent exit per lane: ~10% of the QL step at n = 24).
    int64_t kfirst = n;
    for (int l = 0; l < WQ; ++l) kfirst = top[l] < kfirst ? top[l] : kfirst;
    int64_t found[WQ];
    SAFESVD_MID_SIMD
    for (int l = 0; l < WQ; ++l) {
      found[l] = 0;
      end[l] = n - 1;
    }
    for (int64_t k = kfirst; k < n - 1; ++k) {
      int64_t open = 0;
      SAFESVD_MID_SIMD
      for (int l = 0; l < WQ; ++l) {
        const U ek = eu[k * WQ + l];
        const bool small = ek * ek <= eps2 * compute_abs(du[k * WQ + l]) * compute_abs(du[(k + 1) * WQ + l]) + safmin;
        const bool advance = small && k == top[l];                          // e_top negligible
        const bool stop = small && !advance && k >= top[l] && !found[l];  // the block ends at k
        eu[k * WQ + l] = advance || stop ? U(0) : ek;
        top[l] = advance ? k + 1 : top[l];
        end[l] = stop ? k : end[l];
        found[l] = stop ? 1 : found[l];
        open |= found[l] ? 0 : 1;
      }
      if (!open) break;
    }
    int64_t kmin = n, kmax = -1;
    for (int l = 0; l < WQ; ++l) {
      if (end[l] > top[l]) {
        kmin = top[l] < kmin ? top[l] : kmin;
        kmax = end[l] > kmax ? end[l] : kmax;
      }
    }
    if (kmax < 0 || iteration >= max_iterations) break;
    if (buffer) {
      if (sweeps == kMaxBufferedSweeps || buffered + (kmax - kmin) > rotation_buffer_capacity(n)) apply_buffer();
      sweep_hi[sweeps] = kmax - 1;
      sweep_lo[sweeps] = kmin;
      for (int64_t k = 0; k < n; ++k) sweep_first[sweeps * kMaxZColumns + k] = first[k];
      ++sweeps;
    }
    U g[WQ], s[WQ], c[WQ], p[WQ];
    SAFESVD_MID_SIMD
    for (int l = 0; l < WQ; ++l) {
      const int64_t t = top[l] < n - 1 ? top[l] : n - 2, m = end[l];
      const U et = eu[t * WQ + l];
      const U dt = du[t * WQ + l];
      const U gg = (du[(t + 1) * WQ + l] - dt) * compute_recip_where(et != U(0), U(2) * et);
      const U r = compute_sqrt(compute_fma(gg, gg, U(1)));
      const U den = gg >= U(0) ? gg + r : gg - r;
      g[l] = du[m * WQ + l] - dt + et * compute_recip_where(den != U(0), den);
      s[l] = U(1);
      c[l] = U(1);
      p[l] = U(0);
    }
    // The sweep's rotations into the buffer (applied to Z by apply_buffered_sweeps).
    for (int64_t i = kmax - 1; i >= kmin; --i) {
      T* cr = rot + buffered * 2 * WQ;
      T* sr = cr + WQ;
      SAFESVD_MID_SIMD
      for (int l = 0; l < WQ; ++l) {
        const bool active = end[l] > top[l] && i >= top[l] && i < end[l];
        // 2 b off the chain through r: (2 cn) b = cn (2 b) exactly, one multiplication
        // less after the square root and division (1-3% of the eigh at n = 24..64).
        const U f = s[l] * eu[i * WQ + l], b = c[l] * eu[i * WQ + l], b2 = U(2) * b;
        const U r = compute_sqrt(compute_fma(g[l], g[l], f * f));
        const U ir = compute_recip_where(r > U(0), r);
        const U cn = r > U(0) ? g[l] * ir : U(1), sn = r > U(0) ? f * ir : U(0);
        if (i + 1 < n) eu[(i + 1) * WQ + l] = active && i != end[l] - 1 ? r : eu[(i + 1) * WQ + l];
        const U gg = du[(i + 1) * WQ + l] - p[l];
        const U rr = compute_fma((du[i * WQ + l] - gg), sn, cn * b2);
        const U pn = sn * rr;
        du[(i + 1) * WQ + l] = active ? gg + pn : du[(i + 1) * WQ + l];
        g[l] = active ? compute_fma(cn, rr, -b) : g[l];
        p[l] = active ? pn : p[l];
        c[l] = active ? cn : c[l];
        s[l] = active ? sn : s[l];
        cr[l] = active ? T(cn) : T(1);
        sr[l] = active ? T(sn) : T(0);
      }
      if (buffer)
        ++buffered;
      else
        for (int t = 0; t < P; ++t) rotate_rows<W, T>(Z[t], n, ld, i, first[i], cr + t * W, sr + t * W);
      first[i + 1] = first[i];
    }
    SAFESVD_MID_SIMD
    for (int l = 0; l < WQ; ++l) {
      if (end[l] > top[l]) {
        du[top[l] * WQ + l] -= p[l];
        eu[top[l] * WQ + l] = g[l];
      }
    }
  }
  if (buffer) {
    apply_buffer();
    for (int t = 0; t < P; ++t)
      for (int64_t c = 0; c < n; ++c)
        for (int64_t i = 0; i < n; ++i) {
          SAFESVD_MID_SIMD
          for (int l = 0; l < W; ++l) Q[t][(c * n + i) * W + l] = Z[t][(c * ld + i) * W + l];
        }
  }
}

// Steps 4 to 6 of the mid-size eigh (tridiag_eigh_tiles) for one tile: the eigenvalues
// into L, Q = H_0 ... H_(n-3) Z with unit columns, NaN for a lane of non-finite input,
// info. d, e: the tile's tridiagonal (T, still as step 1 left it); du: the recurrences'
// diagonal, lane l at du[k * WQ + l] (ql_tiles, offset to the tile); top: the tile's W
// values of ql_tiles' top; p: n W values of work; pack: kReflectorBlock n W values.
template <int W, int WQ, typename T>
SAFESVD_HD void finish_tile(const T* A, int64_t n, T* L, T* Q, int* info, T* d, const T* e, const T* tau, T* p,
                            T* pack, const typename MidCompute<T>::type* du, const int64_t* top, const T* inv,
                            const typename tall_detail::Tr<T>::I* ok) {
  using namespace tall_detail;
  using U = typename MidCompute<T>::type;
  // 4. The eigenvalues. Where the recurrences ran in a wider type, d is accurate. Where
  //    they could not (float64 without a wider type at hand, MidCompute), their rounding
  //    would dominate the eigenvalue error (3-6x LAPACK's at n = 32..64): take instead the
  //    Rayleigh quotients z_i^T T z_i / z_i^T z_i of the eigenvectors of T (d, e still hold T), exact to
  //    second order in the vectors' error, also inside clusters (any vector of an
  //    invariant subspace of nearly equal eigenvalues gives one of them to within their gap).
  if (sizeof(U) > sizeof(T)) {
    for (int64_t k = 0; k < n; ++k)
      for (int l = 0; l < W; ++l) d[k * W + l] = T(du[k * WQ + l]);
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
  //    k+1.. of every column) in blocks of kReflectorBlock, the last block first. pack
  //    (the rotation buffer, free from here) holds a block's reflectors row by row
  //    (apply_reflector_block: kReflectorBlock n <= 2 rotation_buffer_capacity(n)).
  static_assert(kReflectorBlock <= 2 * rotation_buffer_capacity(1), "the rotation buffer holds a block");
  for (int64_t kb = n - 2; kb > 0;) {
    const int64_t k0 = kb > kReflectorBlock ? kb - kReflectorBlock : 0;
    static_assert(kReflectorBlock == 8, "one case per block size");
    switch (kb - k0) {
      case 8: apply_reflector_block<8, W, T>(A, n, k0, tau, Q, pack); break;
      case 7: apply_reflector_block<7, W, T>(A, n, k0, tau, Q, pack); break;
      case 6: apply_reflector_block<6, W, T>(A, n, k0, tau, Q, pack); break;
      case 5: apply_reflector_block<5, W, T>(A, n, k0, tau, Q, pack); break;
      case 4: apply_reflector_block<4, W, T>(A, n, k0, tau, Q, pack); break;
      case 3: apply_reflector_block<3, W, T>(A, n, k0, tau, Q, pack); break;
      case 2: apply_reflector_block<2, W, T>(A, n, k0, tau, Q, pack); break;
      default: apply_reflector_block<1, W, T>(A, n, k0, tau, Q, pack); break;
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

// Eigendecomposition of P tiles of W symmetric n x n matrices each (column-major lane
// tiles A[t], destroyed: only the lower triangle, diagonal included, is read or written,
// for the scaling's max |a| and finiteness test as for the decomposition; the strict
// upper triangle may hold anything). Outputs: L[t] (n per lane, NOT sorted: the caller
// orders them), Q[t] (n x n column-major lanes, column j the eigenvector of L[j]).
// info[t][l]: 0 converged, 1 not converged within max_sweeps * n QR sweeps, 2 non-finite
// input (outputs NaN). scratch, wide: tridiag_eigh_scratch<W, T, P>(n) values of T,
// tridiag_eigh_wide_scratch<W, P>(n) of MidCompute<T>::type. Each lane's results are
// those of its tile alone (P = 1): the P tiles only share the QL recurrences' loop
// (ql_tiles).
template <int W, int P, typename T>
SAFESVD_HD void tridiag_eigh_tiles(T* const* A, int64_t n, T* const* L, T* const* Q, int* const* info, int max_sweeps,
                                   T* scratch, typename MidCompute<T>::type* wide) {
  using I = typename tall_detail::Tr<T>::I;
  // Layout: per tile d, e, tau and two work vectors (5 n W), then the rotation buffer,
  // then per tile Z where the sweeps are buffered.
  const bool buffer = n >= kBufferedSweepsFrom;
  const int64_t ld = buffer ? mid_z_ld<W, T>(n) : n;
  T* rot = scratch + 5 * n * W * P;
  T *d[P], *e[P], *tau[P], *work[P], *Z[P];
  T inv[P][W];
  I ok[P][W];
  for (int t = 0; t < P; ++t) {
    d[t] = scratch + 5 * n * W * t;
    e[t] = d[t] + n * W;
    tau[t] = e[t] + n * W;
    work[t] = tau[t] + n * W;
    Z[t] = buffer ? rot + 2 * rotation_buffer_capacity(n) * W * P + mid_z_ld<W, T>(n) * n * W * t : Q[t];
    tridiagonalize_tile<W, T>(A[t], n, d[t], e[t], tau[t], work[t], inv[t], ok[t]);
  }
  int64_t top[W * P];
  ql_tiles<W, P, T>(n, d, e, Z, Q, ld, rot, wide, top, max_sweeps);
  // The rotation buffer, free from here, holds a block's reflectors (step 5).
  for (int t = 0; t < P; ++t)
    finish_tile<W, W * P, T>(A[t], n, L[t], Q[t], info[t], d[t], e[t], tau[t], work[t], rot, wide + t * W,
                             top + t * W, inv[t], ok[t]);
}

}  // namespace kernels
}  // namespace safesvd

#undef SAFESVD_MID_SIMD

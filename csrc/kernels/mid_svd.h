// The mid-size SVD (docs/jacobi.md, "Mid-size svd"): one-sided Jacobi preconditioned by
// the eigenvectors of A^T A. With V0 from the mid-size eigh (tridiag_eigh.h) of the Gram
// matrix, the columns of B = A V0 are orthogonal up to the rounding of A^T A, so the
// one-sided Jacobi that follows needs a sweep or two instead of some eight, and it alone
// decides the result: its accuracy is Jacobi's, whatever the Gram matrix lost (columns of
// singular values below sqrt(eps) max S come out of the eigh mixed, and Jacobi separates
// them like any other pair). n is a run-time value (17..64 on the CPU).
//
// One matrix per SIMD lane; layout as tridiag_eigh.h: element (i, j) of lane l at
// X[(j * n + i) * W + l] (column-major lanes: every step walks columns).
//
// Host+device templates, no ATen, no heap.
#pragma once

#include <initializer_list>

#include "strided.h"  // SAFESVD_HD before jacobi.h, which undefines its own
#include "tridiag_eigh.h"

#if defined(__CUDACC__)
#define SAFESVD_MSVD_SIMD
#elif defined(_OPENMP)
#define SAFESVD_MSVD_SIMD _Pragma("omp simd")
#elif defined(__GNUC__)
#define SAFESVD_MSVD_SIMD _Pragma("GCC ivdep")
#else
#define SAFESVD_MSVD_SIMD
#endif

namespace safesvd {
namespace kernels {

// Scratch of mid_svd_tile (in T): B (n x n), the eigenvalues of the Gram matrix and the
// eigh scratch; plus tridiag_eigh_wide_scratch of MidCompute<T>. (The Gram matrix lives
// in U, which it leaves before U is written: one tile less in cache, 256 KiB at 64 x 64
// float64.)
template <int W, typename T>
SAFESVD_HD constexpr int64_t mid_svd_scratch(int64_t n) {
  return n * n * W + n * W + tridiag_eigh_scratch<W, T>(n) + 2 * n * W;
}
// The parts of one tile's mid_svd_scratch, in that order: B = A V0 (n x n), the Gram
// matrix's eigenvalues (n, unused), the eigh's scratch, ||b_j||^2 (n) and a work column (n).
template <int W, typename T>
struct MidSvdScratch {
  T *B, *ev, *eig, *norms, *work;
  SAFESVD_HD MidSvdScratch(T* scratch, int64_t n)
      : B(scratch),
        ev(B + n * n * W),
        eig(ev + n * W),
        norms(eig + tridiag_eigh_scratch<W, T>(n)),
        work(norms + n * W) {}
};

// Rows per register block of rows_times_vector (and of the mid-size svd's Gram matrix).
constexpr int kRowBlock = 8;
// Rows [i0, i0 + rows) of the column-major n x n lane tile X (element (i, c) at
// X[(c * n + i) * W + l]) copied into `pack`, column after column: X(i0 + r, c) at
// pack[(c * kRowBlock + r) * W + l], n kRowBlock W values. In X those rows lie n W values
// apart per column, at n = 64 in float64 exactly 4 KiB (2 KiB at 32): the block's lines
// fall into the same few sets of the L1 cache, which cannot hold them, and each of the n
// passes of rows_times_vector over the block read it from L2 (docs/jacobi.md, "Mid-size
// svd"). The copy is 32 KiB at most (n = 64), contiguous.
template <int W, typename T>
SAFESVD_HD void pack_rows(const T* __restrict__ X, int64_t n, int64_t i0, int rows, T* __restrict__ pack) {
  for (int64_t c = 0; c < n; ++c)
    for (int r = 0; r < rows; ++r) {
      SAFESVD_MSVD_SIMD
      for (int l = 0; l < W; ++l) pack[(c * kRowBlock + r) * W + l] = X[(c * n + i0 + r) * W + l];
    }
}
// out[r * W + l] = the sum over the columns c = 0 .. n-1, ascending from a zero
// accumulator, of X(i0 + r, c) v[c] (lane l), r < rows <= kRowBlock, from the rows'
// pack_rows copy. The rows' sums stay in registers, so a load of v[c] feeds `rows`
// products and `out` is written once (a sum accumulated in memory is loaded and stored
// once per column). Step 2's B = A V0.
template <int W, typename T>
SAFESVD_HD void rows_times_vector(const T* __restrict__ pack, int64_t n, int rows, const T* __restrict__ v,
                                  T* __restrict__ out) {
  using jacobi_detail::jfma;
  T acc[kRowBlock][W];
  for (int r = 0; r < kRowBlock; ++r) {
    SAFESVD_MSVD_SIMD
    for (int l = 0; l < W; ++l) acc[r][l] = T(0);
  }
  if (rows == kRowBlock) {  // the full block, its row loop unrolled
    for (int64_t c = 0; c < n; ++c)
      for (int r = 0; r < kRowBlock; ++r) {
        SAFESVD_MSVD_SIMD
        for (int l = 0; l < W; ++l) acc[r][l] = jfma(pack[(c * kRowBlock + r) * W + l], v[c * W + l], acc[r][l]);
      }
  } else {
    for (int64_t c = 0; c < n; ++c)
      for (int r = 0; r < rows; ++r) {
        SAFESVD_MSVD_SIMD
        for (int l = 0; l < W; ++l) acc[r][l] = jfma(pack[(c * kRowBlock + r) * W + l], v[c * W + l], acc[r][l]);
      }
  }
  for (int r = 0; r < rows; ++r) {
    SAFESVD_MSVD_SIMD
    for (int l = 0; l < W; ++l) out[r * W + l] = acc[r][l];
  }
}

namespace mid_svd_detail {

using namespace tall_detail;

// x_j <- (x_j - sum_{k < j} (x_k . x_j) x_k) twice over columns k of X (orthonormal),
// then nrm = ||x_j||: classical Gram-Schmidt with reorthogonalization, in the lanes where
// apply[l] (elsewhere x_j is left as it is, bit for bit: its coefficients are zero).
template <int W, typename T>
SAFESVD_HD void orthogonalize_column(T* X, int64_t n, int64_t j, const typename Tr<T>::I* apply, T* nrm) {
  T* x = X + (j * n) * W;
  if (jacobi_detail::any_lane<W>(apply))
    for (int pass = 0; pass < 2; ++pass)
      for (int64_t k = 0; k < j; ++k) {
        const T* xk = X + (k * n) * W;
        T dot[W];
        column_dot<W, T>(xk, x, 0, n, dot);
        SAFESVD_MSVD_SIMD
        for (int l = 0; l < W; ++l) dot[l] = apply[l] ? dot[l] : T(0);
        for (int64_t i = 0; i < n; ++i) {
          SAFESVD_MSVD_SIMD
          for (int l = 0; l < W; ++l) x[i * W + l] = jfma(-dot[l], xk[i * W + l], x[i * W + l]);
        }
      }
  T s2[W];
  column_dot<W, T>(x, x, 0, n, s2);
  SAFESVD_MSVD_SIMD
  for (int l = 0; l < W; ++l) nrm[l] = jsqrt(s2[l]);
}

}  // namespace mid_svd_detail

// The mid-size svd of P tiles (one, or two in float64: the eigh of their Gram matrices
// runs its QL recurrences side by side, tridiag_eigh_tiles) in three steps: mid_svd_gram
// (the scaling and G = A^T A, step 1's first half), the eigh of the tiles' G together,
// mid_svd_finish (the rest). mid_svd_tile is the three for one tile.

// Step 1's first half for one tile: the power-of-two scaling of A's columns (inv, ok:
// scale_columns), then G = A^T A into G (n x n lanes; U's space).
template <int W, typename T>
SAFESVD_HD void mid_svd_gram(T* A, int64_t n, T* G, T* inv, typename tall_detail::Tr<T>::I* ok) {
  using namespace mid_svd_detail;
  scale_columns<W, T>(A, n * n, inv, ok);

  // 1. G = A^T A (the upper triangle, mirrored), V0 its eigenvectors (the caller). Rows of the
  //    triangle in blocks of kRowBlock columns, their sums in registers: a load of a_i
  //    feeds kRowBlock products (dot products one entry at a time loaded both factors
  //    of each). Block by block, so that the block's columns stay in L1 while every a_i
  //    passes. G only preconditions step 3, so its rounding does not reach the result.
  for (int64_t jb = 0; jb < n; jb += kRowBlock)
    for (int64_t i = 0; i < jb + kRowBlock && i < n; ++i) {
      const int64_t j0 = i > jb ? i : jb;  // the block's columns j >= i
      const int cols = int((jb + kRowBlock < n ? jb + kRowBlock : n) - j0);
      T g[kRowBlock][W];
      for (int c = 0; c < kRowBlock; ++c) {
        SAFESVD_MSVD_SIMD
        for (int l = 0; l < W; ++l) g[c][l] = T(0);
      }
      const T* ai = A + (i * n) * W;
      if (cols == kRowBlock) {
        for (int64_t p = 0; p < n; ++p)
          for (int c = 0; c < kRowBlock; ++c) {
            SAFESVD_MSVD_SIMD
            for (int l = 0; l < W; ++l) g[c][l] = jfma(ai[p * W + l], A[((j0 + c) * n + p) * W + l], g[c][l]);
          }
      } else {
        for (int64_t p = 0; p < n; ++p)
          for (int c = 0; c < cols; ++c) {
            SAFESVD_MSVD_SIMD
            for (int l = 0; l < W; ++l) g[c][l] = jfma(ai[p * W + l], A[((j0 + c) * n + p) * W + l], g[c][l]);
          }
      }
      for (int c = 0; c < cols; ++c) {
        const int64_t j = j0 + c;
        SAFESVD_MSVD_SIMD
        for (int l = 0; l < W; ++l) G[(j * n + i) * W + l] = G[(i * n + j) * W + l] = g[c][l];
      }
    }
}

// Steps 2 to 5 for one tile, V holding the eigenvectors of G (eig_info: the eigh's info
// per lane; U: G's space, free), inv and ok from mid_svd_gram. scratch: mid_svd_scratch.
template <int W, typename T>
SAFESVD_HD void mid_svd_finish(const T* A, int64_t n, T* U, T* S, T* V, int* info, int max_sweeps, T* scratch,
                               const int* eig_info, const T* inv, const typename tall_detail::Tr<T>::I* ok) {
  using namespace mid_svd_detail;
  using I = typename Tr<T>::I;
  const int64_t nn = n * n;
  const MidSvdScratch<W, T> parts(scratch, n);
  T* B = parts.B;  // A V0, rotated by Jacobi
  T* norms = parts.norms;
  T* work = parts.work;
  for (int64_t e = 0; e < nn; ++e) {  // a lane whose eigh failed starts from V0 = I
    const int64_t i = e % n, j = e / n;
    SAFESVD_MSVD_SIMD
    for (int l = 0; l < W; ++l) V[e * W + l] = eig_info[l] == 0 ? V[e * W + l] : (i == j ? T(1) : T(0));
  }

  // 2. B = A V0, kRowBlock rows at a time with their sums (over k ascending from 0) in
  //    registers (rows_times_vector): one load of V's entry per kRowBlock
  //    products, and B written once (accumulating a column of B in memory loaded and
  //    stored it n times). The row block outside, copied (pack_rows, into U: the Gram
  //    matrix there is dead after the eigh, and U is written in step 4), so that its
  //    kRowBlock rows of A stay in L1 while V's columns pass.
  for (int64_t i0 = 0; i0 < n; i0 += kRowBlock) {
    const int rows = n - i0 < kRowBlock ? int(n - i0) : kRowBlock;
    pack_rows<W, T>(A, n, i0, rows, U);
    for (int64_t j = 0; j < n; ++j) rows_times_vector<W, T>(U, n, rows, V + (j * n) * W, B + (j * n + i0) * W);
  }

  // 3. One-sided Jacobi on B (jacobi.h's rotation and tests: rotate when
  //    |b_p . b_q| > tol ||b_p|| ||b_q|| and > eps^2 in the scaled units), V <- V J. The
  //    squared norms are computed at each sweep's start and updated by the rotations
  //    (a' = a - t g, b' = b + t g): one dot product per pair instead of three.
  //    A pair whose two columns no rotation has touched since the sweep before this one
  //    began is skipped: its columns and their norms are those of its last test, bit for
  //    bit, which rotated in no lane, so the test would again find nothing (in a lane that
  //    does not rotate, the identity rotation leaves the columns and the norms exact). After
  //    the preconditioner, the last sweep, which verifies convergence, touches only the few
  //    columns the sweep before it rotated (docs/jacobi.md, "Mid-size svd").
  const int root_n = jacobi_detail::jac_isqrt_ceil(n < 64 ? int(n) : 64);
  const T tol = T(2 * root_n) * Tr<T>::eps();
  const T floor_abs = Tr<T>::eps() * Tr<T>::eps();
  I rotated_sweep[W];
  for (int l = 0; l < W; ++l) rotated_sweep[l] = I(1);
  bool touched_before[64], touched[64];  // n <= 64: rotated in the previous sweep / in this one
  for (int64_t j = 0; j < n; ++j) touched_before[j] = true;
  int sweep = 0;
  for (; sweep < max_sweeps; ++sweep) {
    for (int l = 0; l < W; ++l) rotated_sweep[l] = I(0);
    for (int64_t j = 0; j < n; ++j) {  // an untouched column keeps its norm, bit for bit
      if (touched_before[j]) column_dot<W, T>(B + (j * n) * W, B + (j * n) * W, 0, n, norms + j * W);
      touched[j] = false;
    }
    int any = 0;
    for (int64_t p = 0; p + 1 < n; ++p)
      for (int64_t q = p + 1; q < n; ++q) {
        if (!(touched_before[p] | touched_before[q] | touched[p] | touched[q])) continue;
        T* bp = B + (p * n) * W;
        T* bq = B + (q * n) * W;
        T g[W], s[W], tau[W];
        column_dot<W, T>(bp, bq, 0, n, g);
        I r[W];
        SAFESVD_MSVD_SIMD
        for (int l = 0; l < W; ++l) {
          const T al = norms[p * W + l], be = norms[q * W + l], ga = g[l];
          const bool rot = (jacobi_detail::jabs(ga) > floor_abs) & (ga * ga > (tol * tol) * (al * be));
          T t;
          jacobi_detail::rotation(al, be, ga, rot, s[l], t, tau[l]);
          norms[p * W + l] = jfma(-t, ga, al);
          norms[q * W + l] = jfma(t, ga, be);
          r[l] = I(rot);
        }
        if (!jacobi_detail::any_lane<W>(r)) continue;
        any = 1;
        touched[p] = touched[q] = true;
        for (int l = 0; l < W; ++l) rotated_sweep[l] |= r[l];
        // x_p <- x_p - s (x_q + tau x_p), x_q <- x_q + s (x_p - tau x_q) (jacobi.h).
        for (T* X : {B, V}) {
          T* xp = X + (p * n) * W;
          T* xq = X + (q * n) * W;
          for (int64_t i = 0; i < n; ++i) {
            SAFESVD_MSVD_SIMD
            for (int l = 0; l < W; ++l) {
              const T a = xp[i * W + l], b = xq[i * W + l];
              xp[i * W + l] = jfma(-s[l], jfma(tau[l], a, b), a);
              xq[i * W + l] = jfma(s[l], jfma(-tau[l], b, a), b);
            }
          }
        }
      }
    for (int64_t j = 0; j < n; ++j) touched_before[j] = touched[j];
    if (!any) break;
  }

  // 4. S = the column norms of B, U = B / S; a column whose singular value is (numerically)
  //    zero, or whose normalized column is no longer orthogonal to the earlier ones, is
  //    replaced by a unit vector orthogonal to them (the e_k with the smallest component in
  //    their span, orthogonalized twice), so U is orthogonal for rank-deficient input.
  //    Columns are taken in descending order of S, so that good columns come first.
  int64_t order[64 * W];  // n <= 64
  for (int64_t j = 0; j < n; ++j) column_dot<W, T>(B + (j * n) * W, B + (j * n) * W, 0, n, norms + j * W);
  lane_stable_order<W, T>(norms, n, /*descending=*/true, order);
  // U (in order), S and V permuted to the same order.
  for (int64_t j = 0; j < n; ++j) {
    T* u = U + (j * n) * W;
    for (int64_t i = 0; i < n; ++i)
      for (int l = 0; l < W; ++l) u[i * W + l] = B[(order[j * W + l] * n + i) * W + l];
    for (int l = 0; l < W; ++l) S[j * W + l] = jsqrt(norms[order[j * W + l] * W + l]);
  }
  for (int64_t j = 0; j < n; ++j)  // B <- V in order, then V <- B
    for (int64_t i = 0; i < n; ++i)
      for (int l = 0; l < W; ++l) B[(j * n + i) * W + l] = V[(order[j * W + l] * n + i) * W + l];
  for (int64_t e = 0; e < nn * W; ++e) V[e] = B[e];
  for (int64_t j = 0; j < n; ++j) {
    T* u = U + (j * n) * W;
    T rs[W];
    SAFESVD_MSVD_SIMD
    for (int l = 0; l < W; ++l) rs[l] = recip_where(S[j * W + l] >= Tr<T>::min_normal(), S[j * W + l]);
    for (int64_t i = 0; i < n; ++i) {
      SAFESVD_MSVD_SIMD
      for (int l = 0; l < W; ++l) u[i * W + l] *= rs[l];
    }
    // Jacobi stopped when every pair passed its test, |b_p . b_q| <= tol ||b_p|| ||b_q|| or
    // <= eps^2: the columns are orthogonal to tol already wherever eps^2 <= tol S_p S_q, so
    // wherever S_j^2 >= eps^2 / tol (the columns come in descending order). Only a column
    // below that (rank-deficient input) is orthogonalized against the earlier ones.
    I gs[W];
    SAFESVD_MSVD_SIMD
    for (int l = 0; l < W; ++l) gs[l] = I(!(S[j * W + l] * S[j * W + l] >= floor_abs / tol));
    T nrm[W];
    orthogonalize_column<W, T>(U, n, j, gs, nrm);
    I need[W];
    T rn[W];
    SAFESVD_MSVD_SIMD
    for (int l = 0; l < W; ++l) {
      const bool good = nrm[l] > T(0.25);
      need[l] = I(!good);
      rn[l] = recip_where(good, nrm[l]);
    }
    for (int64_t i = 0; i < n; ++i) {
      SAFESVD_MSVD_SIMD
      for (int l = 0; l < W; ++l) u[i * W + l] *= rn[l];
    }
    if (!jacobi_detail::any_lane<W>(need)) continue;
    // The replacement: e_k with the smallest squared norm of row k within columns 0..j-1.
    T best[W];
    int64_t idx[W];
    for (int l = 0; l < W; ++l) {
      best[l] = T(4);
      idx[l] = 0;
    }
    for (int64_t k = 0; k < n; ++k)
      for (int l = 0; l < W; ++l) {
        T w = T(0);
        for (int64_t c = 0; c < j; ++c) w = jfma(U[(c * n + k) * W + l], U[(c * n + k) * W + l], w);
        if (w < best[l]) {
          best[l] = w;
          idx[l] = k;
        }
      }
    for (int64_t i = 0; i < n; ++i)
      for (int l = 0; l < W; ++l) {
        work[i * W + l] = u[i * W + l];
        u[i * W + l] = idx[l] == i ? T(1) : T(0);
      }
    orthogonalize_column<W, T>(U, n, j, need, nrm);
    for (int64_t i = 0; i < n; ++i)
      for (int l = 0; l < W; ++l)
        u[i * W + l] = need[l] ? u[i * W + l] * recip_where(nrm[l] > T(0), nrm[l]) : work[i * W + l];
  }

  // 5. Undo the scaling; NaN for non-finite input.
  for (int64_t j = 0; j < n; ++j) {
    SAFESVD_MSVD_SIMD
    for (int l = 0; l < W; ++l) S[j * W + l] = (ok[l] ? S[j * W + l] : jacobi_detail::quiet_nan<T>()) * inv[l];
  }
  for (int64_t e = 0; e < nn; ++e) {
    SAFESVD_MSVD_SIMD
    for (int l = 0; l < W; ++l) {
      U[e * W + l] = ok[l] ? U[e * W + l] : jacobi_detail::quiet_nan<T>();
      V[e * W + l] = ok[l] ? V[e * W + l] : jacobi_detail::quiet_nan<T>();
    }
  }
  for (int l = 0; l < W; ++l) info[l] = !ok[l] ? 2 : (rotated_sweep[l] && sweep >= max_sweeps ? 1 : 0);
}

// SVD of P tiles of W square n x n matrices each, A = U diag(S) V^T (column-major lane
// tiles A[t], destroyed). U, V: n x n column-major lanes; S: n per lane, NOT sorted (the
// caller orders U, S, V together). info: 0 converged, 1 not converged within max_sweeps
// Jacobi sweeps (or the eigh of the Gram matrix did not converge: then Jacobi runs from
// V0 = I), 2 non-finite input (outputs NaN). scratch[t]: mid_svd_scratch<W, T>(n) values
// each; eig_scratch, wide: tridiag_eigh_scratch<W, T, P>(n) and
// tridiag_eigh_wide_scratch<W, P>(n) values (P = 1: eig_scratch may be the tile's own,
// mid_svd_tile). Each lane's results are those of its tile alone.
template <int W, int P, typename T>
SAFESVD_HD void mid_svd_tiles_kernel(T* const* A, int64_t n, T* const* U, T* const* S, T* const* V,
                                     int* const* info, int max_sweeps, T* const* scratch, T* eig_scratch,
                                     typename MidCompute<T>::type* wide) {
  using I = typename tall_detail::Tr<T>::I;
  T inv[P][W];
  I ok[P][W];
  int eig_info[P][W];
  int* eig_infos[P];
  T* ev[P];  // the eigenvalues of G (unused)
  for (int t = 0; t < P; ++t) {
    eig_infos[t] = eig_info[t];
    ev[t] = MidSvdScratch<W, T>(scratch[t], n).ev;
    mid_svd_gram<W, T>(A[t], n, U[t], inv[t], ok[t]);
  }
  tridiag_eigh_tiles<W, P, T>(U, n, ev, V, eig_infos, max_sweeps, eig_scratch, wide);
  for (int t = 0; t < P; ++t)
    mid_svd_finish<W, T>(A[t], n, U[t], S[t], V[t], info[t], max_sweeps, scratch[t], eig_info[t], inv[t], ok[t]);
}

template <int W, typename T>
SAFESVD_HD void mid_svd_tile(T* A, int64_t n, T* U, T* S, T* V, int* info, int max_sweeps, T* scratch,
                             typename MidCompute<T>::type* wide) {
  mid_svd_tiles_kernel<W, 1, T>(&A, n, &U, &S, &V, &info, max_sweeps, &scratch, MidSvdScratch<W, T>(scratch, n).eig,
                                wide);
}

}  // namespace kernels
}  // namespace safesvd

#undef SAFESVD_MSVD_SIMD

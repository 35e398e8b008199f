// Per-matrix backward of spectral matrix functions (docs/math.md, "Matrix
// functions"), host+device.
//
//   eigh_fn: Y = Q diag(f(L)) Q^H          (Daleckii-Krein)
//   svd_fn : Y = U diag(f(S)) V^H          (singular value functions)
//
// They differentiate the matrix function itself with divided differences
// (DividedDifferences in guards.h), so the gradient is exact at repeated
// values, unlike any guard on the cotangents of U, S, V. Both maps are
// self-adjoint, so the same code is the forward-mode JVP. The second order
// (fn_second_order) uses second divided differences f[x, y, z]; svd_fn's goes
// through the Hermitian dilation [[0, A], [A^H, 0]] (csrc/aten/fn.cpp).
#pragma once

#include "eigh_backward.h"
#include "svd_backward.h"

namespace safesvd {
namespace kernels {

// X = M o D with M = (T + T^H)/2, D_ij = f[L_i, L_j] (D_ii = df_i), from
// T = Q^H G Q; gf_i = Re M_ii (the cotangent of f(L_i), for parameters of f). In two
// passes, X = T^H first, so that the second reads rows only: on the CPU its loop over j
// vectorizes (given -fno-trapping-math, csrc/manifest.txt, which lets the compiler compute
// both sides of the divided difference's select), where reading T's column made it a
// strided, branchy scalar loop (a quarter of the batched matrix-function backward at
// 32 x 32 float64). The same values.
template <typename scalar_t>
SAFESVD_HD void eigh_fn_build_X(int64_t n, const scalar_t* __restrict__ T, const real_of_t<scalar_t>* L,
                                const real_of_t<scalar_t>* fL, const real_of_t<scalar_t>* dfL,
                                int64_t stride, const DividedDifferences<real_of_t<scalar_t>>& dd,
                                scalar_t* __restrict__ X, real_of_t<scalar_t>* gf) {
  using R = real_of_t<scalar_t>;
  pack_matrix(n, n, MatRef<const scalar_t>{T, n, 1}, X, /*adjoint=*/true);  // X = T^H
  for (int64_t i = 0; i < n; ++i) {
    const R xi = L[i * stride], fi = fL[i * stride], di = dfL[i * stride];
    if (gf) gf[i] = real_part(R(0.5) * (T[i * n + i] + X[i * n + i]));
    for (int64_t j = 0; j < n; ++j) {
      const scalar_t mij = R(0.5) * (T[i * n + j] + X[i * n + j]);
      X[i * n + j] = mij * dd.first(xi, L[j * stride], fi, fL[j * stride], di, dfL[j * stride]);
    }
  }
}

SAFESVD_HD int64_t eigh_fn_workspace(int64_t n) { return 2 * n * n; }

// gA = Q (D o M) Q^H, M = Q^H sym(G) Q. The packed G goes in the `gQ` slot of EighPacked.
template <typename scalar_t, typename Dims>
SAFESVD_HD void eigh_fn_backward_matrix(const Dims dims, const EighPacked<scalar_t>& in,
                                        const real_of_t<scalar_t>* L, const real_of_t<scalar_t>* fL,
                                        const real_of_t<scalar_t>* dfL, int64_t stride,
                                        const DividedDifferences<real_of_t<scalar_t>>& dd,
                                        scalar_t* __restrict__ gA, real_of_t<scalar_t>* gf,
                                        scalar_t* __restrict__ work) {
  const int64_t n = dims.n();
  scalar_t *T = work, *X = work + n * n;
  matmul_adjoint_rows(n, n, n, in.Q, in.gQ, X);  // Q^H G
  matmul_rows(n, n, n, X, in.Q, T);              // T = Q^H G Q
  eigh_fn_build_X(n, T, L, fL, dfL, stride, dd, X, gf);
  matmul_rows(n, n, n, X, in.QH, T);
  matmul_rows(n, n, n, in.Q, T, gA);
}

// X = Ms o Dm + Mk o Dp, Ms = (M + M^H)/2, Mk = (M - M^H)/2, from M = U^H G V
// (k x k), with Dm_ij = f[S_i, S_j] (Dm_ii = df_i) and Dp_ij = (f_i + f_j)/(S_i + S_j);
// F_i = Dp_ii = f_i / S_i (-> df_i at S_i = 0) for the rectangular terms; gf_i = Re M_ii.
// In two passes like eigh_fn_build_X (X = M^H first, then rows only: the loop over j
// vectorizes on the CPU). The same values.
template <typename scalar_t>
SAFESVD_HD void svd_fn_build_X(int64_t k, const scalar_t* __restrict__ M, const real_of_t<scalar_t>* S,
                               const real_of_t<scalar_t>* fS, const real_of_t<scalar_t>* dfS,
                               int64_t stride, const DividedDifferences<real_of_t<scalar_t>>& dd,
                               scalar_t* __restrict__ X, real_of_t<scalar_t>* F,
                               real_of_t<scalar_t>* gf) {
  using R = real_of_t<scalar_t>;
  pack_matrix(k, k, MatRef<const scalar_t>{M, k, 1}, X, /*adjoint=*/true);  // X = M^H
  for (int64_t i = 0; i < k; ++i) {
    const R si = S[i * stride], fi = fS[i * stride], di = dfS[i * stride];
    if (F) F[i] = dd.plus(si, si, fi, fi, di, di);
    if (gf) gf[i] = real_part(M[i * k + i]);
    for (int64_t j = 0; j < k; ++j) {
      const R sj = S[j * stride], fj = fS[j * stride], dj = dfS[j * stride];
      const scalar_t mij = M[i * k + j], mji = X[i * k + j];
      const R dp = dd.plus(si, sj, fi, fj, di, dj);
      X[i * k + j] = R(0.5) * (mij + mji) * dd.first(si, sj, fi, fj, di, dj) + R(0.5) * (mij - mji) * dp;
    }
  }
}

SAFESVD_HD int64_t svd_fn_workspace(int64_t m, int64_t n, int64_t k) {
  return 2 * k * k + 2 * (m > n ? m : n) * k + k;
}

// gA for Y = U diag(f(S)) V^H, with M = U^H G V, X and F from svd_fn_build_X:
//   gA = U X V^H + (m > k) (I - U U^H) G V F V^H + (n > k) U F U^H G (I - V V^H)
// G is the packed (m x n, row-major) cotangent of Y; `in` has no gU / gVh.
template <typename scalar_t, typename Dims>
SAFESVD_HD void svd_fn_backward_matrix(const Dims dims, const SvdPacked<scalar_t>& in,
                                       const scalar_t* __restrict__ G,
                                       const real_of_t<scalar_t>* S, const real_of_t<scalar_t>* fS,
                                       const real_of_t<scalar_t>* dfS, int64_t stride,
                                       const DividedDifferences<real_of_t<scalar_t>>& dd,
                                       scalar_t* __restrict__ gA, real_of_t<scalar_t>* gf,
                                       scalar_t* __restrict__ work) {
  using R = real_of_t<scalar_t>;
  const int64_t m = dims.m(), n = dims.n(), k = dims.k();
  const int64_t big = m > n ? m : n;
  scalar_t *M = work, *X = work + k * k, *R1 = work + 2 * k * k, *R2 = R1 + big * k;
  R* F = reinterpret_cast<R*>(R2 + big * k);
  const bool tall = m > k;
  if (tall) {
    matmul_rows(m, n, k, G, in.V, R1);          // GV = G V (m x k)
    matmul_adjoint_rows(k, m, k, in.U, R1, M);  // M = U^H GV
  } else {
    matmul_adjoint_rows(k, m, n, in.U, G, R1);  // UhG = U^H G (k x n)
    matmul_rows(k, n, k, R1, in.V, M);          // M = UhG V
  }
  svd_fn_build_X(k, M, S, fS, dfS, stride, dd, X, F, gf);
  if (tall) {
    // gA = [U (X - M F) + GV F] Vh
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j) X[i * k + j] -= M[i * k + j] * F[j];
    matmul_rows(m, k, k, in.U, X, R2);
    for (int64_t l = 0; l < m; ++l)
      for (int64_t j = 0; j < k; ++j) R2[l * k + j] += R1[l * k + j] * F[j];
    matmul_rows(m, k, n, R2, in.Vh, gA);
  } else {
    // gA = U [(X - F M) Vh + F UhG]   (the F terms vanish when n == k)
    if (n > k)
      for (int64_t i = 0; i < k; ++i)
        for (int64_t j = 0; j < k; ++j) X[i * k + j] -= F[i] * M[i * k + j];
    matmul_rows(k, k, n, X, in.Vh, R2);
    if (n > k)
      for (int64_t i = 0; i < k; ++i) axpy(n, scalar_t(F[i]), R1 + i * n, R2 + i * n);
    matmul_rows(m, k, n, in.U, R2, gA);
  }
}

// The second order of a Hermitian matrix function F(A) = W f(lam) W^H, in the
// eigenbasis (docs/math.md, "Second order"). With Gt = W^H sym(G) W (the
// cotangent of F) and Ht = W^H sym(H) W (the cotangent of the first-order
// gradient), the gradient of <H, gA(A)> with respect to A is W Z W^H,
//
//   Z_xy = sum_w f[lam_x, lam_w, lam_y] (Ht_xw Gt_wy + Gt_xw Ht_wy),
//
// exact at repeated eigenvalues. gf, gdf (nullable) are the gradients of
// <H, gA> with respect to the values f(lam) and f'(lam) that gA = W (D o Gt) W^H
// was built from (for parameters of f): with P_ij = Re(conj(Ht_ij) Gt_ij),
//   gf_a  = 2 sum_{j not merged with a} P_aj / (lam_a - lam_j),
//   gdf_a = P_aa + sum_{j != a merged with a} P_aj.
template <typename scalar_t>
SAFESVD_HD void fn_second_order(int64_t N, const scalar_t* Gt, const scalar_t* Ht,
                                const real_of_t<scalar_t>* lam, const real_of_t<scalar_t>* f,
                                const real_of_t<scalar_t>* df, const real_of_t<scalar_t>* d2f,
                                const DividedDifferences<real_of_t<scalar_t>>& dd,
                                scalar_t* __restrict__ Z, real_of_t<scalar_t>* gf,
                                real_of_t<scalar_t>* gdf) {
  using R = real_of_t<scalar_t>;
  for (int64_t x = 0; x < N; ++x)
    for (int64_t y = 0; y < N; ++y) {
      scalar_t z(0);
      for (int64_t w = 0; w < N; ++w) {
        const R c = dd.second(lam[x], lam[w], lam[y], f[x], f[w], f[y], df[x], df[w], df[y],
                              d2f[x], d2f[w], d2f[y]);
        z += c * (Ht[x * N + w] * Gt[w * N + y] + Gt[x * N + w] * Ht[w * N + y]);
      }
      Z[x * N + y] = z;
    }
  if (!gf && !gdf) return;
  for (int64_t a = 0; a < N; ++a) {
    R sf(0), sdf = real_part(conj_of(Ht[a * N + a]) * Gt[a * N + a]);
    for (int64_t j = 0; j < N; ++j) {
      if (j == a) continue;
      const R p = real_part(conj_of(Ht[a * N + j]) * Gt[a * N + j]);
      if (dd.merged(lam[a], lam[j]))
        sdf += p;
      else
        sf += R(2) * p / (lam[a] - lam[j]);
    }
    if (gf) gf[a] = sf;
    if (gdf) gdf[a] = sdf;
  }
}

}  // namespace kernels
}  // namespace safesvd

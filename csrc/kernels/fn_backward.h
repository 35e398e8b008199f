// Per-matrix backward of spectral matrix functions (design.md 3.5), host+device.
//
//   eigh_fn: Y = Q diag(f(L)) Q^H          (Daleckii-Krein)
//   svd_fn : Y = U diag(f(S)) V^H          (Lewis-Sendov / singular-value functions)
//
// These differentiate the matrix function itself, with divided differences
// that tend to (df_i + df_j)/2 at a degeneracy, so the gradient is exact there,
// unlike any guard on the U, S, V cotangents (design.md 3.3).
// Inputs are packed row-major like svd_backward.h (same packing helpers).
#pragma once

#include "svd_backward.h"

namespace safesvd {
namespace kernels {

// Divided differences of f over a spectrum x (real, per index):
//   minus(i, j) = (f_i - f_j) / (x_i - x_j), or (df_i + df_j)/2 if |x_i - x_j| <= tol
//   plus(i, j)  = (f_i + f_j) / (x_i + x_j), or (df_i + df_j)/2 if  x_i + x_j  <= tol
// The trapezoid (df_i + df_j)/2 is second-order accurate, so it replaces the
// quotient where the quotient would lose digits to cancellation.
template <typename R>
SAFESVD_HD R divided_difference_minus(R xi, R xj, R fi, R fj, R dfi, R dfj, R tol) {
  const R d = xi - xj;
  return abs_of(d) <= tol ? R(0.5) * (dfi + dfj) : (fi - fj) / d;
}
template <typename R>
SAFESVD_HD R divided_difference_plus(R xi, R xj, R fi, R fj, R dfi, R dfj, R tol) {
  const R s = xi + xj;
  return s <= tol ? R(0.5) * (dfi + dfj) : (fi + fj) / s;
}

SAFESVD_HD int64_t eigh_fn_workspace(int64_t n) { return 2 * n * n; }

// gA = Q (D o M) Q^H, M = Q^H sym(G) Q, D_ij = divided_difference_minus (D_ii = df_i).
// The packed G goes in the `gQ` slot of EighPacked.
template <typename scalar_t, typename Dims>
SAFESVD_HD void eigh_fn_backward_matrix(const Dims dims, const EighPacked<scalar_t>& in,
                                        const real_of_t<scalar_t>* L, const real_of_t<scalar_t>* fL,
                                        const real_of_t<scalar_t>* dfL, int64_t stride,
                                        real_of_t<scalar_t> tol, scalar_t* __restrict__ gA,
                                        scalar_t* __restrict__ work) {
  using R = real_of_t<scalar_t>;
  const int64_t n = dims.n();
  scalar_t *T = work, *X = work + n * n;
  // T = Q^H G Q, then M = (T + T^H)/2 = Q^H sym(G) Q.
  matmul_adjoint_rows(n, n, n, in.Q, in.gQ, X);
  matmul_rows(n, n, n, X, in.Q, T);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const scalar_t mij = R(0.5) * (T[i * n + j] + conj_of(T[j * n + i]));
      X[i * n + j] = mij * divided_difference_minus(L[i * stride], L[j * stride], fL[i * stride],
                                                    fL[j * stride], dfL[i * stride], dfL[j * stride], tol);
    }
  matmul_rows(n, n, n, X, in.QH, T);
  matmul_rows(n, n, n, in.Q, T, gA);
}

SAFESVD_HD int64_t svd_fn_workspace(int64_t m, int64_t n, int64_t k) {
  return 2 * k * k + 2 * (m > n ? m : n) * k;
}

// gA for Y = U diag(f(S)) V^H (design.md 3.5), with M = U^H G V,
// Ms = (M + M^H)/2, Mk = (M - M^H)/2, X = Ms o Dm + Mk o Dp, F = diag(Dp_ii) = f(S)/S:
//   gA = U X V^H + (m > k) (I - U U^H) G V F V^H + (n > k) U F U^H G (I - V V^H)
// G is the packed (m x n, row-major) cotangent of Y; `in` has no gU / gVh.
template <typename scalar_t, typename Dims>
SAFESVD_HD void svd_fn_backward_matrix(const Dims dims, const SvdPacked<scalar_t>& in,
                                       const scalar_t* __restrict__ G,
                                       const real_of_t<scalar_t>* S, const real_of_t<scalar_t>* fS,
                                       const real_of_t<scalar_t>* dfS, int64_t stride,
                                       real_of_t<scalar_t> tol, scalar_t* __restrict__ gA,
                                       scalar_t* __restrict__ work) {
  using R = real_of_t<scalar_t>;
  const int64_t m = dims.m(), n = dims.n(), k = dims.k();
  scalar_t *M = work, *X = work + k * k, *R1 = work + 2 * k * k, *R2 = R1 + (m > n ? m : n) * k;
  const bool tall = m > k;
  if (tall) {
    matmul_rows(m, n, k, G, in.V, R1);        // GV = G V (m x k)
    matmul_adjoint_rows(k, m, k, in.U, R1, M);  // M = U^H GV
  } else {
    matmul_adjoint_rows(k, m, n, in.U, G, R1);  // UhG = U^H G (k x n)
    matmul_rows(k, n, k, R1, in.V, M);          // M = UhG V
  }
  auto dp = [&](int64_t i, int64_t j) {
    return divided_difference_plus(S[i * stride], S[j * stride], fS[i * stride], fS[j * stride],
                                   dfS[i * stride], dfS[j * stride], tol);
  };
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) {
      const scalar_t mij = M[i * k + j], mji = conj_of(M[j * k + i]);
      const R dm = divided_difference_minus(S[i * stride], S[j * stride], fS[i * stride],
                                            fS[j * stride], dfS[i * stride], dfS[j * stride], tol);
      X[i * k + j] = R(0.5) * (mij + mji) * dm + R(0.5) * (mij - mji) * dp(i, j);
    }
  if (tall) {
    // gA = [U (X - M F) + GV F] Vh
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j) X[i * k + j] -= M[i * k + j] * dp(j, j);
    matmul_rows(m, k, k, in.U, X, R2);
    for (int64_t l = 0; l < m; ++l)
      for (int64_t j = 0; j < k; ++j) R2[l * k + j] += R1[l * k + j] * dp(j, j);
    matmul_rows(m, k, n, R2, in.Vh, gA);
  } else {
    // gA = U [(X - F M) Vh + F UhG]   (the F terms vanish when n == k)
    if (n > k)
      for (int64_t i = 0; i < k; ++i)
        for (int64_t j = 0; j < k; ++j) X[i * k + j] -= dp(i, i) * M[i * k + j];
    matmul_rows(k, k, n, X, in.Vh, R2);
    if (n > k)
      for (int64_t i = 0; i < k; ++i) axpy(n, scalar_t(dp(i, i)), R1 + i * n, R2 + i * n);
    matmul_rows(m, k, n, in.U, R2, gA);
  }
}

}  // namespace kernels
}  // namespace safesvd

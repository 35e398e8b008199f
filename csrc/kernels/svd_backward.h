// Per-matrix SVD backward (docs/math.md, "SVD backward"), host+device.
//
// svd_build_J is the one written form of the decisions of the backward (J, the
// rectangular coefficients and the gauge notes); the fused per-matrix kernel
// (svd_backward_matrix) and the batched path (csrc/aten/svd.cpp, products by
// batched BLAS) both call it.
#pragma once

#include "guards.h"
#include "small_matrix.h"

namespace safesvd {
namespace kernels {

// A matrix's packed inputs: U (m x k), Vh (k x n), V = Vh^H (n x k), gU (m x k),
// gVh (k x n); gU / gVh null when that cotangent is absent.
template <typename scalar_t>
struct SvdPacked {
  const scalar_t *U, *Vh, *V, *gU, *gVh;
};

SAFESVD_HD int64_t svd_pack_size(int64_t m, int64_t n, int64_t k) { return 2 * m * k + 3 * k * n; }
// UhgU, gVhV, J (k x k each), the product buffer (max(m, n) x k), and 2k reals
// (column maxima of the complement parts, rectangular coefficients) stored in
// scalar_t slots.
SAFESVD_HD int64_t svd_backward_workspace(int64_t m, int64_t n, int64_t k) {
  return 3 * k * k + (m > n ? m : n) * k + 2 * k;
}

// Pack one matrix's strided inputs into `buf` (svd_pack_size scalars).
template <typename scalar_t, typename Dims>
SAFESVD_HD SvdPacked<scalar_t> svd_pack(const Dims dims, MatRef<const scalar_t> U,
                                        MatRef<const scalar_t> Vh, MatRef<const scalar_t> gU,
                                        MatRef<const scalar_t> gVh, scalar_t* buf) {
  const int64_t m = dims.m(), n = dims.n(), k = dims.k();
  scalar_t *pU = buf, *pVh = pU + m * k, *pV = pVh + k * n, *pgU = pV + n * k, *pgVh = pgU + m * k;
  pack_matrix(m, k, U, pU);
  pack_matrix(k, n, Vh, pVh);
  pack_matrix(k, n, Vh, pV, /*adjoint=*/true);
  if (gU.defined()) pack_matrix(m, k, gU, pgU);
  if (gVh.defined()) pack_matrix(k, n, gVh, pgVh);
  return {pU, pVh, pV, gU.defined() ? pgU : nullptr, gVh.defined() ? pgVh : nullptr};
}

// J of docs/math.md for one matrix, from UhgU = U^H gU and gVhV = gVh V
// (= (V^H gV)^H), both k x k row-major, null when that cotangent is absent:
//
//   J = 1/2 [(a + b) o Fm + (a - b) o Fp] + diag(gS) + (complex) phase term,
//   a = skew(U^H gU), b = skew(V^H gV), Fm_ij = g(S_j - S_i), Fp_ij = g(S_j + S_i),
//
// and the rectangular coefficients Dr_j = g(S_j) (scaled: the caller applies
// mg.scale to the numerator it multiplies), decided on pmax_j, the largest
// entry of the complement part of the cotangent of vector j (null for square
// input). Every quotient goes through MatrixGuard (guards.h). The gauge notes:
// |a + b| inside degenerate pairs, |a - b| inside doubly-zero pairs, the phase
// Im(a_ii + b_ii) of complex input, and pmax_j for a zero singular value.
template <typename scalar_t>
SAFESVD_HD void svd_build_J(int64_t k, const scalar_t* UhgU, const scalar_t* gVhV,
                            const real_of_t<scalar_t>* S, int64_t sS,
                            const real_of_t<scalar_t>* gS, int64_t sgS,
                            const real_of_t<scalar_t>* pmax, const MatrixGuard<real_of_t<scalar_t>>& mg,
                            scalar_t* __restrict__ J, real_of_t<scalar_t>* Dr,
                            GaugeTracker<real_of_t<scalar_t>>& gauge) {
  using R = real_of_t<scalar_t>;
  constexpr bool complex_input = IsComplex<scalar_t>::value;
  for (int64_t i = 0; i < k; ++i) {
    const R si = mg.scale(S[i * sS]);
    for (int64_t j = 0; j < k; ++j) {
      const scalar_t a = UhgU ? UhgU[i * k + j] - conj_of(UhgU[j * k + i]) : scalar_t(0);
      const scalar_t b = gVhV ? conj_of(gVhV[j * k + i]) - gVhV[i * k + j] : scalar_t(0);
      if (i != j) {
        J[i * k + j] = svd_J_entry(mg, a, b, si, mg.scale(S[j * sS]), gauge, i, j);
      } else {
        scalar_t d = gS ? scalar_t(gS[i * sgS]) : scalar_t(0);
        if (complex_input) {
          // (Im a_ii - Im b_ii) / 4 * g(S_i): the phase-invariant part; its
          // complement Im(a_ii + b_ii) is a phase dependence (gauge note).
          const R x = imag_part(a) - imag_part(b);
          d += ImagUnit<scalar_t>::times(R(0.25) * mg.scale(x) * mg.coefficient(si, abs_of(x)));
          gauge.note(abs_of(imag_part(a) + imag_part(b)), i, i);
        }
        J[i * k + i] = d;
      }
    }
    if (Dr) {
      const R p = pmax ? pmax[i] : R(0);
      Dr[i] = mg.coefficient(si, p);
      if (mg.inside(si)) gauge.note(p, i, i);
    }
  }
}

// gA (m x n, row-major) for A = U diag(S) Vh, k = min(m, n) (U, Vh already
// narrowed to k columns / rows when full_matrices=True):
//
//   gA = U J Vh + (m > k) (I - U U^H) gU D Vh + (n > k) U D gVh (I - V V^H),  D = diag(g(S))
//
// written as gA = [U (J - UhgU D) + gU D] Vh (tall) or U [(J - D gVhV) Vh + D gVh]
// (square, wide), which needs no complement projector.
template <typename scalar_t, typename Dims>
SAFESVD_HD void svd_backward_matrix(const Dims dims, const SvdPacked<scalar_t>& in,
                                    const real_of_t<scalar_t>* S, int64_t sS,
                                    const real_of_t<scalar_t>* gS, int64_t sgS,
                                    const GuardParams<real_of_t<scalar_t>>& params,
                                    scalar_t* __restrict__ gA, scalar_t* __restrict__ work,
                                    real_of_t<scalar_t>* gauge_out) {
  using R = real_of_t<scalar_t>;
  const int64_t m = dims.m(), n = dims.n(), k = dims.k();
  scalar_t *UhgU = work, *gVhV = work + k * k, *J = work + 2 * k * k, *rect = work + 3 * k * k;
  R* pmax = reinterpret_cast<R*>(rect + (m > n ? m : n) * k);
  R* Dr = pmax + k;
  GaugeTracker<R> gauge;

  // UhgU = U^H gU; gVhV = gVh V = (V^H gV)^H, so b_ij = conj(gVhV_ji) - gVhV_ij.
  if (in.gU) matmul_adjoint_rows(k, m, k, in.U, in.gU, UhgU);
  if (in.gVh) matmul_rows(k, n, k, in.gVh, in.V, gVhV);
  gauge.scale = (in.gU ? max_abs_entry(m * k, in.gU) : R(0)) + (in.gVh ? max_abs_entry(k * n, in.gVh) : R(0));
  const MatrixGuard<R> mg = matrix_guard(params, max_abs(S, sS, k), gauge.scale, m + n);

  // The complement part of the cotangent of vector j decides g(S_j) only where
  // S_j is inside the tolerance (a zero singular value); elsewhere it is not needed.
  const bool tall = m > k, wide = n > k;
  const bool rect_u = tall && in.gU, rect_v = wide && in.gVh;
  for (int64_t j = 0; j < k; ++j) {
    pmax[j] = R(0);
    if (!(rect_u || rect_v) || !mg.inside(mg.scale(S[j * sS]))) continue;
    if (rect_u)
      for (int64_t l = 0; l < m; ++l) {
        scalar_t proj = in.gU[l * k + j];
        for (int64_t p = 0; p < k; ++p) proj -= in.U[l * k + p] * UhgU[p * k + j];
        pmax[j] = max_of(pmax[j], abs_of(proj));
      }
    else
      for (int64_t l = 0; l < n; ++l) {
        scalar_t proj = in.gVh[j * n + l];
        for (int64_t p = 0; p < k; ++p) proj -= gVhV[j * k + p] * in.Vh[p * n + l];
        pmax[j] = max_of(pmax[j], abs_of(proj));
      }
  }
  svd_build_J(k, in.gU ? UhgU : nullptr, in.gVh ? gVhV : nullptr, S, sS, gS, sgS,
              (rect_u || rect_v) ? pmax : nullptr, mg, J, (rect_u || rect_v) ? Dr : nullptr, gauge);

  if (tall) {
    if (rect_u)
      for (int64_t i = 0; i < k; ++i)
        for (int64_t j = 0; j < k; ++j) J[i * k + j] -= mg.scale(UhgU[i * k + j]) * Dr[j];
    matmul_rows(m, k, k, in.U, J, rect);  // X = U J'
    if (rect_u)
      for (int64_t l = 0; l < m; ++l)
        for (int64_t j = 0; j < k; ++j) rect[l * k + j] += mg.scale(in.gU[l * k + j]) * Dr[j];
    matmul_rows(m, k, n, rect, in.Vh, gA);
  } else {
    if (rect_v)
      for (int64_t i = 0; i < k; ++i)
        for (int64_t j = 0; j < k; ++j) J[i * k + j] -= Dr[i] * mg.scale(gVhV[i * k + j]);
    matmul_rows(k, k, n, J, in.Vh, rect);  // Y = J' Vh
    if (rect_v)
      for (int64_t i = 0; i < k; ++i)
        for (int64_t l = 0; l < n; ++l) rect[i * n + l] += Dr[i] * mg.scale(in.gVh[i * n + l]);
    matmul_rows(m, k, n, in.U, rect, gA);
  }
  gauge.write(gauge_out);
}

}  // namespace kernels
}  // namespace safesvd

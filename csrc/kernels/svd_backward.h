// Per-matrix SVD and eigh backward (design.md 3.1, 3.2, 3.4), host+device.
//
// One call handles one matrix. The caller gives a scratch buffer of
// svd_backward_workspace(m, n, k) (eigh: eigh_backward_workspace(n)) scalars; no
// other memory is touched, so the same function serves one CPU thread per
// matrix and one CUDA thread per matrix.
#pragma once

#include "common.h"

namespace safesvd {
namespace kernels {

SAFESVD_HD int64_t svd_backward_workspace(int64_t m, int64_t n, int64_t k) {
  return 3 * k * k + (m > n ? m : n) * k;
}

// C (r x c, row-major in `out`) = A (r x p) * B (p x c); plain loops, small sizes.
template <typename T, typename MA, typename MB>
SAFESVD_HD void small_matmul(int64_t r, int64_t p, int64_t c, const MA& A, const MB& B, T* out) {
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) {
      T acc(0);
      for (int64_t l = 0; l < p; ++l) acc += A(i, l) * B(l, j);
      out[i * c + j] = acc;
    }
}

// A row-major buffer seen as a matrix.
template <typename T>
struct Dense {
  T* p;
  int64_t cols;
  SAFESVD_HD T& operator()(int64_t i, int64_t j) const { return p[i * cols + j]; }
};

// gA for A = U diag(S) Vh, k = min(m, n), U: m x k, Vh: k x n (already narrowed
// to k columns / rows when full_matrices=True). gU, gS, gVh may be null (absent).
//
//   a = skew(U^H gU), b = skew(V^H gV)
//   J = 1/2 [(a + b) o Fm + (a - b) o Fp] + diag(gS) + (complex) diag(i (Im a_ii - Im b_ii) / 4 g(S_i))
//   gA = U J Vh + (m > k) (I - U U^H) gU D Vh + (n > k) U D gVh (I - V V^H),  D = diag(g(S))
//
// Fm carries the degeneracy singularity 1/(S_j - S_i) and Fp the rank
// singularity 1/(S_j + S_i); both are guarded separately, nothing is squared.
// The complex diagonal uses (a_ii - b_ii)/2 in place of a_ii: equal for a
// phase-invariant loss, and the minimum-norm choice (the phase component
// a_ii + b_ii removed) when the loss depends on the phase.
template <typename scalar_t>
SAFESVD_HD void svd_backward_matrix(
    int64_t m, int64_t n, int64_t k,
    MatRef<const scalar_t> U, const real_of_t<scalar_t>* S, int64_t sS,
    MatRef<const scalar_t> Vh,
    MatRef<const scalar_t> gU, const real_of_t<scalar_t>* gS, int64_t sgS,
    MatRef<const scalar_t> gVh,
    Guard guard, real_of_t<scalar_t> rtol, real_of_t<scalar_t> atol,
    MatRef<scalar_t> gA, scalar_t* work, real_of_t<scalar_t>* gauge_out) {
  using R = real_of_t<scalar_t>;
  constexpr bool complex_input = IsComplex<scalar_t>::value;
  const R tol = spectrum_tolerance(S, sS, k, rtol, atol);
  GaugeTracker<R> gauge;

  Dense<scalar_t> UhgU{work, k}, VhgV{work + k * k, k}, J{work + 2 * k * k, k};
  scalar_t* rect = work + 3 * k * k;  // m x k or k x n, row-major

  // U^H gU and V^H gV = Vh gVh^H, and the size of the cotangents (gauge scale).
  R max_gU = R(0), max_gVh = R(0);
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) {
      scalar_t acc(0);
      if (gU.defined())
        for (int64_t l = 0; l < m; ++l) acc += conj_of(U(l, i)) * gU(l, j);
      UhgU(i, j) = acc;
      acc = scalar_t(0);
      if (gVh.defined())
        for (int64_t l = 0; l < n; ++l) acc += Vh(i, l) * conj_of(gVh(j, l));
      VhgV(i, j) = acc;
    }
  if (gU.defined())
    for (int64_t l = 0; l < m; ++l)
      for (int64_t j = 0; j < k; ++j) max_gU = max_of(max_gU, abs_of(gU(l, j)));
  if (gVh.defined())
    for (int64_t i = 0; i < k; ++i)
      for (int64_t l = 0; l < n; ++l) max_gVh = max_of(max_gVh, abs_of(gVh(i, l)));
  gauge.scale = max_gU + max_gVh;

  // J, and the gauge residual inside degenerate and doubly-zero pairs.
  for (int64_t i = 0; i < k; ++i) {
    const R si = S[i * sS];
    for (int64_t j = 0; j < k; ++j) {
      const scalar_t a = UhgU(i, j) - conj_of(UhgU(j, i));
      const scalar_t b = VhgV(i, j) - conj_of(VhgV(j, i));
      const R sj = S[j * sS];
      if (i != j) {
        const R dm = sj - si, dp = sj + si;
        J(i, j) = R(0.5) * ((a + b) * guarded_reciprocal(dm, tol, guard) +
                            (a - b) * guarded_reciprocal(dp, tol, guard));
        if (abs_of(dm) <= tol) gauge.note(abs_of(a + b), i, j);
        if (dp <= tol) gauge.note(abs_of(a - b), i, j);
      } else {
        scalar_t d = gS ? scalar_t(gS[i * sgS]) : scalar_t(0);
        if (complex_input) {
          const R ia = imag_part(a), ib = imag_part(b);
          d += ImagUnit<scalar_t>::times(R(0.25) * (ia - ib) * guarded_reciprocal(si, tol, guard));
          gauge.note(abs_of(ia + ib), i, i);
        }
        J(i, i) = d;
      }
    }
  }

  if (m > k) {
    // Tall (V is square): gA = [U (J - UhgU D) + gU D] Vh.
    if (gU.defined()) {
      for (int64_t i = 0; i < k; ++i)
        for (int64_t j = 0; j < k; ++j)
          J(i, j) -= UhgU(i, j) * guarded_reciprocal(S[j * sS], tol, guard);
      // A zero singular value leaves its left vector free in the complement of
      // range(U): the part of gU there is basis dependent.
      for (int64_t j = 0; j < k; ++j) {
        if (S[j * sS] > tol) continue;
        for (int64_t l = 0; l < m; ++l) {
          scalar_t proj = gU(l, j);
          for (int64_t p = 0; p < k; ++p) proj -= U(l, p) * UhgU(p, j);
          gauge.note(abs_of(proj), j, j);
        }
      }
    }
    Dense<scalar_t> X{rect, k};
    small_matmul(m, k, k, U, J, rect);
    if (gU.defined())
      for (int64_t l = 0; l < m; ++l)
        for (int64_t j = 0; j < k; ++j)
          X(l, j) += gU(l, j) * guarded_reciprocal(S[j * sS], tol, guard);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        scalar_t acc(0);
        for (int64_t l = 0; l < k; ++l) acc += X(i, l) * Vh(l, j);
        gA(i, j) = acc;
      }
  } else {
    // Square or wide (U is square): gA = U [(J - D VhgV^H) Vh + D gVh].
    if (n > k && gVh.defined()) {
      for (int64_t i = 0; i < k; ++i) {
        const R di = guarded_reciprocal(S[i * sS], tol, guard);
        for (int64_t j = 0; j < k; ++j) J(i, j) -= di * conj_of(VhgV(j, i));
      }
      for (int64_t i = 0; i < k; ++i) {
        if (S[i * sS] > tol) continue;
        for (int64_t l = 0; l < n; ++l) {
          scalar_t proj = gVh(i, l);
          for (int64_t p = 0; p < k; ++p) proj -= conj_of(VhgV(p, i)) * Vh(p, l);
          gauge.note(abs_of(proj), i, i);
        }
      }
    }
    Dense<scalar_t> Y{rect, n};
    small_matmul(k, k, n, J, Vh, rect);
    if (n > k && gVh.defined())
      for (int64_t i = 0; i < k; ++i) {
        const R di = guarded_reciprocal(S[i * sS], tol, guard);
        for (int64_t l = 0; l < n; ++l) Y(i, l) += di * gVh(i, l);
      }
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        scalar_t acc(0);
        for (int64_t l = 0; l < k; ++l) acc += U(i, l) * Y(l, j);
        gA(i, j) = acc;
      }
  }
  gauge.write(gauge_out);
}

SAFESVD_HD int64_t eigh_backward_workspace(int64_t n) { return 2 * n * n; }

// gA for A = Q diag(L) Q^H (design.md 3.2):
//   a = 1/2 skew(Q^H gQ),  J = a o F + diag(gL),  F_ij = g(L_j - L_i),  gA = Q J Q^H
// The imaginary diagonal of Q^H gQ (a phase dependence, complex only) is
// dropped, which is the minimum-norm choice, and reported as a gauge residual.
template <typename scalar_t>
SAFESVD_HD void eigh_backward_matrix(
    int64_t n,
    MatRef<const scalar_t> Q, const real_of_t<scalar_t>* L, int64_t sL,
    MatRef<const scalar_t> gQ, const real_of_t<scalar_t>* gL, int64_t sgL,
    Guard guard, real_of_t<scalar_t> rtol, real_of_t<scalar_t> atol,
    MatRef<scalar_t> gA, scalar_t* work, real_of_t<scalar_t>* gauge_out) {
  using R = real_of_t<scalar_t>;
  constexpr bool complex_input = IsComplex<scalar_t>::value;
  const R tol = spectrum_tolerance(L, sL, n, rtol, atol);
  GaugeTracker<R> gauge;
  Dense<scalar_t> QhgQ{work, n}, J{work + n * n, n};

  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      scalar_t acc(0);
      if (gQ.defined())
        for (int64_t l = 0; l < n; ++l) acc += conj_of(Q(l, i)) * gQ(l, j);
      QhgQ(i, j) = acc;
    }
  if (gQ.defined())
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) gauge.scale = max_of(gauge.scale, abs_of(gQ(i, j)));

  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      if (i == j) {
        J(i, i) = gL ? scalar_t(gL[i * sgL]) : scalar_t(0);
        if (complex_input) gauge.note(abs_of(imag_part(QhgQ(i, i))), i, i);
        continue;
      }
      const scalar_t a = R(0.5) * (QhgQ(i, j) - conj_of(QhgQ(j, i)));
      const R d = L[j * sL] - L[i * sL];
      J(i, j) = a * guarded_reciprocal(d, tol, guard);
      if (abs_of(d) <= tol) gauge.note(abs_of(a), i, j);
    }

  // gA = Q (J Q^H); J Q^H goes into the Q^H gQ buffer, no longer needed.
  Dense<scalar_t> Y{work, n};
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      scalar_t acc(0);
      for (int64_t l = 0; l < n; ++l) acc += J(i, l) * conj_of(Q(j, l));
      Y(i, j) = acc;
    }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      scalar_t acc(0);
      for (int64_t l = 0; l < n; ++l) acc += Q(i, l) * Y(l, j);
      gA(i, j) = acc;
    }
  gauge.write(gauge_out);
}

}  // namespace kernels
}  // namespace safesvd

// Per-matrix SVD and eigh backward (design.md 3.1, 3.2, 3.4), host+device.
//
// One call handles one matrix whose inputs were packed row-major and
// contiguous by the caller (pack_matrix), so every product below is written
// as row updates y[i, :] += s * x[l, :] with unit stride and independent lanes:
// this vectorizes on the CPU and avoids a dependent chain of additions.
// Scratch comes from the caller; no other memory is touched, so the same code
// serves one CPU thread per matrix and one CUDA thread per matrix.
#pragma once

#include "common.h"

namespace safesvd {
namespace kernels {

// y[0:len] += s * x[0:len]
template <typename T>
SAFESVD_HD void axpy(int64_t len, T s, const T* __restrict__ x, T* __restrict__ y) {
  for (int64_t j = 0; j < len; ++j) y[j] += s * x[j];
}

// C (r x c) = A (r x p) * B (p x c), all row-major and contiguous.
template <typename T>
SAFESVD_HD void matmul_rows(int64_t r, int64_t p, int64_t c, const T* __restrict__ A,
                            const T* __restrict__ B, T* __restrict__ C) {
  for (int64_t i = 0; i < r; ++i) {
    T* Ci = C + i * c;
    for (int64_t j = 0; j < c; ++j) Ci[j] = T(0);
    for (int64_t l = 0; l < p; ++l) axpy(c, A[i * p + l], B + l * c, Ci);
  }
}

// C (r x c) = A^H * B with A (p x r), B (p x c).
template <typename T>
SAFESVD_HD void matmul_adjoint_rows(int64_t r, int64_t p, int64_t c, const T* __restrict__ A,
                                    const T* __restrict__ B, T* __restrict__ C) {
  for (int64_t i = 0; i < r * c; ++i) C[i] = T(0);
  for (int64_t l = 0; l < p; ++l)
    for (int64_t i = 0; i < r; ++i) axpy(c, conj_of(A[l * r + i]), B + l * c, C + i * c);
}

// Copy a strided r x c matrix into a row-major buffer, optionally conjugate-transposed
// (then `out` is c x r).
template <typename T>
SAFESVD_HD void pack_matrix(int64_t r, int64_t c, MatRef<const T> src, T* out, bool adjoint = false) {
  if (!adjoint) {
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < c; ++j) out[i * c + j] = src(i, j);
  } else {
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < c; ++j) out[j * r + i] = conj_of(src(i, j));
  }
}

// A matrix's packed inputs: U (m x k), Vh (k x n), V = Vh^H (n x k), gU (m x k),
// gVh (k x n); gU / gVh null when that cotangent is absent.
template <typename scalar_t>
struct SvdPacked {
  const scalar_t *U, *Vh, *V, *gU, *gVh;
};

SAFESVD_HD int64_t svd_pack_size(int64_t m, int64_t n, int64_t k) { return 2 * m * k + 3 * k * n; }
SAFESVD_HD int64_t svd_backward_workspace(int64_t m, int64_t n, int64_t k) {
  return 3 * k * k + (m > n ? m : n) * k;
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

// J of design.md 3.1 for one matrix, from UhgU = U^H gU and gVhV = gVh V
// (= (V^H gV)^H), both k x k row-major, null when that cotangent is absent:
//   J = 1/2 [(a + b) o Fm + (a - b) o Fp] + diag(gS) + (complex) phase term,
//   a = skew(UhgU), b = skew(V^H gV).
// Also notes the gauge residual inside degenerate and doubly-zero pairs and
// the phase residual. Shared by the fused loop and the batched-matmul path.
template <typename scalar_t>
SAFESVD_HD void svd_build_J(int64_t k, const scalar_t* UhgU, const scalar_t* gVhV,
                            const real_of_t<scalar_t>* S, int64_t sS,
                            const real_of_t<scalar_t>* gS, int64_t sgS, Guard guard,
                            real_of_t<scalar_t> tol, scalar_t* __restrict__ J,
                            GaugeTracker<real_of_t<scalar_t>>& gauge) {
  using R = real_of_t<scalar_t>;
  constexpr bool complex_input = IsComplex<scalar_t>::value;
  for (int64_t i = 0; i < k; ++i) {
    const R si = S[i * sS];
    for (int64_t j = 0; j < k; ++j) {
      const scalar_t a = UhgU ? UhgU[i * k + j] - conj_of(UhgU[j * k + i]) : scalar_t(0);
      const scalar_t b = gVhV ? conj_of(gVhV[j * k + i]) - gVhV[i * k + j] : scalar_t(0);
      const R sj = S[j * sS];
      if (i != j) {
        const R dm = sj - si, dp = sj + si;
        J[i * k + j] = R(0.5) * ((a + b) * guarded_reciprocal(dm, tol, guard) +
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
        J[i * k + i] = d;
      }
    }
  }
}

// gA (m x n, row-major) for A = U diag(S) Vh, k = min(m, n) (U, Vh already
// narrowed to k columns / rows when full_matrices=True):
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
template <typename scalar_t, typename Dims>
SAFESVD_HD void svd_backward_matrix(
    const Dims dims, const SvdPacked<scalar_t>& in,
    const real_of_t<scalar_t>* S, int64_t sS, const real_of_t<scalar_t>* gS, int64_t sgS,
    Guard guard, real_of_t<scalar_t> rtol, real_of_t<scalar_t> atol,
    scalar_t* __restrict__ gA, scalar_t* __restrict__ work, real_of_t<scalar_t>* gauge_out) {
  using R = real_of_t<scalar_t>;
  const int64_t m = dims.m(), n = dims.n(), k = dims.k();
  const R tol = spectrum_tolerance(S, sS, k, rtol, atol);
  GaugeTracker<R> gauge;

  // UhgU = U^H gU; gVhV = gVh V = (V^H gV)^H, so b_ij = conj(gVhV_ji) - gVhV_ij.
  scalar_t *UhgU = work, *gVhV = work + k * k, *J = work + 2 * k * k, *rect = work + 3 * k * k;
  R max_gU = R(0), max_gVh = R(0);
  if (in.gU) {
    matmul_adjoint_rows(k, m, k, in.U, in.gU, UhgU);
    for (int64_t i = 0; i < m * k; ++i) max_gU = max_of(max_gU, abs_of(in.gU[i]));
  } else {
    for (int64_t i = 0; i < k * k; ++i) UhgU[i] = scalar_t(0);
  }
  if (in.gVh) {
    matmul_rows(k, n, k, in.gVh, in.V, gVhV);
    for (int64_t i = 0; i < k * n; ++i) max_gVh = max_of(max_gVh, abs_of(in.gVh[i]));
  } else {
    for (int64_t i = 0; i < k * k; ++i) gVhV[i] = scalar_t(0);
  }
  gauge.scale = max_gU + max_gVh;

  svd_build_J(k, in.gU ? UhgU : nullptr, in.gVh ? gVhV : nullptr, S, sS, gS, sgS, guard, tol, J, gauge);

  if (m > k) {
    // Tall (V is square): gA = [U (J - UhgU D) + gU D] Vh.
    if (in.gU) {
      for (int64_t i = 0; i < k; ++i)
        for (int64_t j = 0; j < k; ++j)
          J[i * k + j] -= UhgU[i * k + j] * guarded_reciprocal(S[j * sS], tol, guard);
      // A zero singular value leaves its left vector free in the complement of
      // range(U): the part of gU there is basis dependent.
      for (int64_t j = 0; j < k; ++j) {
        if (S[j * sS] > tol) continue;
        for (int64_t l = 0; l < m; ++l) {
          scalar_t proj = in.gU[l * k + j];
          for (int64_t p = 0; p < k; ++p) proj -= in.U[l * k + p] * UhgU[p * k + j];
          gauge.note(abs_of(proj), j, j);
        }
      }
    }
    matmul_rows(m, k, k, in.U, J, rect);  // X = U J'
    if (in.gU)
      for (int64_t l = 0; l < m; ++l)
        for (int64_t j = 0; j < k; ++j)
          rect[l * k + j] += in.gU[l * k + j] * guarded_reciprocal(S[j * sS], tol, guard);
    matmul_rows(m, k, n, rect, in.Vh, gA);
  } else {
    // Square or wide (U is square): gA = U [(J - D VhgV^H) Vh + D gVh].
    if (n > k && in.gVh) {
      for (int64_t i = 0; i < k; ++i) {
        const R di = guarded_reciprocal(S[i * sS], tol, guard);
        for (int64_t j = 0; j < k; ++j) J[i * k + j] -= di * gVhV[i * k + j];
      }
      for (int64_t i = 0; i < k; ++i) {
        if (S[i * sS] > tol) continue;
        for (int64_t l = 0; l < n; ++l) {
          scalar_t proj = in.gVh[i * n + l];
          for (int64_t p = 0; p < k; ++p) proj -= gVhV[i * k + p] * in.Vh[p * n + l];
          gauge.note(abs_of(proj), i, i);
        }
      }
    }
    matmul_rows(k, k, n, J, in.Vh, rect);  // Y = J' Vh
    if (n > k && in.gVh)
      for (int64_t i = 0; i < k; ++i)
        axpy(n, scalar_t(guarded_reciprocal(S[i * sS], tol, guard)), in.gVh + i * n, rect + i * n);
    matmul_rows(m, k, n, in.U, rect, gA);
  }
  gauge.write(gauge_out);
}

// Packed eigh inputs: Q, Q^H, gQ (null if absent), all n x n row-major.
template <typename scalar_t>
struct EighPacked {
  const scalar_t *Q, *QH, *gQ;
};

SAFESVD_HD int64_t eigh_pack_size(int64_t n) { return 3 * n * n; }
SAFESVD_HD int64_t eigh_backward_workspace(int64_t n) { return 2 * n * n; }

template <typename scalar_t, typename Dims>
SAFESVD_HD EighPacked<scalar_t> eigh_pack(const Dims dims, MatRef<const scalar_t> Q,
                                          MatRef<const scalar_t> gQ, scalar_t* buf) {
  const int64_t n = dims.n();
  scalar_t *pQ = buf, *pQH = buf + n * n, *pgQ = buf + 2 * n * n;
  pack_matrix(n, n, Q, pQ);
  pack_matrix(n, n, Q, pQH, /*adjoint=*/true);
  if (gQ.defined()) pack_matrix(n, n, gQ, pgQ);
  return {pQ, pQH, gQ.defined() ? pgQ : nullptr};
}

// J = a o F + diag(gL) of design.md 3.2 from QhgQ = Q^H gQ (n x n row-major,
// null when gQ is absent), with the gauge residual of degenerate pairs and, for
// complex input, of the phase (imaginary diagonal of Q^H gQ, which is dropped).
template <typename scalar_t>
SAFESVD_HD void eigh_build_J(int64_t n, const scalar_t* QhgQ, const real_of_t<scalar_t>* L,
                             int64_t sL, const real_of_t<scalar_t>* gL, int64_t sgL, Guard guard,
                             real_of_t<scalar_t> tol, scalar_t* __restrict__ J,
                             GaugeTracker<real_of_t<scalar_t>>& gauge) {
  using R = real_of_t<scalar_t>;
  constexpr bool complex_input = IsComplex<scalar_t>::value;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      if (i == j) {
        J[i * n + i] = gL ? scalar_t(gL[i * sgL]) : scalar_t(0);
        if (complex_input && QhgQ) gauge.note(abs_of(imag_part(QhgQ[i * n + i])), i, i);
        continue;
      }
      const scalar_t a = QhgQ ? R(0.5) * (QhgQ[i * n + j] - conj_of(QhgQ[j * n + i])) : scalar_t(0);
      const R d = L[j * sL] - L[i * sL];
      J[i * n + j] = a * guarded_reciprocal(d, tol, guard);
      if (abs_of(d) <= tol) gauge.note(abs_of(a), i, j);
    }
}

// gA for A = Q diag(L) Q^H (design.md 3.2):
//   a = 1/2 skew(Q^H gQ),  J = a o F + diag(gL),  F_ij = g(L_j - L_i),  gA = Q J Q^H
// The imaginary diagonal of Q^H gQ (a phase dependence, complex only) is
// dropped, which is the minimum-norm choice, and reported as a gauge residual.
template <typename scalar_t, typename Dims>
SAFESVD_HD void eigh_backward_matrix(
    const Dims dims, const EighPacked<scalar_t>& in, const real_of_t<scalar_t>* L, int64_t sL,
    const real_of_t<scalar_t>* gL, int64_t sgL, Guard guard, real_of_t<scalar_t> rtol,
    real_of_t<scalar_t> atol, scalar_t* __restrict__ gA, scalar_t* __restrict__ work,
    real_of_t<scalar_t>* gauge_out) {
  using R = real_of_t<scalar_t>;
  const int64_t n = dims.n();
  const R tol = spectrum_tolerance(L, sL, n, rtol, atol);
  GaugeTracker<R> gauge;
  scalar_t *QhgQ = work, *J = work + n * n;

  if (in.gQ) {
    matmul_adjoint_rows(n, n, n, in.Q, in.gQ, QhgQ);
    for (int64_t i = 0; i < n * n; ++i) gauge.scale = max_of(gauge.scale, abs_of(in.gQ[i]));
  } else {
    for (int64_t i = 0; i < n * n; ++i) QhgQ[i] = scalar_t(0);
  }
  eigh_build_J(n, in.gQ ? QhgQ : nullptr, L, sL, gL, sgL, guard, tol, J, gauge);
  // gA = Q (J Q^H); J Q^H goes into the Q^H gQ buffer, no longer needed.
  matmul_rows(n, n, n, J, in.QH, QhgQ);
  matmul_rows(n, n, n, in.Q, QhgQ, gA);
  gauge.write(gauge_out);
}

}  // namespace kernels
}  // namespace safesvd

// Per-matrix Hermitian eigendecomposition backward (docs/math.md, "eigh
// backward"), host+device. eigh_build_J is the one written form of its
// decisions, shared by the fused kernel and the batched path.
#pragma once

#include "guards.h"
#include "small_matrix.h"

namespace safesvd {
namespace kernels {

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

// J = a o F + diag(gL), a = 1/2 skew(Q^H gQ), F_ij = g(L_j - L_i), from
// QhgQ = Q^H gQ (n x n row-major, null when gQ is absent). Gauge notes: |a_ij|
// inside degenerate pairs and, for complex input, the phase (the imaginary
// diagonal of Q^H gQ, which is dropped: the minimum-norm choice).
template <typename scalar_t>
SAFESVD_HD void eigh_build_J(int64_t n, const scalar_t* QhgQ, const real_of_t<scalar_t>* L,
                             int64_t sL, const real_of_t<scalar_t>* gL, int64_t sgL,
                             const MatrixGuard<real_of_t<scalar_t>>& mg, scalar_t* __restrict__ J,
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
      J[i * n + j] = eigh_J_entry(mg, a, mg.scale(L[j * sL]) - mg.scale(L[i * sL]), gauge, i, j);
    }
}

// gA = Q J Q^H for A = Q diag(L) Q^H.
template <typename scalar_t, typename Dims>
SAFESVD_HD void eigh_backward_matrix(const Dims dims, const EighPacked<scalar_t>& in,
                                     const real_of_t<scalar_t>* L, int64_t sL,
                                     const real_of_t<scalar_t>* gL, int64_t sgL,
                                     const GuardParams<real_of_t<scalar_t>>& params,
                                     scalar_t* __restrict__ gA, scalar_t* __restrict__ work,
                                     real_of_t<scalar_t>* gauge_out) {
  using R = real_of_t<scalar_t>;
  const int64_t n = dims.n();
  GaugeTracker<R> gauge;
  scalar_t *QhgQ = work, *J = work + n * n;
  if (in.gQ) {
    matmul_adjoint_rows(n, n, n, in.Q, in.gQ, QhgQ);
    gauge.scale = max_abs_entry(n * n, in.gQ);
  }
  const MatrixGuard<R> mg = matrix_guard(params, max_abs(L, sL, n), gauge.scale, 2 * n);
  eigh_build_J(n, in.gQ ? QhgQ : nullptr, L, sL, gL, sgL, mg, J, gauge);
  // gA = Q (J Q^H); J Q^H goes into the Q^H gQ buffer, no longer needed.
  matmul_rows(n, n, n, J, in.QH, QhgQ);
  matmul_rows(n, n, n, in.Q, QhgQ, gA);
  gauge.write(gauge_out);
}

}  // namespace kernels
}  // namespace safesvd

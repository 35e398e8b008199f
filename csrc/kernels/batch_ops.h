// Per-matrix operations over a batch: the unit a device runs (docs/architecture.md).
//
// Each Op holds raw pointers and strides into batched tensors and does the
// work of one matrix b in operator()(b, scratch), calling the templates of
// this folder. csrc/aten/entries.h builds Ops from tensors; a device supplies
// only a Runner that calls op(b, scratch) for every b (a parallel loop on the
// CPU, a thread per matrix on CUDA). No ATen here: nvcc, g++ and the CUDA
// emulation compile the same text.
#pragma once

#include "eigh_backward.h"
#include "fn_backward.h"
#include "jacobi.h"
#include "jacobi_tiles.h"
#include "svd_backward.h"

namespace safesvd {
namespace kernels {

// Inputs are BatchedRef views (strided.h): matrices (B, r, c), vectors (B, k).

// ---------------------------------------------------------------- fused backward

template <typename scalar_t_, typename Dims>
struct SvdBackwardOp {
  using scalar_t = scalar_t_;
  using R = real_of_t<scalar_t>;
  Dims dims;
  BatchedRef<scalar_t> U, Vh, gU, gVh;
  BatchedRef<R> S, gS;
  GuardParams<R> params;
  scalar_t* gA;  // (B, m, n) contiguous
  R* gauge;      // (B, 3)
  SAFESVD_HD int64_t scratch() const {
    return svd_pack_size(dims.m(), dims.n(), dims.k()) + svd_backward_workspace(dims.m(), dims.n(), dims.k());
  }
  SAFESVD_HD void operator()(int64_t b, scalar_t* buf) const {
    const int64_t m = dims.m(), n = dims.n(), k = dims.k();
    const auto packed = svd_pack<scalar_t>(dims, U.at(b), Vh.at(b), gU.at(b), gVh.at(b), buf);
    svd_backward_matrix<scalar_t>(dims, packed, S.row(b), S.cs, gS.row(b), gS.cs, params, gA + b * m * n,
                                  buf + svd_pack_size(m, n, k), gauge + 3 * b);
  }
};

template <typename scalar_t_, typename Dims>
struct EighBackwardOp {
  using scalar_t = scalar_t_;
  using R = real_of_t<scalar_t>;
  Dims dims;
  BatchedRef<scalar_t> Q, gQ;
  BatchedRef<R> L, gL;
  GuardParams<R> params;
  scalar_t* gA;
  R* gauge;
  SAFESVD_HD int64_t scratch() const { return eigh_pack_size(dims.n()) + eigh_backward_workspace(dims.n()); }
  SAFESVD_HD void operator()(int64_t b, scalar_t* buf) const {
    const int64_t n = dims.n();
    const auto packed = eigh_pack<scalar_t>(dims, Q.at(b), gQ.at(b), buf);
    eigh_backward_matrix<scalar_t>(dims, packed, L.row(b), L.cs, gL.row(b), gL.cs, params, gA + b * n * n,
                                   buf + eigh_pack_size(n), gauge + 3 * b);
  }
};

template <typename scalar_t_, typename Dims>
struct SvdFnBackwardOp {
  using scalar_t = scalar_t_;
  using R = real_of_t<scalar_t>;
  Dims dims;
  BatchedRef<scalar_t> U, Vh, G;
  BatchedRef<R> S, fS, dfS;
  R rtol, atol;
  scalar_t* gA;
  R* gf;  // (B, k) or null
  SAFESVD_HD int64_t scratch() const {
    const int64_t m = dims.m(), n = dims.n(), k = dims.k();
    return svd_pack_size(m, n, k) + m * n + svd_fn_workspace(m, n, k);
  }
  SAFESVD_HD void operator()(int64_t b, scalar_t* buf) const {
    const int64_t m = dims.m(), n = dims.n(), k = dims.k();
    const auto packed = svd_pack<scalar_t>(dims, U.at(b), Vh.at(b), MatRef<const scalar_t>{nullptr, 0, 0},
                                           MatRef<const scalar_t>{nullptr, 0, 0}, buf);
    scalar_t* g = buf + svd_pack_size(m, n, k);
    pack_matrix(m, n, G.at(b), g);
    const R* s = S.row(b);
    const auto dd = divided_differences(rtol, atol, max_abs(s, S.cs, k));
    svd_fn_backward_matrix<scalar_t>(dims, packed, g, s, fS.row(b), dfS.row(b), S.cs, dd, gA + b * m * n,
                                     gf ? gf + b * k : nullptr, g + m * n);
  }
};

template <typename scalar_t_, typename Dims>
struct EighFnBackwardOp {
  using scalar_t = scalar_t_;
  using R = real_of_t<scalar_t>;
  Dims dims;
  BatchedRef<scalar_t> Q, G;
  BatchedRef<R> L, fL, dfL;
  R rtol, atol;
  scalar_t* gA;
  R* gf;
  SAFESVD_HD int64_t scratch() const { return eigh_pack_size(dims.n()) + eigh_fn_workspace(dims.n()); }
  SAFESVD_HD void operator()(int64_t b, scalar_t* buf) const {
    const int64_t n = dims.n();
    const auto packed = eigh_pack<scalar_t>(dims, Q.at(b), G.at(b), buf);
    const R* l = L.row(b);
    const auto dd = divided_differences(rtol, atol, max_abs(l, L.cs, n));
    eigh_fn_backward_matrix<scalar_t>(dims, packed, l, fL.row(b), dfL.row(b), L.cs, dd, gA + b * n * n,
                                      gf ? gf + b * n : nullptr, buf + eigh_pack_size(n));
  }
};

// The matrix functions' forward, one real matrix: Y = U diag(f) Vh (svd_fn: U (m, k),
// Vh (k, n), k = min(m, n)) or Y = Q diag(f) Q^T (eigh_fn: Vh absent, U = Q). Y is
// contiguous (B, m, n); each entry sums its k terms in the order l = 0..k-1, whatever the
// strides.
template <typename scalar_t_, typename Dims>
struct FnForwardOp {
  using scalar_t = scalar_t_;
  Dims dims;
  BatchedRef<scalar_t> U, Vh;
  BatchedRef<scalar_t> f;
  scalar_t* Y;
  SAFESVD_HD int64_t scratch() const { return 0; }
  SAFESVD_HD void operator()(int64_t b, scalar_t*) const {
    const int64_t m = dims.m(), n = dims.n(), k = dims.k();
    const MatRef<const scalar_t> u = U.at(b);
    const MatRef<const scalar_t> vh = Vh.defined() ? Vh.at(b) : MatRef<const scalar_t>{u.p, u.cs, u.rs};
    const scalar_t* fb = f.row(b);
    scalar_t* y = Y + b * m * n;
    for (int64_t i = 0; i < m * n; ++i) y[i] = scalar_t(0);
    for (int64_t l = 0; l < k; ++l) {
      const scalar_t fl = fb[l * f.cs];
      for (int64_t i = 0; i < m; ++i) {
        const scalar_t a = u(i, l) * fl;
        for (int64_t j = 0; j < n; ++j) y[i * n + j] += a * vh(l, j);
      }
    }
  }
};

// ------------------------------------------------- builders of the batched path
// Inputs are contiguous (B, k, k) / (B, k); the products are batched BLAS.

template <typename scalar_t_>
struct SvdBuildJOp {
  using scalar_t = scalar_t_;
  using R = real_of_t<scalar_t>;
  int64_t k, dims;
  const scalar_t *UhgU, *gVhV;  // null when absent
  const R *S, *gS, *pmax, *cotangent_scale;
  GuardParams<R> params;
  scalar_t* J;
  R *Dr, *factors, *gauge;  // Dr null for square input; factors (B, 2)
  SAFESVD_HD int64_t scratch() const { return 0; }
  SAFESVD_HD void operator()(int64_t b, scalar_t*) const {
    const R* s = S + b * k;
    GaugeTracker<R> tracker;
    tracker.scale = cotangent_scale[b];
    const MatrixGuard<R> mg = matrix_guard(params, max_abs(s, 1, k), tracker.scale, dims);
    svd_build_J(k, UhgU ? UhgU + b * k * k : nullptr, gVhV ? gVhV + b * k * k : nullptr, s, 1,
                gS ? gS + b * k : nullptr, 1, pmax ? pmax + b * k : nullptr, mg, J + b * k * k,
                Dr ? Dr + b * k : nullptr, tracker);
    factors[2 * b] = mg.scale.f1;
    factors[2 * b + 1] = mg.scale.f2;
    tracker.write(gauge + 3 * b);
  }
};

template <typename scalar_t_>
struct EighBuildJOp {
  using scalar_t = scalar_t_;
  using R = real_of_t<scalar_t>;
  int64_t n;
  const scalar_t* QhgQ;
  const R *L, *gL, *cotangent_scale;
  GuardParams<R> params;
  scalar_t* J;
  R* gauge;
  SAFESVD_HD int64_t scratch() const { return 0; }
  SAFESVD_HD void operator()(int64_t b, scalar_t*) const {
    const R* l = L + b * n;
    GaugeTracker<R> tracker;
    tracker.scale = cotangent_scale[b];
    const MatrixGuard<R> mg = matrix_guard(params, max_abs(l, 1, n), tracker.scale, 2 * n);
    eigh_build_J(n, QhgQ ? QhgQ + b * n * n : nullptr, l, 1, gL ? gL + b * n : nullptr, 1, mg,
                 J + b * n * n, tracker);
    tracker.write(gauge + 3 * b);
  }
};

// X (and F) of svd_fn (svd = true) or eigh_fn from M = U^H G V, resp. T = Q^H G Q.
template <typename scalar_t_>
struct FnBuildXOp {
  using scalar_t = scalar_t_;
  using R = real_of_t<scalar_t>;
  bool svd;
  int64_t k;
  const scalar_t* M;
  const R *S, *fS, *dfS;
  R rtol, atol;
  scalar_t* X;
  R *F, *gf;  // F only for svd; gf nullable
  SAFESVD_HD int64_t scratch() const { return 0; }
  SAFESVD_HD void operator()(int64_t b, scalar_t*) const {
    const R* s = S + b * k;
    const auto dd = divided_differences(rtol, atol, max_abs(s, 1, k));
    if (svd)
      svd_fn_build_X(k, M + b * k * k, s, fS + b * k, dfS + b * k, 1, dd, X + b * k * k, F + b * k,
                     gf ? gf + b * k : nullptr);
    else
      eigh_fn_build_X(k, M + b * k * k, s, fS + b * k, dfS + b * k, 1, dd, X + b * k * k,
                      gf ? gf + b * k : nullptr);
  }
};

// Z, gf, gdf of fn_second_order for a batch of eigenbases (B, N, N).
template <typename scalar_t_>
struct FnSecondOrderOp {
  using scalar_t = scalar_t_;
  using R = real_of_t<scalar_t>;
  int64_t N;
  const scalar_t *Gt, *Ht;
  const R *lam, *f, *df, *d2f;
  R rtol, atol;
  scalar_t* Z;
  R *gf, *gdf;
  SAFESVD_HD int64_t scratch() const { return 0; }
  SAFESVD_HD void operator()(int64_t b, scalar_t*) const {
    const R* l = lam + b * N;
    const auto dd = divided_differences(rtol, atol, max_abs(l, 1, N));
    fn_second_order(N, Gt + b * N * N, Ht + b * N * N, l, f + b * N, df + b * N, d2f + b * N, dd,
                    Z + b * N * N, gf ? gf + b * N : nullptr, gdf ? gdf + b * N : nullptr);
  }
};

// ------------------------------------- guards as tensors (composite, forward mode)

// Per matrix: [f1, f2, tol, floor, noise, cap] of its MatrixGuard, or with
// `divided_difference` [f1, f2, rtol, floor, 0, 0] of its DividedDifferences
// (kGuardParamCount values, guards.h).
template <typename R>
struct GuardParamsOp {
  using scalar_t = R;
  int64_t k, dims;
  bool divided_difference;
  const R *spectrum, *cotangent_scale;  // (B, k), (B)
  GuardParams<R> params;
  R* out;  // (B, 6)
  SAFESVD_HD int64_t scratch() const { return 0; }
  SAFESVD_HD void operator()(int64_t b, R*) const {
    const R top = max_abs(spectrum + b * k, 1, k);
    R* o = out + kGuardParamCount * b;
    if (divided_difference) {
      const DividedDifferences<R> dd = divided_differences(params.rtol, params.atol, top);
      o[0] = dd.scale.f1;
      o[1] = dd.scale.f2;
      o[2] = dd.rtol;
      o[3] = dd.floor;
      o[4] = o[5] = R(0);
      return;
    }
    const MatrixGuard<R> mg = matrix_guard(params, top, cotangent_scale[b], dims);
    o[0] = mg.scale.f1;
    o[1] = mg.scale.f2;
    o[2] = mg.tol;
    o[3] = mg.floor;
    o[4] = mg.noise;
    o[5] = mg.cap;
  }
};

// For E elements of matrix b: coefficient(d, |x|), its slope, and the gauge
// note (|x| where d is inside the tolerance, else 0). d is already scaled.
template <typename R>
struct GuardCoefficientsOp {
  using scalar_t = R;
  int64_t E;
  Guard guard;
  const R *d, *xabs, *params;  // (B, E), (B, E) or null, (B, 6)
  R *coef, *slope, *note;
  SAFESVD_HD int64_t scratch() const { return 0; }
  SAFESVD_HD void operator()(int64_t b, R*) const {
    const R* p = params + kGuardParamCount * b;
    MatrixGuard<R> mg;
    mg.guard = guard;
    mg.scale.f1 = p[0];
    mg.scale.f2 = p[1];
    mg.tol = p[2];
    mg.floor = p[3];
    mg.noise = p[4];
    mg.cap = p[5];
    for (int64_t e = b * E; e < (b + 1) * E; ++e) {
      const R x = xabs ? xabs[e] : R(0);
      coef[e] = mg.coefficient(d[e], x);
      slope[e] = mg.slope(d[e], x);
      note[e] = mg.inside(d[e]) ? x : R(0);
    }
  }
};

// ------------------------------------------------- the forward engine, one matrix per thread

// The Jacobi forward of one matrix per thread (W = 1): the CUDA runner's unit.
// (The CPU runs tiles of many lanes instead: csrc/cpu/isa/.) A matrix that does
// not converge, or has non-finite entries, gets NaN outputs and info != 0.
template <typename T, int M, int N, bool FULL>
struct JacobiSvdOp {
  using scalar_t = T;
  static constexpr int UC = FULL ? M : N;
  SvdBatch<T> a;
  SAFESVD_HD int64_t scratch() const { return M * N + M * UC + N + N * N; }
  SAFESVD_HD void operator()(int64_t b, T* buf) const {
    T *tA = buf, *tU = tA + M * N, *tS = tU + M * UC, *tV = tS + N;
    int info = 0;
    load_svd_tile<M, N, 1, T>(a, b, tA);
    jacobi_svd_tile<M, N, FULL, 1, T>(tA, tU, tS, tV, 1, &info, kJacobiMaxSweeps);
    if (info != 0)
      for (int64_t e = 0; e < scratch() - M * N; ++e) tU[e] = T(NAN);
    store_svd_tile<M, N, UC, 1, T>(a, b, tU, tS, tV, &info);
  }
};

// The square engine (CUDA's driver="jacobi" runs square n only).
template <typename T, int N>
using JacobiSquareSvdOp = JacobiSvdOp<T, N, N, false>;

template <typename T, int N>
struct JacobiEighOp {
  using scalar_t = T;
  EighBatch<T> a;
  SAFESVD_HD int64_t scratch() const { return 2 * N * N + N; }
  SAFESVD_HD void operator()(int64_t b, T* buf) const {
    T *tA = buf, *tL = tA + N * N, *tQ = tL + N;
    int info = 0;
    load_eigh_tile<N, 1, T>(a, b, tA);
    jacobi_eigh_tile<N, 1, T>(tA, tL, tQ, 1, &info, kJacobiMaxSweeps);
    if (info != 0)
      for (int64_t e = 0; e < N + N * N; ++e) tL[e] = T(NAN);
    store_eigh_tile<N, 1, T>(a, b, tL, tQ, &info);
  }
};

}  // namespace kernels
}  // namespace safesvd

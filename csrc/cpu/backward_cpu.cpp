// CPU kernels: the forward through ATen; the backward as the per-matrix
// templates of csrc/kernels/ in a loop parallel over the batch (small n), or
// batched BLAS with one fused per-matrix pass for J (large n).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "../aten/common.h"
#include "../kernels/fn_backward.h"

namespace safesvd {
namespace {

// Largest max(m, n) handled by the fused loop; above it batched BLAS does the
// products. Measured on 2 cores (bench/bench_backward.py): fused is 1.6-2.7x
// faster than torch at n = 6 but 0.7-0.9x at n = 8, where the batched path is 1.0-1.4x.
constexpr int64_t kFusedMaxDimCPU = 7;

// A (..., r, c) tensor seen as (B, r, c): a view whenever the batch dims allow.
struct Batched {
  Tensor t;
  Batched(const c10::optional<Tensor>& x, int64_t r, int64_t c) {
    if (x) t = x->reshape({-1, r, c});
  }
  template <typename T>
  kernels::MatRef<const T> at(int64_t b) const {
    if (!t.defined()) return {nullptr, 0, 0};
    return {t.const_data_ptr<T>() + b * t.stride(0), t.stride(1), t.stride(2)};
  }
};

struct BatchedVector {
  Tensor t;
  BatchedVector(const c10::optional<Tensor>& x, int64_t k) {
    if (x) t = x->reshape({-1, k});
  }
  template <typename R>
  const R* at(int64_t b) const {
    return t.defined() ? t.const_data_ptr<R>() + b * t.stride(0) : nullptr;
  }
  int64_t stride() const { return t.defined() ? t.stride(1) : 0; }
};

int64_t grain_for(int64_t flops_per_matrix) {
  return std::max<int64_t>(1, 65536 / std::max<int64_t>(1, flops_per_matrix));
}

template <typename R>
const R* data_or_null(const Tensor& t) {
  return t.defined() ? t.const_data_ptr<R>() : nullptr;
}

// ----------------------------------------------------------- J builders (large n)

std::tuple<Tensor, Tensor, Tensor> svd_build_J_cpu(at::ScalarType dtype, const Tensor& UhgU,
                                                   const Tensor& gVhV, const Tensor& S, const Tensor& gS,
                                                   Guard guard, double rt, double at_) {
  const int64_t B = S.size(0), k = S.size(1);
  Tensor J = at::empty({B, k, k}, S.options().dtype(dtype)), D = at::empty({B, k}, S.options()), gauge = at::empty({B, 3}, S.options());
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(J.scalar_type(), "safesvd_svd_build_J_cpu", [&] {
    using R = kernels::real_of_t<scalar_t>;
    const scalar_t *a = data_or_null<scalar_t>(UhgU), *b = data_or_null<scalar_t>(gVhV);
    const R *s = S.const_data_ptr<R>(), *gs = data_or_null<R>(gS);
    scalar_t* j = J.data_ptr<scalar_t>();
    R *d = D.data_ptr<R>(), *g = gauge.data_ptr<R>();
    at::parallel_for(0, B, grain_for(k * k * 8), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const R tol = kernels::spectrum_tolerance(s + i * k, 1, k, R(rt), R(at_));
        kernels::GaugeTracker<R> tracker;
        tracker.scale = R(1);  // scaled by the caller
        kernels::svd_build_J(k, a ? a + i * k * k : nullptr, b ? b + i * k * k : nullptr, s + i * k, 1,
                             gs ? gs + i * k : nullptr, 1, guard, tol, j + i * k * k, tracker);
        for (int64_t l = 0; l < k; ++l) d[i * k + l] = kernels::guarded_reciprocal(s[i * k + l], tol, guard);
        tracker.write(g + 3 * i);
      }
    });
  });
  return {J, D, gauge};
}

std::tuple<Tensor, Tensor> eigh_build_J_cpu(at::ScalarType dtype, const Tensor& QhgQ, const Tensor& L,
                                            const Tensor& gL, Guard guard, double rt, double at_) {
  const int64_t B = L.size(0), n = L.size(1);
  Tensor J = at::empty({B, n, n}, L.options().dtype(dtype)), gauge = at::empty({B, 3}, L.options());
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(J.scalar_type(), "safesvd_eigh_build_J_cpu", [&] {
    using R = kernels::real_of_t<scalar_t>;
    const scalar_t* a = data_or_null<scalar_t>(QhgQ);
    const R *l = L.const_data_ptr<R>(), *gl = data_or_null<R>(gL);
    scalar_t* j = J.data_ptr<scalar_t>();
    R* g = gauge.data_ptr<R>();
    at::parallel_for(0, B, grain_for(n * n * 4), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const R tol = kernels::spectrum_tolerance(l + i * n, 1, n, R(rt), R(at_));
        kernels::GaugeTracker<R> tracker;
        tracker.scale = R(1);
        kernels::eigh_build_J(n, a ? a + i * n * n : nullptr, l + i * n, 1, gl ? gl + i * n : nullptr, 1,
                              guard, tol, j + i * n * n, tracker);
        tracker.write(g + 3 * i);
      }
    });
  });
  return {J, gauge};
}

// ------------------------------------------------------------- backward ops

std::tuple<Tensor, Tensor> svd_backward_cpu(
    const c10::optional<Tensor>& gU_in, const c10::optional<Tensor>& gS_in,
    const c10::optional<Tensor>& gVh_in, const Tensor& U, const Tensor& S, const Tensor& Vh,
    c10::string_view guard_name, c10::optional<double> rtol, c10::optional<double> atol) {
  const char* op = "safesvd._svd_backward";
  const auto gU = present(gU_in), gS = present(gS_in), gVh = present(gVh_in);
  const auto [m, n, k] = check_svd_backward_args(gU, gS, gVh, U, S, Vh, op);
  if (k == 0) return svd_backward_composite(gU, gS, gVh, U, S, Vh, guard_name, rtol, atol);
  if (std::max(m, n) > kFusedMaxDimCPU)
    return svd_backward_batched_matmul(gU, gS, gVh, U, S, Vh, guard_name, rtol, atol, &svd_build_J_cpu);
  const Guard guard = parse_guard(guard_name, op);
  const auto [rt, at_] = resolve_tolerances(S.scalar_type(), rtol, atol, op);

  const Batched U3(U.narrow(-1, 0, k), m, k), Vh3(Vh.narrow(-2, 0, k), k, n);
  const Batched gU3(gU ? c10::optional<Tensor>(gU->narrow(-1, 0, k)) : c10::nullopt, m, k);
  const Batched gVh3(gVh ? c10::optional<Tensor>(gVh->narrow(-2, 0, k)) : c10::nullopt, k, n);
  const BatchedVector S2(S, k), gS2(gS, k);
  const int64_t B = S2.t.size(0);
  Tensor gA = at::empty({B, m, n}, U.options());
  Tensor gauge = at::empty({B, 3}, S.options());

  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(U.scalar_type(), "safesvd_svd_backward_cpu", [&] {
    using R = kernels::real_of_t<scalar_t>;
    scalar_t* gA_p = gA.data_ptr<scalar_t>();
    R* gauge_p = gauge.data_ptr<R>();
    kernels::with_dims(m, n, [&](auto dims) {
      at::parallel_for(0, B, grain_for(m * n * k), [&](int64_t begin, int64_t end) {
        const int64_t pack = kernels::svd_pack_size(m, n, k);
        std::vector<scalar_t> buf(pack + kernels::svd_backward_workspace(m, n, k));
        for (int64_t b = begin; b < end; ++b) {
          const auto packed = kernels::svd_pack<scalar_t>(dims, U3.at<scalar_t>(b), Vh3.at<scalar_t>(b),
                                                          gU3.at<scalar_t>(b), gVh3.at<scalar_t>(b), buf.data());
          kernels::svd_backward_matrix<scalar_t>(dims, packed, S2.at<R>(b), S2.stride(), gS2.at<R>(b),
                                                 gS2.stride(), guard, R(rt), R(at_), gA_p + b * m * n,
                                                 buf.data() + pack, gauge_p + 3 * b);
        }
      });
    });
  });

  return finish_svd_backward(gA, gauge, U, gU, gVh, m, n, k);
}

std::tuple<Tensor, Tensor> eigh_backward_cpu(const c10::optional<Tensor>& gL_in,
                                             const c10::optional<Tensor>& gQ_in, const Tensor& L,
                                             const Tensor& Q, c10::string_view guard_name,
                                             c10::optional<double> rtol,
                                             c10::optional<double> atol) {
  const char* op = "safesvd._eigh_backward";
  const auto gL = present(gL_in), gQ = present(gQ_in);
  const int64_t n = check_eigh_backward_args(gL, gQ, L, Q, op);
  if (n == 0) return eigh_backward_composite(gL, gQ, L, Q, guard_name, rtol, atol);
  if (n > kFusedMaxDimCPU)
    return eigh_backward_batched_matmul(gL, gQ, L, Q, guard_name, rtol, atol, &eigh_build_J_cpu);
  const Guard guard = parse_guard(guard_name, op);
  const auto [rt, at_] = resolve_tolerances(L.scalar_type(), rtol, atol, op);

  const Batched Q3(Q, n, n), gQ3(gQ, n, n);
  const BatchedVector L2(L, n), gL2(gL, n);
  const int64_t B = L2.t.size(0);
  Tensor gA = at::empty({B, n, n}, Q.options());
  Tensor gauge = at::empty({B, 3}, L.options());

  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(Q.scalar_type(), "safesvd_eigh_backward_cpu", [&] {
    using R = kernels::real_of_t<scalar_t>;
    scalar_t* gA_p = gA.data_ptr<scalar_t>();
    R* gauge_p = gauge.data_ptr<R>();
    kernels::with_dims(n, n, [&](auto dims) {
      at::parallel_for(0, B, grain_for(n * n * n), [&](int64_t begin, int64_t end) {
        const int64_t pack = kernels::eigh_pack_size(n);
        std::vector<scalar_t> buf(pack + kernels::eigh_backward_workspace(n));
        for (int64_t b = begin; b < end; ++b) {
          const auto packed = kernels::eigh_pack<scalar_t>(dims, Q3.at<scalar_t>(b), gQ3.at<scalar_t>(b), buf.data());
          kernels::eigh_backward_matrix<scalar_t>(dims, packed, L2.at<R>(b), L2.stride(), gL2.at<R>(b),
                                                  gL2.stride(), guard, R(rt), R(at_), gA_p + b * n * n,
                                                  buf.data() + pack, gauge_p + 3 * b);
        }
      });
    });
  });

  auto gauge_shape = batch_shape(Q);
  gauge_shape.push_back(3);
  return {gA.view(Q.sizes()), gauge.view(gauge_shape)};
}

// ------------------------------------------------------- matrix functions

Tensor svd_fn_backward_cpu(const Tensor& G, const Tensor& U, const Tensor& S, const Tensor& Vh,
                           const Tensor& fS, const Tensor& dfS, c10::optional<double> rtol,
                           c10::optional<double> atol) {
  const char* op = "safesvd._svd_fn_backward";
  check_fn_args(G, U, S, Vh, fS, dfS, op);
  const int64_t m = U.size(-2), n = Vh.size(-1), k = S.size(-1);
  if (k == 0 || std::max(m, n) > kFusedMaxDimCPU)
    return svd_fn_backward_composite(G, U, S, Vh, fS, dfS, rtol, atol);
  const auto [rt, at_] = resolve_tolerances(S.scalar_type(), rtol, atol, op, kDividedDifferencePower);
  const Batched U3(U, m, k), Vh3(Vh, k, n), G3(G, m, n);
  const Tensor S2 = S.reshape({-1, k}).contiguous(), f2 = fS.reshape({-1, k}).contiguous(),
               df2 = dfS.reshape({-1, k}).contiguous();
  const int64_t B = S2.size(0);
  Tensor gA = at::empty({B, m, n}, U.options());
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(U.scalar_type(), "safesvd_svd_fn_backward_cpu", [&] {
    using R = kernels::real_of_t<scalar_t>;
    scalar_t* gA_p = gA.data_ptr<scalar_t>();
    const R *s = S2.const_data_ptr<R>(), *f = f2.const_data_ptr<R>(), *df = df2.const_data_ptr<R>();
    kernels::with_dims(m, n, [&](auto dims) {
      at::parallel_for(0, B, grain_for(m * n * k), [&](int64_t begin, int64_t end) {
        const int64_t pack = kernels::svd_pack_size(m, n, k);
        std::vector<scalar_t> buf(pack + m * n + kernels::svd_fn_workspace(m, n, k));
        scalar_t* g = buf.data() + pack;
        for (int64_t b = begin; b < end; ++b) {
          const auto packed = kernels::svd_pack<scalar_t>(dims, U3.at<scalar_t>(b), Vh3.at<scalar_t>(b),
                                                          {nullptr, 0, 0}, {nullptr, 0, 0}, buf.data());
          kernels::pack_matrix(dims.m(), dims.n(), G3.at<scalar_t>(b), g);
          const R tol = kernels::spectrum_tolerance(s + b * k, 1, k, R(rt), R(at_));
          kernels::svd_fn_backward_matrix<scalar_t>(dims, packed, g, s + b * k, f + b * k, df + b * k, 1,
                                                    tol, gA_p + b * m * n, g + m * n);
        }
      });
    });
  });
  return gA.view(G.sizes());
}

Tensor eigh_fn_backward_cpu(const Tensor& G, const Tensor& L, const Tensor& Q, const Tensor& fL,
                            const Tensor& dfL, c10::optional<double> rtol, c10::optional<double> atol) {
  const char* op = "safesvd._eigh_fn_backward";
  check_fn_args(G, Q, L, Q.mH(), fL, dfL, op);
  const int64_t n = L.size(-1);
  if (n == 0 || n > kFusedMaxDimCPU) return eigh_fn_backward_composite(G, L, Q, fL, dfL, rtol, atol);
  const auto [rt, at_] = resolve_tolerances(L.scalar_type(), rtol, atol, op, kDividedDifferencePower);
  const Batched Q3(Q, n, n), G3(G, n, n);
  const Tensor L2 = L.reshape({-1, n}).contiguous(), f2 = fL.reshape({-1, n}).contiguous(),
               df2 = dfL.reshape({-1, n}).contiguous();
  const int64_t B = L2.size(0);
  Tensor gA = at::empty({B, n, n}, Q.options());
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(Q.scalar_type(), "safesvd_eigh_fn_backward_cpu", [&] {
    using R = kernels::real_of_t<scalar_t>;
    scalar_t* gA_p = gA.data_ptr<scalar_t>();
    const R *l = L2.const_data_ptr<R>(), *f = f2.const_data_ptr<R>(), *df = df2.const_data_ptr<R>();
    kernels::with_dims(n, n, [&](auto dims) {
      at::parallel_for(0, B, grain_for(n * n * n), [&](int64_t begin, int64_t end) {
        const int64_t pack = kernels::eigh_pack_size(n);
        std::vector<scalar_t> buf(pack + kernels::eigh_fn_workspace(n));
        for (int64_t b = begin; b < end; ++b) {
          const auto packed = kernels::eigh_pack<scalar_t>(dims, Q3.at<scalar_t>(b), G3.at<scalar_t>(b), buf.data());
          const R tol = kernels::spectrum_tolerance(l + b * n, 1, n, R(rt), R(at_));
          kernels::eigh_fn_backward_matrix<scalar_t>(dims, packed, l + b * n, f + b * n, df + b * n, 1, tol,
                                                     gA_p + b * n * n, buf.data() + pack);
        }
      });
    });
  });
  return gA.view(G.sizes());
}

}  // namespace

TORCH_LIBRARY_IMPL(safesvd, CPU, m) {
  m.impl("svd_fn", &svd_fn_forward);
  m.impl("eigh_fn", &eigh_fn_forward);
  m.impl("_svd_fn_backward", &svd_fn_backward_cpu);
  m.impl("_eigh_fn_backward", &eigh_fn_backward_cpu);
  m.impl("svd", &svd_forward);
  m.impl("eigh", &eigh_forward);
  m.impl("_svd_backward", &svd_backward_cpu);
  m.impl("_eigh_backward", &eigh_backward_cpu);
}

}  // namespace safesvd

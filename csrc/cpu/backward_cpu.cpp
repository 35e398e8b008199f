// CPU kernels: the forward through ATen, the backward as the per-matrix
// templates of csrc/kernels/ in a loop parallel over the batch (small n), or
// the ATen composite (large n, where batched BLAS wins).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "../aten/common.h"
#include "../kernels/svd_backward.h"

namespace safesvd {
namespace {

// Largest max(m, n) handled by the fused loop; above it the composite's batched
// matmuls are faster (bench/bench_backward.py).
constexpr int64_t kFusedMaxDimCPU = 32;

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

std::tuple<Tensor, Tensor> svd_backward_cpu(
    const c10::optional<Tensor>& gU_in, const c10::optional<Tensor>& gS_in,
    const c10::optional<Tensor>& gVh_in, const Tensor& U, const Tensor& S, const Tensor& Vh,
    c10::string_view guard_name, c10::optional<double> rtol, c10::optional<double> atol) {
  const char* op = "safesvd._svd_backward";
  const auto gU = present(gU_in), gS = present(gS_in), gVh = present(gVh_in);
  const auto [m, n, k] = check_svd_backward_args(gU, gS, gVh, U, S, Vh, op);
  if (k == 0 || std::max(m, n) > kFusedMaxDimCPU)
    return svd_backward_composite(gU, gS, gVh, U, S, Vh, guard_name, rtol, atol);
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
    at::parallel_for(0, B, grain_for(m * n * k), [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> work(kernels::svd_backward_workspace(m, n, k));
      for (int64_t b = begin; b < end; ++b)
        kernels::svd_backward_matrix<scalar_t>(
            m, n, k, U3.at<scalar_t>(b), S2.at<R>(b), S2.stride(), Vh3.at<scalar_t>(b),
            gU3.at<scalar_t>(b), gS2.at<R>(b), gS2.stride(), gVh3.at<scalar_t>(b), guard,
            R(rt), R(at_), kernels::MatRef<scalar_t>{gA_p + b * m * n, n, 1}, work.data(),
            gauge_p + 3 * b);
    });
  });

  auto out_shape = batch_shape(U);
  auto gauge_shape = out_shape;
  out_shape.push_back(m);
  out_shape.push_back(n);
  gauge_shape.push_back(3);
  gauge = gauge.view(gauge_shape);
  note_full_matrices_gauge(gauge, gU, gVh, k);
  return {gA.view(out_shape), gauge};
}

std::tuple<Tensor, Tensor> eigh_backward_cpu(const c10::optional<Tensor>& gL_in,
                                             const c10::optional<Tensor>& gQ_in, const Tensor& L,
                                             const Tensor& Q, c10::string_view guard_name,
                                             c10::optional<double> rtol,
                                             c10::optional<double> atol) {
  const char* op = "safesvd._eigh_backward";
  const auto gL = present(gL_in), gQ = present(gQ_in);
  const int64_t n = check_eigh_backward_args(gL, gQ, L, Q, op);
  if (n == 0 || n > kFusedMaxDimCPU)
    return eigh_backward_composite(gL, gQ, L, Q, guard_name, rtol, atol);
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
    at::parallel_for(0, B, grain_for(n * n * n), [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> work(kernels::eigh_backward_workspace(n));
      for (int64_t b = begin; b < end; ++b)
        kernels::eigh_backward_matrix<scalar_t>(
            n, Q3.at<scalar_t>(b), L2.at<R>(b), L2.stride(), gQ3.at<scalar_t>(b), gL2.at<R>(b),
            gL2.stride(), guard, R(rt), R(at_), kernels::MatRef<scalar_t>{gA_p + b * n * n, n, 1},
            work.data(), gauge_p + 3 * b);
    });
  });

  auto gauge_shape = batch_shape(Q);
  gauge_shape.push_back(3);
  return {gA.view(Q.sizes()), gauge.view(gauge_shape)};
}

}  // namespace

TORCH_LIBRARY_IMPL(safesvd, CPU, m) {
  m.impl("svd", &svd_forward);
  m.impl("eigh", &eigh_forward);
  m.impl("_svd_backward", &svd_backward_cpu);
  m.impl("_eigh_backward", &eigh_backward_cpu);
}

}  // namespace safesvd

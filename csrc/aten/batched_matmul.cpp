// The backward for large matrices: products by batched BLAS, J in one fused
// per-matrix pass (a device's builder over csrc/kernels/ templates).
//
// It replaces the ~20 elementwise passes over (B, k, k) of the differentiable
// composite with one, and reads the same guarded math as the fused loop.
#include "common.h"

namespace safesvd {
namespace {

Tensor scaled(const Tensor& raw, const Tensor& scale) {
  return at::where(scale > 0, raw / at::where(scale > 0, scale, at::ones_like(scale)), 0);
}

Tensor max_abs_or_zero(const Tensor& g, const Tensor& like) {
  return g.defined() ? g.abs().amax({-2, -1}) : at::zeros_like(like);
}

}  // namespace

std::tuple<Tensor, Tensor> svd_backward_batched_matmul(
    const c10::optional<Tensor>& gU_in, const c10::optional<Tensor>& gS_in,
    const c10::optional<Tensor>& gVh_in, const Tensor& U, const Tensor& S, const Tensor& Vh,
    c10::string_view guard_name, c10::optional<double> rtol, c10::optional<double> atol,
    SvdJBuilder build_J) {
  const char* op = "safesvd._svd_backward";
  const auto gU_full = present(gU_in), gS_opt = present(gS_in), gVh_full = present(gVh_in);
  const auto [m, n, k] = check_svd_backward_args(gU_full, gS_opt, gVh_full, U, S, Vh, op);
  const Guard guard = parse_guard(guard_name, op);
  const auto [rt, at_] = resolve_tolerances(S.scalar_type(), rtol, atol, op);
  TORCH_INTERNAL_ASSERT(k > 0);

  const Tensor U3 = U.narrow(-1, 0, k).reshape({-1, m, k});
  const Tensor Vh3 = Vh.narrow(-2, 0, k).reshape({-1, k, n});
  const Tensor S2 = S.reshape({-1, k}).contiguous();
  const Tensor gU3 = gU_full ? gU_full->narrow(-1, 0, k).reshape({-1, m, k}) : Tensor();
  const Tensor gVh3 = gVh_full ? gVh_full->narrow(-2, 0, k).reshape({-1, k, n}) : Tensor();
  const Tensor gS2 = gS_opt ? gS_opt->reshape({-1, k}).contiguous() : Tensor();

  const Tensor UhgU = gU3.defined() ? at::matmul(U3.mH(), gU3).contiguous() : Tensor();
  const Tensor gVhV = gVh3.defined() ? at::matmul(gVh3, Vh3.mH()).contiguous() : Tensor();
  auto [J, D, gauge] = build_J(U.scalar_type(), UhgU, gVhV, S2, gS2, guard, rt, at_);
  const Tensor like = S2.select(-1, 0);
  const Tensor scale = max_abs_or_zero(gU3, like) + max_abs_or_zero(gVh3, like);
  gauge = at::cat({scaled(gauge.narrow(-1, 0, 1).squeeze(-1), scale).unsqueeze(-1), gauge.narrow(-1, 1, 2)}, -1);

  // Rectangular terms: X = U J + (gU - U UhgU) D (tall), Y = J Vh + D (gVh - gVhV Vh) (wide).
  // A zero singular value leaves the complement part of its vector's cotangent
  // basis dependent: that is the gauge residual of column / row i.
  const Tensor tol = at::clamp_min(S2.abs().amax(-1, /*keepdim=*/true) * rt, at_);
  const Tensor zero_sv = S2 <= tol;
  Tensor gA;
  if (m > k) {
    Tensor X = at::matmul(U3, J);
    if (gU3.defined()) {
      const Tensor proj = gU3 - at::matmul(U3, UhgU);
      X = X + proj * D.unsqueeze(-2);
      auto [res, idx] = at::where(zero_sv, proj.abs().amax(-2), 0).max(-1);
      const Tensor i = idx.to(S2.scalar_type());
      merge_gauge(gauge, scaled(res, scale), i, i);
    }
    gA = at::matmul(X, Vh3);
  } else {
    Tensor Y = at::matmul(J, Vh3);
    if (n > k && gVh3.defined()) {
      const Tensor proj = gVh3 - at::matmul(gVhV, Vh3);
      Y = Y + D.unsqueeze(-1) * proj;
      auto [res, idx] = at::where(zero_sv, proj.abs().amax(-1), 0).max(-1);
      const Tensor i = idx.to(S2.scalar_type());
      merge_gauge(gauge, scaled(res, scale), i, i);
    }
    gA = at::matmul(U3, Y);
  }

  return finish_svd_backward(gA, gauge, U, gU_full, gVh_full, m, n, k);
}

std::tuple<Tensor, Tensor> eigh_backward_batched_matmul(
    const c10::optional<Tensor>& gL_in, const c10::optional<Tensor>& gQ_in, const Tensor& L,
    const Tensor& Q, c10::string_view guard_name, c10::optional<double> rtol,
    c10::optional<double> atol, EighJBuilder build_J) {
  const char* op = "safesvd._eigh_backward";
  const auto gL = present(gL_in), gQ = present(gQ_in);
  const int64_t n = check_eigh_backward_args(gL, gQ, L, Q, op);
  const Guard guard = parse_guard(guard_name, op);
  const auto [rt, at_] = resolve_tolerances(L.scalar_type(), rtol, atol, op);
  TORCH_INTERNAL_ASSERT(n > 0);

  const Tensor Q3 = Q.reshape({-1, n, n});
  const Tensor L2 = L.reshape({-1, n}).contiguous();
  const Tensor gQ3 = gQ ? gQ->reshape({-1, n, n}) : Tensor();
  const Tensor gL2 = gL ? gL->reshape({-1, n}).contiguous() : Tensor();
  const Tensor QhgQ = gQ3.defined() ? at::matmul(Q3.mH(), gQ3).contiguous() : Tensor();
  auto [J, gauge] = build_J(Q.scalar_type(), QhgQ, L2, gL2, guard, rt, at_);
  const Tensor scale = max_abs_or_zero(gQ3, L2.select(-1, 0));
  gauge = at::cat({scaled(gauge.narrow(-1, 0, 1).squeeze(-1), scale).unsqueeze(-1), gauge.narrow(-1, 1, 2)}, -1);
  const Tensor gA = at::matmul(Q3, at::matmul(J, Q3.mH()));
  auto gauge_shape = batch_shape(Q);
  gauge_shape.push_back(3);
  return {gA.reshape(Q.sizes()), gauge.reshape(gauge_shape)};
}

}  // namespace safesvd

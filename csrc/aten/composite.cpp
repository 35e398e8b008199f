// The svd / eigh backward as differentiable ATen ops, registered as
// CompositeImplicitAutograd under `_svd_backward_composite` /
// `_eigh_backward_composite`: the form autograd differentiates for
// create_graph=True (second order) and forward-over-reverse.
//
// Its decisions are not written again here: every guarded quotient comes from
// the `_guard_params` / `_guard_coefficients` operators, which evaluate
// csrc/kernels/guards.h (the same code as the fused and batched paths). The
// coefficient enters autograd "straight through": its value, and its slope
// with respect to the (scaled) difference as the derivative.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include "common.h"

namespace safesvd {
namespace {

Tensor guard_params(const Tensor& spectrum, const Tensor& cotangent_scale, int64_t dims, c10::string_view guard,
                    c10::optional<double> rtol, c10::optional<double> atol) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("safesvd::_guard_params", "")
                             .typed<Tensor(const Tensor&, const Tensor&, int64_t, c10::string_view,
                                           c10::optional<double>, c10::optional<double>, bool)>();
  return op.call(spectrum, cotangent_scale, dims, guard, rtol, atol, false);
}

// (coefficient, gauge note) for scaled differences d (..., r[, c]) and numerators
// of size xabs; the coefficient carries d(coefficient)/dd for autograd.
std::pair<Tensor, Tensor> guarded(const Tensor& d, const Tensor& xabs, const Tensor& params,
                                  c10::string_view guard) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("safesvd::_guard_coefficients", "")
                             .typed<std::tuple<Tensor, Tensor, Tensor>(const Tensor&, const c10::optional<Tensor>&,
                                                                       const Tensor&, c10::string_view)>();
  const Tensor dd = d.detach();
  auto [coef, slope, note] = op.call(dd, xabs.detach(), params, guard);
  return {coef + (d - dd) * slope, note};
}

// Per-matrix factor of params (..., 6) broadcast over `trailing` matrix dims.
Tensor factor(const Tensor& params, int64_t index, int64_t trailing) {
  Tensor f = params.select(-1, index);
  for (int64_t i = 0; i < trailing; ++i) f = f.unsqueeze(-1);
  return f;
}
Tensor scaled(const Tensor& x, const Tensor& params, int64_t trailing) {
  return (x * factor(params, 0, trailing)) * factor(params, 1, trailing);
}

Tensor off_diagonal(int64_t k, const Tensor& like) {
  return at::eye(k, like.options().dtype(at::kBool)).logical_not();
}

// [relative residual, i, j] from the notes R (..., k, k) and the cotangent scale (...).
Tensor gauge_info(const Tensor& R, const Tensor& scale) {
  const int64_t k = R.size(-1);
  auto [res, idx] = R.flatten(-2).max(-1);
  const Tensor none = res <= 0;
  const Tensor i = at::where(none, -1, at::floor_divide(idx, k)).to(R.scalar_type());
  const Tensor j = at::where(none, -1, at::remainder(idx, k)).to(R.scalar_type());
  const Tensor has_scale = scale > 0;
  const Tensor rel = at::where(has_scale, res / at::where(has_scale, scale, at::ones_like(scale)), 0);
  return at::stack({rel, i, j}, -1);
}

std::tuple<Tensor, Tensor> svd_backward_composite(const c10::optional<Tensor>& gU_in,
                                                  const c10::optional<Tensor>& gS_in,
                                                  const c10::optional<Tensor>& gVh_in, const Tensor& U,
                                                  const Tensor& S, const Tensor& Vh, c10::string_view guard,
                                                  c10::optional<double> rtol, c10::optional<double> atol) {
  const char* op = "safesvd._svd_backward";
  const auto gU_full = present(gU_in), gS = present(gS_in), gVh_full = present(gVh_in);
  const auto [m, n, k] = check_svd_backward_args(gU_full, gS, gVh_full, U, S, Vh, op);
  resolve_guard(guard, S.scalar_type(), rtol, atol, op);
  const auto batch = batch_shape(U);
  if (k == 0) return {at::zeros(with_trailing(batch, {m, n}), U.options()), empty_gauge(S, batch)};

  const Tensor Un = U.narrow(-1, 0, k), Vhn = Vh.narrow(-2, 0, k);
  const Tensor gU = gU_full ? gU_full->narrow(-1, 0, k) : Tensor();
  const Tensor gVh = gVh_full ? gVh_full->narrow(-2, 0, k) : Tensor();
  const Tensor like = S.select(-1, 0);
  const Tensor zero_kk = at::zeros(with_trailing(batch, {k, k}), U.options());
  const Tensor UhgU = gU.defined() ? at::matmul(adjoint_of(Un), gU) : Tensor();
  const Tensor VhgV = gVh.defined() ? at::matmul(Vhn, adjoint_of(gVh)) : Tensor();
  const Tensor a = UhgU.defined() ? UhgU - adjoint_of(UhgU) : zero_kk;
  const Tensor b = VhgV.defined() ? VhgV - adjoint_of(VhgV) : zero_kk;
  const Tensor apb = a + b, amb = a - b;

  const Tensor cot = (max_abs_or_zero(gU, like, true) + max_abs_or_zero(gVh, like, true)).detach();
  const Tensor params = guard_params(S.detach(), cot, m + n, guard, rtol, atol);
  const Tensor Sh = scaled(S, params, 1);
  const Tensor off = off_diagonal(k, S);
  auto [Fm, note_m] = guarded(Sh.unsqueeze(-2) - Sh.unsqueeze(-1), apb.abs(), params, guard);  // [i, j] = S_j - S_i
  auto [Fp, note_p] = guarded(Sh.unsqueeze(-2) + Sh.unsqueeze(-1), amb.abs(), params, guard);
  Tensor J = at::where(off, 0.5 * (scaled(apb, params, 2) * Fm + scaled(amb, params, 2) * Fp), 0);
  Tensor R = at::where(off, at::maximum(note_m, note_p), 0);

  Tensor diag = gS ? *gS : at::zeros_like(S);
  if (U.is_complex()) {
    // (Im a_ii - Im b_ii) / 4 g(S_i); the phase dependence Im(a_ii + b_ii) is a gauge note.
    const Tensor x = at::imag(amb.diagonal(0, -2, -1));
    const Tensor D = guarded(Sh, x.abs(), params, guard).first;
    diag = at::complex(diag, 0.25 * scaled(x, params, 1) * D);
    R = R + at::diag_embed(at::imag(apb.diagonal(0, -2, -1)).abs().detach());
  }
  J = J + at::diag_embed(diag);

  Tensor gA;
  const bool tall = m > k, wide = n > k;
  if (tall && gU.defined()) {
    const Tensor P = gU - at::matmul(Un, UhgU);
    auto [D, note] = guarded(Sh, P.abs().amax(-2), params, guard);
    R = at::maximum(R, at::diag_embed(note));
    gA = at::matmul(at::matmul(Un, J) + scaled(P, params, 2) * D.unsqueeze(-2), Vhn);
  } else if (wide && gVh.defined()) {
    const Tensor P = gVh - at::matmul(adjoint_of(VhgV), Vhn);
    auto [D, note] = guarded(Sh, P.abs().amax(-1), params, guard);
    R = at::maximum(R, at::diag_embed(note));
    gA = at::matmul(Un, at::matmul(J, Vhn) + D.unsqueeze(-1) * scaled(P, params, 2));
  } else {
    gA = at::matmul(Un, at::matmul(J, Vhn));
  }

  Tensor gauge;
  {
    at::NoGradGuard no_grad;
    gauge = gauge_info(R.detach(), cot);
    note_full_matrices_gauge(gauge, gU_full, gVh_full, k);
  }
  return {gA, gauge};
}

std::tuple<Tensor, Tensor> eigh_backward_composite(const c10::optional<Tensor>& gL_in,
                                                   const c10::optional<Tensor>& gQ_in, const Tensor& L,
                                                   const Tensor& Q, c10::string_view guard,
                                                   c10::optional<double> rtol, c10::optional<double> atol) {
  const char* op = "safesvd._eigh_backward";
  const auto gL = present(gL_in), gQ = present(gQ_in);
  const int64_t n = check_eigh_backward_args(gL, gQ, L, Q, op);
  resolve_guard(guard, L.scalar_type(), rtol, atol, op);
  if (n == 0) return {at::zeros_like(Q), empty_gauge(L, batch_shape(Q))};

  Tensor J = at::zeros_like(Q), R = at::zeros(Q.sizes(), L.options());
  const Tensor cot = max_abs_or_zero(value_or_undefined(gQ), L.select(-1, 0), true).detach();
  if (gQ) {
    const Tensor QhgQ = at::matmul(adjoint_of(Q), *gQ);
    const Tensor a = 0.5 * (QhgQ - adjoint_of(QhgQ));
    const Tensor params = guard_params(L.detach(), cot, 2 * n, guard, rtol, atol);
    const Tensor Lh = scaled(L, params, 1);
    auto [F, note] = guarded(Lh.unsqueeze(-2) - Lh.unsqueeze(-1), a.abs(), params, guard);  // [i, j] = L_j - L_i
    const Tensor off = off_diagonal(n, L);
    J = at::where(off, scaled(a, params, 2) * F, 0);
    R = at::where(off, note, 0);
    if (Q.is_complex()) R = R + at::diag_embed(at::imag(QhgQ.diagonal(0, -2, -1)).abs().detach());
  }
  if (gL) J = J + at::diag_embed(*gL);
  const Tensor gA = at::matmul(Q, at::matmul(J, adjoint_of(Q)));
  at::NoGradGuard no_grad;
  return {gA, gauge_info(R.detach(), cot)};
}

}  // namespace

TORCH_LIBRARY_IMPL(safesvd, CompositeImplicitAutograd, m) {
  m.impl("_svd_backward_composite", &svd_backward_composite);
  m.impl("_eigh_backward_composite", &eigh_backward_composite);
}

}  // namespace safesvd

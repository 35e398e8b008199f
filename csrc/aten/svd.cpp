// safesvd::svd and safesvd::_svd_backward: the device-generic entries
// (docs/architecture.md). Checks, guard resolution and the choice of path
// happen here; the per-matrix work runs on the tensors' device through the
// dispatch table.
#include <torch/library.h>

#include "../kernels/jacobi_batch.h"
#include "dispatch.h"

namespace safesvd {

std::tuple<Tensor, Tensor, Tensor> svd_forward(const Tensor& A, bool full_matrices, c10::string_view guard,
                                               c10::optional<double> rtol, c10::optional<double> atol,
                                               c10::optional<c10::string_view> driver) {
  const char* op = "safesvd.svd";
  const BelowAutograd below;
  // The finite check is one more pass over A: the engine finds non-finite matrices itself
  // (info = 2), so only the LAPACK path pays for it.
  check_matrix_input(A, op, /*square=*/false, /*check_finite=*/false);
  resolve_guard(guard, at::toRealValueType(A.scalar_type()), rtol, atol, op);  // fail here, not in the backward
  const int64_t m = A.size(-2), n = A.size(-1), k = std::min(m, n);
  const DeviceKernels& dev = device_kernels(A.device(), op);
  const bool shape_supported =
      kernels::jacobi_svd_supported(m, n, full_matrices, dev.jacobi_max_square_svd) &&
      (m == n || dev.jacobi_rectangular);
  if (!use_jacobi(A, driver, shape_supported, dev, dev.svd_jacobi != nullptr, op)) {
    check_finite_on_cpu(A, op);
    return lapack_svd(dev, A, full_matrices);
  }
  // The small-matrix engine; a matrix it does not converge on is recomputed by LAPACK (CPU).
  const Tensor A3 = A.reshape({-1, m, n});
  const int64_t ucols = full_matrices ? m : k, vrows = full_matrices ? n : k;
  const auto batch = batch_shape(A);
  // U, Vh column-major (LAPACK's layout, whatever the driver), allocated in their final
  // shape so that the results are not views; the kernels write through (B, r, c) views.
  Tensor U = empty_column_major(with_trailing(batch, {m, ucols}), A.options()),
         S = empty_output(with_trailing(batch, {k}), A.options()),
         Vh = empty_column_major(with_trailing(batch, {vrows, n}), A.options());
  Tensor U3 = as_matrix_batch(U), S3 = S.view({-1, k}), Vh3 = as_matrix_batch(Vh),
         info = empty_output({A3.size(0)}, A.options().dtype(at::kInt));
  dev.svd_jacobi(A3, full_matrices, U3, S3, Vh3, info);
  if (dev.jacobi_fallback) {
    if (const Tensor redo = matrices_to_redo(info, op); redo.defined()) {
      auto [U2, S2, Vh2] = lapack_svd(dev, A3.index_select(0, redo), full_matrices);
      U3.index_copy_(0, redo, U2);
      S3.index_copy_(0, redo, S2);
      Vh3.index_copy_(0, redo, Vh2);
    }
  }
  return {U, S, Vh};
}

// With full_matrices=True the extra columns of U / rows of Vh are an arbitrary
// basis of a complement; a loss that reads them is basis dependent. Their
// cotangent is dropped (as in PyTorch) and reported with pair (-2, -2)
// (docs/math.md, "Gauge check").
void note_full_matrices_gauge(Tensor& gauge, const c10::optional<Tensor>& gU,
                              const c10::optional<Tensor>& gVh, int64_t k) {
  const bool extra_u = gU && gU->size(-1) > k, extra_v = gVh && gVh->size(-2) > k;
  if (!extra_u && !extra_v) return;
  at::NoGradGuard no_grad;
  const Tensor like = gauge.select(-1, 0);
  Tensor extra = at::zeros_like(like);
  if (extra_u) extra = at::maximum(extra, max_abs(gU->narrow(-1, k, gU->size(-1) - k), {-2, -1}));
  if (extra_v) extra = at::maximum(extra, max_abs(gVh->narrow(-2, k, gVh->size(-2) - k), {-2, -1}));
  const Tensor scale = max_abs_or_zero(value_or_undefined(gU), like) + max_abs_or_zero(value_or_undefined(gVh), like);
  const Tensor rel = at::where(scale > 0, extra / at::where(scale > 0, scale, 1), 0);
  const Tensor minus_two = at::full_like(like, -2);
  merge_gauge(gauge, rel, minus_two, minus_two);
}

namespace {

// The batched path for large matrices: the products by batched BLAS, J and
// the rectangular coefficients by the device's builder (kernels::svd_build_J,
// the same decisions as the fused kernel), then
//   gA = (U J + P D) Vh (tall),  U (J Vh + D P) (wide),  P the complement part
// of the cotangent of U (resp. Vh). gA goes into `out` (the caller's result, or a slice
// of it), gauge (B, 3).
void svd_backward_batched(const DeviceKernels& dev, const SvdBackwardArgs& a, Tensor& gauge, Tensor out) {
  // The square products by the device's small_bmm where it has one (device_bmm).
  const Tensor UhgU = a.gU.defined() ? device_bmm(dev, a.U.mH(), a.gU, Tensor()) : Tensor();
  const Tensor gVhV = a.gVh.defined() ? device_bmm(dev, a.gVh, a.Vh.mH(), Tensor()) : Tensor();
  const Tensor like = a.S.select(-1, 0);
  const Tensor cotangent_scale = (max_abs_or_zero(a.gU, like) + max_abs_or_zero(a.gVh, like)).contiguous();
  const bool tall = a.m > a.k, wide = a.n > a.k;
  Tensor P, pmax;
  // Every full-size (m x k or k x n) pass reads or writes memory, the floor of this path
  // for tall input: the subtractions and additions ride in the BLAS calls (baddbmm), the
  // maxima are one-pass norms, and the temporaries are scaled in place.
  if (tall && a.gU.defined()) {
    P = at::baddbmm(a.gU, a.U, UhgU, 1, -1);  // gU - U (U^H gU)
    pmax = max_abs(P, {-2}).contiguous();
  } else if (wide && a.gVh.defined()) {
    P = at::baddbmm(a.gVh, gVhV, a.Vh, 1, -1);  // gVh - (gVh V) Vh
    pmax = max_abs(P, {-1}).contiguous();
  }
  const int64_t B = a.S.size(0), k = a.k;
  Tensor J = empty_output({B, k, k}, a.U.options());
  Tensor Dr = P.defined() ? empty_output({B, k}, a.S.options()) : Tensor();
  Tensor factors = empty_output({B, 2}, a.S.options());
  dev.svd_build_J({UhgU, gVhV, a.S.contiguous(), a.gS.defined() ? a.gS.contiguous() : Tensor(), pmax,
                   cotangent_scale, a.m, a.n, a.guard},
                  J, Dr, factors, gauge);
  if (!P.defined()) {  // U (J Vh), J Vh into a temporary that is dead by then
    bmm_into(dev, a.U, device_bmm(dev, J, a.Vh, UhgU.defined() ? UhgU : gVhV), out);
    return;
  }
  // P D = scale(P) * Dr, the scale applied as two exact multiplications.
  const Tensor f1 = factors.select(-1, 0).view({B, 1, 1}), f2 = factors.select(-1, 1).view({B, 1, 1});
  P.mul_(f1).mul_(f2).mul_(tall ? Dr.unsqueeze(-2) : Dr.unsqueeze(-1));  // P D
  if (tall)
    at::bmm_out(out, P.baddbmm_(a.U, J), a.Vh);  // (U J + P D) Vh
  else
    at::bmm_out(out, a.U, P.baddbmm_(J, a.Vh));  // U (J Vh + D P)
}

std::tuple<Tensor, Tensor> svd_backward(const c10::optional<Tensor>& gU_in, const c10::optional<Tensor>& gS_in,
                                        const c10::optional<Tensor>& gVh_in, const Tensor& U, const Tensor& S,
                                        const Tensor& Vh, c10::string_view guard, c10::optional<double> rtol,
                                        c10::optional<double> atol) {
  const char* op = "safesvd._svd_backward";
  const BelowAutograd below;
  const auto gU = present(gU_in), gS = present(gS_in), gVh = present(gVh_in);
  const auto [m, n, k] = check_svd_backward_args(gU, gS, gVh, U, S, Vh, op);
  const ResolvedGuard rg = resolve_guard(guard, S.scalar_type(), rtol, atol, op);
  const auto batch = batch_shape(U);
  if (k == 0)
    return {at::zeros(with_trailing(batch, {m, n}), U.options()), empty_gauge(S, batch)};

  const SvdBackwardArgs args{
      U.narrow(-1, 0, k).reshape({-1, m, k}),
      Vh.narrow(-2, 0, k).reshape({-1, k, n}),
      gU ? gU->narrow(-1, 0, k).reshape({-1, m, k}) : Tensor(),
      gVh ? gVh->narrow(-2, 0, k).reshape({-1, k, n}) : Tensor(),
      S.reshape({-1, k}),
      gS ? gS->reshape({-1, k}) : Tensor(),
      m, n, k, rg};
  const DeviceKernels& dev = device_kernels(U.device(), op);
  const int64_t B = args.S.size(0);
  Tensor gA = empty_output({B, m, n}, U.options()), gauge = empty_output({B, 3}, S.options());
  if (dev.backward_fused ? dev.backward_fused(U, m, n) : std::max(m, n) <= dev.fused_max_dim) {
    dev.svd_backward_fused(args, gA, gauge);
  } else {
    in_backward_slices(U, B, std::max(m, n) * k * U.element_size(), [&](int64_t b0, int64_t b1) {
      Tensor gauge_part = batch_slice(gauge, b0, b1);
      svd_backward_batched(dev,
                           {batch_slice(args.U, b0, b1), batch_slice(args.Vh, b0, b1), batch_slice(args.gU, b0, b1),
                            batch_slice(args.gVh, b0, b1), batch_slice(args.S, b0, b1), batch_slice(args.gS, b0, b1),
                            m, n, k, rg},
                           gauge_part, batch_slice(gA, b0, b1));
    });
  }
  gauge = gauge.reshape(with_trailing(batch, {3}));
  note_full_matrices_gauge(gauge, gU, gVh, k);
  return {gA.reshape(with_trailing(batch, {m, n})), gauge};
}

}  // namespace

TORCH_LIBRARY_IMPL(safesvd, CompositeExplicitAutograd, m) {
  m.impl("svd", &svd_forward);
  m.impl("_svd_backward", &svd_backward);
}

}  // namespace safesvd

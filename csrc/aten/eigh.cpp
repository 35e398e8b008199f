// safesvd::eigh and safesvd::_eigh_backward: the device-generic entries
// (docs/architecture.md).
#include <torch/library.h>

#include "../kernels/jacobi_batch.h"
#include "dispatch.h"

namespace safesvd {
namespace {

std::tuple<Tensor, Tensor> eigh_forward(const Tensor& A, c10::string_view UPLO, c10::string_view guard,
                                        c10::optional<double> rtol, c10::optional<double> atol,
                                        c10::optional<c10::string_view> driver) {
  const char* op = "safesvd.eigh";
  const BelowAutograd below;
  // NaN or Inf anywhere in A (either triangle) raises: the LAPACK path tests A first, the
  // engine tests it itself (the device's eigh_jacobi, reported as info = 2).
  check_matrix_input(A, op, /*square=*/true, /*check_finite=*/false);
  TORCH_CHECK_VALUE(UPLO == "L" || UPLO == "U", op, ": UPLO must be 'L' or 'U', got '", std::string(UPLO), "'");
  resolve_guard(guard, at::toRealValueType(A.scalar_type()), rtol, atol, op);
  const int64_t n = A.size(-1);
  const DeviceKernels& dev = device_kernels(A.device(), op);
  if (!use_jacobi(A, driver, kernels::jacobi_eigh_supported(n, dev.jacobi_max_square_eigh), dev, dev.eigh_jacobi != nullptr, op)) {
    check_finite_on_cpu(A, op);
    return lapack_eigh(dev, A, UPLO);
  }
  const Tensor A3 = A.reshape({-1, n, n});
  // Q column-major like LAPACK's, allocated in its final shape (not a view); see svd.cpp.
  Tensor L = empty_output(with_trailing(batch_shape(A), {n}), A.options()),
         Q = empty_column_major(A.sizes().vec(), A.options());
  Tensor L3 = L.view({-1, n}), Q3 = as_matrix_batch(Q), info = empty_output({A3.size(0)}, A.options().dtype(at::kInt));
  dev.eigh_jacobi(A3, UPLO == "L", L3, Q3, info);
  if (dev.jacobi_fallback) {
    if (const Tensor redo = matrices_to_redo(info, op); redo.defined()) {
      auto [L2, Q2] = lapack_eigh(dev, A3.index_select(0, redo), UPLO);
      L3.index_copy_(0, redo, L2);
      Q3.index_copy_(0, redo, Q2);
    }
  }
  return {L, Q};
}

// Products by batched BLAS, J by the device's builder (kernels::eigh_build_J):
// gA = Q (J Q^H) into `out` (the caller's result, or a slice of it), gauge (B, 3).
void eigh_backward_batched(const DeviceKernels& dev, const EighBackwardArgs& a, Tensor& gauge, Tensor out) {
  const Tensor QhgQ = a.gQ.defined() ? device_bmm(dev, a.Q.mH(), a.gQ, Tensor()) : Tensor();
  const Tensor cotangent_scale = max_abs_or_zero(a.gQ, a.L.select(-1, 0)).contiguous();
  const int64_t B = a.L.size(0);
  Tensor J = empty_output({B, a.n, a.n}, a.Q.options());
  dev.eigh_build_J({QhgQ, a.L.contiguous(), a.gL.defined() ? a.gL.contiguous() : Tensor(), cotangent_scale, a.guard},
                   J, gauge);
  bmm_into(dev, a.Q, device_bmm(dev, J, a.Q.mH(), QhgQ), out);
}

std::tuple<Tensor, Tensor> eigh_backward(const c10::optional<Tensor>& gL_in, const c10::optional<Tensor>& gQ_in,
                                         const Tensor& L, const Tensor& Q, c10::string_view guard,
                                         c10::optional<double> rtol, c10::optional<double> atol) {
  const char* op = "safesvd._eigh_backward";
  const BelowAutograd below;
  const auto gL = present(gL_in), gQ = present(gQ_in);
  const int64_t n = check_eigh_backward_args(gL, gQ, L, Q, op);
  const ResolvedGuard rg = resolve_guard(guard, L.scalar_type(), rtol, atol, op);
  const auto batch = batch_shape(Q);
  if (n == 0) return {at::zeros_like(Q), empty_gauge(L, batch)};
  const EighBackwardArgs args{Q.reshape({-1, n, n}), gQ ? gQ->reshape({-1, n, n}) : Tensor(), L.reshape({-1, n}),
                              gL ? gL->reshape({-1, n}) : Tensor(), n, rg};
  const DeviceKernels& dev = device_kernels(Q.device(), op);
  const int64_t B = args.L.size(0);
  Tensor gA = empty_output({B, n, n}, Q.options()), gauge = empty_output({B, 3}, L.options());
  if (dev.backward_fused ? dev.backward_fused(Q, n, n) : n <= dev.fused_max_dim) {
    dev.eigh_backward_fused(args, gA, gauge);
  } else {
    in_backward_slices(Q, B, n * n * Q.element_size(), [&](int64_t b0, int64_t b1) {
      Tensor gauge_part = batch_slice(gauge, b0, b1);
      eigh_backward_batched(dev,
                            {batch_slice(args.Q, b0, b1), batch_slice(args.gQ, b0, b1), batch_slice(args.L, b0, b1),
                             batch_slice(args.gL, b0, b1), n, rg},
                            gauge_part, batch_slice(gA, b0, b1));
    });
  }
  return {gA.reshape(Q.sizes()), gauge.reshape(with_trailing(batch, {3}))};
}

}  // namespace

TORCH_LIBRARY_IMPL(safesvd, CompositeExplicitAutograd, m) {
  m.impl("eigh", &eigh_forward);
  m.impl("_eigh_backward", &eigh_backward);
}

}  // namespace safesvd

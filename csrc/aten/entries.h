// The table entries, written once for every device: they build the per-matrix
// Ops of csrc/kernels/batch_ops.h from tensors and hand them to a device's
// Runner, which calls op(b, scratch) for b in [0, count):
//
//   struct Runner {
//     template <class Op>
//     static void run(const Op& op, int64_t count, const c10::Device& device, int64_t work);
//   };
//
// (`work` is an estimate of the flops per item, for the CPU's grain size.)
// Included by the device files only (csrc/cpu/cpu.cpp, csrc/cuda/cuda.cu).
#pragma once

#include <ATen/Dispatch.h>

#include "../kernels/batch_ops.h"
#include "dispatch.h"

namespace safesvd {
namespace entries {

template <typename T>
kernels::BatchedRef<T> batched_ref(const Tensor& t) {
  if (!t.defined()) return {nullptr, 0, 0, 0};
  return {t.const_data_ptr<T>(), t.stride(0), t.stride(1), t.stride(2)};
}
template <typename T>
kernels::BatchedVec<T> batched_vec(const Tensor& t) {
  if (!t.defined()) return {nullptr, 0, 0};
  return {t.const_data_ptr<T>(), t.stride(0), t.stride(1)};
}
template <typename T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.const_data_ptr<T>() : nullptr;
}
template <typename T>
T* mut_ptr_or_null(Tensor& t) {
  return t.defined() ? t.mutable_data_ptr<T>() : nullptr;
}

template <typename Runner>
void svd_backward_fused(const SvdBackwardArgs& a, Tensor& gA, Tensor& gauge) {
  const int64_t B = a.S.size(0);
  if (B == 0) return;
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(a.U.scalar_type(), "safesvd_svd_backward", [&] {
    using R = kernels::real_of_t<scalar_t>;
    kernels::with_dims(a.m, a.n, [&](auto dims) {
      const kernels::SvdBackwardOp<scalar_t, decltype(dims)> op{
          dims, batched_ref<scalar_t>(a.U), batched_ref<scalar_t>(a.Vh), batched_ref<scalar_t>(a.gU),
          batched_ref<scalar_t>(a.gVh), batched_vec<R>(a.S), batched_vec<R>(a.gS), a.guard.params<R>(),
          gA.mutable_data_ptr<scalar_t>(), gauge.mutable_data_ptr<R>()};
      Runner::run(op, B, a.U.device(), a.m * a.n * a.k);
    });
  });
}

template <typename Runner>
void eigh_backward_fused(const EighBackwardArgs& a, Tensor& gA, Tensor& gauge) {
  const int64_t B = a.L.size(0);
  if (B == 0) return;
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(a.Q.scalar_type(), "safesvd_eigh_backward", [&] {
    using R = kernels::real_of_t<scalar_t>;
    kernels::with_dims(a.n, a.n, [&](auto dims) {
      const kernels::EighBackwardOp<scalar_t, decltype(dims)> op{
          dims, batched_ref<scalar_t>(a.Q), batched_ref<scalar_t>(a.gQ), batched_vec<R>(a.L),
          batched_vec<R>(a.gL), a.guard.params<R>(), gA.mutable_data_ptr<scalar_t>(),
          gauge.mutable_data_ptr<R>()};
      Runner::run(op, B, a.Q.device(), a.n * a.n * a.n);
    });
  });
}

template <typename Runner>
void svd_build_J(const SvdBuildJArgs& a, Tensor& J, Tensor& Dr, Tensor& factors, Tensor& gauge) {
  const int64_t B = a.S.size(0), k = a.S.size(1);
  if (B == 0) return;
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(J.scalar_type(), "safesvd_svd_build_J", [&] {
    using R = kernels::real_of_t<scalar_t>;
    const kernels::SvdBuildJOp<scalar_t> op{
        k, a.m + a.n, ptr_or_null<scalar_t>(a.UhgU), ptr_or_null<scalar_t>(a.gVhV), a.S.const_data_ptr<R>(),
        ptr_or_null<R>(a.gS), ptr_or_null<R>(a.pmax), a.cotangent_scale.const_data_ptr<R>(), a.guard.params<R>(),
        J.mutable_data_ptr<scalar_t>(), mut_ptr_or_null<R>(Dr), factors.mutable_data_ptr<R>(),
        gauge.mutable_data_ptr<R>()};
    Runner::run(op, B, a.S.device(), 8 * k * k);
  });
}

template <typename Runner>
void eigh_build_J(const EighBuildJArgs& a, Tensor& J, Tensor& gauge) {
  const int64_t B = a.L.size(0), n = a.L.size(1);
  if (B == 0) return;
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(J.scalar_type(), "safesvd_eigh_build_J", [&] {
    using R = kernels::real_of_t<scalar_t>;
    const kernels::EighBuildJOp<scalar_t> op{n, ptr_or_null<scalar_t>(a.QhgQ), a.L.const_data_ptr<R>(),
                                             ptr_or_null<R>(a.gL), a.cotangent_scale.const_data_ptr<R>(),
                                             a.guard.params<R>(), J.mutable_data_ptr<scalar_t>(),
                                             gauge.mutable_data_ptr<R>()};
    Runner::run(op, B, a.L.device(), 4 * n * n);
  });
}

template <typename Runner>
void svd_fn_backward_fused(const FnBackwardArgs& a, Tensor& gA, Tensor& gf) {
  const int64_t B = a.S.size(0);
  if (B == 0) return;
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(a.U.scalar_type(), "safesvd_svd_fn_backward", [&] {
    using R = kernels::real_of_t<scalar_t>;
    kernels::with_dims(a.m, a.n, [&](auto dims) {
      const kernels::SvdFnBackwardOp<scalar_t, decltype(dims)> op{
          dims, batched_ref<scalar_t>(a.U), batched_ref<scalar_t>(a.Vh), batched_ref<scalar_t>(a.G),
          batched_vec<R>(a.S), batched_vec<R>(a.fS), batched_vec<R>(a.dfS), R(a.rtol), R(a.atol),
          gA.mutable_data_ptr<scalar_t>(), mut_ptr_or_null<R>(gf)};
      Runner::run(op, B, a.U.device(), a.m * a.n * a.k);
    });
  });
}

template <typename Runner>
void eigh_fn_backward_fused(const FnBackwardArgs& a, Tensor& gA, Tensor& gf) {
  const int64_t B = a.S.size(0);
  if (B == 0) return;
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(a.U.scalar_type(), "safesvd_eigh_fn_backward", [&] {
    using R = kernels::real_of_t<scalar_t>;
    kernels::with_dims(a.k, a.k, [&](auto dims) {
      const kernels::EighFnBackwardOp<scalar_t, decltype(dims)> op{
          dims, batched_ref<scalar_t>(a.U), batched_ref<scalar_t>(a.G), batched_vec<R>(a.S),
          batched_vec<R>(a.fS), batched_vec<R>(a.dfS), R(a.rtol), R(a.atol),
          gA.mutable_data_ptr<scalar_t>(), mut_ptr_or_null<R>(gf)};
      Runner::run(op, B, a.U.device(), a.k * a.k * a.k);
    });
  });
}

template <typename Runner>
void fn_build_X(const FnBuildXArgs& a, Tensor& X, Tensor& F, Tensor& gf) {
  const int64_t B = a.S.size(0), k = a.S.size(1);
  if (B == 0) return;
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(X.scalar_type(), "safesvd_fn_build_X", [&] {
    using R = kernels::real_of_t<scalar_t>;
    const kernels::FnBuildXOp<scalar_t> op{
        a.svd, k, a.M.const_data_ptr<scalar_t>(), a.S.const_data_ptr<R>(), a.fS.const_data_ptr<R>(),
        a.dfS.const_data_ptr<R>(), R(a.rtol), R(a.atol), X.mutable_data_ptr<scalar_t>(),
        mut_ptr_or_null<R>(F), mut_ptr_or_null<R>(gf)};
    Runner::run(op, B, a.S.device(), 4 * k * k);
  });
}

template <typename Runner>
void fn_second_order(const FnSecondOrderArgs& a, Tensor& Z, Tensor& gf, Tensor& gdf) {
  const int64_t B = a.lam.size(0), N = a.lam.size(1);
  if (B == 0) return;
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(Z.scalar_type(), "safesvd_fn_second_order", [&] {
    using R = kernels::real_of_t<scalar_t>;
    const kernels::FnSecondOrderOp<scalar_t> op{
        N, a.Gt.const_data_ptr<scalar_t>(), a.Ht.const_data_ptr<scalar_t>(), a.lam.const_data_ptr<R>(),
        a.f.const_data_ptr<R>(), a.df.const_data_ptr<R>(), a.d2f.const_data_ptr<R>(), R(a.rtol), R(a.atol),
        Z.mutable_data_ptr<scalar_t>(), mut_ptr_or_null<R>(gf), mut_ptr_or_null<R>(gdf)};
    Runner::run(op, B, a.lam.device(), 8 * N * N * N);
  });
}

template <typename Runner>
void guard_params(const GuardParamsArgs& a, Tensor& out) {
  const int64_t B = a.spectrum.size(0);
  if (B == 0) return;
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "safesvd_guard_params", [&] {
    const kernels::GuardParamsOp<scalar_t> op{a.spectrum.size(1), a.dims, a.divided_difference,
                                              a.spectrum.const_data_ptr<scalar_t>(),
                                              a.cotangent_scale.const_data_ptr<scalar_t>(),
                                              a.guard.params<scalar_t>(), out.mutable_data_ptr<scalar_t>()};
    Runner::run(op, B, out.device(), a.spectrum.size(1));
  });
}

template <typename Runner>
void guard_coefficients(const GuardCoefficientsArgs& a, Tensor& coef, Tensor& slope, Tensor& note) {
  const int64_t B = a.params.size(0), E = B ? a.d.numel() / B : 0;
  if (B == 0) return;
  AT_DISPATCH_FLOATING_TYPES(coef.scalar_type(), "safesvd_guard_coefficients", [&] {
    const kernels::GuardCoefficientsOp<scalar_t> op{
        E, a.guard, a.d.const_data_ptr<scalar_t>(), ptr_or_null<scalar_t>(a.xabs), a.params.const_data_ptr<scalar_t>(),
        coef.mutable_data_ptr<scalar_t>(), slope.mutable_data_ptr<scalar_t>(), note.mutable_data_ptr<scalar_t>()};
    Runner::run(op, B, coef.device(), 8 * E);
  });
}

// The forward engine, one matrix per thread (devices whose Runner runs Ops per thread).
template <typename T>
kernels::SvdBatch<T> svd_batch(const Tensor& A, bool full, Tensor& U, Tensor& S, Tensor& Vh, Tensor& info) {
  return {A.const_data_ptr<T>(), A.stride(0), A.stride(1), A.stride(2), A.size(0), A.size(1), A.size(2), full,
          U.mutable_data_ptr<T>(), S.mutable_data_ptr<T>(), Vh.mutable_data_ptr<T>(), info.mutable_data_ptr<int>()};
}
template <typename T>
kernels::EighBatch<T> eigh_batch(const Tensor& A, bool lower, Tensor& L, Tensor& Q, Tensor& info) {
  return {A.const_data_ptr<T>(), A.stride(0), A.stride(1), A.stride(2), A.size(0), A.size(1), lower,
          L.mutable_data_ptr<T>(), Q.mutable_data_ptr<T>(), info.mutable_data_ptr<int>()};
}

template <typename Runner>
void svd_jacobi(const Tensor& A, bool full, Tensor& U, Tensor& S, Tensor& Vh, Tensor& info) {
  const int64_t B = A.size(0), m = A.size(1), n = A.size(2);
  if (B == 0) return;
  AT_DISPATCH_FLOATING_TYPES(A.scalar_type(), "safesvd_svd_jacobi", [&] {
    const auto batch = svd_batch<scalar_t>(A, full, U, S, Vh, info);
    // Square only (DeviceKernels::jacobi_rectangular is false for these devices): every
    // rectangular shape would double the compile time of the device code.
    TORCH_INTERNAL_ASSERT(m == n);
    kernels::with_jacobi_eigh_shape(n, [&](auto shape) {
      constexpr int N = decltype(shape)::N;
      Runner::run(kernels::JacobiSvdOp<scalar_t, N, N, false>{batch}, B, A.device(), 64 * N * N * N);
    });
  });
}

template <typename Runner>
void eigh_jacobi(const Tensor& A, bool lower, Tensor& L, Tensor& Q, Tensor& info) {
  const int64_t B = A.size(0);
  if (B == 0) return;
  AT_DISPATCH_FLOATING_TYPES(A.scalar_type(), "safesvd_eigh_jacobi", [&] {
    const auto batch = eigh_batch<scalar_t>(A, lower, L, Q, info);
    kernels::with_jacobi_eigh_shape(A.size(1), [&](auto shape) {
      constexpr int N = decltype(shape)::N;
      Runner::run(kernels::JacobiEighOp<scalar_t, N>{batch}, B, A.device(), 64 * N * N * N);
    });
  });
}

}  // namespace entries

// Every entry instantiated for one device's Runner; `jacobi_per_thread` adds the
// forward engine as one matrix per thread (CUDA; the CPU runs its own tiles).
template <typename Runner, bool jacobi_per_thread = false>
DeviceKernels make_device_kernels(int64_t fused_max_dim) {
  DeviceKernels k;
  k.fused_max_dim = fused_max_dim;
  k.svd_backward_fused = &entries::svd_backward_fused<Runner>;
  k.eigh_backward_fused = &entries::eigh_backward_fused<Runner>;
  k.svd_build_J = &entries::svd_build_J<Runner>;
  k.eigh_build_J = &entries::eigh_build_J<Runner>;
  k.svd_fn_backward_fused = &entries::svd_fn_backward_fused<Runner>;
  k.eigh_fn_backward_fused = &entries::eigh_fn_backward_fused<Runner>;
  k.fn_build_X = &entries::fn_build_X<Runner>;
  k.fn_second_order = &entries::fn_second_order<Runner>;
  k.guard_params = &entries::guard_params<Runner>;
  k.guard_coefficients = &entries::guard_coefficients<Runner>;
  if constexpr (jacobi_per_thread) {
    k.svd_jacobi = &entries::svd_jacobi<Runner>;
    k.eigh_jacobi = &entries::eigh_jacobi<Runner>;
  }
  return k;
}

}  // namespace safesvd

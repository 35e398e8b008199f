// The table entries, written once for every device: they build the per-matrix
// Ops of csrc/kernels/batch_ops.h from tensors and hand them to a device's
// Runner, which calls op(b, scratch) for b in [0, count):
//
//   struct Runner {
//     template <class Op>
//     static void run(const Op& op, int64_t count, const c10::Device& device, int64_t work);
//   };
//
// (`work` is an estimate of the flops per item, for the CPU's grain size.) A
// Runner's run() only forwards to the device's launcher of that Op, which a kernel
// unit instantiates (csrc/cpu/launch.h, csrc/cuda/launch.h; the instances are the
// lines of csrc/manifest.txt): which Op and which fixed size runs is decided here
// and in the device tables (csrc/cpu/cpu.cpp, csrc/cuda/table.h), and an Op a
// table reaches without an instance is a link error.
#pragma once

#include <ATen/Dispatch.h>

#include "../kernels/batch_ops.h"
#include "dispatch.h"

namespace safesvd {
namespace entries {

// The one converter from tensors to the kernels' strided view (kernels/strided.h): a
// (B, r, c) batch of matrices, or a (B, k) batch of vectors (rows). Undefined: null.
template <typename T>
kernels::BatchedRef<T> strided(const Tensor& t) {
  if (!t.defined()) return {nullptr, 0, 0, 0};
  if (t.dim() == 2) return {t.const_data_ptr<T>(), t.stride(0), 0, t.stride(1)};
  return {t.const_data_ptr<T>(), t.stride(0), t.stride(1), t.stride(2)};
}
template <typename T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.const_data_ptr<T>() : nullptr;
}
template <typename T>
T* mut_ptr_or_null(Tensor& t) {
  return t.defined() ? t.mutable_data_ptr<T>() : nullptr;
}

// The fused svd / eigh backward of one dtype and one Dims (a device table chooses
// which Dims it compiles: the CPU every fixed size, CUDA only where no band kernel
// takes the shape).
template <typename Runner, typename scalar_t, typename Dims>
void run_svd_backward(const SvdBackwardArgs& a, Dims dims, Tensor& gA, Tensor& gauge) {
  using R = kernels::real_of_t<scalar_t>;
  const kernels::SvdBackwardOp<scalar_t, Dims> op{
      dims, strided<scalar_t>(a.U), strided<scalar_t>(a.Vh), strided<scalar_t>(a.gU), strided<scalar_t>(a.gVh),
      strided<R>(a.S), strided<R>(a.gS), a.guard.params<R>(), gA.mutable_data_ptr<scalar_t>(),
      gauge.mutable_data_ptr<R>()};
  Runner::run(op, a.S.size(0), a.U.device(), a.m * a.n * a.k);
}
template <typename Runner, typename scalar_t, typename Dims>
void run_eigh_backward(const EighBackwardArgs& a, Dims dims, Tensor& gA, Tensor& gauge) {
  using R = kernels::real_of_t<scalar_t>;
  const kernels::EighBackwardOp<scalar_t, Dims> op{
      dims, strided<scalar_t>(a.Q), strided<scalar_t>(a.gQ), strided<R>(a.L), strided<R>(a.gL),
      a.guard.params<R>(), gA.mutable_data_ptr<scalar_t>(), gauge.mutable_data_ptr<R>()};
  Runner::run(op, a.L.size(0), a.Q.device(), a.n * a.n * a.n);
}

// Square per-matrix kernels are compiled for n <= kMaxFixedDim only; the fused
// paths never take a larger square matrix (fused_max_dim, the SoA and band limits).
template <typename F>
void with_fused_square_dims(int64_t n, const char* what, F&& f) {
  TORCH_INTERNAL_ASSERT(kernels::with_square_dims(n, f), what, ": no fused kernel for n = ", n);
}

// Every dtype, every fixed size (the CPU's per-matrix fused backward).
template <typename Runner>
void svd_backward_fused(const SvdBackwardArgs& a, Tensor& gA, Tensor& gauge) {
  if (a.S.size(0) == 0) return;
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(a.U.scalar_type(), "safesvd_svd_backward", [&] {
    kernels::with_dims(a.m, a.n, [&](auto dims) { run_svd_backward<Runner, scalar_t>(a, dims, gA, gauge); });
  });
}

template <typename Runner>
void eigh_backward_fused(const EighBackwardArgs& a, Tensor& gA, Tensor& gauge) {
  if (a.L.size(0) == 0) return;
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(a.Q.scalar_type(), "safesvd_eigh_backward", [&] {
    with_fused_square_dims(a.n, "safesvd._eigh_backward",
                           [&](auto dims) { run_eigh_backward<Runner, scalar_t>(a, dims, gA, gauge); });
  });
}

// Real square n above kMaxFixedDim at a runtime size (the CPU's small batches, cpu.cpp).
template <typename Runner>
void eigh_backward_runtime(const EighBackwardArgs& a, Tensor& gA, Tensor& gauge) {
  if (a.L.size(0) == 0) return;
  AT_DISPATCH_FLOATING_TYPES(a.Q.scalar_type(), "safesvd_eigh_backward", [&] {
    run_eigh_backward<Runner, scalar_t>(a, kernels::RuntimeDims{a.n, a.n}, gA, gauge);
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
          dims, strided<scalar_t>(a.U), strided<scalar_t>(a.Vh), strided<scalar_t>(a.G),
          strided<R>(a.S), strided<R>(a.fS), strided<R>(a.dfS), R(a.rtol), R(a.atol),
          gA.mutable_data_ptr<scalar_t>(), mut_ptr_or_null<R>(gf)};
      Runner::run(op, B, a.U.device(), a.m * a.n * a.k);
    });
  });
}

template <typename Runner, typename scalar_t, typename Dims>
void run_eigh_fn_backward(const FnBackwardArgs& a, Dims dims, Tensor& gA, Tensor& gf) {
  using R = kernels::real_of_t<scalar_t>;
  const kernels::EighFnBackwardOp<scalar_t, Dims> op{
      dims, strided<scalar_t>(a.U), strided<scalar_t>(a.G), strided<R>(a.S),
      strided<R>(a.fS), strided<R>(a.dfS), R(a.rtol), R(a.atol),
      gA.mutable_data_ptr<scalar_t>(), mut_ptr_or_null<R>(gf)};
  Runner::run(op, a.S.size(0), a.U.device(), a.k * a.k * a.k);
}

template <typename Runner>
void eigh_fn_backward_fused(const FnBackwardArgs& a, Tensor& gA, Tensor& gf) {
  if (a.S.size(0) == 0) return;
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(a.U.scalar_type(), "safesvd_eigh_fn_backward", [&] {
    with_fused_square_dims(a.k, "safesvd._eigh_fn_backward",
                           [&](auto dims) { run_eigh_fn_backward<Runner, scalar_t>(a, dims, gA, gf); });
  });
}

// Real square n above kMaxFixedDim at a runtime size (the CPU's small batches, cpu.cpp).
template <typename Runner>
void eigh_fn_backward_runtime(const FnBackwardArgs& a, Tensor& gA, Tensor& gf) {
  if (a.S.size(0) == 0) return;
  AT_DISPATCH_FLOATING_TYPES(a.U.scalar_type(), "safesvd_eigh_fn_backward", [&] {
    run_eigh_fn_backward<Runner, scalar_t>(a, kernels::RuntimeDims{a.k, a.k}, gA, gf);
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
  return {strided<T>(A), A.size(0), A.size(1), A.size(2), full, U.mutable_data_ptr<T>(), S.mutable_data_ptr<T>(),
          Vh.mutable_data_ptr<T>(), info.mutable_data_ptr<int>()};
}
template <typename T>
kernels::EighBatch<T> eigh_batch(const Tensor& A, bool lower, Tensor& L, Tensor& Q, Tensor& info) {
  return {strided<T>(A), A.size(0), A.size(1), lower, L.mutable_data_ptr<T>(), Q.mutable_data_ptr<T>(),
          info.mutable_data_ptr<int>()};
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

// The entries every device shares, instantiated for one device's Runner: the
// builders of the batched paths, the matrix functions' fused backward and the
// guards. A device table adds its own fused svd / eigh backward (which fixed sizes
// and bands it compiles differs by device) and, where it has one, the forward engine.
template <typename Runner>
DeviceKernels make_device_kernels(int64_t fused_max_dim) {
  DeviceKernels k;
  k.fused_max_dim = fused_max_dim;
  k.svd_build_J = &entries::svd_build_J<Runner>;
  k.eigh_build_J = &entries::eigh_build_J<Runner>;
  k.svd_fn_backward_fused = &entries::svd_fn_backward_fused<Runner>;
  k.eigh_fn_backward_fused = &entries::eigh_fn_backward_fused<Runner>;
  k.fn_build_X = &entries::fn_build_X<Runner>;
  k.fn_second_order = &entries::fn_second_order<Runner>;
  k.guard_params = &entries::guard_params<Runner>;
  k.guard_coefficients = &entries::guard_coefficients<Runner>;
  return k;
}

}  // namespace safesvd

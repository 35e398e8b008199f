// CUDA kernels: the forward through ATen (cuSOLVER), the backward as the
// per-matrix templates of csrc/kernels/ (the same code the CPU tests check).
//
// Mapping (design.md 4): for max(m, n) <= 8 one thread per matrix, its packed
// inputs and scratch in dynamic shared memory, square sizes compiled with fixed
// dimensions; above that cuBLAS batched matmul for the products and one thread
// per matrix for J (svd_build_J / eigh_build_J). Every launch goes to the
// current stream under a device guard, is checked, and nothing synchronizes
// with the host, so the ops are safe under CUDA graph capture.
//
// Headers: c10/cuda/CUDAStream.h and CUDAGuard.h only (not ATen/cuda/CUDAContext.h,
// which needs cuSPARSE headers), so the file also compiles against a CPU-only
// torch in CI's nvcc check (tests/test_cuda_build.py).
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "../aten/common.h"
#include "../kernels/fn_backward.h"

namespace safesvd {
namespace {

using kernels::MatRef;

constexpr int64_t kFusedMaxDimCUDA = 8;
constexpr int kMaxThreadsPerBlock = 128;
constexpr size_t kSharedBytesPerBlock = 48 * 1024;  // no opt-in needed on any GPU

// Device view of a (B, r, c) tensor with arbitrary strides.
template <typename T>
struct BatchedRef {
  const T* p;
  int64_t sb, rs, cs;
  __device__ MatRef<const T> at(int64_t b) const {
    return {p ? p + b * sb : nullptr, rs, cs};
  }
};

template <typename T>
BatchedRef<T> batched_ref(const Tensor& t) {
  if (!t.defined()) return {nullptr, 0, 0, 0};
  return {t.const_data_ptr<T>(), t.stride(0), t.stride(1), t.stride(2)};
}

Tensor as_batched(const c10::optional<Tensor>& x, int64_t r, int64_t c) {
  return x ? x->reshape({-1, r, c}) : Tensor();
}

template <typename R>
const R* vector_or_null(const Tensor& t) {
  return t.defined() ? t.const_data_ptr<R>() : nullptr;
}

// Threads per block and grid for one-thread-per-matrix kernels with
// `scratch` scalars of shared memory per thread.
struct Launch {
  dim3 grid, block;
  size_t shared;
};
Launch launch_for(int64_t B, int64_t scratch_bytes) {
  int threads = kMaxThreadsPerBlock;
  if (scratch_bytes > 0)
    threads = static_cast<int>(std::max<int64_t>(
        1, std::min<int64_t>(kMaxThreadsPerBlock, kSharedBytesPerBlock / scratch_bytes)));
  const int64_t blocks = (B + threads - 1) / threads;
  return {dim3(static_cast<unsigned>(blocks)), dim3(threads), static_cast<size_t>(threads * scratch_bytes)};
}

// ------------------------------------------------------------- fused kernels

template <typename scalar_t, typename Dims>
__global__ void svd_backward_fused_kernel(Dims dims, int64_t B, BatchedRef<scalar_t> U,
                                          BatchedRef<scalar_t> Vh, BatchedRef<scalar_t> gU,
                                          BatchedRef<scalar_t> gVh,
                                          const kernels::real_of_t<scalar_t>* S,
                                          const kernels::real_of_t<scalar_t>* gS, kernels::Guard guard,
                                          kernels::real_of_t<scalar_t> rtol,
                                          kernels::real_of_t<scalar_t> atol, scalar_t* gA,
                                          kernels::real_of_t<scalar_t>* gauge, int64_t scratch) {
  extern __shared__ __align__(16) unsigned char shared_raw[];
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= B) return;
  const int64_t m = dims.m(), n = dims.n(), k = dims.k();
  scalar_t* buf = reinterpret_cast<scalar_t*>(shared_raw) + threadIdx.x * scratch;
  const auto packed = kernels::svd_pack<scalar_t>(dims, U.at(b), Vh.at(b), gU.at(b), gVh.at(b), buf);
  kernels::svd_backward_matrix<scalar_t>(dims, packed, S + b * k, 1, gS ? gS + b * k : nullptr, 1,
                                         guard, rtol, atol, gA + b * m * n,
                                         buf + kernels::svd_pack_size(m, n, k), gauge + 3 * b);
}

template <typename scalar_t, typename Dims>
__global__ void eigh_backward_fused_kernel(Dims dims, int64_t B, BatchedRef<scalar_t> Q,
                                           BatchedRef<scalar_t> gQ,
                                           const kernels::real_of_t<scalar_t>* L,
                                           const kernels::real_of_t<scalar_t>* gL, kernels::Guard guard,
                                           kernels::real_of_t<scalar_t> rtol,
                                           kernels::real_of_t<scalar_t> atol, scalar_t* gA,
                                           kernels::real_of_t<scalar_t>* gauge, int64_t scratch) {
  extern __shared__ __align__(16) unsigned char shared_raw[];
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= B) return;
  const int64_t n = dims.n();
  scalar_t* buf = reinterpret_cast<scalar_t*>(shared_raw) + threadIdx.x * scratch;
  const auto packed = kernels::eigh_pack<scalar_t>(dims, Q.at(b), gQ.at(b), buf);
  kernels::eigh_backward_matrix<scalar_t>(dims, packed, L + b * n, 1, gL ? gL + b * n : nullptr, 1,
                                          guard, rtol, atol, gA + b * n * n,
                                          buf + kernels::eigh_pack_size(n), gauge + 3 * b);
}

template <typename scalar_t, typename Dims>
__global__ void svd_fn_backward_fused_kernel(Dims dims, int64_t B, BatchedRef<scalar_t> U,
                                             BatchedRef<scalar_t> Vh, BatchedRef<scalar_t> G,
                                             const kernels::real_of_t<scalar_t>* S,
                                             const kernels::real_of_t<scalar_t>* fS,
                                             const kernels::real_of_t<scalar_t>* dfS,
                                             kernels::real_of_t<scalar_t> rtol,
                                             kernels::real_of_t<scalar_t> atol, scalar_t* gA,
                                             int64_t scratch) {
  extern __shared__ __align__(16) unsigned char shared_raw[];
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= B) return;
  const int64_t m = dims.m(), n = dims.n(), k = dims.k();
  scalar_t* buf = reinterpret_cast<scalar_t*>(shared_raw) + threadIdx.x * scratch;
  const auto packed = kernels::svd_pack<scalar_t>(dims, U.at(b), Vh.at(b), MatRef<const scalar_t>{nullptr, 0, 0},
                                                  MatRef<const scalar_t>{nullptr, 0, 0}, buf);
  scalar_t* g = buf + kernels::svd_pack_size(m, n, k);
  kernels::pack_matrix(m, n, G.at(b), g);
  const auto tol = kernels::spectrum_tolerance(S + b * k, 1, k, rtol, atol);
  kernels::svd_fn_backward_matrix<scalar_t>(dims, packed, g, S + b * k, fS + b * k, dfS + b * k, 1, tol,
                                            gA + b * m * n, g + m * n);
}

template <typename scalar_t, typename Dims>
__global__ void eigh_fn_backward_fused_kernel(Dims dims, int64_t B, BatchedRef<scalar_t> Q,
                                              BatchedRef<scalar_t> G,
                                              const kernels::real_of_t<scalar_t>* L,
                                              const kernels::real_of_t<scalar_t>* fL,
                                              const kernels::real_of_t<scalar_t>* dfL,
                                              kernels::real_of_t<scalar_t> rtol,
                                              kernels::real_of_t<scalar_t> atol, scalar_t* gA,
                                              int64_t scratch) {
  extern __shared__ __align__(16) unsigned char shared_raw[];
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= B) return;
  const int64_t n = dims.n();
  scalar_t* buf = reinterpret_cast<scalar_t*>(shared_raw) + threadIdx.x * scratch;
  const auto packed = kernels::eigh_pack<scalar_t>(dims, Q.at(b), G.at(b), buf);
  const auto tol = kernels::spectrum_tolerance(L + b * n, 1, n, rtol, atol);
  kernels::eigh_fn_backward_matrix<scalar_t>(dims, packed, L + b * n, fL + b * n, dfL + b * n, 1, tol,
                                             gA + b * n * n, buf + kernels::eigh_pack_size(n));
}

// ------------------------------------------------------------ J builders

template <typename scalar_t>
__global__ void svd_build_J_kernel(int64_t B, int64_t k, const scalar_t* UhgU, const scalar_t* gVhV,
                                   const kernels::real_of_t<scalar_t>* S,
                                   const kernels::real_of_t<scalar_t>* gS, kernels::Guard guard,
                                   kernels::real_of_t<scalar_t> rtol, kernels::real_of_t<scalar_t> atol,
                                   scalar_t* J, kernels::real_of_t<scalar_t>* D,
                                   kernels::real_of_t<scalar_t>* gauge) {
  using R = kernels::real_of_t<scalar_t>;
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= B) return;
  const R tol = kernels::spectrum_tolerance(S + b * k, 1, k, rtol, atol);
  kernels::GaugeTracker<R> tracker;
  tracker.scale = R(1);  // scaled by the caller
  kernels::svd_build_J(k, UhgU ? UhgU + b * k * k : nullptr, gVhV ? gVhV + b * k * k : nullptr, S + b * k, 1,
                       gS ? gS + b * k : nullptr, 1, guard, tol, J + b * k * k, tracker);
  for (int64_t l = 0; l < k; ++l) D[b * k + l] = kernels::guarded_reciprocal(S[b * k + l], tol, guard);
  tracker.write(gauge + 3 * b);
}

template <typename scalar_t>
__global__ void eigh_build_J_kernel(int64_t B, int64_t n, const scalar_t* QhgQ,
                                    const kernels::real_of_t<scalar_t>* L,
                                    const kernels::real_of_t<scalar_t>* gL, kernels::Guard guard,
                                    kernels::real_of_t<scalar_t> rtol, kernels::real_of_t<scalar_t> atol,
                                    scalar_t* J, kernels::real_of_t<scalar_t>* gauge) {
  using R = kernels::real_of_t<scalar_t>;
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b >= B) return;
  const R tol = kernels::spectrum_tolerance(L + b * n, 1, n, rtol, atol);
  kernels::GaugeTracker<R> tracker;
  tracker.scale = R(1);
  kernels::eigh_build_J(n, QhgQ ? QhgQ + b * n * n : nullptr, L + b * n, 1, gL ? gL + b * n : nullptr, 1,
                        guard, tol, J + b * n * n, tracker);
  tracker.write(gauge + 3 * b);
}

std::tuple<Tensor, Tensor, Tensor> svd_build_J_cuda(at::ScalarType dtype, const Tensor& UhgU,
                                                    const Tensor& gVhV, const Tensor& S, const Tensor& gS,
                                                    Guard guard, double rt, double at_) {
  const int64_t B = S.size(0), k = S.size(1);
  Tensor J = at::empty({B, k, k}, S.options().dtype(dtype)), D = at::empty({B, k}, S.options()),
         gauge = at::empty({B, 3}, S.options());
  if (B == 0) return {J, D, gauge};
  const c10::cuda::CUDAGuard device_guard(S.device());
  const auto stream = c10::cuda::getCurrentCUDAStream();
  const Launch launch = launch_for(B, 0);
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(dtype, "safesvd_svd_build_J_cuda", [&] {
    using R = kernels::real_of_t<scalar_t>;
    svd_build_J_kernel<scalar_t><<<launch.grid, launch.block, 0, stream>>>(
        B, k, vector_or_null<scalar_t>(UhgU), vector_or_null<scalar_t>(gVhV), S.const_data_ptr<R>(),
        vector_or_null<R>(gS), guard, R(rt), R(at_), J.data_ptr<scalar_t>(), D.data_ptr<R>(), gauge.data_ptr<R>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {J, D, gauge};
}

std::tuple<Tensor, Tensor> eigh_build_J_cuda(at::ScalarType dtype, const Tensor& QhgQ, const Tensor& L,
                                             const Tensor& gL, Guard guard, double rt, double at_) {
  const int64_t B = L.size(0), n = L.size(1);
  Tensor J = at::empty({B, n, n}, L.options().dtype(dtype)), gauge = at::empty({B, 3}, L.options());
  if (B == 0) return {J, gauge};
  const c10::cuda::CUDAGuard device_guard(L.device());
  const auto stream = c10::cuda::getCurrentCUDAStream();
  const Launch launch = launch_for(B, 0);
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(dtype, "safesvd_eigh_build_J_cuda", [&] {
    using R = kernels::real_of_t<scalar_t>;
    eigh_build_J_kernel<scalar_t><<<launch.grid, launch.block, 0, stream>>>(
        B, n, vector_or_null<scalar_t>(QhgQ), L.const_data_ptr<R>(), vector_or_null<R>(gL), guard, R(rt),
        R(at_), J.data_ptr<scalar_t>(), gauge.data_ptr<R>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {J, gauge};
}

// ------------------------------------------------------------- backward ops

std::tuple<Tensor, Tensor> svd_backward_cuda(
    const c10::optional<Tensor>& gU_in, const c10::optional<Tensor>& gS_in,
    const c10::optional<Tensor>& gVh_in, const Tensor& U, const Tensor& S, const Tensor& Vh,
    c10::string_view guard_name, c10::optional<double> rtol, c10::optional<double> atol) {
  const char* op = "safesvd._svd_backward";
  const auto gU = present(gU_in), gS = present(gS_in), gVh = present(gVh_in);
  const auto [m, n, k] = check_svd_backward_args(gU, gS, gVh, U, S, Vh, op);
  if (k == 0) return svd_backward_composite(gU, gS, gVh, U, S, Vh, guard_name, rtol, atol);
  if (std::max(m, n) > kFusedMaxDimCUDA)
    return svd_backward_batched_matmul(gU, gS, gVh, U, S, Vh, guard_name, rtol, atol, &svd_build_J_cuda);
  const Guard guard = parse_guard(guard_name, op);
  const auto [rt, at_] = resolve_tolerances(S.scalar_type(), rtol, atol, op);
  const c10::cuda::CUDAGuard device_guard(U.device());
  const auto stream = c10::cuda::getCurrentCUDAStream();

  const Tensor U3 = U.narrow(-1, 0, k).reshape({-1, m, k}), Vh3 = Vh.narrow(-2, 0, k).reshape({-1, k, n});
  const Tensor gU3 = gU ? gU->narrow(-1, 0, k).reshape({-1, m, k}) : Tensor();
  const Tensor gVh3 = gVh ? gVh->narrow(-2, 0, k).reshape({-1, k, n}) : Tensor();
  const Tensor S2 = S.reshape({-1, k}).contiguous();
  const Tensor gS2 = gS ? gS->reshape({-1, k}).contiguous() : Tensor();
  const int64_t B = S2.size(0);
  Tensor gA = at::empty({B, m, n}, U.options()), gauge = at::empty({B, 3}, S.options());
  if (B > 0) {
    AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(U.scalar_type(), "safesvd_svd_backward_cuda", [&] {
      using R = kernels::real_of_t<scalar_t>;
      const int64_t scratch = kernels::svd_pack_size(m, n, k) + kernels::svd_backward_workspace(m, n, k);
      const Launch launch = launch_for(B, scratch * static_cast<int64_t>(sizeof(scalar_t)));
      kernels::with_dims(m, n, [&](auto dims) {
        svd_backward_fused_kernel<scalar_t><<<launch.grid, launch.block, launch.shared, stream>>>(
            dims, B, batched_ref<scalar_t>(U3), batched_ref<scalar_t>(Vh3), batched_ref<scalar_t>(gU3),
            batched_ref<scalar_t>(gVh3), S2.const_data_ptr<R>(), vector_or_null<R>(gS2), guard, R(rt), R(at_),
            gA.data_ptr<scalar_t>(), gauge.data_ptr<R>(), scratch);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
    });
  }
  return finish_svd_backward(gA, gauge, U, gU, gVh, m, n, k);
}

std::tuple<Tensor, Tensor> eigh_backward_cuda(const c10::optional<Tensor>& gL_in,
                                              const c10::optional<Tensor>& gQ_in, const Tensor& L,
                                              const Tensor& Q, c10::string_view guard_name,
                                              c10::optional<double> rtol, c10::optional<double> atol) {
  const char* op = "safesvd._eigh_backward";
  const auto gL = present(gL_in), gQ = present(gQ_in);
  const int64_t n = check_eigh_backward_args(gL, gQ, L, Q, op);
  if (n == 0) return eigh_backward_composite(gL, gQ, L, Q, guard_name, rtol, atol);
  if (n > kFusedMaxDimCUDA)
    return eigh_backward_batched_matmul(gL, gQ, L, Q, guard_name, rtol, atol, &eigh_build_J_cuda);
  const Guard guard = parse_guard(guard_name, op);
  const auto [rt, at_] = resolve_tolerances(L.scalar_type(), rtol, atol, op);
  const c10::cuda::CUDAGuard device_guard(Q.device());
  const auto stream = c10::cuda::getCurrentCUDAStream();

  const Tensor Q3 = Q.reshape({-1, n, n}), gQ3 = as_batched(gQ, n, n);
  const Tensor L2 = L.reshape({-1, n}).contiguous();
  const Tensor gL2 = gL ? gL->reshape({-1, n}).contiguous() : Tensor();
  const int64_t B = L2.size(0);
  Tensor gA = at::empty({B, n, n}, Q.options()), gauge = at::empty({B, 3}, L.options());
  if (B > 0) {
    AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(Q.scalar_type(), "safesvd_eigh_backward_cuda", [&] {
      using R = kernels::real_of_t<scalar_t>;
      const int64_t scratch = kernels::eigh_pack_size(n) + kernels::eigh_backward_workspace(n);
      const Launch launch = launch_for(B, scratch * static_cast<int64_t>(sizeof(scalar_t)));
      kernels::with_dims(n, n, [&](auto dims) {
        eigh_backward_fused_kernel<scalar_t><<<launch.grid, launch.block, launch.shared, stream>>>(
            dims, B, batched_ref<scalar_t>(Q3), batched_ref<scalar_t>(gQ3), L2.const_data_ptr<R>(),
            vector_or_null<R>(gL2), guard, R(rt), R(at_), gA.data_ptr<scalar_t>(), gauge.data_ptr<R>(), scratch);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
    });
  }
  auto gauge_shape = batch_shape(Q);
  gauge_shape.push_back(3);
  return {gA.view(Q.sizes()), gauge.view(gauge_shape)};
}

Tensor svd_fn_backward_cuda(const Tensor& G, const Tensor& U, const Tensor& S, const Tensor& Vh,
                            const Tensor& fS, const Tensor& dfS, c10::optional<double> rtol,
                            c10::optional<double> atol) {
  const char* op = "safesvd._svd_fn_backward";
  check_fn_args(G, U, S, Vh, fS, dfS, op);
  const int64_t m = U.size(-2), n = Vh.size(-1), k = S.size(-1);
  if (k == 0 || std::max(m, n) > kFusedMaxDimCUDA)
    return svd_fn_backward_composite(G, U, S, Vh, fS, dfS, rtol, atol);
  const auto [rt, at_] = resolve_tolerances(S.scalar_type(), rtol, atol, op, kDividedDifferencePower);
  const c10::cuda::CUDAGuard device_guard(U.device());
  const auto stream = c10::cuda::getCurrentCUDAStream();
  const Tensor U3 = U.reshape({-1, m, k}), Vh3 = Vh.reshape({-1, k, n}), G3 = G.reshape({-1, m, n});
  const Tensor S2 = S.reshape({-1, k}).contiguous(), f2 = fS.reshape({-1, k}).contiguous(),
               df2 = dfS.reshape({-1, k}).contiguous();
  const int64_t B = S2.size(0);
  Tensor gA = at::empty({B, m, n}, U.options());
  if (B > 0) {
    AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(U.scalar_type(), "safesvd_svd_fn_backward_cuda", [&] {
      using R = kernels::real_of_t<scalar_t>;
      const int64_t scratch = kernels::svd_pack_size(m, n, k) + m * n + kernels::svd_fn_workspace(m, n, k);
      const Launch launch = launch_for(B, scratch * static_cast<int64_t>(sizeof(scalar_t)));
      kernels::with_dims(m, n, [&](auto dims) {
        svd_fn_backward_fused_kernel<scalar_t><<<launch.grid, launch.block, launch.shared, stream>>>(
            dims, B, batched_ref<scalar_t>(U3), batched_ref<scalar_t>(Vh3), batched_ref<scalar_t>(G3),
            S2.const_data_ptr<R>(), f2.const_data_ptr<R>(), df2.const_data_ptr<R>(), R(rt), R(at_),
            gA.data_ptr<scalar_t>(), scratch);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
    });
  }
  return gA.view(G.sizes());
}

Tensor eigh_fn_backward_cuda(const Tensor& G, const Tensor& L, const Tensor& Q, const Tensor& fL,
                             const Tensor& dfL, c10::optional<double> rtol, c10::optional<double> atol) {
  const char* op = "safesvd._eigh_fn_backward";
  check_fn_args(G, Q, L, Q.mH(), fL, dfL, op);
  const int64_t n = L.size(-1);
  if (n == 0 || n > kFusedMaxDimCUDA) return eigh_fn_backward_composite(G, L, Q, fL, dfL, rtol, atol);
  const auto [rt, at_] = resolve_tolerances(L.scalar_type(), rtol, atol, op, kDividedDifferencePower);
  const c10::cuda::CUDAGuard device_guard(Q.device());
  const auto stream = c10::cuda::getCurrentCUDAStream();
  const Tensor Q3 = Q.reshape({-1, n, n}), G3 = G.reshape({-1, n, n});
  const Tensor L2 = L.reshape({-1, n}).contiguous(), f2 = fL.reshape({-1, n}).contiguous(),
               df2 = dfL.reshape({-1, n}).contiguous();
  const int64_t B = L2.size(0);
  Tensor gA = at::empty({B, n, n}, Q.options());
  if (B > 0) {
    AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(Q.scalar_type(), "safesvd_eigh_fn_backward_cuda", [&] {
      using R = kernels::real_of_t<scalar_t>;
      const int64_t scratch = kernels::eigh_pack_size(n) + kernels::eigh_fn_workspace(n);
      const Launch launch = launch_for(B, scratch * static_cast<int64_t>(sizeof(scalar_t)));
      kernels::with_dims(n, n, [&](auto dims) {
        eigh_fn_backward_fused_kernel<scalar_t><<<launch.grid, launch.block, launch.shared, stream>>>(
            dims, B, batched_ref<scalar_t>(Q3), batched_ref<scalar_t>(G3), L2.const_data_ptr<R>(),
            f2.const_data_ptr<R>(), df2.const_data_ptr<R>(), R(rt), R(at_), gA.data_ptr<scalar_t>(), scratch);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
    });
  }
  return gA.view(G.sizes());
}

}  // namespace

TORCH_LIBRARY_IMPL(safesvd, CUDA, m) {
  m.impl("svd", &svd_forward);
  m.impl("eigh", &eigh_forward);
  m.impl("svd_fn", &svd_fn_forward);
  m.impl("eigh_fn", &eigh_fn_forward);
  m.impl("_svd_backward", &svd_backward_cuda);
  m.impl("_eigh_backward", &eigh_backward_cuda);
  m.impl("_svd_fn_backward", &svd_fn_backward_cuda);
  m.impl("_eigh_fn_backward", &eigh_fn_backward_cuda);
}

}  // namespace safesvd

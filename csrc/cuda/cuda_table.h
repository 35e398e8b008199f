// The CUDA dispatch table, written once for the GPU (csrc/cuda/cuda.cu) and the
// CUDA emulation (tests/emulation/emulated_cuda.cpp): every entry of
// csrc/aten/entries.h over the per-thread runner, with the svd / eigh backward
// of real input routed to the band kernels of backward_bands.cuh
// (docs/cuda_backward.md). A Runner here also has
//
//   template <class F> static void launch(const c10::Device&, int64_t count, const F& f);
//
// which calls f(stream, count) under the device's guard.
#pragma once

#include "../aten/entries.h"
#include "backward_bands.cuh"
#include "runner.cuh"

namespace safesvd {
namespace cuda_table {

// The band of a real (B, m, n) backward (0: none; complex input has none).
inline int band_of(const Tensor& like, int64_t m, int64_t n) {
  return like.is_complex() ? 0 : kernels::cuda::backward_band(m, n);
}

// Fused on CUDA: the bands, and the generic per-thread kernel up to kFusedMaxDim
// (complex input, real rectangular 5..8); batched BLAS above.
inline bool backward_fused(const Tensor& like, int64_t m, int64_t n) {
  return band_of(like, m, n) != 0 || std::max(m, n) <= kernels::cuda::kFusedMaxDim;
}

// A (B, k) vector read as (B, 1, k).
template <typename T>
kernels::BatchedRef<T> vector_ref(const Tensor& t) {
  if (!t.defined()) return {nullptr, 0, 0, 0};
  return {t.const_data_ptr<T>(), t.stride(0), 0, t.stride(1)};
}

template <bool SVD, typename Runner, typename T>
void launch_band(int band, int64_t m, int64_t n, kernels::cuda::BandArgs<T> args, const c10::Device& device) {
  namespace kc = kernels::cuda;
  Runner::launch(device, args.count, [&](cudaStream_t stream, int64_t count) {
    args.count = count;
    if (band == 1)
      kc::with_registers_shape(m, n, [&](auto M, auto N) {
        // eigh is square: no kernels for the other shapes.
        if constexpr (SVD || decltype(M)::value == decltype(N)::value)
          kc::launch_registers_band<SVD, decltype(M)::value, decltype(N)::value, T>(args, stream);
      });
    else
      kc::with_team_capacity(n, [&](auto NC) {
        kc::launch_team_band<SVD, decltype(NC)::value, T>(args, static_cast<int>(n), stream);
      });
  });
}

template <typename Runner>
void svd_backward(const SvdBackwardArgs& a, Tensor& gA, Tensor& gauge) {
  const int band = band_of(a.U, a.m, a.n);
  const int64_t B = a.S.size(0);
  if (band == 0 || B == 0) return entries::svd_backward_fused<Runner>(a, gA, gauge);
  AT_DISPATCH_FLOATING_TYPES(a.U.scalar_type(), "safesvd_svd_backward_cuda", [&] {
    using T = scalar_t;
    const kernels::cuda::BandArgs<T> args{entries::batched_ref<T>(a.U), entries::batched_ref<T>(a.Vh),
                                          entries::batched_ref<T>(a.gU), entries::batched_ref<T>(a.gVh),
                                          vector_ref<T>(a.S), vector_ref<T>(a.gS), a.guard.params<T>(),
                                          gA.mutable_data_ptr<T>(), gauge.mutable_data_ptr<T>(), B};
    launch_band<true, Runner>(band, a.m, a.n, args, a.U.device());
  });
}

template <typename Runner>
void eigh_backward(const EighBackwardArgs& a, Tensor& gA, Tensor& gauge) {
  const int band = band_of(a.Q, a.n, a.n);
  const int64_t B = a.L.size(0);
  if (band == 0 || B == 0) return entries::eigh_backward_fused<Runner>(a, gA, gauge);
  AT_DISPATCH_FLOATING_TYPES(a.Q.scalar_type(), "safesvd_eigh_backward_cuda", [&] {
    using T = scalar_t;
    const kernels::BatchedRef<T> none{nullptr, 0, 0, 0};
    const kernels::cuda::BandArgs<T> args{entries::batched_ref<T>(a.Q), none, entries::batched_ref<T>(a.gQ), none,
                                          vector_ref<T>(a.L), vector_ref<T>(a.gL), a.guard.params<T>(),
                                          gA.mutable_data_ptr<T>(), gauge.mutable_data_ptr<T>(), B};
    launch_band<false, Runner>(band, a.n, a.n, args, a.Q.device());
  });
}

// The table: make_device_kernels' entries and the engine one matrix per thread,
// the svd / eigh backward by band.
template <typename Runner>
DeviceKernels make_cuda_kernels() {
  DeviceKernels k = make_device_kernels<Runner, /*jacobi_per_thread=*/true>(kernels::cuda::kFusedMaxDim);
  k.backward_fused = &backward_fused;
  k.svd_backward_fused = &svd_backward<Runner>;
  k.eigh_backward_fused = &eigh_backward<Runner>;
  return k;
}

}  // namespace cuda_table
}  // namespace safesvd

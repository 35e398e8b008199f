// The CUDA dispatch table, written once for the GPU (csrc/cuda/cuda.cpp) and the
// CUDA emulation (tests/emulation/emulated_cuda.cpp): host glue that calls only the
// launchers of launch.h, whose kernels the units of csrc/cuda/inst/ instantiate
// (csrc/manifest.txt). The svd / eigh backward of real input runs the band kernels
// (docs/cuda_backward.md); the generic per-thread kernel takes the rest up to
// kFusedMaxDim, compiled only for the shapes no band takes.
//
// A device supplies a Launch:
//
//   struct Launch {
//     template <class F> static void launch(const c10::Device&, int64_t count, const F& f);
//   };
//
// which calls f(stream, count) under the device's guard (the emulation: on the CPU).
#pragma once

#include "../aten/entries.h"
#include "launch.h"

namespace safesvd {
namespace cuda_table {

namespace kc = kernels::cuda;

// The Runner of entries.h over a Launch: every Op runs through OpsKernel<Op>.
template <class Launch>
struct OpsRunner {
  template <class Op>
  static void run(const Op& op, int64_t count, const c10::Device& device, int64_t) {
    Launch::launch(device, count, [&](cudaStream_t stream, int64_t c) { kc::OpsKernel<Op>::launch(op, c, stream); });
  }
};

// The band of a real (B, m, n) backward (0: none; complex input has none).
inline int band_of(const Tensor& like, int64_t m, int64_t n) {
  return like.is_complex() ? 0 : kc::backward_band(m, n);
}

// Fused on CUDA: the bands, and the generic per-thread kernel up to kFusedMaxDim
// (complex input, real rectangular 5..8); batched BLAS above.
inline bool backward_fused(const Tensor& like, int64_t m, int64_t n) {
  return band_of(like, m, n) != 0 || std::max(m, n) <= kc::kFusedMaxDim;
}

template <bool SVD, class Launch, typename T>
void launch_band(int band, int64_t m, int64_t n, kc::BandArgs<T> args, const c10::Device& device) {
  Launch::launch(device, args.count, [&](cudaStream_t stream, int64_t count) {
    args.count = count;
    if (band == 1)
      kc::with_registers_shape(m, n, [&](auto M, auto N) {
        if constexpr (SVD)
          kc::SvdRegistersBand<decltype(M)::value, decltype(N)::value, T>::launch(args, stream);
        else if constexpr (decltype(M)::value == decltype(N)::value)  // eigh is square
          kc::EighRegistersBand<decltype(N)::value, T>::launch(args, stream);
      });
    else
      kc::with_team_capacity(n, [&](auto NC) { kc::TeamBand<SVD, decltype(NC)::value, T>::launch(args, int(n), stream); });
  });
}

template <class Launch>
void svd_backward(const SvdBackwardArgs& a, Tensor& gA, Tensor& gauge) {
  const int64_t B = a.S.size(0);
  if (B == 0) return;
  const int band = band_of(a.U, a.m, a.n);
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(a.U.scalar_type(), "safesvd_svd_backward_cuda", [&] {
    using T = scalar_t;
    using entries::strided;
    if constexpr (kernels::IsComplex<T>::value) {
      kernels::with_dims(a.m, a.n, [&](auto dims) { entries::run_svd_backward<OpsRunner<Launch>, T>(a, dims, gA, gauge); });
    } else if (band == 0) {  // real rectangular with max(m, n) in 5..kFusedMaxDim
      entries::run_svd_backward<OpsRunner<Launch>, T>(a, kernels::RuntimeDims{a.m, a.n}, gA, gauge);
    } else {
      const kc::BandArgs<T> args{strided<T>(a.U), strided<T>(a.Vh), strided<T>(a.gU), strided<T>(a.gVh),
                                 strided<T>(a.S), strided<T>(a.gS), a.guard.params<T>(), gA.mutable_data_ptr<T>(),
                                 gauge.mutable_data_ptr<T>(), B};
      launch_band<true, Launch>(band, a.m, a.n, args, a.U.device());
    }
  });
}

template <class Launch>
void eigh_backward(const EighBackwardArgs& a, Tensor& gA, Tensor& gauge) {
  const int64_t B = a.L.size(0);
  if (B == 0) return;
  AT_DISPATCH_FLOATING_AND_COMPLEX_TYPES(a.Q.scalar_type(), "safesvd_eigh_backward_cuda", [&] {
    using T = scalar_t;
    using entries::strided;
    if constexpr (kernels::IsComplex<T>::value) {
      entries::with_fused_square_dims(a.n, "safesvd._eigh_backward", [&](auto dims) {
        entries::run_eigh_backward<OpsRunner<Launch>, T>(a, dims, gA, gauge);
      });
    } else {  // every fused real eigh is in a band (backward_fused)
      const int band = band_of(a.Q, a.n, a.n);
      TORCH_INTERNAL_ASSERT(band != 0, "safesvd._eigh_backward: no CUDA band for n = ", a.n);
      const kernels::BatchedRef<T> none{nullptr, 0, 0, 0};
      const kc::BandArgs<T> args{strided<T>(a.Q), none, strided<T>(a.gQ), none, strided<T>(a.L), strided<T>(a.gL),
                                 a.guard.params<T>(), gA.mutable_data_ptr<T>(), gauge.mutable_data_ptr<T>(), B};
      launch_band<false, Launch>(band, a.n, a.n, args, a.Q.device());
    }
  });
}

// The table: the shared entries, the svd / eigh backward by band, and (builds with
// SAFESVD_CUDA_JACOBI, and the emulation) the forward engine one matrix per thread.
template <class Launch>
DeviceKernels make_cuda_kernels() {
  DeviceKernels k = make_device_kernels<OpsRunner<Launch>>(kc::kFusedMaxDim);
  k.backward_fused = &backward_fused;
  k.svd_backward_fused = &svd_backward<Launch>;
  k.eigh_backward_fused = &eigh_backward<Launch>;
#ifdef SAFESVD_CUDA_JACOBI
  k.svd_jacobi = &entries::svd_jacobi<OpsRunner<Launch>>;
  k.eigh_jacobi = &entries::eigh_jacobi<OpsRunner<Launch>>;
#endif
  return k;
}

}  // namespace cuda_table
}  // namespace safesvd

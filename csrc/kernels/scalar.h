// Scalar and small-matrix helpers shared by every kernel: host+device, no ATen.
//
// Everything in csrc/kernels/ is plain templated C++ that compiles with a host
// compiler (csrc/cpu/), with nvcc (csrc/cuda/) and with the CUDA emulation of
// csrc/emulation/, so the math is written once and the CPU tests exercise the
// code the GPU runs (docs/architecture.md).
#pragma once

#include <c10/macros/Macros.h>
#include <c10/util/complex.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "strided.h"

namespace safesvd {
namespace kernels {

#ifndef SAFESVD_HD
#define SAFESVD_HD C10_HOST_DEVICE inline
#endif
// The small decisions the SIMD lane loops of the SoA backward call once per lane
// (guards.h: svd_J_entry, MatrixGuard::coefficient, ...): always inlined, else g++
// leaves a call per lane and the loop scalar (the 8x3 float32 backward 2x slower,
// docs/soa_backward.md).
#ifndef SAFESVD_HD_INLINE
#if defined(__CUDACC__)
#define SAFESVD_HD_INLINE __host__ __device__ __forceinline__
#elif defined(__GNUC__)
#define SAFESVD_HD_INLINE C10_HOST_DEVICE inline __attribute__((always_inline))
#else
#define SAFESVD_HD_INLINE C10_HOST_DEVICE inline
#endif
#endif

// Real and complex scalar helpers that work on host and device.
template <typename T> struct RealOf { using type = T; };
template <typename T> struct RealOf<c10::complex<T>> { using type = T; };
template <typename T> using real_of_t = typename RealOf<T>::type;

template <typename T> SAFESVD_HD T conj_of(T x) { return x; }
template <typename T> SAFESVD_HD c10::complex<T> conj_of(c10::complex<T> x) {
  return c10::complex<T>(x.real(), -x.imag());
}
template <typename T> SAFESVD_HD T real_part(T x) { return x; }
template <typename T> SAFESVD_HD T real_part(c10::complex<T> x) { return x.real(); }
template <typename T> SAFESVD_HD T imag_part(T) { return T(0); }
template <typename T> SAFESVD_HD T imag_part(c10::complex<T> x) { return x.imag(); }
template <typename T> SAFESVD_HD T abs_of(T x) { return x < T(0) ? -x : x; }
template <typename T> SAFESVD_HD T abs_of(c10::complex<T> x) {
  return ::hypot(x.real(), x.imag());
}
// i * y for complex scalars, 0 for real ones (the imaginary diagonal, or phase, term).
template <typename S> struct ImagUnit {
  template <typename R> SAFESVD_HD static S times(R) { return S(0); }
};
template <typename T> struct ImagUnit<c10::complex<T>> {
  template <typename R> SAFESVD_HD static c10::complex<T> times(R y) {
    return c10::complex<T>(T(0), T(y));
  }
};
template <typename T> struct IsComplex { static constexpr bool value = false; };
template <typename T> struct IsComplex<c10::complex<T>> { static constexpr bool value = true; };

template <typename R> SAFESVD_HD R max_of(R a, R b) { return a > b ? a : b; }
template <typename R> SAFESVD_HD R min_of(R a, R b) { return a < b ? a : b; }
template <typename R> SAFESVD_HD R epsilon_of() { return std::numeric_limits<R>::epsilon(); }

// Matrix sizes, either known at run time or fixed at compile time. The fixed
// form lets the compiler unroll every loop of a small matrix completely.
struct RuntimeDims {
  int64_t m_, n_;
  SAFESVD_HD int64_t m() const { return m_; }
  SAFESVD_HD int64_t n() const { return n_; }
  SAFESVD_HD int64_t k() const { return m_ < n_ ? m_ : n_; }
};
template <int64_t M, int64_t N>
struct FixedDims {
  SAFESVD_HD static constexpr int64_t m() { return M; }
  SAFESVD_HD static constexpr int64_t n() { return N; }
  SAFESVD_HD static constexpr int64_t k() { return M < N ? M : N; }
};

template <int64_t N>
using SquareDims = FixedDims<N, N>;

// The per-matrix kernels are compiled with fixed sizes for square n up to this;
// larger or rectangular matrices run them with RuntimeDims.
constexpr int64_t kMaxFixedDim = 8;

// Calls f(SquareDims<n>) for n in 1..kMaxFixedDim and returns true; false otherwise.
template <typename F>
inline bool with_square_dims(int64_t n, F&& f) {
  static_assert(kMaxFixedDim == 8, "a case for every fixed size");
  switch (n) {
    case 1: f(SquareDims<1>{}); return true;
    case 2: f(SquareDims<2>{}); return true;
    case 3: f(SquareDims<3>{}); return true;
    case 4: f(SquareDims<4>{}); return true;
    case 5: f(SquareDims<5>{}); return true;
    case 6: f(SquareDims<6>{}); return true;
    case 7: f(SquareDims<7>{}); return true;
    case 8: f(SquareDims<8>{}); return true;
    default: return false;
  }
}

// Calls f(dims) with SquareDims<n> for square n in 1..kMaxFixedDim, else RuntimeDims.
template <typename F>
inline void with_dims(int64_t m, int64_t n, F&& f) {
  if (m == n && with_square_dims(n, f)) return;
  f(RuntimeDims{m, n});
}

// max |x_i| over a strided vector.
template <typename R>
SAFESVD_HD R max_abs(const R* x, int64_t stride, int64_t k) {
  R mx = R(0);
  for (int64_t i = 0; i < k; ++i) mx = max_of(mx, abs_of(x[i * stride]));
  return mx;
}

}  // namespace kernels
}  // namespace safesvd

// Shared per-matrix building blocks: host+device, no ATen tensors.
//
// Everything in csrc/kernels/ is plain templated C++ that compiles both with a
// host compiler (the CPU loop in csrc/cpu/) and with nvcc (csrc/cuda/), so the
// math lives once and the CPU tests exercise the same code the GPU runs.
#pragma once

#include <c10/macros/Macros.h>
#include <c10/util/complex.h>

#include <cmath>
#include <cstdint>

namespace safesvd {
namespace kernels {

#define SAFESVD_HD C10_HOST_DEVICE inline

// How 1/x is guarded near x = 0 (design.md 3.1). The integer values are part of
// the op contract between the Python shim and the C++ kernels.
enum class Guard : int { Pinv = 0, Lorentz = 1, Clamp = 2, None = 3 };

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
// i * y for complex scalars; used only for the imaginary diagonal (phase) term.
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

// The guarded reciprocal g(x) of design.md 3.1.
//   pinv    : 1/x if |x| > tol else 0            (pseudo-inverse of the difference)
//   lorentz : x / (x^2 + tol^2)                    (smooth; written without squaring x)
//   clamp   : 1 / (sign(x) max(|x|, tol))          (seed 001; sign(0) taken as +1)
//   none    : 1/x                                  (PyTorch's own math, may be inf)
// With tol == 0 every guard except none is the pseudo-inverse, so that the
// result stays finite even when the whole spectrum is zero.
template <typename R>
SAFESVD_HD R guarded_reciprocal(R x, R tol, Guard guard) {
  const R ax = abs_of(x);
  if (guard == Guard::None) return R(1) / x;
  if (guard == Guard::Pinv || tol <= R(0)) return ax > tol ? R(1) / x : R(0);
  if (guard == Guard::Lorentz) {
    // x / (x^2 + tol^2), rearranged so that neither x^2 nor tol^2 is formed.
    if (ax > tol) {
      const R r = tol / x;
      return R(1) / (x * (R(1) + r * r));
    }
    const R r = x / tol;
    return r / (tol * (R(1) + r * r));
  }
  // Clamp.
  const R mag = ax > tol ? ax : tol;
  return x < R(0) ? R(-1) / mag : R(1) / mag;
}

// A strided matrix: element (i, j) at p[i * rs + j * cs]. The wrappers pass
// PyTorch strides through untouched, so LAPACK's column-major U and V^H are
// read in place without a contiguous copy.
template <typename T>
struct MatRef {
  T* p;
  int64_t rs, cs;
  SAFESVD_HD T& operator()(int64_t i, int64_t j) const { return p[i * rs + j * cs]; }
  SAFESVD_HD bool defined() const { return p != nullptr; }
};

// Gauge diagnostics of one matrix (design.md 3.4), written to three reals:
//   [0] residual: the largest basis-dependent part of the cotangent, relative
//       to the size of the projected cotangents (0 when the loss is gauge invariant)
//   [1], [2] the pair (i, j) where it was found; i == j for a phase (complex)
//       or a rank-deficient column; -1 when there is none.
template <typename R>
struct GaugeTracker {
  R residual = R(0);
  R scale = R(0);
  int64_t i = -1, j = -1;
  SAFESVD_HD void note(R value, int64_t pi, int64_t pj) {
    if (value > residual) { residual = value; i = pi; j = pj; }
  }
  SAFESVD_HD void write(R* out) const {
    out[0] = scale > R(0) ? residual / scale : R(0);
    out[1] = R(i);
    out[2] = R(j);
  }
};

// Matrix sizes, either known at run time or fixed at compile time. The fixed
// form lets the compiler unroll every loop of a small matrix completely, which
// is where the fused loop's speed comes from for n <= 8.
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

// Calls f(dims) with FixedDims<n, n> for square n in 1..8, else RuntimeDims.
template <typename F>
inline void with_dims(int64_t m, int64_t n, F&& f) {
  if (m == n) {
    switch (n) {
      case 1: return f(FixedDims<1, 1>{});
      case 2: return f(FixedDims<2, 2>{});
      case 3: return f(FixedDims<3, 3>{});
      case 4: return f(FixedDims<4, 4>{});
      case 5: return f(FixedDims<5, 5>{});
      case 6: return f(FixedDims<6, 6>{});
      case 7: return f(FixedDims<7, 7>{});
      case 8: return f(FixedDims<8, 8>{});
      default: break;
    }
  }
  f(RuntimeDims{m, n});
}

// tol = max(atol, rtol * max|x|) over a vector (design.md 3.1, 3.2).
template <typename R>
SAFESVD_HD R spectrum_tolerance(const R* x, int64_t stride, int64_t k, R rtol, R atol) {
  R mx = R(0);
  for (int64_t i = 0; i < k; ++i) mx = max_of(mx, abs_of(x[i * stride]));
  return max_of(atol, rtol * mx);
}

}  // namespace kernels
}  // namespace safesvd

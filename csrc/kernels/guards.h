// The one home of every decision about dividing by a difference of singular
// values or eigenvalues (docs/math.md, "Guards", "The signal rule", "Scaling",
// "Divided differences"): guard names, default tolerances, the tolerance
// formula, the gauge threshold, and the guarded quotients and divided
// differences that every backward path (fused loop, batched path, CUDA
// kernels, differentiable composite, forward mode) evaluates. Host+device.
//
// Adding a guard: a value in `Guard`, its name in `kGuardNames`, and its cases
// in MatrixGuard::coefficient and MatrixGuard::slope. Nothing else.
#pragma once

#include <cstring>

#include "scalar.h"

namespace safesvd {
namespace kernels {

// ------------------------------------------------------------------ guards

// How 1/x is guarded near x = 0 (docs/math.md, "Guards").
enum class Guard : int { Pinv = 0, Lorentz = 1, Clamp = 2, None = 3 };
constexpr int kGuardCount = 4;
// The names users pass, indexed by Guard.
constexpr const char* kGuardNames[kGuardCount] = {"pinv", "lorentz", "clamp", "none"};

// The guard called `name`, or -1 (host only; the caller reports the error).
inline int find_guard(const char* name, size_t length) {
  for (int g = 0; g < kGuardCount; ++g)
    if (std::strlen(kGuardNames[g]) == length && std::strncmp(kGuardNames[g], name, length) == 0) return g;
  return -1;
}

// ----------------------------------------------------- defaults (host only)

// rtol defaults to eps(dtype)^power: eps^(3/4) for the guards of the svd/eigh
// backward; eps^(1/3) for the divided differences of matrix functions, where
// the quotient loses eps/rtol to cancellation and the average that replaces it
// errs by rtol^2 (docs/math.md, "Divided differences").
constexpr double kGuardRtolPower = 0.75;
constexpr double kDividedDifferenceRtolPower = 1.0 / 3.0;

// The signal rule (docs/math.md, "The signal rule"). Inside the guard
// tolerance, pinv still divides a pair when the quotient is determined by the
// data: its numerator is above rounding, kNumeratorNoise * eps * c for
// cotangents of size c, and below sqrt(eps) c, and its gap is above the
// rounding of computed singular values, kGapFloor * eps * sqrt(m + n) relative
// to the largest. Measured on exactly repeated singular values of random
// rotations (n = 2..32, float32 and float64): numerators of basis-independent
// losses stay below 2.2 eps * c, computed gaps below 15 eps (n = 32) and 7 eps
// (n <= 16) relative: both constants leave a margin of 2 or more.
constexpr double kNumeratorNoise = 4.0;
constexpr double kGapFloor = 4.0;

inline double default_rtol(double eps, double power) { return std::pow(eps, power); }

// A loss whose basis-dependent residual, relative to its cotangent, exceeds
// this is basis dependent (GaugeWarning). A basis-independent loss leaves a
// residual of rounding size, or of the relative gap of a nearly degenerate
// pair (at most about rtol): stay well above both.
inline double gauge_threshold(double eps, double rtol) {
  return std::fmax(std::sqrt(eps), 10.0 * rtol);
}

// ----------------------------------------------------------------- scaling

// frexp's exponent of a finite m > 0 (m = f 2^e, f in [0.5, 1)) and 2^k for k in the
// normal range, from the bits: the same values as ::frexp / ::ldexp, without a libm
// call per matrix (in the SoA backward's lane loops they were 13% of the 2x2 float64
// svd backward; docs/soa_backward.md).
template <typename R>
struct FloatBits;
template <>
struct FloatBits<double> {
  using U = uint64_t;
  static constexpr int kMantissa = 52, kBias = 1023;
};
template <>
struct FloatBits<float> {
  using U = uint32_t;
  static constexpr int kMantissa = 23, kBias = 127;
};
template <typename R>
SAFESVD_HD_INLINE R pow2_of(int k) {
  using B = FloatBits<R>;
  const typename B::U u = typename B::U(k + B::kBias) << B::kMantissa;
  R x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}
template <typename R>
SAFESVD_HD_INLINE int frexp_exponent(R m) {
  using B = FloatBits<R>;
  int shift = 0;
  if (m < std::numeric_limits<R>::min()) {  // subnormal: scale into the normal range (exact)
    m *= pow2_of<R>(B::kMantissa + 2);
    shift = B::kMantissa + 2;
  }
  typename B::U u;
  std::memcpy(&u, &m, sizeof u);
  return int(u >> B::kMantissa) - (B::kBias - 1) - shift;  // m > 0: the sign bit is clear
}

// x -> x * 2^-e for the spectrum's maximum m = f 2^e (f in [0.5, 1)), as two
// exact power-of-two multiplications, so that spectra of any finite size,
// subnormal included, are compared and divided in units where the largest
// value is about 1 (docs/math.md, "Scaling"). The identity for m = 0.
template <typename R>
struct SpectrumScale {
  R f1 = R(1), f2 = R(1);
  template <typename T>
  SAFESVD_HD_INLINE T operator()(T x) const { return (x * f1) * f2; }
  SAFESVD_HD static SpectrumScale from_max(R m) {
    SpectrumScale s;
    if (!(m > R(0)) || !(m <= std::numeric_limits<R>::max())) return s;
    const int e = frexp_exponent(m);
    const int e1 = -e / 2, e2 = -e - e1;  // |e1|, |e2| <= 538: inside the normal range
    s.f1 = pow2_of<R>(e1);
    s.f2 = pow2_of<R>(e2);
    return s;
  }
};

// ---------------------------------------------------------- per-call params

// Resolved once per call on the host (csrc/aten/guards.cpp) and passed to kernels.
template <typename R>
struct GuardParams {
  Guard guard;
  R rtol, atol;        // tol = max(atol, rtol * max|spectrum|)
  R eps;               // machine epsilon of the dtype
};

// ---------------------------------------------------------- per-matrix guard

// The guard of one matrix, in the scaled units of its spectrum. A quotient
// x / d (x a numerator built from the cotangents, d a difference or sum of
// singular values) is computed as scale(x) * coefficient(scale(d), |x|).
template <typename R>
struct MatrixGuard {
  Guard guard;
  SpectrumScale<R> scale;
  R tol;    // scaled guard tolerance
  R floor;  // scaled gap below which a difference is rounding (signal rule)
  R noise;  // numerator rounding level, in numerator units
  R cap;    // numerator above which the quotient is not divided (sqrt(eps) c), numerator units

  SAFESVD_HD_INLINE bool inside(R d) const { return abs_of(d) <= tol; }

  // g(d) of docs/math.md for a scaled difference d and the numerator size |x|.
  SAFESVD_HD_INLINE R coefficient(R d, R xabs) const {
    const R ad = abs_of(d);
    const R inv = R(1) / d;  // may be inf; only selected where d != 0
    switch (guard) {
      case Guard::None:
        return inv;
      case Guard::Lorentz:
        if (tol > R(0)) {
          // d / (d^2 + tol^2), arranged so that neither square is formed.
          const R r = ad > tol ? tol / d : d / tol;
          return ad > tol ? R(1) / (d * (R(1) + r * r)) : r / (tol * (R(1) + r * r));
        }
        return ad > R(0) ? inv : R(0);
      case Guard::Clamp:
        if (tol > R(0)) {
          const R mag = ad > tol ? ad : tol;  // 1 / (sign(d) max(|d|, tol)), sign(0) = +1
          return d < R(0) ? R(-1) / mag : R(1) / mag;
        }
        return ad > R(0) ? inv : R(0);
      case Guard::Pinv:
      default: {
        const bool signal = ad > floor && xabs > noise && xabs <= cap;
        return (ad > tol || signal) ? inv : R(0);
      }
    }
  }

  // d coefficient / d d, for the differentiable composite (second order).
  SAFESVD_HD R slope(R d, R xabs) const {
    const R ad = abs_of(d);
    const R c = coefficient(d, xabs);
    switch (guard) {
      case Guard::Lorentz:
        if (tol > R(0)) {
          const R q = d * d + tol * tol;
          return (tol - ad) * (tol + ad) / q / q;
        }
        return -c * c;
      case Guard::Clamp:
        return (ad > tol || !(tol > R(0))) ? -c * c : R(0);
      case Guard::None:
      case Guard::Pinv:
      default:
        return -c * c;
    }
  }
};

// A MatrixGuard as kGuardParamCount reals, [f1, f2, tol, floor, noise, cap], for
// the guards as tensors (the `_guard_params` operator).
constexpr int kGuardParamCount = 6;

// `cotangent_scale` is the size of the cotangents the numerators come from
// (max|gU| + max|gVh|, or max|gQ|); `dims` is m + n.
template <typename R>
SAFESVD_HD MatrixGuard<R> matrix_guard(const GuardParams<R>& p, R spectrum_max, R cotangent_scale,
                                       int64_t dims) {
  MatrixGuard<R> g;
  g.guard = p.guard;
  g.scale = SpectrumScale<R>::from_max(spectrum_max);
  const R top = g.scale(spectrum_max);
  g.tol = max_of(g.scale(p.atol), p.rtol * top);
  g.floor = R(kGapFloor) * p.eps * ::sqrt(R(dims)) * top;
  g.noise = R(kNumeratorNoise) * p.eps * cotangent_scale;
  // The cap is the dtype's, not the gauge threshold (which grows with a user's rtol):
  // a user who widens rtol asks for more pairs to be guarded, not divided.
  g.cap = ::sqrt(p.eps) * cotangent_scale;
  return g;
}

// ------------------------------------------------------------ gauge check

// Gauge diagnostics of one matrix (docs/math.md, "Gauge check"), written to three reals:
//   [0] residual: the largest basis-dependent part of the cotangent, relative
//       to the size of the cotangents (0 when the loss is gauge invariant)
//   [1], [2] the pair (i, j) where it was found; i == j for a phase (complex)
//       or a zero singular value's free vector; -1 when there is none.
template <typename R>
struct GaugeTracker {
  R residual = R(0);
  R scale = R(0);
  int64_t i = -1, j = -1;
  SAFESVD_HD_INLINE void note(R value, int64_t pi, int64_t pj) {
    if (value > residual) {
      residual = value;
      i = pi;
      j = pj;
    }
  }
  SAFESVD_HD void write(R* out) const {
    out[0] = scale > R(0) ? residual / scale : R(0);
    out[1] = R(i);
    out[2] = R(j);
  }
};

// ------------------------------------- matrix functions at their domain's edge

// sqrtm, invsqrtm, logm (docs/math.md, "sqrtm at zero eigenvalues"): eigenvalues down
// to -sqrt(eps) max|L| are rounding of a semidefinite matrix (clamped to 0 by sqrtm);
// sqrt's derivatives are taken at max(L, eps max|L|), so that every divided difference
// is bounded by 1 / sqrt(eps max|L|).
inline double semidefinite_tolerance(double eps) { return std::sqrt(eps); }
inline double sqrt_derivative_floor(double eps) { return eps; }

// ------------------------------------------- the J entries of the backward

// J_ij (i != j) of docs/math.md from the numerators a = skew(U^H gU)_ij, b =
// skew(V^H gV)_ij and the scaled singular values si, sj, with its gauge notes:
//
//   J_ij = 1/2 [(a + b) g(S_j - S_i) + (a - b) g(S_j + S_i)],
//
// |a + b| noted where S_j - S_i is inside the tolerance (a degenerate pair), |a - b|
// where S_j + S_i is (a doubly-zero pair). The one written form of this decision: the
// per-matrix kernel (svd_build_J of svd_backward.h), the SIMD tiles (soa_backward.h)
// and the CUDA team band (csrc/cuda/backward_bands.cuh) all call it, so they agree bit
// for bit where they are compiled alike.
template <typename scalar_t, typename R>
SAFESVD_HD_INLINE scalar_t svd_J_entry(const MatrixGuard<R>& mg, scalar_t a, scalar_t b, R si, R sj,
                                GaugeTracker<R>& gauge, int64_t i, int64_t j) {
  const R dm = sj - si, dp = sj + si;
  const scalar_t apb = a + b, amb = a - b;
  const R napb = abs_of(apb), namb = abs_of(amb);
  const scalar_t J = R(0.5) * (mg.scale(apb) * mg.coefficient(dm, napb) + mg.scale(amb) * mg.coefficient(dp, namb));
  if (mg.inside(dm)) gauge.note(napb, i, j);
  if (mg.inside(dp)) gauge.note(namb, i, j);
  return J;
}

// J_ij (i != j) of the eigh backward, a g(L_j - L_i) for the numerator a = 1/2
// skew(Q^H gQ)_ij and the scaled difference d = L_j - L_i, with its gauge note (|a|
// where d is inside the tolerance). The one written form of this decision, shared by
// eigh_build_J (eigh_backward.h), the SIMD tiles and the CUDA team band (see svd_J_entry).
template <typename scalar_t, typename R>
SAFESVD_HD_INLINE scalar_t eigh_J_entry(const MatrixGuard<R>& mg, scalar_t a, R d, GaugeTracker<R>& gauge, int64_t i,
                                 int64_t j) {
  const R na = abs_of(a);
  const scalar_t J = mg.scale(a) * mg.coefficient(d, na);
  if (mg.inside(d)) gauge.note(na, i, j);
  return J;
}

// ------------------------------------------------------ divided differences

// Divided differences of f over a spectrum (docs/math.md, "Divided
// differences"), for the matrix functions. Two values are merged (the
// quotient replaced by the average of the derivatives) when they are equal
// relative to themselves, |x_i - x_j| <= rtol max(|x_i|, |x_j|), or within the
// rounding floor max(atol, eps max|x|): never relative to the largest value of
// the matrix, which would merge small distinct eigenvalues of ill-conditioned
// input.
template <typename R>
struct DividedDifferences {
  SpectrumScale<R> scale;
  R rtol;
  R floor;  // scaled

  SAFESVD_HD bool merged(R xi, R xj) const {
    const R a = scale(xi), b = scale(xj);
    return abs_of(a - b) <= max_of(rtol * max_of(abs_of(a), abs_of(b)), floor);
  }
  // f[x_i, x_j]
  SAFESVD_HD R first(R xi, R xj, R fi, R fj, R dfi, R dfj) const {
    return merged(xi, xj) ? R(0.5) * (dfi + dfj) : (fi - fj) / (xi - xj);
  }
  // (f_i + f_j) / (x_i + x_j) for singular values (x >= 0): merged when both vanish.
  SAFESVD_HD R plus(R xi, R xj, R fi, R fj, R dfi, R dfj) const {
    return scale(xi) + scale(xj) <= floor ? R(0.5) * (dfi + dfj) : (fi + fj) / (xi + xj);
  }
  // f[x_0, x_1, x_2], symmetric in its arguments: the outer values of the
  // sorted triple decide between the quotient of first differences and the
  // average of second derivatives (all three merged).
  SAFESVD_HD R second(R x0, R x1, R x2, R f0, R f1, R f2, R d0, R d1, R d2, R s0, R s1,
                      R s2) const {
    // Sort by value, carrying (f, df) along; the average of d2f is symmetric.
    auto swap_if = [](R& xa, R& fa, R& da, R& xb, R& fb, R& db) {
      if (xb < xa) {
        R t = xa; xa = xb; xb = t;
        t = fa; fa = fb; fb = t;
        t = da; da = db; db = t;
      }
    };
    swap_if(x0, f0, d0, x1, f1, d1);
    swap_if(x1, f1, d1, x2, f2, d2);
    swap_if(x0, f0, d0, x1, f1, d1);
    if (merged(x0, x2)) return (s0 + s1 + s2) / R(6);
    return (first(x0, x1, f0, f1, d0, d1) - first(x1, x2, f1, f2, d1, d2)) / (x0 - x2);
  }
};

template <typename R>
SAFESVD_HD DividedDifferences<R> divided_differences(R rtol, R atol, R spectrum_max) {
  DividedDifferences<R> d;
  d.scale = SpectrumScale<R>::from_max(spectrum_max);
  d.rtol = rtol;
  d.floor = max_of(d.scale(atol), epsilon_of<R>() * d.scale(spectrum_max));
  return d;
}

}  // namespace kernels
}  // namespace safesvd

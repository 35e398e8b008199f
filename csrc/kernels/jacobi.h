// Batched small-matrix Jacobi kernels: one-sided (Hestenes) SVD and two-sided
// cyclic Jacobi eigh for real float/double, n = 2..16, written so that one
// matrix is one SIMD lane on the CPU and one thread on CUDA (docs/jacobi.md).
//
// Layout (structure of arrays): element e (row-major index i*cols + j) of lane l
// is at p[e * ld + l], lanes l = 0 .. W-1, ld >= W. On the CPU W = 8/16 (float)
// or 4/8 (double) with ld = W; on CUDA W = 1 with ld = threads per block (shared
// memory tile) or ld = 1 (thread-private arrays).
//
// Every per-lane decision is a select: a lane that has converged keeps applying
// identity rotations (c = 1, s = 0), so lanes never diverge; the only branches
// are uniform over the tile (skip work no lane needs, stop when all converged).
//
// Host+device, header-only: no ATen, no exceptions, no heap, no recursion.
//
// Build notes (CPU):
//  * -fno-math-errno is needed for g++ to vectorize sqrt (otherwise every sqrt
//    is a scalar call guarded for errno and the lane loops stay scalar).
//  * -mavx2 -mfma (or -march=haswell) for the measured speed; the code also
//    compiles for baseline x86-64 (SSE2, no FMA), where it is 1.6-3.3x
//    slower (docs/jacobi.md has numbers).
//
// max_sweeps: 30 is ample (at most 13 rotating sweeps + 1 were observed, at
// n = 16 float64 on ill-conditioned input; typical is 3-7).
//  * -fopenmp or -fopenmp-simd is not required: without _OPENMP the lane loops
//    carry `GCC ivdep` instead of `omp simd`.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

// Same meaning as csrc/kernels/scalar.h's SAFESVD_HD (this header does not include
// c10, so that the per-ISA CPU variants see no inline library code). If that header came first
// we use its definition; otherwise we define it here and undefine it again at
// the end of this file, so that a later common.h does not see a redefinition.
#ifndef SAFESVD_HD
#if defined(__CUDACC__)
#define SAFESVD_HD __host__ __device__ inline
#else
#define SAFESVD_HD inline
#endif
#define SAFESVD_JACOBI_OWNS_HD
#endif

// Lane loops: contiguous lanes, independent iterations.
#if defined(__CUDACC__)
#define SAFESVD_JAC_SIMD
#define SAFESVD_JAC_UNROLL
#elif defined(_OPENMP)
#define SAFESVD_JAC_SIMD _Pragma("omp simd")
#define SAFESVD_JAC_UNROLL _Pragma("GCC unroll 16")
#elif defined(__clang__)
#define SAFESVD_JAC_SIMD _Pragma("clang loop vectorize(enable)")
#define SAFESVD_JAC_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define SAFESVD_JAC_SIMD _Pragma("GCC ivdep")
#define SAFESVD_JAC_UNROLL _Pragma("GCC unroll 16")
#else
#define SAFESVD_JAC_SIMD
#define SAFESVD_JAC_UNROLL
#endif

#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__) && !defined(__NO_MATH_ERRNO__) && \
    !defined(SAFESVD_JACOBI_QUIET)
#pragma message("safesvd/jacobi.h: compile with -fno-math-errno, or the lane loops do not vectorize")
#endif

namespace safesvd {
namespace kernels {
namespace jacobi_detail {

// ---------------------------------------------------------------------------
// Scalar traits: constants as literals (no constexpr host calls from device).
template <typename T> struct Tr;
template <> struct Tr<float> {
  using I = int32_t;   // lane mask type, same width as T
  using B = uint32_t;  // bit pattern
  static constexpr int kMant = 23;
  static constexpr int kBias = 127;
  static constexpr int kExpClamp = 126;  // 2^-126 .. 2^126: both scale and inverse normal
  SAFESVD_HD static constexpr float eps() { return 1.1920928955078125e-07f; }      // 2^-23
  SAFESVD_HD static constexpr float max_finite() { return 3.4028234663852886e+38f; }
  SAFESVD_HD static constexpr float min_normal() { return 1.1754943508222875e-38f; }
};
template <> struct Tr<double> {
  using I = int64_t;
  using B = uint64_t;
  static constexpr int kMant = 52;
  static constexpr int kBias = 1023;
  static constexpr int kExpClamp = 1022;
  SAFESVD_HD static constexpr double eps() { return 2.220446049250313e-16; }        // 2^-52
  SAFESVD_HD static constexpr double max_finite() { return 1.7976931348623157e+308; }
  SAFESVD_HD static constexpr double min_normal() { return 2.2250738585072014e-308; }
};

// Math wrappers: the float overloads must not silently go through double.
SAFESVD_HD float jsqrt(float x) { return sqrtf(x); }
SAFESVD_HD double jsqrt(double x) { return sqrt(x); }
SAFESVD_HD float jabs(float x) { return fabsf(x); }
SAFESVD_HD double jabs(double x) { return fabs(x); }
// Fused multiply-add where the hardware has it; a*b + c otherwise (without
// hardware FMA, fmaf/fma are correctly rounded software routines, ~20x slower;
// nothing here needs the single rounding).
#if defined(__CUDA_ARCH__) || defined(__FMA__) || defined(__FP_FAST_FMA) || defined(__aarch64__)
SAFESVD_HD float jfma(float a, float b, float c) { return fmaf(a, b, c); }
SAFESVD_HD double jfma(double a, double b, double c) { return fma(a, b, c); }
#else
SAFESVD_HD float jfma(float a, float b, float c) { return a * b + c; }
SAFESVD_HD double jfma(double a, double b, double c) { return a * b + c; }
#endif

// 1/x where c, else 0; c must imply x != 0, x finite. Written as arithmetic on
// m = c ? 1 : 0 (exact) rather than as c ? 1/x : 0 or 1/(c ? x : 1): g++
// folds both of those into a branch around the division, which under the
// default -ftrapping-math blocks if-conversion and the lane loop's
// vectorization.
template <typename T> SAFESVD_HD T recip_where(bool c, T x) {
  const T m = c ? T(1) : T(0);
  const T den = jfma(x, m, T(1) - m);  // c ? x : 1
  return (T(1) / den) * m;
}

// Bit casts (no <cstring>): CUDA intrinsics on the device, __builtin_memcpy on
// gcc/clang hosts, a union elsewhere.
SAFESVD_HD uint32_t to_bits(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#elif defined(__GNUC__) || defined(__clang__)
  uint32_t u;
  __builtin_memcpy(&u, &x, sizeof u);
  return u;
#else
  union { float f; uint32_t u; } v;
  v.f = x;
  return v.u;
#endif
}
SAFESVD_HD uint64_t to_bits(double x) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint64_t>(__double_as_longlong(x));
#elif defined(__GNUC__) || defined(__clang__)
  uint64_t u;
  __builtin_memcpy(&u, &x, sizeof u);
  return u;
#else
  union { double f; uint64_t u; } v;
  v.f = x;
  return v.u;
#endif
}
template <typename T> SAFESVD_HD T from_bits(typename Tr<T>::B b);
template <> SAFESVD_HD float from_bits<float>(uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(b);
#elif defined(__GNUC__) || defined(__clang__)
  float f;
  __builtin_memcpy(&f, &b, sizeof f);
  return f;
#else
  union { float f; uint32_t u; } v;
  v.u = b;
  return v.f;
#endif
}
template <> SAFESVD_HD double from_bits<double>(uint64_t b) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(b));
#elif defined(__GNUC__) || defined(__clang__)
  double f;
  __builtin_memcpy(&f, &b, sizeof f);
  return f;
#else
  union { double f; uint64_t u; } v;
  v.u = b;
  return v.f;
#endif
}

template <typename T> SAFESVD_HD T quiet_nan() { return from_bits<T>(~typename Tr<T>::B(0)); }

// ---------------------------------------------------------------------------
// Power-of-two scaling of each lane so that max|a_ij| lies in [1, 2):
//   A <- A * 2^-k, inv = 2^k (exact, k clamped to +-kExpClamp so that both
//   factors are normal). ok[l] = 0 for a lane with a non-finite entry; its A is
//   zeroed so that the iteration runs harmlessly, and outputs become NaN.
template <int E, int W, typename T>
SAFESVD_HD void scale_tile(T* A, int64_t ld, T* inv, typename Tr<T>::I* ok) {
  using I = typename Tr<T>::I;
  using B = typename Tr<T>::B;
  T amax[W];
  SAFESVD_JAC_SIMD
  for (int l = 0; l < W; ++l) {
    amax[l] = T(0);
    ok[l] = I(1);
  }
  for (int e = 0; e < E; ++e) {
    SAFESVD_JAC_SIMD
    for (int l = 0; l < W; ++l) {
      const T a = jabs(A[e * ld + l]);
      amax[l] = a > amax[l] ? a : amax[l];
      ok[l] &= I(a <= Tr<T>::max_finite());  // false for +-inf and NaN
    }
  }
  T scale[W];
  SAFESVD_JAC_SIMD
  for (int l = 0; l < W; ++l) {
    const T lo = from_bits<T>(B(Tr<T>::kBias - Tr<T>::kExpClamp) << Tr<T>::kMant);
    const T hi = from_bits<T>(B(Tr<T>::kBias + Tr<T>::kExpClamp) << Tr<T>::kMant);
    T m = amax[l] < lo ? lo : amax[l];
    m = m > hi ? hi : m;
    const B be = to_bits(m) >> Tr<T>::kMant;  // biased exponent (sign is 0)
    const B bias = B(Tr<T>::kBias);
    scale[l] = from_bits<T>((bias + bias - be) << Tr<T>::kMant);
    inv[l] = from_bits<T>(be << Tr<T>::kMant);
  }
  for (int e = 0; e < E; ++e) {
    SAFESVD_JAC_SIMD
    for (int l = 0; l < W; ++l) {
      // Select first, then multiply: no arithmetic inside a conditional (see
      // rotation() on if-conversion).
      const T a = ok[l] ? A[e * ld + l] : T(0);
      A[e * ld + l] = a * scale[l];
    }
  }
}

// Jacobi rotation that diagonalizes the symmetric 2x2 [[app, apq], [apq, aqq]]
// with Rutishauser's smaller angle, t = sign(zeta) / (|zeta| + sqrt(1 +
// zeta^2)), zeta = (aqq - app) / (2 apq), written without the zeta division:
//   d = aqq - app, h = sqrt(d^2 + 4 apq^2), t = sign(d) 2 apq / (|d| + h),
// so |t| <= 1; then c = 1/sqrt(1 + t^2), s = t c, and tau = s / (1 + c) =
// t / (1 + sqrt(1 + t^2)) for the update form x - s (y + tau x), whose rounding
// error is proportional to |s| (small in the late sweeps) instead of to 1. With
// den = |d| + h and q = sqrt(den^2 + 4 apq^2) = den sqrt(1 + t^2), s = sign(d) 2 apq / q
// and tau = sign(d) 2 apq / (den + q): no division waits for t (the chain is sqrt, sqrt,
// divide instead of sqrt, divide, sqrt, divide: the engine 5-17% faster; docs/jacobi.md).
// rot == false gives exactly t = s = tau = 0 (identity). Callers rotate only
// when |apq| > eps^2 (scaled units, entries < 2), so apq^2 and d^2 are normal
// and far from overflow.
// Every select here is between already computed values or is arithmetic with
// m = 0/1 (exact for finite input): a select that g++ can turn into a branch
// around a multiply, divide or sqrt blocks if-conversion (sqrt calls, and any
// trapping operation under the default -ftrapping-math), and with it the
// vectorization of the whole lane loop.
template <typename T>
SAFESVD_HD void rotation(T app, T aqq, T apq, bool rot, T& s, T& t, T& tau) {
  const T m = rot ? T(1) : T(0);
  const T d = aqq - app;
  const T g2 = (apq + apq) * m;
  const T h = jsqrt(jfma(d, d, g2 * g2));
  const T den = (jabs(d) + h) + (T(1) - m);  // > 0: >= |2 apq| if rot, >= 1 if not
  const T q = jsqrt(jfma(den, den, g2 * g2));  // den / c
  const T sg = d < T(0) ? -g2 : g2;
  t = sg / den;
  s = sg / q;
  tau = sg / (den + q);  // tan(theta/2) = s / (1 + c)
}

// Convergence tolerances (relative): one-sided |a_p.a_q| <= tol ||a_p|| ||a_q||,
// two-sided |a_pq| <= tol sqrt(|a_pp a_qq|). The computed dot product a_p.a_q
// carries rounding of typically sqrt(M) eps/2 (at most M eps/2) relative to
// ||a_p|| ||a_q||, so the one-sided tolerance is 2 ceil(sqrt(M)) eps; the
// two-sided rotation sets a_pq to exactly 0, so eps is reachable there.
SAFESVD_HD constexpr int jac_isqrt_ceil(int m) { return m <= 1 ? 1 : m <= 4 ? 2 : m <= 9 ? 3 : m <= 16 ? 4 : m <= 25 ? 5 : m <= 36 ? 6 : m <= 49 ? 7 : 8; }
template <typename T, int M> SAFESVD_HD constexpr T svd_tol() { return T(2 * jac_isqrt_ceil(M)) * Tr<T>::eps(); }
template <typename T, int N> SAFESVD_HD constexpr T eigh_tol() { return Tr<T>::eps(); }

// Gram-Schmidt (two passes) of column j of the M x C row-major lane matrix Q
// against columns 0..j-1 (assumed orthonormal), then normalization. Returns in
// nrm[l] the norm after projection (before normalization).
template <int M, int C, int W, typename T>
SAFESVD_HD void gs_column(T* Q, int64_t ld, int j, T* nrm) {
  for (int pass = 0; pass < 2; ++pass) {
    for (int k = 0; k < j; ++k) {
      T d[W];
      SAFESVD_JAC_SIMD
      for (int l = 0; l < W; ++l) {
        T acc = T(0);
        SAFESVD_JAC_UNROLL
        for (int i = 0; i < M; ++i) acc = jfma(Q[(i * C + k) * ld + l], Q[(i * C + j) * ld + l], acc);
        d[l] = acc;
      }
      SAFESVD_JAC_SIMD
      for (int l = 0; l < W; ++l) {
        SAFESVD_JAC_UNROLL
        for (int i = 0; i < M; ++i)
          Q[(i * C + j) * ld + l] = jfma(-d[l], Q[(i * C + k) * ld + l], Q[(i * C + j) * ld + l]);
      }
    }
  }
  SAFESVD_JAC_SIMD
  for (int l = 0; l < W; ++l) {
    T acc = T(0);
    SAFESVD_JAC_UNROLL
    for (int i = 0; i < M; ++i) acc = jfma(Q[(i * C + j) * ld + l], Q[(i * C + j) * ld + l], acc);
    nrm[l] = jsqrt(acc);
  }
}

// Column j of the M x C lane matrix Q is replaced, in the lanes where need[l],
// by a unit vector orthogonal to columns 0..j-1: the unit vector e_k with the
// largest component outside their span (1 - sum_{c<j} Q[k][c]^2 >= 1 - j/M > 0),
// Gram-Schmidt-ed twice. tmp: M*W scratch.
template <int M, int C, int W, typename T>
SAFESVD_HD void complete_column(T* Q, int64_t ld, int j, const typename Tr<T>::I* need, T* tmp) {
  // Pick e_k: the row with the smallest squared norm within columns 0..j-1.
  T best[W];
  int idx[W];
  SAFESVD_JAC_SIMD
  for (int l = 0; l < W; ++l) {
    best[l] = T(4);
    idx[l] = 0;
  }
  for (int k = 0; k < M; ++k) {
    T w[W];
    SAFESVD_JAC_SIMD
    for (int l = 0; l < W; ++l) w[l] = T(0);
    for (int c = 0; c < j; ++c) {
      SAFESVD_JAC_SIMD
      for (int l = 0; l < W; ++l) w[l] = jfma(Q[(k * C + c) * ld + l], Q[(k * C + c) * ld + l], w[l]);
    }
    SAFESVD_JAC_SIMD
    for (int l = 0; l < W; ++l) {
      const bool b = w[l] < best[l];
      best[l] = b ? w[l] : best[l];
      idx[l] = b ? k : idx[l];
    }
  }
  // Save the current column, write e_k into it, orthogonalize, merge.
  for (int i = 0; i < M; ++i) {
    SAFESVD_JAC_SIMD
    for (int l = 0; l < W; ++l) {
      tmp[i * W + l] = Q[(i * C + j) * ld + l];
      Q[(i * C + j) * ld + l] = idx[l] == i ? T(1) : T(0);
    }
  }
  T nrm[W], rn[W], mk[W];
  gs_column<M, C, W, T>(Q, ld, j, nrm);
  SAFESVD_JAC_SIMD
  for (int l = 0; l < W; ++l) {
    rn[l] = recip_where(nrm[l] > T(0), nrm[l]);
    mk[l] = need[l] ? T(1) : T(0);
  }
  for (int i = 0; i < M; ++i) {
    SAFESVD_JAC_SIMD
    for (int l = 0; l < W; ++l) {
      // need ? e : old, as exact arithmetic (both finite).
      const T e = Q[(i * C + j) * ld + l] * rn[l];
      Q[(i * C + j) * ld + l] = jfma(e, mk[l], tmp[i * W + l] * (T(1) - mk[l]));
    }
  }
}

template <int W, typename I> SAFESVD_HD int any_lane(const I* m) {
  I a = I(0);
  for (int l = 0; l < W; ++l) a |= m[l];
  return a != I(0);
}

// Apply the rotation to columns p, q of the R x C lane matrix X:
//   x_p <- c x_p - s x_q = x_p - s (x_q + tau x_p),
//   x_q <- s x_p + c x_q = x_q + s (x_p - tau x_q).
template <int R, int C, int W, typename T>
SAFESVD_HD void rotate_columns(T* X, int64_t ld, int p, int q, const T* s, const T* tau) {
  SAFESVD_JAC_SIMD
  for (int l = 0; l < W; ++l) {
    SAFESVD_JAC_UNROLL
    for (int i = 0; i < R; ++i) {
      const T xp = X[(i * C + p) * ld + l];
      const T xq = X[(i * C + q) * ld + l];
      X[(i * C + p) * ld + l] = jfma(-s[l], jfma(tau[l], xp, xq), xp);
      X[(i * C + q) * ld + l] = jfma(s[l], jfma(-tau[l], xq, xp), xq);
    }
  }
}

// Swap columns j and j+1 of the R x C lane matrix X in the lanes where sw[l].
template <int R, int C, int W, typename T>
SAFESVD_HD void swap_columns(T* X, int64_t ld, int j, const typename Tr<T>::I* sw) {
  SAFESVD_JAC_SIMD
  for (int l = 0; l < W; ++l) {
    SAFESVD_JAC_UNROLL
    for (int i = 0; i < R; ++i) {
      const T a = X[(i * C + j) * ld + l];
      const T b = X[(i * C + j + 1) * ld + l];
      X[(i * C + j) * ld + l] = sw[l] ? b : a;
      X[(i * C + j + 1) * ld + l] = sw[l] ? a : b;
    }
  }
}

template <int N, int W, typename T>
SAFESVD_HD void set_identity(T* X, int64_t ld) {
  for (int e = 0; e < N * N; ++e) {
    const T v = (e % (N + 1) == 0) ? T(1) : T(0);
    SAFESVD_JAC_SIMD
    for (int l = 0; l < W; ++l) X[e * ld + l] = v;
  }
}

template <int E, int W, typename T>
SAFESVD_HD void nan_bad_lanes(T* X, int64_t ld, const typename Tr<T>::I* ok) {
  for (int e = 0; e < E; ++e) {
    SAFESVD_JAC_SIMD
    for (int l = 0; l < W; ++l) X[e * ld + l] = ok[l] ? X[e * ld + l] : quiet_nan<T>();  // values only
  }
}

// One (p, q) step of one-sided Jacobi on the M x N lane matrix A, accumulating
// into V. Returns whether any lane rotated; rotated[l] |= that lane rotated.
template <int M, int N, int W, bool kForce, typename T>
SAFESVD_HD int svd_pair(T* A, T* V, int64_t ld, int p, int q, typename Tr<T>::I* rotated) {
  using I = typename Tr<T>::I;
  constexpr T tol = svd_tol<T, M>();
  constexpr T floor_abs = Tr<T>::eps() * Tr<T>::eps();
  T s[W], tau[W];
  I r[W];
  SAFESVD_JAC_SIMD
  for (int l = 0; l < W; ++l) {
    T al = T(0), be = T(0), ga = T(0);
    SAFESVD_JAC_UNROLL
    for (int i = 0; i < M; ++i) {
      const T ap = A[(i * N + p) * ld + l];
      const T aq = A[(i * N + q) * ld + l];
      al = jfma(ap, ap, al);
      be = jfma(aq, aq, be);
      ga = jfma(ap, aq, ga);
    }
    // rot: |gamma| > tol sqrt(alpha beta) and |gamma| > eps^2 (absolute, in the
    // scaled units where max|a_ij| is in [1, 2)). The absolute floor stops the
    // otherwise linear (factor eps per sweep, down to underflow) convergence of a
    // rounding-noise column that is parallel to a large one (exactly rank-
    // deficient input); skipping such a pair moves the singular values by
    // O(eps^2) ||A||. It also keeps gamma^2 and alpha*beta normal.
    const bool rot = (jabs(ga) > floor_abs) & (kForce | (ga * ga > (tol * tol) * (al * be)));
    T t;
    rotation(al, be, ga, rot, s[l], t, tau[l]);
    r[l] = I(rot);
  }
  // Skip the update when no lane rotates (measured: always applying the
  // identity rotations is slower at every size, despite the mispredictions).
  if (!any_lane<W>(r)) return 0;
  rotate_columns<M, N, W, T>(A, ld, p, q, s, tau);
  rotate_columns<N, N, W, T>(V, ld, p, q, s, tau);
  for (int l = 0; l < W; ++l) rotated[l] |= r[l];
  return 1;
}

// One (p, q) step of two-sided Jacobi on the full symmetric N x N lane matrix A.
template <int N, int W, bool kForce, typename T>
SAFESVD_HD int eigh_pair(T* A, T* Q, int64_t ld, int p, int q, typename Tr<T>::I* rotated) {
  using I = typename Tr<T>::I;
  constexpr T tol = eigh_tol<T, N>();
  constexpr T floor_abs = Tr<T>::eps() * Tr<T>::eps();  // relative to max|a_ij| in [1, 2)
  T s[W], t[W], tau[W], app[W], aqq[W], apq[W];
  I r[W];
  SAFESVD_JAC_SIMD
  for (int l = 0; l < W; ++l) {
    const T xpp = A[(p * N + p) * ld + l];
    const T xqq = A[(q * N + q) * ld + l];
    const T xpq = A[(p * N + q) * ld + l];
    const bool rot = (jabs(xpq) > floor_abs) & (kForce | (xpq * xpq > (tol * tol) * jabs(xpp * xqq)));
    rotation(xpp, xqq, xpq, rot, s[l], t[l], tau[l]);
    app[l] = xpp;
    aqq[l] = xqq;
    apq[l] = xpq;
    r[l] = I(rot);
  }
  if (!any_lane<W>(r)) return 0;
  // Only the upper triangle is read and updated (element (i, j), i <= j):
  // a_kp <- c a_kp - s a_kq, a_kq <- s a_kp + c a_kq for every k; k = p, q
  // write garbage into the 2x2 block (p,p), (p,q), (q,q), which is then set.
  SAFESVD_JAC_UNROLL
  for (int k = 0; k < N; ++k) {
    const int64_t ep = (k < p ? k * N + p : p * N + k) * ld;
    const int64_t eq = (k < q ? k * N + q : q * N + k) * ld;
    SAFESVD_JAC_SIMD
    for (int l = 0; l < W; ++l) {
      const T akp = A[ep + l];
      const T akq = A[eq + l];
      A[ep + l] = jfma(-s[l], jfma(tau[l], akp, akq), akp);
      A[eq + l] = jfma(s[l], jfma(-tau[l], akq, akp), akq);
    }
  }
  SAFESVD_JAC_SIMD
  for (int l = 0; l < W; ++l) {
    const bool rot = r[l] != I(0);
    A[(p * N + p) * ld + l] = jfma(-t[l], apq[l], app[l]);
    A[(q * N + q) * ld + l] = jfma(t[l], apq[l], aqq[l]);
    A[(p * N + q) * ld + l] = rot ? T(0) : apq[l];
  }
  rotate_columns<N, N, W, T>(Q, ld, p, q, s, tau);
  for (int l = 0; l < W; ++l) rotated[l] |= r[l];
  return 1;
}

}  // namespace jacobi_detail

// ---------------------------------------------------------------------------
// SVD of W matrices of size M x N with M >= N (the caller loads A^T for wide
// input). A: M*N elements (destroyed). Outputs: S: N values per lane,
// descending, >= 0; U: M x (FULL ? M : N), orthonormal columns (completed to an
// orthonormal basis where singular values are zero, and for the extra M-N
// columns when FULL); V: N x N orthogonal (V, not V^T).
// info[l]: 0 = converged, 1 = not converged within max_sweeps (outputs
// unspecified), 2 = non-finite input (outputs NaN).
// sweeps (optional, diagnostics): per lane, the number of sweeps in which the
// lane still rotated (the tile ran max over lanes + 1 sweeps).
template <int M, int N, bool FULL, int W, typename T>
SAFESVD_HD void jacobi_svd_tile(T* A, T* U, T* S, T* V, int64_t ld, int* info, int max_sweeps,
                                int* sweeps = nullptr) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value, "real float/double only");
  static_assert(N >= 1 && M >= N && M <= 64, "M >= N >= 1");
  static_assert(W >= 1, "W >= 1");
  using namespace jacobi_detail;
  using I = typename Tr<T>::I;
  constexpr int UC = FULL ? M : N;

  T inv[W];
  I ok[W], rot_sweep[W], nsweep[W];
  scale_tile<M * N, W, T>(A, ld, inv, ok);
  set_identity<N, W, T>(V, ld);
  for (int l = 0; l < W; ++l) {
    rot_sweep[l] = I(N > 2);  // max_sweeps <= 0: not verified converged, info 1
    nsweep[l] = I(0);
  }

  if (N == 2) {
    // Closed form: one exact rotation makes the two columns orthogonal.
    svd_pair<M, N, W, true, T>(A, V, ld, 0, 1, nsweep);
  } else if (N > 2) {
    for (int sweep = 0; sweep < max_sweeps; ++sweep) {
      for (int l = 0; l < W; ++l) rot_sweep[l] = I(0);
      int any = 0;
      // Row-cyclic order. (A round-robin order, whose consecutive pairs are
      // independent, measured no faster: the pair step is throughput-bound.)
      for (int p = 0; p < N - 1; ++p)
        for (int q = p + 1; q < N; ++q) any |= svd_pair<M, N, W, false, T>(A, V, ld, p, q, rot_sweep);
      for (int l = 0; l < W; ++l) nsweep[l] += rot_sweep[l];
      if (!any) break;
    }
  }

  // Singular values = column norms.
  for (int j = 0; j < N; ++j) {
    SAFESVD_JAC_SIMD
    for (int l = 0; l < W; ++l) {
      T acc = T(0);
      SAFESVD_JAC_UNROLL
      for (int i = 0; i < M; ++i) acc = jfma(A[(i * N + j) * ld + l], A[(i * N + j) * ld + l], acc);
      S[j * ld + l] = jsqrt(acc);
    }
  }
  // Sort descending (odd-even transposition network), permuting A and V columns.
  for (int round = 0; round < N; ++round) {
    for (int j = round & 1; j + 1 < N; j += 2) {
      I sw[W];
      SAFESVD_JAC_SIMD
      for (int l = 0; l < W; ++l) sw[l] = I(S[j * ld + l] < S[(j + 1) * ld + l]);
      if (!any_lane<W>(sw)) continue;
      swap_columns<1, 1, W, T>(S, ld, j, sw);
      swap_columns<M, N, W, T>(A, ld, j, sw);
      swap_columns<N, N, W, T>(V, ld, j, sw);
    }
  }
  // U: a_j / s_j, Gram-Schmidt twice in descending order; columns that are
  // (numerically) zero, and the FULL extra columns, completed to a basis.
  T tmp[M * W];
  for (int j = 0; j < UC; ++j) {
    if (j < N) {
      SAFESVD_JAC_SIMD
      for (int l = 0; l < W; ++l) {
        const T sj = S[j * ld + l];
        const T rs = recip_where(sj >= Tr<T>::min_normal(), sj);
        SAFESVD_JAC_UNROLL
        for (int i = 0; i < M; ++i) U[(i * UC + j) * ld + l] = A[(i * N + j) * ld + l] * rs;
      }
    } else {
      for (int i = 0; i < M; ++i) {
        SAFESVD_JAC_SIMD
        for (int l = 0; l < W; ++l) U[(i * UC + j) * ld + l] = T(0);
      }
    }
    T nrm[W];
    gs_column<M, UC, W, T>(U, ld, j, nrm);
    I need[W];
    SAFESVD_JAC_SIMD
    for (int l = 0; l < W; ++l) {
      const bool good = nrm[l] > T(0.25);
      need[l] = I(!good);
      const T rn = recip_where(good, nrm[l]);
      SAFESVD_JAC_UNROLL
      for (int i = 0; i < M; ++i) U[(i * UC + j) * ld + l] *= rn;
    }
    if (any_lane<W>(need)) complete_column<M, UC, W, T>(U, ld, j, need, tmp);
  }
  // Undo the scaling, NaN for non-finite input, info.
  for (int j = 0; j < N; ++j) {
    SAFESVD_JAC_SIMD
    for (int l = 0; l < W; ++l) S[j * ld + l] = (ok[l] ? S[j * ld + l] : quiet_nan<T>()) * inv[l];
  }
  nan_bad_lanes<M * UC, W, T>(U, ld, ok);
  nan_bad_lanes<N * N, W, T>(V, ld, ok);
  for (int l = 0; l < W; ++l) {
    info[l] = !ok[l] ? 2 : (rot_sweep[l] ? 1 : 0);
    if (sweeps) sweeps[l] = int(nsweep[l]);
  }
}

// Symmetric eigendecomposition of W matrices N x N. A: full symmetric N*N
// (destroyed; the caller mirrors the UPLO triangle). Only the upper triangle
// (i <= j) is read, so a caller may also load just that triangle of the N*N
// layout; the strict lower triangle is ignored (also when not symmetric). L: N values ascending;
// Q: N x N, column j the eigenvector of L[j]. info, sweeps as above.
template <int N, int W, typename T>
SAFESVD_HD void jacobi_eigh_tile(T* A, T* L, T* Q, int64_t ld, int* info, int max_sweeps, int* sweeps = nullptr) {
  static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value, "real float/double only");
  static_assert(N >= 1 && N <= 64, "N >= 1");
  static_assert(W >= 1, "W >= 1");
  using namespace jacobi_detail;
  using I = typename Tr<T>::I;

  T inv[W];
  I ok[W], rot_sweep[W], nsweep[W];
  scale_tile<N * N, W, T>(A, ld, inv, ok);
  set_identity<N, W, T>(Q, ld);
  for (int l = 0; l < W; ++l) {
    rot_sweep[l] = I(N > 2);  // max_sweeps <= 0: not verified converged, info 1
    nsweep[l] = I(0);
  }

  if (N == 2) {
    eigh_pair<N, W, true, T>(A, Q, ld, 0, 1, nsweep);  // exact: a_pq <- 0
  } else if (N > 2) {
    for (int sweep = 0; sweep < max_sweeps; ++sweep) {
      for (int l = 0; l < W; ++l) rot_sweep[l] = I(0);
      int any = 0;
      for (int p = 0; p < N - 1; ++p)
        for (int q = p + 1; q < N; ++q) any |= eigh_pair<N, W, false, T>(A, Q, ld, p, q, rot_sweep);
      for (int l = 0; l < W; ++l) nsweep[l] += rot_sweep[l];
      if (!any) break;
    }
  }

  for (int j = 0; j < N; ++j) {
    SAFESVD_JAC_SIMD
    for (int l = 0; l < W; ++l) L[j * ld + l] = A[(j * N + j) * ld + l];
  }
  for (int round = 0; round < N; ++round) {
    for (int j = round & 1; j + 1 < N; j += 2) {
      I sw[W];
      SAFESVD_JAC_SIMD
      for (int l = 0; l < W; ++l) sw[l] = I(L[j * ld + l] > L[(j + 1) * ld + l]);
      if (!any_lane<W>(sw)) continue;
      swap_columns<1, 1, W, T>(L, ld, j, sw);
      swap_columns<N, N, W, T>(Q, ld, j, sw);
    }
  }
  for (int j = 0; j < N; ++j) {
    SAFESVD_JAC_SIMD
    for (int l = 0; l < W; ++l) L[j * ld + l] = (ok[l] ? L[j * ld + l] : quiet_nan<T>()) * inv[l];
  }
  nan_bad_lanes<N * N, W, T>(Q, ld, ok);
  for (int l = 0; l < W; ++l) {
    info[l] = !ok[l] ? 2 : (rot_sweep[l] ? 1 : 0);
    if (sweeps) sweeps[l] = int(nsweep[l]);
  }
}

}  // namespace kernels
}  // namespace safesvd

#undef SAFESVD_JAC_SIMD
#undef SAFESVD_JAC_UNROLL
#ifdef SAFESVD_JACOBI_OWNS_HD
#undef SAFESVD_HD
#undef SAFESVD_JACOBI_OWNS_HD
#endif

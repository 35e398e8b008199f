// The small-matrix forward engine over a batch (docs/architecture.md, "Forward
// engine"): the shapes it serves and the batch descriptions. Plain C++
// (host+device), no ATen. The tile load/store templates are in jacobi_tiles.h.
#pragma once

#include <cstdint>

#include "strided.h"

namespace safesvd {
namespace kernels {

// The engine serves square n in 2..16 and rectangular input with both sides in
// 2..8 (wide input is decomposed as its transpose); anything else, and complex
// input, goes to LAPACK / cuSOLVER.
constexpr int64_t kJacobiMaxSquare = 16;
constexpr int64_t kJacobiMaxRectangular = 8;
constexpr int kJacobiMaxSweeps = 30;

inline bool jacobi_svd_supported(int64_t m, int64_t n) {
  const int64_t lo = m < n ? m : n, hi = m < n ? n : m;
  return lo >= 2 && (m == n ? hi <= kJacobiMaxSquare : hi <= kJacobiMaxRectangular);
}
inline bool jacobi_eigh_supported(int64_t n) { return n >= 2 && n <= kJacobiMaxSquare; }

// The engine's size bands: the CPU compiles each in units of its own (csrc/cpu/inst/),
// so that the build runs in parallel. A band holds every supported shape whose larger
// side is in [lo, hi].
namespace jacobi_bands {
struct small {
  static constexpr int lo = 2, hi = 8;
};
struct medium {
  static constexpr int lo = 9, hi = 16;
};
}  // namespace jacobi_bands

// Calls f(std::integral_constant-like Shape<M, N>) for M >= N (the tall
// orientation) among the supported shapes; returns false if none matches.
template <int M_, int N_>
struct Shape {
  static constexpr int M = M_, N = N_;
};

namespace jacobi_dispatch {
template <int M, int N, typename F>
bool rectangular(int64_t m, int64_t n, F& f) {
  if constexpr (N > M) {
    return false;
  } else {
    if (m == M && n == N) {
      f(Shape<M, N>{});
      return true;
    }
    if constexpr (N < M) return rectangular<M, N + 1>(m, n, f);
    else if constexpr (M < kJacobiMaxRectangular) return rectangular<M + 1, 2>(m, n, f);
    else return false;
  }
}
template <int N, typename F>
bool square(int64_t n, F& f) {
  if (n == N) {
    f(Shape<N, N>{});
    return true;
  }
  if constexpr (N < kJacobiMaxSquare) return square<N + 1>(n, f);
  else return false;
}
}  // namespace jacobi_dispatch

// m >= n: the tall orientation the kernels take.
template <typename F>
bool with_jacobi_svd_shape(int64_t m, int64_t n, F&& f) {
  if (m == n) return jacobi_dispatch::square<2>(n, f);
  if (m > kJacobiMaxRectangular || n < 2) return false;
  return jacobi_dispatch::rectangular<3, 2>(m, n, f);
}
template <typename F>
bool with_jacobi_eigh_shape(int64_t n, F&& f) {
  return jacobi_dispatch::square<2>(n, f);
}

// A batch for the engine: raw pointers and element strides, real T.
// SVD input A (B, m, n); outputs U (B, m, ucols), S (B, k), Vh (B, vrows, n),
// info (B); U, Vh (and eigh's Q) column-major in each matrix, S, L contiguous. `transpose` (m < n): the tiles hold A^T, and U / V swap on store.
template <typename T>
struct SvdBatch {
  BatchedRef<T> A;
  int64_t B, m, n;      // the shapes of A
  bool full;
  T *U, *S, *Vh;        // contiguous outputs
  int* info;            // contiguous (B)
};
template <typename T>
struct EighBatch {
  BatchedRef<T> A;
  int64_t B, n;
  bool lower;           // UPLO == "L": read the lower triangle
  T *L, *Q;
  int* info;
};

}  // namespace kernels
}  // namespace safesvd

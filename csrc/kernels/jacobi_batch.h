// The small-matrix forward engine over a batch (docs/architecture.md, "Forward
// engine"): the shapes it serves and the batch descriptions. Plain C++
// (host+device), no ATen. The tile load/store templates are in jacobi_tiles.h.
#pragma once

#include <cstdint>

#include "strided.h"

namespace safesvd {
namespace kernels {

// The engine serves square n in 2..16 (Jacobi, jacobi.h), square n in 17..64 on the CPU
// (the mid-size engine: tridiag_eigh.h, mid_svd.h), rectangular input with both sides in
// 2..8 (one-sided Jacobi on the matrix itself), and tall or wide input with the short
// side in 2..16 through QR (tall_svd.h; thin U, Vh only), while the tile of W such
// matrices stays within kTallMaxElements per lane; wide input is decomposed as its
// transpose. Anything else, and complex input, goes to LAPACK / cuSOLVER.
constexpr int64_t kJacobiMaxSquare = 16;
constexpr int64_t kMidMaxDim = 64;  // the mid-size engine: square n in 17..64
constexpr int64_t kJacobiMaxRectangular = 8;
constexpr int64_t kTallMaxShort = 16;
constexpr int64_t kTallMaxElements = 16384;  // m * n: a tile of 16 float64 matrices is 2 MiB
constexpr int kJacobiMaxSweeps = 30;

// Whether (m, n) runs on the tall path (thin U, Vh only).
inline bool jacobi_svd_tall(int64_t m, int64_t n) {
  const int64_t lo = m < n ? m : n, hi = m < n ? n : m;
  return m != n && hi > kJacobiMaxRectangular && lo >= 2 && lo <= kTallMaxShort && m * n <= kTallMaxElements;
}
// `max_square`: the largest square n the device's engine takes (DeviceKernels).
inline bool jacobi_svd_supported(int64_t m, int64_t n, bool full_matrices, int64_t max_square) {
  const int64_t lo = m < n ? m : n, hi = m < n ? n : m;
  if (lo < 2) return false;
  if (m == n) return hi <= max_square;
  return hi <= kJacobiMaxRectangular || (!full_matrices && jacobi_svd_tall(m, n));
}
inline bool jacobi_eigh_supported(int64_t n, int64_t max_square) { return n >= 2 && n <= max_square; }

// float64 square matrices from n = 12 run on the mid-size engine (tridiag_eigh.h,
// mid_svd.h), not two- / one-sided Jacobi: measured per matrix, one thread, kernels alone
// (docs/jacobi.md, "Where the engines meet"), it is faster there on every instruction set:
// svd 12x12 3.3 vs 4.0 us (AVX-512), 5.3 vs 6.0 (AVX2), 9.4 vs 13.3 (baseline); 16x16
// 6.0 vs 9.9, 9.5 vs 13.1, 17.6 vs 32.3; eigh 16x16 3.2 vs 7.5 (AVX-512). float32 keeps
// Jacobi up to 16 (16 lanes a vector: Jacobi is as fast or faster below n = 16).
constexpr int64_t kMidFromDouble = 12;
inline bool mid_engine_square(int64_t m, int64_t n, bool is_double) {
  return m == n && n > kJacobiMaxSquare ? n <= kMidMaxDim : m == n && is_double && n >= kMidFromDouble;
}

// The engine's size bands: the CPU compiles each in units of its own (csrc/cpu/inst/),
// so that the build runs in parallel. A band holds every supported shape whose larger
// side is in [lo, hi] (square and both sides <= 8), or (tall) whose shorter side is.
namespace jacobi_bands {
struct small {
  static constexpr int lo = 2, hi = 8;
  static constexpr bool tall = false;
};
struct medium {
  static constexpr int lo = 9, hi = 16;
  static constexpr bool tall = false;
};
// The mid-size engine (tridiag_eigh.h, mid_svd.h), square n in [lo, hi] at run time.
struct mid {
  static constexpr int lo = 17, hi = 64;
  static constexpr bool tall = false;
};
// Tall and wide input through QR: the short side in [lo, hi], the long side at run time.
struct tall_small {
  static constexpr int lo = 2, hi = 8;
  static constexpr bool tall = true;
};
struct tall_medium {
  static constexpr int lo = 9, hi = 16;
  static constexpr bool tall = true;
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

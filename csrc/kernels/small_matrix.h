// Products and packing of small row-major matrices, host+device.
//
// The per-matrix kernels pack their inputs row-major and contiguous, so every
// product is written as row updates y[i, :] += s * x[l, :] with unit stride and
// independent lanes: this vectorizes on the CPU and avoids a dependent chain of
// additions. No memory is touched but the caller's buffers.
#pragma once

#include "scalar.h"

namespace safesvd {
namespace kernels {

// y[0:len] += s * x[0:len]
template <typename T>
SAFESVD_HD void axpy(int64_t len, T s, const T* __restrict__ x, T* __restrict__ y) {
  for (int64_t j = 0; j < len; ++j) y[j] += s * x[j];
}

// C (r x c) = A (r x p) * B (p x c), all row-major and contiguous.
template <typename T>
SAFESVD_HD void matmul_rows(int64_t r, int64_t p, int64_t c, const T* __restrict__ A,
                            const T* __restrict__ B, T* __restrict__ C) {
  for (int64_t i = 0; i < r; ++i) {
    T* Ci = C + i * c;
    for (int64_t j = 0; j < c; ++j) Ci[j] = T(0);
    for (int64_t l = 0; l < p; ++l) axpy(c, A[i * p + l], B + l * c, Ci);
  }
}

// C (r x c) = A^H * B with A (p x r), B (p x c).
template <typename T>
SAFESVD_HD void matmul_adjoint_rows(int64_t r, int64_t p, int64_t c, const T* __restrict__ A,
                                    const T* __restrict__ B, T* __restrict__ C) {
  for (int64_t i = 0; i < r * c; ++i) C[i] = T(0);
  for (int64_t l = 0; l < p; ++l)
    for (int64_t i = 0; i < r; ++i) axpy(c, conj_of(A[l * r + i]), B + l * c, C + i * c);
}

// Copy a strided r x c matrix into a row-major buffer, optionally conjugate-transposed
// (then `out` is c x r).
template <typename T>
SAFESVD_HD void pack_matrix(int64_t r, int64_t c, MatRef<const T> src, T* out, bool adjoint = false) {
  if (!adjoint) {
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < c; ++j) out[i * c + j] = src(i, j);
  } else {
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < c; ++j) out[j * r + i] = conj_of(src(i, j));
  }
}

// max |x| over a contiguous buffer.
template <typename T>
SAFESVD_HD real_of_t<T> max_abs_entry(int64_t len, const T* x) {
  real_of_t<T> mx(0);
  for (int64_t i = 0; i < len; ++i) mx = max_of(mx, abs_of(x[i]));
  return mx;
}

}  // namespace kernels
}  // namespace safesvd

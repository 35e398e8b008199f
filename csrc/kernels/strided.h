// The one strided view of the kernels (docs/architecture.md, "One home for each
// decision"): a matrix (MatRef) and a batch of matrices or vectors (BatchedRef),
// with PyTorch's strides passed through untouched, so LAPACK's column-major U and
// V^H, transposed and sliced tensors are read in place without a contiguous copy.
//
// Plain C++ without c10, so that every translation unit can include it first: the
// per-ISA CPU variants (csrc/cpu/isa/) include the kernels inside a namespace of
// their own and must see no inline library code (csrc/kernels/jacobi.h).
#pragma once

#include <cstdint>

// SAFESVD_HD as in scalar.h, without c10 (see jacobi.h); scalar.h keeps it.
#ifndef SAFESVD_HD
#if defined(__CUDACC__)
#define SAFESVD_HD __host__ __device__ inline
#else
#define SAFESVD_HD inline
#endif
#endif

namespace safesvd {
namespace kernels {

// A strided matrix: element (i, j) at p[i * rs + j * cs].
template <typename T>
struct MatRef {
  T* p;
  int64_t rs, cs;
  SAFESVD_HD T& operator()(int64_t i, int64_t j) const { return p[i * rs + j * cs]; }
  SAFESVD_HD bool defined() const { return p != nullptr; }
};

// A batch (B, r, c): element (i, j) of matrix b at p[b * sb + i * rs + j * cs]. A
// batch of vectors (B, k) is the batch of (1, k) rows: value i of vector b at
// p[b * sb + i * cs] (rs unused, 0). p is null when the tensor is absent (a
// cotangent nobody asked for).
template <typename T>
struct BatchedRef {
  const T* p;
  int64_t sb, rs, cs;
  SAFESVD_HD MatRef<const T> at(int64_t b) const { return {p ? p + b * sb : nullptr, rs, cs}; }
  // Vector b (value i at row(b)[i * cs]), or null when absent.
  SAFESVD_HD const T* row(int64_t b) const { return p ? p + b * sb : nullptr; }
  SAFESVD_HD bool defined() const { return p != nullptr; }
};

}  // namespace kernels
}  // namespace safesvd

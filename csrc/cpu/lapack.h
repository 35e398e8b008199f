// LAPACK's gesdd / syevd called directly for real float32 / float64 input: the routines
// torch.linalg.svd / eigh call on the CPU, with their workspace queries and layouts, so
// the results are torch's bit for bit, without torch's per-call extras (an info tensor
// and its error check, the column-major clone through the dispatcher): ~1.2 us of a
// 5-20 us call at B = 1 (docs/architecture.md, "LAPACK on the CPU").
#pragma once

#include <ATen/core/Tensor.h>

namespace safesvd::cpu {

using at::Tensor;

// A (..., m, n) real, any strides, not empty; U (..., m, ucols), S (..., k), Vh (..., vrows, n)
// as torch allocates them (matrices column-major, the batch contiguous: empty_column_major),
// written in place. false, with the outputs undefined, where the call does not apply
// (direct_lapack_applies, another layout of the outputs) or when LAPACK reports a failure
// (info != 0): the caller then runs torch's own function, which raises its error.
bool direct_svd(const Tensor& A, bool full_matrices, Tensor& U, Tensor& S, Tensor& Vh);

// A (..., n, n) real, the `upper` triangle read; L (..., n), Q (..., n, n) column-major.
// Same contract as direct_svd.
bool direct_eigh(const Tensor& A, bool upper, Tensor& L, Tensor& Q);

// Whether direct_svd / direct_eigh can take A (..., m, n) at all: real float32 / float64
// (no negative bit), not empty, the symbols present, the calls on.
bool direct_lapack_applies(const Tensor& A);

// 1 on (the default), 0 off (torch's functions: safesvd_testing_cpu_direct_lapack,
// csrc/testing.h); whether the symbols resolved is separate (direct_lapack_available).
int direct_lapack_mode(int mode);
bool direct_lapack_available();

}  // namespace safesvd::cpu

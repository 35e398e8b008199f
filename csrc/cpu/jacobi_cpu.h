// The CPU forward engine's ISA variants (docs/architecture.md, "Forward engine").
// Plain C++ (no ATen): the variant translation units in csrc/cpu/isa/ include
// only this, the C++ library and the kernels, so that code compiled for AVX2
// or AVX-512 can never be picked by the linker for another ISA.
#pragma once

#include <cstdint>

#include "../kernels/jacobi_batch.h"

namespace safesvd {
namespace cpu {

// Tiles of `width` matrices, one per SIMD lane; run tiles [t0, t1) of a batch.
struct JacobiIsa {
  const char* name;
  int width_float, width_double;
  void (*svd_float)(const kernels::SvdBatch<float>&, int64_t t0, int64_t t1);
  void (*svd_double)(const kernels::SvdBatch<double>&, int64_t t0, int64_t t1);
  void (*eigh_float)(const kernels::EighBatch<float>&, int64_t t0, int64_t t1);
  void (*eigh_double)(const kernels::EighBatch<double>&, int64_t t0, int64_t t1);
};

JacobiIsa jacobi_isa_baseline();
JacobiIsa jacobi_isa_avx2();
JacobiIsa jacobi_isa_avx512();

}  // namespace cpu
}  // namespace safesvd

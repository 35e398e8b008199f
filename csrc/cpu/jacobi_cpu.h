// The CPU forward engine's variants by instruction set and size band
// (docs/architecture.md, "Forward engine"). Plain C++ (no ATen): the variant
// translation units (csrc/cpu/inst/cpu_jacobi_<band>_<isa>.cpp, generated from
// csrc/manifest.txt) include only this, the C++ library and the kernels, so that
// code compiled for AVX2 or AVX-512 can never be picked by the linker for another ISA.
#pragma once

#include <cstdint>

#include "../kernels/jacobi_batch.h"

namespace safesvd {
namespace cpu {

// The engine's kernels for the shapes of one size band (kernels::jacobi_bands),
// compiled for one ISA: tiles of `width` matrices, one per SIMD
// lane; each function runs tiles [t0, t1) of a batch.
struct JacobiBand {
  int width_float, width_double;
  void (*svd_float)(const kernels::SvdBatch<float>&, int64_t t0, int64_t t1);
  void (*svd_double)(const kernels::SvdBatch<double>&, int64_t t0, int64_t t1);
  void (*eigh_float)(const kernels::EighBatch<float>&, int64_t t0, int64_t t1);
  void (*eigh_double)(const kernels::EighBatch<double>&, int64_t t0, int64_t t1);
};

// One per (band, ISA) unit.
JacobiBand jacobi_small_baseline();
JacobiBand jacobi_small_avx2();
JacobiBand jacobi_small_avx512();
JacobiBand jacobi_medium_baseline();
JacobiBand jacobi_medium_avx2();
JacobiBand jacobi_medium_avx512();
JacobiBand jacobi_mid_baseline();
JacobiBand jacobi_mid_avx2();
JacobiBand jacobi_mid_avx512();
JacobiBand jacobi_tall_small_baseline();
JacobiBand jacobi_tall_small_avx2();
JacobiBand jacobi_tall_small_avx512();
JacobiBand jacobi_tall_medium_baseline();
JacobiBand jacobi_tall_medium_avx2();
JacobiBand jacobi_tall_medium_avx512();

}  // namespace cpu
}  // namespace safesvd

// The CPU forward engine for AVX2 + FMA (Haswell and later, Zen): csrc/cpu/isa/jacobi_isa.inc compiled
// for that ISA. The C++ library is included before the target pragma, so none of
// its inline functions is compiled for a wider ISA (and then shared by the linker).
#include "jacobi_isa_prelude.h"
#if SAFESVD_ISA_PRAGMAS
#pragma GCC target("avx2,fma")
#endif
#define SAFESVD_ISA avx2
#define SAFESVD_ISA_NAME "avx2"
#define SAFESVD_ISA_WIDTH_FLOAT 16
#define SAFESVD_ISA_WIDTH_DOUBLE 8
#include "jacobi_isa.inc"

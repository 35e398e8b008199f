// The CPU's SoA backward for AVX2 + FMA (Haswell and later, Zen): csrc/cpu/isa/soa_isa.inc compiled
// for that ISA (docs/soa_backward.md). The C++ library is included before the target
// pragma, so none of its inline functions is compiled for a wider ISA.
#include "soa_isa_prelude.h"
#if SAFESVD_SOA_PRAGMAS
#pragma GCC target("avx2,fma")
#endif
#define SAFESVD_SOA_ISA avx2
#define SAFESVD_SOA_ISA_NAME "avx2"
#define SAFESVD_SOA_WIDTH_FLOAT 16
#define SAFESVD_SOA_WIDTH_DOUBLE 8
#include "soa_isa.inc"

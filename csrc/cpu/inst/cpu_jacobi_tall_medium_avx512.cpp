// Generated from csrc/manifest.txt by scripts/gen_units.py: do not edit.
// csrc/cpu/isa/jacobi_band.inc for the avx512 instruction set, size band tall_medium (docs/architecture.md, "Build").
// The C++ library is included before the target pragma (in the prelude), so none of its
// inline functions is compiled for a wider ISA and then shared by the linker.
#include "../isa/isa_prelude.h"
#if SAFESVD_ISA_PRAGMAS
#pragma GCC target("avx512f,avx512vl,avx512dq,avx2,fma")
#endif
#define SAFESVD_ISA avx512
#define SAFESVD_ISA_FMA 1
#define SAFESVD_ISA_WIDTH_FLOAT 16
#define SAFESVD_ISA_WIDTH_DOUBLE 8
#define SAFESVD_BAND tall_medium
#include "../isa/jacobi_band.inc"

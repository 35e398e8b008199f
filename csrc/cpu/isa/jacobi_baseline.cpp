// The CPU forward engine for x86-64 baseline (SSE2), or the compiler default elsewhere: csrc/cpu/isa/jacobi_isa.inc compiled
// for that ISA. The C++ library is included before the target pragma, so none of
// its inline functions is compiled for a wider ISA (and then shared by the linker).
#include "jacobi_isa_prelude.h"

#define SAFESVD_ISA baseline
#define SAFESVD_ISA_NAME "baseline"
#define SAFESVD_ISA_WIDTH_FLOAT 8
#define SAFESVD_ISA_WIDTH_DOUBLE 4
#include "jacobi_isa.inc"

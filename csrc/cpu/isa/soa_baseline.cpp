// The CPU's SoA backward for x86-64 baseline (SSE2), or the compiler default elsewhere: csrc/cpu/isa/soa_isa.inc compiled
// for that ISA (docs/soa_backward.md). The C++ library is included before the target
// pragma, so none of its inline functions is compiled for a wider ISA.
#include "soa_isa_prelude.h"
#define SAFESVD_SOA_ISA baseline
#define SAFESVD_SOA_ISA_NAME "baseline"
#define SAFESVD_SOA_WIDTH_FLOAT 8
#define SAFESVD_SOA_WIDTH_DOUBLE 4
#include "soa_isa.inc"

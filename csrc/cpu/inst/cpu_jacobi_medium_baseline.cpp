// Generated from csrc/manifest.txt by scripts/gen_units.py: do not edit.
// csrc/cpu/isa/jacobi_band.inc for the baseline instruction set, size band medium (docs/architecture.md, "Build").
// The C++ library is included before the target pragma (in the prelude), so none of its
// inline functions is compiled for a wider ISA and then shared by the linker.
#include "../isa/isa_prelude.h"
#define SAFESVD_ISA baseline
#define SAFESVD_ISA_FMA 0
#define SAFESVD_ISA_WIDTH_FLOAT 8
#define SAFESVD_ISA_WIDTH_DOUBLE 4
#define SAFESVD_BAND medium
#include "../isa/jacobi_band.inc"

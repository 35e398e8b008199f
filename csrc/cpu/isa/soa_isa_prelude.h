// Everything the SoA backward variants include, before their target pragma: the
// C++ library and c10's headers that csrc/kernels/scalar.h includes, so that none
// of their inline functions is compiled for a wider ISA (and then shared by the linker).
#pragma once

#include <c10/macros/Macros.h>
#include <c10/util/complex.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "../soa_cpu.h"

// As csrc/cpu/isa/jacobi_isa_prelude.h: target pragmas with GCC on x86-64 only.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define SAFESVD_SOA_PRAGMAS 1
#else
#define SAFESVD_SOA_PRAGMAS 0
#endif

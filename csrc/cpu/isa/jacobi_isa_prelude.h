// Everything the ISA variants include, before their target pragma.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../jacobi_cpu.h"

// Target pragmas with GCC on x86-64 only; elsewhere every variant is the baseline code
// (correct, not faster), and the runtime choice (jacobi_isa() in csrc/cpu/cpu.cpp) is harmless.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define SAFESVD_ISA_PRAGMAS 1
#else
#define SAFESVD_ISA_PRAGMAS 0
#endif

// Everything the instruction-set variants of csrc/cpu/inst/ include before their
// target pragma: the C++ library, c10's headers (csrc/kernels/scalar.h includes
// them) and the declarations the variants define. So none of the library's inline
// functions is compiled for a wider ISA and then shared by the linker with code
// that runs on any CPU.
#pragma once

#include <c10/macros/Macros.h>
#include <c10/util/complex.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "../jacobi_cpu.h"
#include "../soa_cpu.h"

// Target pragmas with GCC on x86-64 only; elsewhere every variant is the baseline code
// (correct, not faster), and the run-time choice (cpu_isa() in csrc/cpu/cpu.cpp) is harmless.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define SAFESVD_ISA_PRAGMAS 1
#else
#define SAFESVD_ISA_PRAGMAS 0
#endif

#define SAFESVD_ISA_CAT_(a, b) a##b
#define SAFESVD_ISA_CAT(a, b) SAFESVD_ISA_CAT_(a, b)
#define SAFESVD_ISA_STR_(a) #a
#define SAFESVD_ISA_STR(a) SAFESVD_ISA_STR_(a)

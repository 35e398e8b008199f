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
#include <new>
#include <type_traits>
#include <vector>

#include "../jacobi_cpu.h"
#include "../soa_cpu.h"

namespace safesvd {
namespace cpu {

// A zero-filled heap buffer of n values of T at a 64-byte boundary, for the variants' tiles.
// The tiles are whole SIMD vectors of lanes: one that does not start on a cache line splits
// every AVX-512 load and store in two. std::vector and plain new give 16-byte alignment:
// measured, the mid-size svd kernel ran 1.4x slower in whichever thread got a block at 16
// mod 64 (the 2-thread forward at 64x64 scaled 1.5x for that alone). Defined here, before
// the units' target pragma, so it is the same baseline code in every variant.
// kUnfilled: not zero-filled, for a caller that writes every value before it reads it (the
// J builders of the batched backward: at 64 x 64 float64 the fill of their 512 KiB tile was
// 4% of the eigh backward).
enum class Fill { kZero, kUnfilled };
template <typename T>
class AlignedBuffer {
 public:
  explicit AlignedBuffer(int64_t n, Fill fill = Fill::kZero)
      : p_(static_cast<T*>(::operator new(size_t(n) * sizeof(T), std::align_val_t(kAlign)))) {
    if (fill == Fill::kZero) std::memset(static_cast<void*>(p_), 0, size_t(n) * sizeof(T));
  }
  ~AlignedBuffer() { ::operator delete(p_, std::align_val_t(kAlign)); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  T* data() const { return p_; }

 private:
  static constexpr size_t kAlign = 64;
  T* p_;
};

}  // namespace cpu
}  // namespace safesvd

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

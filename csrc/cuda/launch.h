// The CUDA launchers, declared without their kernels (docs/architecture.md, "Build").
//
// The host glue (csrc/cuda/table.h, compiled by the host compiler with ATen) calls
// only what this header declares. Each launcher is a class template whose static
// launch() is defined next to its kernel (runner.cuh, backward_bands.cuh) and
// explicitly instantiated in one of the kernel units csrc/cuda/inst/*.cu, which
// scripts/gen_units.py writes from the instance lines of csrc/manifest.txt. So the
// kernel units never see ATen and build in parallel, editing csrc/aten/ recompiles
// none of them, and an instance the glue needs but the manifest lacks is a link
// error. The same units run on the CPU through the CUDA emulation
// (tests/test_cuda_emulated.py).
//
// No ATen, no CUDA headers: cudaStream_t is declared as cuda_runtime.h declares it.
#pragma once

#include <cstdint>
#include <type_traits>

#include "../kernels/batch_ops.h"

typedef struct CUstream_st* cudaStream_t;

namespace safesvd {
namespace kernels {
namespace cuda {

// Largest max(m, n) the fused per-matrix kernels take on CUDA; batched cuBLAS above.
constexpr int64_t kFusedMaxDim = 8;
static_assert(kFusedMaxDim <= kMaxFixedDim, "the fused square kernels are compiled with fixed sizes");

// The backward of real input by size band (docs/cuda_backward.md).
constexpr int kRegistersMaxDim = 4;               // band "registers": max(m, n) <= 4
constexpr int kTeamMinDim = 5, kTeamMaxDim = 32;  // band "team": square n in 5..32

// The inputs of one svd or eigh band launch (eigh: U = Q, gU = gQ, S = L, gS = gL; Vh
// and gVh unused). S, gS are (B, k) vectors.
template <typename T>
struct BandArgs {
  BatchedRef<T> U, Vh, gU, gVh, S, gS;
  GuardParams<T> params;
  T* gA;     // (B, m, n) contiguous
  T* gauge;  // (B, 3) contiguous
  int64_t count;
};

// op(b, scratch) for b in [0, count): one thread per matrix, its scratch in shared
// memory (runner.cuh). Op: a per-matrix Op of csrc/kernels/batch_ops.h.
template <class Op>
struct OpsKernel {
  static void launch(const Op& op, int64_t count, cudaStream_t stream);
};

// Band "registers", svd of M x N and eigh of N x N real matrices (backward_bands.cuh).
template <int M, int N, typename T>
struct SvdRegistersBand {
  static void launch(const BandArgs<T>& args, cudaStream_t stream);
};
template <int N, typename T>
struct EighRegistersBand {
  static void launch(const BandArgs<T>& args, cudaStream_t stream);
};

// Band "team", square n x n with n in (capacity - 4 or - 8, NC] (backward_bands.cuh).
template <bool SVD, int NC, typename T>
struct TeamBand {
  static void launch(const BandArgs<T>& args, int n, cudaStream_t stream);
};

// Which band takes a real (B, m, n) backward: 1 registers, 2 team, 0 neither.
inline int backward_band(int64_t m, int64_t n) {
  if (m <= kRegistersMaxDim && n <= kRegistersMaxDim) return 1;
  if (m == n && m >= kTeamMinDim && m <= kTeamMaxDim) return 2;
  return 0;
}

// Calls f(std::integral_constant<int, m>, std::integral_constant<int, n>) for the
// registers band's compile-time shape (m, n <= kRegistersMaxDim).
template <typename F>
void with_registers_shape(int64_t m, int64_t n, F&& f) {
  auto inner = [&](auto M) {
    switch (n) {
      case 1: return f(M, std::integral_constant<int, 1>{});
      case 2: return f(M, std::integral_constant<int, 2>{});
      case 3: return f(M, std::integral_constant<int, 3>{});
      default: return f(M, std::integral_constant<int, 4>{});
    }
  };
  switch (m) {
    case 1: return inner(std::integral_constant<int, 1>{});
    case 2: return inner(std::integral_constant<int, 2>{});
    case 3: return inner(std::integral_constant<int, 3>{});
    default: return inner(std::integral_constant<int, 4>{});
  }
}

// Calls f(std::integral_constant<int, NC>) with the team kernel's capacity for n.
template <typename F>
void with_team_capacity(int64_t n, F&& f) {
  if (n <= 8) return f(std::integral_constant<int, 8>{});
  if (n <= 12) return f(std::integral_constant<int, 12>{});
  if (n <= 16) return f(std::integral_constant<int, 16>{});
  if (n <= 24) return f(std::integral_constant<int, 24>{});
  return f(std::integral_constant<int, 32>{});
}

}  // namespace cuda
}  // namespace kernels
}  // namespace safesvd

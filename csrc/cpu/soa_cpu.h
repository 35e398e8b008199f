// The CPU's structure-of-arrays backward (docs/soa_backward.md): the fused svd /
// eigh backward of small real square matrices (and, for the svd, tall / wide ones),
// one matrix per SIMD lane, in ISA variants chosen with the forward engine's
// (csrc/cpu/cpu.cpp, cpu_isa()).
// Plain C++ (no ATen, and not guards.h: the variant translation units in
// csrc/cpu/inst/cpu_soa_*.cpp include the kernels inside a namespace of their own,
// so that code compiled for AVX2 or AVX-512 is never shared with another ISA).
#pragma once

#include <cstdint>

#include "../kernels/strided.h"

namespace safesvd {
namespace cpu {

// Largest n of the SoA variants' instantiations: square n x n, n = 1..kSoaMaxDim, and
// for the svd tall / wide m x n with the short side 1..kSoaMaxDim (the long side at run time).
constexpr int64_t kSoaMaxDim = 8;
// And the svd tall / wide with the short side kSoaRectWideDim, the largest of the forward's
// tall path (64 x 16, N samples of 16 features): 1.03-1.7x the batched path on 2 threads,
// 1.4-2.8x on one, up to 2048 entries (bench/results/cpu_soa_backward_2026-12-04_intel_k16.md;
// csrc/cpu/cpu.cpp, soa_shape); an instance costs ~45 s of compile per ISA, so the short
// sides 9..15 stay on the batched path.
constexpr int64_t kSoaRectWideDim = 16;

// Inputs of the svd backward of B m x n matrices (U m x k, Vh k x n, S k from the
// forward, k = min(m, n); gU, gVh, gS the cotangents) and the guard
// (kernels::GuardParams as plain values: guard is a kernels::Guard). gA (B, m, n) and
// gauge (B, 3) contiguous.
template <typename T>
struct SoaSvdBackward {
  int64_t B, m, n;
  kernels::BatchedRef<T> U, Vh, gU, gVh, S, gS;  // S, gS: (B, k) vectors
  int guard;
  T rtol, atol, eps;
  T* gA;
  T* gauge;
};
template <typename T>
struct SoaEighBackward {
  int64_t B, n;
  kernels::BatchedRef<T> Q, gQ, L, gL;
  int guard;
  T rtol, atol, eps;
  T* gA;
  T* gauge;
};

// The J builders of the batched path (kernels::SvdBuildJOp / EighBuildJOp, real input)
// over B matrices of size k (n): every input and output contiguous, (B, k, k) / (B, k) /
// (B,); UhgU, gVhV, QhgQ, gS, gL, pmax null when absent (Dr written when pmax is given);
// dims as kernels::matrix_guard's.
template <typename T>
struct SoaSvdBuildJ {
  int64_t B, k, dims;
  const T *UhgU, *gVhV, *S, *gS, *pmax, *cotangent_scale;
  int guard;
  T rtol, atol, eps;
  T *J, *Dr, *factors, *gauge;  // factors (B, 2), gauge (B, 3)
};
template <typename T>
struct SoaEighBuildJ {
  int64_t B, n;
  const T *QhgQ, *L, *gL, *cotangent_scale;
  int guard;
  T rtol, atol, eps;
  T *J, *gauge;
};

// The largest n small_bmm_cpu sends to the kernel (kernels/small_gemm.h, whose scratch
// is sized by its own kSmallGemmMaxDim: soa_isa.inc asserts the two equal).
constexpr int64_t kSmallGemmMaxDim = 64;

// D_b = X_b Y_b for matrices [t0, t1) of a batch of real n x n products (kernels/small_gemm.h:
// D column-major with leading dimension ldd, X's columns contiguous, Y any strides; sbx,
// sby, sbd: the batch strides).
template <typename T>
struct SmallGemmBatch {
  int64_t B, n;
  const T* X;
  int64_t sbx, ldx;
  const T* Y;
  int64_t sby, ysk, ysj;
  T* D;
  int64_t sbd, ldd;
};

// Tiles of `width` matrices; run tiles [t0, t1) of a batch (the last tile may be partial).
// svd_*: square n x n (n = 1..kSoaMaxDim); svd_rect_*: m != n (the short side
// 1..kSoaMaxDim); svd_rect16_*: m != n, the short side kSoaRectWideDim.
struct SoaBackwardIsa {
  const char* name;
  int width_float, width_double;
  void (*svd_float)(const SoaSvdBackward<float>&, int64_t t0, int64_t t1);
  void (*svd_double)(const SoaSvdBackward<double>&, int64_t t0, int64_t t1);
  void (*svd_rect_float)(const SoaSvdBackward<float>&, int64_t t0, int64_t t1);
  void (*svd_rect_double)(const SoaSvdBackward<double>&, int64_t t0, int64_t t1);
  void (*svd_rect16_float)(const SoaSvdBackward<float>&, int64_t t0, int64_t t1);  // short side 16
  void (*svd_rect16_double)(const SoaSvdBackward<double>&, int64_t t0, int64_t t1);
  void (*eigh_float)(const SoaEighBackward<float>&, int64_t t0, int64_t t1);
  void (*eigh_double)(const SoaEighBackward<double>&, int64_t t0, int64_t t1);
  void (*svd_J_float)(const SoaSvdBuildJ<float>&, int64_t t0, int64_t t1);
  void (*svd_J_double)(const SoaSvdBuildJ<double>&, int64_t t0, int64_t t1);
  void (*eigh_J_float)(const SoaEighBuildJ<float>&, int64_t t0, int64_t t1);
  void (*eigh_J_double)(const SoaEighBuildJ<double>&, int64_t t0, int64_t t1);
  void (*gemm_float)(const SmallGemmBatch<float>&, int64_t t0, int64_t t1);  // one matrix a tile
  void (*gemm_double)(const SmallGemmBatch<double>&, int64_t t0, int64_t t1);
};

// One per (band, ISA) unit (csrc/cpu/inst/cpu_soa_<band>_<isa>.cpp), each filling its
// band's functions and leaving the others null; cpu.cpp merges the three of an ISA.
// Bands: square (svd and eigh n x n), rect (svd m != n), rect16 (svd m != n, short side
// 16), builders (the J builders). Split so that no unit compiles every instance (one
// unit was 110 s of a 2-core build).
SoaBackwardIsa soa_square_baseline();
SoaBackwardIsa soa_square_avx2();
SoaBackwardIsa soa_square_avx512();
SoaBackwardIsa soa_rect_baseline();
SoaBackwardIsa soa_rect_avx2();
SoaBackwardIsa soa_rect_avx512();
SoaBackwardIsa soa_rect16_baseline();
SoaBackwardIsa soa_rect16_avx2();
SoaBackwardIsa soa_rect16_avx512();
SoaBackwardIsa soa_builders_baseline();
SoaBackwardIsa soa_builders_avx2();
SoaBackwardIsa soa_builders_avx512();

}  // namespace cpu
}  // namespace safesvd

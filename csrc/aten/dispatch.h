// The device dispatch table (in the style of ATen's DispatchStub).
//
// The operator entries (csrc/aten/svd.cpp, eigh.cpp, fn.cpp, guards.cpp) are
// device generic: they check arguments, resolve guards, choose the path, and
// call the kernels of the tensors' device through this table. A device
// (csrc/cpu/cpu.cpp, csrc/cuda/cuda.cpp) registers one table: the shared entries
// of make_device_kernels<Runner>() (entries.h), built from how the device runs a
// per-matrix Op over a batch, plus its own fused svd / eigh backward (which sizes
// run per matrix, in SIMD tiles or in band kernels differs by device) and, where it
// has one, the forward engine.
#pragma once

#include "common.h"
#include "../kernels/jacobi_batch.h"

namespace safesvd {

// Inputs of the fused per-matrix svd backward: (B, m, k), (B, k, n) strided
// views narrowed to k, cotangents undefined when absent; S, gS (B, k).
struct SvdBackwardArgs {
  Tensor U, Vh, gU, gVh, S, gS;
  int64_t m, n, k;
  ResolvedGuard guard;
};
struct EighBackwardArgs {
  Tensor Q, gQ, L, gL;  // (B, n, n), (B, n)
  int64_t n;
  ResolvedGuard guard;
};
// The batched path's builders: contiguous (B, k, k) products (undefined when
// the cotangent is absent), S, gS, pmax (B, k), cotangent_scale (B).
struct SvdBuildJArgs {
  Tensor UhgU, gVhV, S, gS, pmax, cotangent_scale;
  int64_t m, n;
  ResolvedGuard guard;
};
struct EighBuildJArgs {
  Tensor QhgQ, L, gL, cotangent_scale;
  ResolvedGuard guard;
};
// Matrix functions, fused: U (B, m, k), Vh (B, k, n), G (B, m, n); for eigh_fn
// U = Q and Vh, n unused.
struct FnBackwardArgs {
  Tensor U, Vh, G, S, fS, dfS;
  int64_t m, n, k;
  double rtol, atol;
};
struct FnBuildXArgs {
  bool svd;
  Tensor M, S, fS, dfS;  // contiguous (B, k, k), (B, k)
  double rtol, atol;
};
struct FnSecondOrderArgs {
  Tensor Gt, Ht, lam, f, df, d2f;  // contiguous (B, N, N), (B, N)
  double rtol, atol;
};
struct GuardParamsArgs {
  Tensor spectrum, cotangent_scale;  // contiguous (B, k), (B)
  int64_t dims;
  bool divided_difference;  // guard.rtol / atol are then those of the divided differences
  ResolvedGuard guard;
};
struct GuardCoefficientsArgs {
  Tensor d, xabs, params;  // contiguous (B, E), (B, E) or undefined, (B, 6)
  Guard guard;
};

struct DeviceKernels {
  // Largest max(m, n) for which the fused per-matrix kernels beat batched BLAS.
  int64_t fused_max_dim = 0;
  // Whether the svd / eigh backward of (B, m, n) input like U runs the fused
  // kernels (above: batched BLAS); null: max(m, n) <= fused_max_dim. The CPU's
  // SoA backward (docs/soa_backward.md) is fused over a wider range.
  bool (*backward_fused)(const Tensor& like, int64_t m, int64_t n) = nullptr;
  void (*svd_backward_fused)(const SvdBackwardArgs&, Tensor& gA, Tensor& gauge) = nullptr;
  void (*eigh_backward_fused)(const EighBackwardArgs&, Tensor& gA, Tensor& gauge) = nullptr;
  void (*svd_build_J)(const SvdBuildJArgs&, Tensor& J, Tensor& Dr, Tensor& factors, Tensor& gauge) = nullptr;
  void (*eigh_build_J)(const EighBuildJArgs&, Tensor& J, Tensor& gauge) = nullptr;
  // The matrix functions' forward Y = U diag(f) Vh (Vh undefined: U diag(f) U^H) into a
  // contiguous Y of the result's shape, where the device has a kernel faster than batched
  // BLAS for it; false (nothing written) where it does not (the caller then multiplies
  // with at::matmul). Null: never.
  bool (*fn_forward)(const Tensor& U, const Tensor& Vh, const Tensor& f, Tensor& Y) = nullptr;
  // Whether the matrix functions' backward of (B, m, n) input like U runs the fused
  // kernels (above: batched BLAS); null: max(m, n) <= fused_max_dim.
  bool (*fn_backward_fused)(const Tensor& like, int64_t m, int64_t n) = nullptr;
  void (*svd_fn_backward_fused)(const FnBackwardArgs&, Tensor& gA, Tensor& gf) = nullptr;
  void (*eigh_fn_backward_fused)(const FnBackwardArgs&, Tensor& gA, Tensor& gf) = nullptr;
  void (*fn_build_X)(const FnBuildXArgs&, Tensor& X, Tensor& F, Tensor& gf) = nullptr;
  void (*fn_second_order)(const FnSecondOrderArgs&, Tensor& Z, Tensor& gf, Tensor& gdf) = nullptr;
  void (*guard_params)(const GuardParamsArgs&, Tensor& out) = nullptr;
  void (*guard_coefficients)(const GuardCoefficientsArgs&, Tensor& coef, Tensor& slope, Tensor& note) = nullptr;
  // out = a b for (B, n, n) a, b (any strides) into a contiguous (B, n, n) out, where the
  // device has a kernel faster than batched BLAS for them; false (nothing written) where
  // it does not take them (device_bmm, aten/common.h, then calls at::bmm_out). Null: never.
  bool (*small_bmm)(const Tensor& a, const Tensor& b, Tensor& out) = nullptr;
  // The small-matrix forward engine (csrc/kernels/jacobi.h), null where a device has
  // none: A (B, m, n) real with kernels::jacobi_svd_supported(m, n, full); outputs
  // contiguous and allocated by the entry; info (B) int32: 0 converged, 1 not
  // converged, 2 non-finite input.
  void (*svd_jacobi)(const Tensor& A, bool full_matrices, Tensor& U, Tensor& S, Tensor& Vh, Tensor& info) = nullptr;
  void (*eigh_jacobi)(const Tensor& A, bool lower, Tensor& L, Tensor& Q, Tensor& info) = nullptr;
  // torch.linalg.svd / eigh for the matrices the engine does not take (null: torch's own
  // call; the CPU runs the matrices of a batch in parallel).
  std::tuple<Tensor, Tensor, Tensor> (*lapack_svd)(const Tensor& A, bool full_matrices) = nullptr;
  std::tuple<Tensor, Tensor> (*lapack_eigh)(const Tensor& A, c10::string_view UPLO) = nullptr;
  // Whether a matrix the engine did not converge on is recomputed by LAPACK (CPU) or
  // left NaN (CUDA: finding it would synchronize with the host).
  bool jacobi_fallback = false;
  // Whether driver=None picks the engine (where it was measured faster).
  bool jacobi_by_default = false;
  // With driver=None, a batch of at most this many m x n matrices goes to LAPACK even
  // where the engine takes the shape (null: never): the engine computes a whole SIMD tile
  // of matrices however few are real (docs/architecture.md, "The forward: which driver runs").
  int64_t (*lapack_batch_limit)(int64_t m, int64_t n, bool is_double) = nullptr;
  // Whether the engine takes rectangular input (else square only), and the largest
  // square n it takes for svd and eigh.
  bool jacobi_rectangular = false;
  int64_t jacobi_max_square_svd = kernels::kJacobiMaxSquare, jacobi_max_square_eigh = kernels::kJacobiMaxSquare;
};

// driver=None|"jacobi"|"lapack" of svd / eigh: whether to run the engine.
bool use_jacobi(const Tensor& A, const c10::optional<c10::string_view>& driver, bool shape_supported,
                const DeviceKernels& dev, bool has_engine, const char* op);

// The device's LAPACK / cuSOLVER decomposition (DeviceKernels::lapack_svd, lapack_eigh).
std::tuple<Tensor, Tensor, Tensor> lapack_svd(const DeviceKernels& dev, const Tensor& A, bool full_matrices);
std::tuple<Tensor, Tensor> lapack_eigh(const DeviceKernels& dev, const Tensor& A, c10::string_view UPLO);

// The table of `device`'s type; a clear error when none is registered.
const DeviceKernels& device_kernels(const c10::Device& device, const char* op);
void register_device_kernels(c10::DeviceType type, const DeviceKernels& kernels);

struct DeviceKernelsRegistration {
  DeviceKernelsRegistration(c10::DeviceType type, const DeviceKernels& kernels) {
    register_device_kernels(type, kernels);
  }
};

}  // namespace safesvd

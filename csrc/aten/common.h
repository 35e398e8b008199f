// Device-generic helpers shared by the CPU and CUDA wrappers: argument checks,
// guard parsing, tolerance defaults, and the ATen composite backward.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Optional.h>

#include <string>
#include <tuple>

#include "../kernels/common.h"

namespace safesvd {

using at::Tensor;
using kernels::Guard;

// "pinv" | "lorentz" | "clamp" | "none"; anything else is a clear error.
Guard parse_guard(c10::string_view guard, const char* op);

// rtol defaults to eps(dtype)^(3/4) of the real dtype (the guards of 3.1), or
// eps^(1/3) for the divided differences of matrix functions (kDividedDifference:
// the quotient loses eps/rtol to cancellation, the trapezoid that replaces it
// errs by rtol^2; eps^(1/3) balances the two). atol defaults to 0.
// Negative values are an error.
constexpr double kGuardPower = 0.75;
constexpr double kDividedDifferencePower = 1.0 / 3.0;
std::pair<double, double> resolve_tolerances(at::ScalarType real_dtype,
                                             c10::optional<double> rtol,
                                             c10::optional<double> atol, const char* op,
                                             double default_power = kGuardPower);

// Checks every public forward makes: a float32/64 or complex64/128 tensor with
// at least 2 dims (square when `square`), finite entries when on CPU (on CUDA
// the check would cost a device-to-host sync on every call, so it is skipped).
void check_matrix_input(const Tensor& A, const char* op, bool square);

// Checks of a backward op's tensors: same device and dtype family, expected shapes.
void check_cotangent(const c10::optional<Tensor>& g, const Tensor& like, const char* op,
                     const char* name);

// Forward ops (ATen; design.md 2). The guard arguments are validated here so a
// typo fails at the call, not in the backward.
std::tuple<Tensor, Tensor, Tensor> svd_forward(const Tensor& A, bool full_matrices,
                                               c10::string_view guard,
                                               c10::optional<double> rtol,
                                               c10::optional<double> atol);
std::tuple<Tensor, Tensor> eigh_forward(const Tensor& A, c10::string_view UPLO,
                                        c10::string_view guard, c10::optional<double> rtol,
                                        c10::optional<double> atol);

// The backward written with differentiable ATen ops (design.md 3.1/3.2): the
// large-n path of every device and, registered as CompositeImplicitAutograd,
// the form autograd differentiates for create_graph=True.
std::tuple<Tensor, Tensor> svd_backward_composite(
    const c10::optional<Tensor>& gU, const c10::optional<Tensor>& gS,
    const c10::optional<Tensor>& gVh, const Tensor& U, const Tensor& S, const Tensor& Vh,
    c10::string_view guard, c10::optional<double> rtol, c10::optional<double> atol);
std::tuple<Tensor, Tensor> eigh_backward_composite(
    const c10::optional<Tensor>& gL, const c10::optional<Tensor>& gQ, const Tensor& L,
    const Tensor& Q, c10::string_view guard, c10::optional<double> rtol,
    c10::optional<double> atol);

// Adds the full_matrices=True part of the gauge check (cotangent on the extra
// columns of U / rows of Vh, which are an arbitrary basis) to `gauge`.
void note_full_matrices_gauge(Tensor& gauge, const c10::optional<Tensor>& gU,
                              const c10::optional<Tensor>& gVh, int64_t k);

// The end of every SVD backward path: gA (B, m, n) and gauge (B, 3) back to the
// batch shape of U, plus the full_matrices part of the gauge check.
std::tuple<Tensor, Tensor> finish_svd_backward(const Tensor& gA, Tensor gauge, const Tensor& U,
                                               const c10::optional<Tensor>& gU,
                                               const c10::optional<Tensor>& gVh, int64_t m,
                                               int64_t n, int64_t k);

// Where rel (...) exceeds gauge[..., 0], replace the gauge entry by (rel, i, j).
void merge_gauge(Tensor& gauge, const Tensor& rel, const Tensor& i, const Tensor& j);

// The batched-matmul path for large matrices: the products by batched BLAS
// (at::matmul), J built in one fused per-matrix pass by a device's builder.
// Builder inputs are (B, k, k) / (B, k), contiguous; UhgU, gVhV, gS, QhgQ, gL
// may be undefined (absent cotangent). The builder returns J (B, k, k),
// D = g(S) (B, k) and the raw (unscaled) gauge info (B, 3).
// `dtype` is the dtype of U (Q), which J takes.
using SvdJBuilder = std::tuple<Tensor, Tensor, Tensor> (*)(at::ScalarType dtype, const Tensor& UhgU,
                                                           const Tensor& gVhV, const Tensor& S,
                                                           const Tensor& gS, Guard guard, double rtol,
                                                           double atol);
using EighJBuilder = std::tuple<Tensor, Tensor> (*)(at::ScalarType dtype, const Tensor& QhgQ,
                                                    const Tensor& L, const Tensor& gL, Guard guard,
                                                    double rtol, double atol);
std::tuple<Tensor, Tensor> svd_backward_batched_matmul(
    const c10::optional<Tensor>& gU, const c10::optional<Tensor>& gS,
    const c10::optional<Tensor>& gVh, const Tensor& U, const Tensor& S, const Tensor& Vh,
    c10::string_view guard, c10::optional<double> rtol, c10::optional<double> atol,
    SvdJBuilder build_J);
std::tuple<Tensor, Tensor> eigh_backward_batched_matmul(
    const c10::optional<Tensor>& gL, const c10::optional<Tensor>& gQ, const Tensor& L,
    const Tensor& Q, c10::string_view guard, c10::optional<double> rtol,
    c10::optional<double> atol, EighJBuilder build_J);

// Matrix functions (design.md 3.5): forward, argument checks, differentiable backward.
Tensor svd_fn_forward(const Tensor& A, const Tensor& U, const Tensor& S, const Tensor& Vh,
                      const Tensor& fS, const Tensor& dfS, c10::optional<double> rtol,
                      c10::optional<double> atol);
Tensor eigh_fn_forward(const Tensor& A, const Tensor& L, const Tensor& Q, const Tensor& fL,
                       const Tensor& dfL, c10::optional<double> rtol, c10::optional<double> atol);
void check_fn_args(const Tensor& G, const Tensor& U, const Tensor& S, const Tensor& Vh,
                   const Tensor& fS, const Tensor& dfS, const char* op);
Tensor svd_fn_backward_composite(const Tensor& G, const Tensor& U, const Tensor& S,
                                 const Tensor& Vh, const Tensor& fS, const Tensor& dfS,
                                 c10::optional<double> rtol, c10::optional<double> atol);
Tensor eigh_fn_backward_composite(const Tensor& G, const Tensor& L, const Tensor& Q,
                                  const Tensor& fL, const Tensor& dfL, c10::optional<double> rtol,
                                  c10::optional<double> atol);

// Shared validation of a backward op's arguments; returns (m, n, k).
std::tuple<int64_t, int64_t, int64_t> check_svd_backward_args(
    const c10::optional<Tensor>& gU, const c10::optional<Tensor>& gS,
    const c10::optional<Tensor>& gVh, const Tensor& U, const Tensor& S, const Tensor& Vh,
    const char* op);
int64_t check_eigh_backward_args(const c10::optional<Tensor>& gL,
                                 const c10::optional<Tensor>& gQ, const Tensor& L,
                                 const Tensor& Q, const char* op);

// A defined, non-empty cotangent, or nullopt.
inline c10::optional<Tensor> present(const c10::optional<Tensor>& g) {
  return (g.has_value() && g->defined()) ? g : c10::nullopt;
}

// Batch shape of a (..., r, c) tensor.
inline std::vector<int64_t> batch_shape(const Tensor& X, int64_t matrix_dims = 2) {
  auto s = X.sizes().vec();
  s.resize(s.size() - matrix_dims);
  return s;
}

}  // namespace safesvd

// safesvd's public C++ API for LibTorch users: SVD, Hermitian eigendecomposition
// and spectral matrix functions whose tensors carry gradients. backward() runs
// the guarded backward of docs/math.md (finite at repeated and zero singular
// values, exact where the math allows), create_graph=true the differentiable one.
//
//   find_package(SafeSVD REQUIRED)
//   target_link_libraries(app PRIVATE SafeSVD::SafeSVD)
//
//   auto [U, S, Vh] = safesvd::svd(A);                 // A.requires_grad()
//   at::linalg_norm((U * S.unsqueeze(-2)).matmul(Vh)).backward();
//
// The gradients are wired by torch::autograd::Function in these functions, below
// the operators' Autograd key: the Python package registers its own autograd for
// torch.ops.safesvd.* (which torch.func and torch.compile need), and the two never
// both apply (docs/architecture.md, "C++ API").
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <optional>
#include <string>
#include <tuple>

namespace safesvd {

// How the backward guards 1/x (docs/math.md, "Guards").
struct GuardOptions {
  std::string guard = "pinv";  // "pinv" | "lorentz" | "clamp" | "none"
  std::optional<double> rtol;  // default eps(dtype)^(3/4)
  std::optional<double> atol;  // default 0
};

// What a basis-dependent loss does in the backward (docs/math.md, "Gauge check"):
// a c10 warning (Warn, default), an error (Raise), or nothing (Ignore). Applies to
// this API; Python's safesvd.set_gauge_mode governs the Python package. Warn never
// makes the host wait for the GPU: on CUDA the check is queued and reported at a
// later backward, at set_gauge_mode, or by flush_gauge_warnings(); Raise waits.
enum class GaugeMode { Warn, Raise, Ignore };
void set_gauge_mode(GaugeMode mode);
GaugeMode gauge_mode();
// Wait for every queued gauge check and report it (c10 warnings).
void flush_gauge_warnings();
// Number of queued (not yet reported) gauge checks.
int64_t pending_gauge_checks();

// A = U diag(S) Vh; U (..., m, k), S (..., k) descending, Vh (..., k, n).
std::tuple<at::Tensor, at::Tensor, at::Tensor> svd(const at::Tensor& A, bool full_matrices = false,
                                                   const GuardOptions& options = {});
at::Tensor svdvals(const at::Tensor& A);
// A = Q diag(L) Q^H for Hermitian A (the UPLO triangle is read); L ascending.
std::tuple<at::Tensor, at::Tensor> eigh(const at::Tensor& A, const std::string& UPLO = "L",
                                        const GuardOptions& options = {});

// An elementwise function of a real spectrum (value, derivative, second derivative).
using SpectralFunction = std::function<at::Tensor(const at::Tensor&)>;
// U diag(f(S)) V^H and Q diag(f(L)) Q^H with gradients exact at repeated values
// (docs/math.md, "Matrix functions"). d2f is needed for second derivatives only;
// when empty it is derived from df by autograd.
at::Tensor svd_fn(const at::Tensor& A, const SpectralFunction& f, const SpectralFunction& df,
                  const SpectralFunction& d2f = nullptr, std::optional<double> rtol = std::nullopt,
                  std::optional<double> atol = std::nullopt);
at::Tensor eigh_fn(const at::Tensor& A, const SpectralFunction& f, const SpectralFunction& df,
                   const SpectralFunction& d2f = nullptr, const std::string& UPLO = "L",
                   std::optional<double> rtol = std::nullopt, std::optional<double> atol = std::nullopt);
// Hermitian positive (semi)definite input; see the Python docstrings.
at::Tensor sqrtm(const at::Tensor& A);
at::Tensor invsqrtm(const at::Tensor& A);
at::Tensor logm(const at::Tensor& A);
// A = Q P, Q = U V^H, P = V diag(S) V^H.
std::tuple<at::Tensor, at::Tensor> polar(const at::Tensor& A);

}  // namespace safesvd

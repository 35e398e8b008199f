// Calls safesvd's operators through the dispatcher from C++ (no Python), as a
// LibTorch user would, and checks their results. Run by ctest.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <cstdio>
#include <optional>
#include <tuple>

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  std::printf("%s: %s\n", ok ? "ok" : "FAILED", what);
  if (!ok) ++failures;
}

}  // namespace

int main() {
  using Tensor = at::Tensor;
  auto svd = c10::Dispatcher::singleton()
                 .findSchemaOrThrow("safesvd::svd", "")
                 .typed<std::tuple<Tensor, Tensor, Tensor>(const Tensor&, bool, c10::string_view,
                                                           std::optional<double>, std::optional<double>,
                                                           std::optional<c10::string_view>)>();
  auto svd_backward =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("safesvd::_svd_backward", "")
          .typed<std::tuple<Tensor, Tensor>(const std::optional<Tensor>&, const std::optional<Tensor>&,
                                            const std::optional<Tensor>&, const Tensor&, const Tensor&,
                                            const Tensor&, c10::string_view, std::optional<double>,
                                            std::optional<double>)>();

  // Forward: U diag(S) Vh reconstructs A (tall, wide, batched).
  for (auto shape : {std::vector<int64_t>{3, 5, 4}, std::vector<int64_t>{2, 4, 6}}) {
    const Tensor A = at::randn(shape, at::kDouble);
    auto [U, S, Vh] = svd.call(A, false, "pinv", std::nullopt, std::nullopt, std::nullopt);
    check(at::allclose(at::matmul(U * S.unsqueeze(-2), Vh), A, 1e-10, 1e-10), "svd reconstructs A");
  }

  // Backward at diag(1, 1, 2, 3) (docs/math.md, case 000): d||A||/dA = A / ||A||, finite.
  const Tensor A = at::diag(at::tensor({1.0, 1.0, 2.0, 3.0}, at::kDouble));
  auto [U, S, Vh] = svd.call(A, false, "pinv", std::nullopt, std::nullopt, std::nullopt);
  const Tensor gS = S / S.norm();  // d||S||/dS
  auto [gA, gauge] = svd_backward.call(std::nullopt, gS, std::nullopt, U, S, Vh, "pinv", std::nullopt, std::nullopt);
  check(at::isfinite(gA).all().item<bool>(), "backward finite at repeated singular values");
  check(at::allclose(gA, A / A.norm(), 1e-12, 1e-12), "backward equals A / ||A||");
  check(gauge[0].item<double>() == 0.0, "no gauge residual for a basis-independent loss");

  std::printf("%s\n", failures ? "FAILED" : "all passed");
  return failures ? 1 : 0;
}

// The public C++ API with gradients (include/safesvd/safesvd.h), as a LibTorch user
// calls it. Without arguments: self-checks (run by ctest). With a file of the form
// "n  a_00 a_01 ... (n*n)  w_00 ... (n*n)  v_00 ... (n*n)" it prints, for that A, W, V,
// the gradients tests/test_packaging.py compares with the Python package's:
//   grad <W, U S Vh> through svd, grad <W, sqrtm(sym A)>, grad <W, polar(A).Q>,
//   grad <W, eigh(sym A).L>, and the Hessian-vector product of <W, sqrtm(sym A)> along V.
#include <safesvd/safesvd.h>
#include <torch/autograd.h>

#include <c10/util/Exception.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

// The library's test hook (csrc/testing.h, not an installed header): treat CPU tensors
// like CUDA ones in the gauge check, so that its non-blocking queue runs here.
extern "C" int safesvd_testing_gauge_reads_block(int on);

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  std::printf("%s: %s\n", ok ? "ok" : "FAILED", what);
  if (!ok) ++failures;
}

at::Tensor sym(const at::Tensor& X) { return 0.5 * (X + X.mT()); }

struct CaptureWarnings : c10::WarningHandler {
  std::vector<std::string> messages;
  void process(const c10::Warning& warning) override { messages.push_back(warning.msg()); }
};

// A loss that reads one vector of a repeated singular value (docs/math.md, "Gauge check").
void basis_dependent_backward() {
  const at::Tensor X = at::diag(at::tensor({2.0, 2.0, 1.0}, at::kDouble)).requires_grad_(true);
  auto [U, S, Vh] = safesvd::svd(X);
  (U.select(-1, 0) * at::arange(1, 4, at::kDouble)).sum().backward();
}

// Mode Warn never waits for the device: the check is queued and reported later;
// mode Raise reports in the backward that found it.
void check_gauge_queue() {
  const int previous = safesvd_testing_gauge_reads_block(1);
  CaptureWarnings capture;
  {
    c10::WarningUtils::WarningHandlerGuard guard(&capture);
    safesvd::set_gauge_mode(safesvd::GaugeMode::Warn);
    basis_dependent_backward();
    check(capture.messages.empty() && safesvd::pending_gauge_checks() == 1,
          "gauge check in mode Warn is queued, not read in the backward");
    safesvd::flush_gauge_warnings();
    check(capture.messages.size() == 1 && safesvd::pending_gauge_checks() == 0 &&
              capture.messages[0].find("arbitrary basis") != std::string::npos &&
              capture.messages[0].find("reported after the backward") != std::string::npos,
          "flush_gauge_warnings reports the queued check");
    safesvd::set_gauge_mode(safesvd::GaugeMode::Raise);
    bool raised = false;
    try {
      basis_dependent_backward();
    } catch (const c10::Error& e) {
      raised = std::string(e.what()).find("arbitrary basis") != std::string::npos;
    }
    check(raised && safesvd::pending_gauge_checks() == 0, "gauge check in mode Raise raises in the backward");
    safesvd::set_gauge_mode(safesvd::GaugeMode::Warn);
  }
  safesvd_testing_gauge_reads_block(previous);
}

// polar of a rank-deficient matrix: a finite factor and a not-unique report in the gauge
// mode (none in Ignore); a full-rank matrix, none.
void check_polar_not_unique() {
  const at::Tensor deficient = at::tensor({1.0, 2.0, 2.0, 4.0}, at::kDouble).view({2, 2});
  CaptureWarnings capture;
  c10::WarningUtils::WarningHandlerGuard guard(&capture);
  safesvd::set_gauge_mode(safesvd::GaugeMode::Warn);
  const at::Tensor Q = std::get<0>(safesvd::polar(deficient));
  check(Q.isfinite().all().item<bool>() && capture.messages.size() == 1 &&
            capture.messages[0].find("not unique") != std::string::npos,
        "polar of a rank-deficient matrix warns that it is not unique");
  safesvd::polar(at::eye(3, at::kDouble) + 0.1 * at::ones({3, 3}, at::kDouble));
  check(capture.messages.size() == 1, "polar of a full-rank matrix does not warn");
  safesvd::set_gauge_mode(safesvd::GaugeMode::Raise);
  bool raised = false;
  try {
    safesvd::polar(deficient);
  } catch (const c10::Error& e) {
    raised = std::string(e.what()).find("not unique") != std::string::npos;
  }
  check(raised, "polar of a rank-deficient matrix raises in mode Raise");
  safesvd::set_gauge_mode(safesvd::GaugeMode::Ignore);
  safesvd::polar(deficient);
  check(capture.messages.size() == 1, "polar reports nothing in mode Ignore");
  safesvd::set_gauge_mode(safesvd::GaugeMode::Warn);
}

at::Tensor grad_of(const std::function<at::Tensor(const at::Tensor&)>& loss, const at::Tensor& A) {
  const at::Tensor X = A.detach().clone().requires_grad_(true);
  return torch::autograd::grad({loss(X)}, {X})[0];
}

void print(const char* name, const at::Tensor& t) {
  std::printf("%s", name);
  const at::Tensor c = t.contiguous().to(at::kDouble);
  for (int64_t i = 0; i < c.numel(); ++i) std::printf(" %.17g", c.data_ptr<double>()[i]);
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) {
    std::ifstream in(argv[1]);
    int64_t n = 0;
    in >> n;
    auto read = [&] {
      at::Tensor t = at::empty({n, n}, at::kDouble);
      for (int64_t i = 0; i < n * n; ++i) in >> t.data_ptr<double>()[i];
      return t;
    };
    const at::Tensor A = read(), W = read(), V = read();
    print("svd", grad_of([&](const at::Tensor& X) {
            auto [U, S, Vh] = safesvd::svd(X);
            return (W * at::matmul(U * S.unsqueeze(-2), Vh)).sum();
          }, A));
    auto sqrtm_loss = [&](const at::Tensor& X) { return (W * safesvd::sqrtm(sym(X))).sum(); };
    print("sqrtm", grad_of(sqrtm_loss, A));
    print("polar", grad_of([&](const at::Tensor& X) { return (W * std::get<0>(safesvd::polar(X))).sum(); }, A));
    print("eigh", grad_of([&](const at::Tensor& X) { return (W.diagonal() * std::get<0>(safesvd::eigh(sym(X)))).sum(); }, A));
    const at::Tensor X = A.clone().requires_grad_(true);
    const at::Tensor g = torch::autograd::grad({sqrtm_loss(X)}, {X}, {}, /*retain_graph=*/true, /*create_graph=*/true)[0];
    print("hvp", torch::autograd::grad({(g * V).sum()}, {X})[0]);
    return 0;
  }

  // Seed case 000 (docs/math.md): d||U S Vh||/dA at diag(1, 1, 2, 3) is A / ||A||, finite.
  const at::Tensor A = at::diag(at::tensor({1.0, 1.0, 2.0, 3.0}, at::kDouble));
  const at::Tensor g = grad_of([](const at::Tensor& X) {
    auto [U, S, Vh] = safesvd::svd(X);
    return at::linalg_norm(at::matmul(U * S.unsqueeze(-2), Vh));
  }, A);
  check(at::allclose(g, A / A.norm(), 1e-12, 1e-12), "svd backward at repeated singular values equals A / ||A||");
  // sqrtm at the identity: d sqrtm(I)[E] = E / 2.
  const at::Tensor W = at::randn({3, 3}, at::kDouble);
  const at::Tensor gs = grad_of([&](const at::Tensor& X) { return (W * safesvd::sqrtm(X)).sum(); },
                                at::eye(3, at::kDouble));
  check(at::allclose(gs, 0.5 * sym(W), 1e-10, 1e-10), "sqrtm gradient at the identity");
  // Forward values.
  const at::Tensor B = at::randn({2, 5, 3}, at::kDouble);
  auto [U, S, Vh] = safesvd::svd(B);
  check(at::allclose(at::matmul(U * S.unsqueeze(-2), Vh), B, 1e-10, 1e-10), "svd reconstructs A");
  check(at::allclose(safesvd::svdvals(B), S), "svdvals");
  check_gauge_queue();
  check_polar_not_unique();
  std::printf("%s\n", failures ? "FAILED" : "all passed");
  return failures ? 1 : 0;
}

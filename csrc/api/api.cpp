// The public C++ API (include/safesvd/safesvd.h): gradients for LibTorch users.
//
// Each function wraps the operators in a torch::autograd::Function. The
// operators are called below the Autograd key (AutoDispatchBelowADInplaceOrView),
// so an autograd kernel registered for them from Python never runs here, and
// these Functions never run for torch.ops.safesvd.* callers: the two wirings
// never both apply (docs/architecture.md, "C++ API").
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>

#include <c10/core/Event.h>
#include <c10/core/impl/VirtualGuardImpl.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <sstream>

#include "../../include/safesvd/safesvd.h"
#include "../aten/common.h"
#include "../testing.h"

namespace safesvd {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using Opt = c10::optional<double>;

namespace {

std::atomic<int> g_gauge_mode{static_cast<int>(GaugeMode::Warn)};

std::tuple<Tensor, Tensor, Tensor> svd_op(const Tensor& A, bool full, const std::string& guard, Opt r, Opt a) {
  static const auto op = find_op<SvdOpSignature>("safesvd::svd");
  at::AutoDispatchBelowADInplaceOrView below;
  return op.call(A, full, guard, r, a, c10::nullopt);
}
std::tuple<Tensor, Tensor> eigh_op(const Tensor& A, const std::string& UPLO, const std::string& guard, Opt r, Opt a) {
  static const auto op = find_op<EighOpSignature>("safesvd::eigh");
  at::AutoDispatchBelowADInplaceOrView below;
  return op.call(A, UPLO, guard, r, a, c10::nullopt);
}
using Tensors2 = std::tuple<Tensor, Tensor>;
using OptT = c10::optional<Tensor>;
Tensors2 svd_backward_op(bool differentiable, const OptT& gU, const OptT& gS, const OptT& gVh, const Tensor& U,
                         const Tensor& S, const Tensor& Vh, const std::string& guard, Opt r, Opt a) {
  using Sig = Tensors2(const OptT&, const OptT&, const OptT&, const Tensor&, const Tensor&, const Tensor&,
                       c10::string_view, Opt, Opt);
  static const auto fused = find_op<Sig>("safesvd::_svd_backward");
  static const auto composite = find_op<Sig>("safesvd::_svd_backward_composite");
  if (differentiable) return composite.call(gU, gS, gVh, U, S, Vh, guard, r, a);
  at::AutoDispatchBelowADInplaceOrView below;
  return fused.call(gU, gS, gVh, U, S, Vh, guard, r, a);
}
Tensors2 eigh_backward_op(bool differentiable, const OptT& gL, const OptT& gQ, const Tensor& L, const Tensor& Q,
                          const std::string& guard, Opt r, Opt a) {
  using Sig = Tensors2(const OptT&, const OptT&, const Tensor&, const Tensor&, c10::string_view, Opt, Opt);
  static const auto fused = find_op<Sig>("safesvd::_eigh_backward");
  static const auto composite = find_op<Sig>("safesvd::_eigh_backward_composite");
  if (differentiable) return composite.call(gL, gQ, L, Q, guard, r, a);
  at::AutoDispatchBelowADInplaceOrView below;
  return fused.call(gL, gQ, L, Q, guard, r, a);
}


// ------------------------------------------------------------------ gauge check
//
// The gauge check (docs/math.md, "Gauge check") with the Python package's policy
// (python/safesvd/_gauge.py): mode "raise" reads the residuals at once (it must stop
// the backward that found the problem); mode "warn" on a device whose reads make the
// host wait (CUDA) never waits: the backward reduces the (..., 3) residuals on the
// device to one row (residual, i, j, matrix) plus that matrix's spectrum, copies both
// to pinned host memory behind an event, and returns. The row is read once its event
// has completed: at a later backward, or in flush_gauge_warnings(). "ignore" reads
// nothing.

std::atomic<int> g_reads_block_for_testing{0};

bool reads_block(const Tensor& t) { return t.device().is_cuda() || g_reads_block_for_testing.load() != 0; }

struct PendingGauge {
  Tensor row, values;                // host copies: [residual, i, j, b], the spectrum of matrix b
  c10::optional<c10::Event> event;   // none: ready (a CPU tensor in the tests)
  std::string what;
  double threshold;
  std::vector<int64_t> batch_shape;
};

std::mutex g_pending_mutex;
std::deque<PendingGauge> g_pending;
constexpr size_t kMaxPending = 1024;  // beyond this, the oldest entries are resolved (waiting on their event)

std::string gauge_message(const char* what, double i, double j, const std::vector<int64_t>& index, double residual,
                          const std::vector<double>& values) {
  std::ostringstream msg;
  msg << what << ": the loss depends on an arbitrary basis (pair (" << i << ", " << j << ") of matrix (";
  for (size_t d = 0; d < index.size(); ++d) msg << (d ? ", " : "") << index[d];
  msg << "), relative residual " << residual << "; values";
  for (double v : values) msg << " " << v;
  msg << "); the gradient is not unique and the minimum-norm one is returned (docs/math.md, \"Gauge check\").";
  return msg.str();
}

// The batch index of flat matrix b.
std::vector<int64_t> unravel(int64_t b, const std::vector<int64_t>& shape) {
  std::vector<int64_t> index(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    index[d] = shape[d] ? b % shape[d] : 0;
    b = shape[d] ? b / shape[d] : 0;
  }
  return index;
}

void resolve(const PendingGauge& e) {
  const Tensor row = e.row.to(at::kDouble);
  const double residual = row[0].item<double>();
  if (!(residual > e.threshold)) return;
  const Tensor values = e.values.to(at::kDouble).contiguous();
  const std::vector<double> v(values.data_ptr<double>(), values.data_ptr<double>() + values.numel());
  TORCH_WARN(gauge_message(e.what.c_str(), row[1].item<double>(), row[2].item<double>(),
                           unravel(static_cast<int64_t>(row[3].item<double>()), e.batch_shape), residual, v) +
             " [reported after the backward that found it: mode 'warn' does not wait for the device]");
}

// Report the queued checks whose copies have arrived, in order; wait for the first
// `wait_for` of them if they have not.
void drain(size_t wait_for) {
  while (true) {
    PendingGauge e;
    {
      const std::lock_guard<std::mutex> lock(g_pending_mutex);
      if (g_pending.empty()) return;
      PendingGauge& front = g_pending.front();
      if (wait_for > 0)
        --wait_for;
      else if (front.event && !front.event->query())
        return;
      e = std::move(front);
      g_pending.pop_front();
    }
    if (e.event) e.event->synchronize();
    resolve(e);
  }
}

Tensor host_copy(const Tensor& x) {
  if (!x.device().is_cuda()) return x.clone();
  Tensor out = at::empty(x.sizes(), x.options().device(at::kCPU).pinned_memory(true));
  out.copy_(x, /*non_blocking=*/true);
  return out;
}

void enqueue(const Tensor& gauge, const Tensor& spectrum, const char* what, double threshold) {
  at::NoGradGuard no_grad;
  const Tensor flat = gauge.detach().reshape({-1, 3});
  const Tensor b = flat.select(1, 0).argmax().reshape({1});
  const Tensor row = at::cat({flat.index_select(0, b).reshape({3}), b.to(flat.scalar_type())});
  const Tensor values = spectrum.detach().reshape({-1, spectrum.size(-1)}).index_select(0, b).reshape({-1});
  PendingGauge e{host_copy(row), host_copy(values), c10::nullopt, what, threshold, batch_shape(gauge, 1)};
  if (gauge.device().is_cuda()) {
    e.event.emplace(c10::DeviceType::CUDA);
    e.event->record(c10::impl::VirtualGuardImpl(c10::DeviceType::CUDA).getStream(gauge.device()));
  }
  bool overflow;
  {
    const std::lock_guard<std::mutex> lock(g_pending_mutex);
    g_pending.push_back(std::move(e));
    overflow = g_pending.size() > kMaxPending;
  }
  if (overflow) drain(1);
}

// A report in gauge mode `mode` (not Ignore): an error in Raise, a warning in Warn.
void report_in_mode(GaugeMode mode, const std::string& msg) {
  TORCH_CHECK(mode != GaugeMode::Raise, msg);
  TORCH_WARN(msg);
}

void check_gauge(const Tensor& gauge, const Tensor& spectrum, const char* what, const std::string& guard, Opt rtol,
                 Opt atol) {
  drain(0);
  const auto mode = static_cast<GaugeMode>(g_gauge_mode.load());
  if (mode == GaugeMode::Ignore || gauge.numel() == 0) return;
  const double threshold = resolve_guard(guard, spectrum.scalar_type(), rtol, atol, what).gauge_threshold;
  if (mode == GaugeMode::Warn && reads_block(gauge)) return enqueue(gauge, spectrum, what, threshold);
  const Tensor flat = gauge.detach().reshape({-1, 3}).to(at::kDouble).cpu();
  const int64_t b = flat.select(1, 0).argmax().item<int64_t>();
  const double residual = flat[b][0].item<double>();
  if (!(residual > threshold)) return;
  const Tensor values = spectrum.detach().reshape({-1, spectrum.size(-1)})[b].to(at::kDouble).cpu().contiguous();
  const std::vector<double> v(values.data_ptr<double>(), values.data_ptr<double>() + values.numel());
  const std::string msg = gauge_message(what, flat[b][1].item<double>(), flat[b][2].item<double>(),
                                        unravel(b, batch_shape(gauge, 1)), residual, v);
  report_in_mode(mode, msg);
}

// Does the spectrum have a pair inside the guard tolerance (for singular values also
// a sum, or a lone value, near zero)? Evaluated by the library's guard operators.
bool has_inside_pair(const Tensor& spectrum, const std::string& guard, Opt rtol, Opt atol, int64_t dims,
                     bool singular_values) {
  static const auto params_op =
      find_op<Tensor(const Tensor&, const Tensor&, int64_t, c10::string_view, Opt, Opt, bool)>("safesvd::_guard_params");
  static const auto coef_op =
      find_op<std::tuple<Tensor, Tensor, Tensor>(const Tensor&, const OptT&, const Tensor&, c10::string_view)>(
          "safesvd::_guard_coefficients");
  at::NoGradGuard no_grad;
  const int64_t k = spectrum.size(-1);
  if (k == 0) return false;
  const Tensor s = spectrum.detach();
  const Tensor p = params_op.call(s, at::zeros(batch_shape(s, 1), s.options()), dims, guard, rtol, atol, false);
  const Tensor sh = s * p.select(-1, 0).unsqueeze(-1) * p.select(-1, 1).unsqueeze(-1);
  const Tensor off = at::eye(k, s.options().dtype(at::kBool)).logical_not();
  auto inside = [&](const Tensor& d, const Tensor& where) {
    const Tensor note = std::get<2>(coef_op.call(d, at::ones_like(d), p, guard));
    return note.gt(0).logical_and(where).any().item<bool>();
  };
  if (inside(sh.unsqueeze(-2) - sh.unsqueeze(-1), off)) return true;
  return singular_values && inside(sh.unsqueeze(-2) + sh.unsqueeze(-1), at::ones_like(off));
}

// Identity on a first-order gradient of svd/eigh; its backward runs when a second
// derivative passes through it and warns at a degeneracy, where the second
// derivative cannot be exact (docs/math.md, "Second order").
struct SecondOrderCheck : public torch::autograd::Function<SecondOrderCheck> {
  static Tensor forward(AutogradContext* ctx, const Tensor& gA, const Tensor& spectrum, std::string guard, Opt rtol,
                        Opt atol, int64_t dims, bool singular_values) {
    ctx->save_for_backward({spectrum});
    ctx->saved_data["guard"] = guard;
    ctx->saved_data["rtol"] = rtol;
    ctx->saved_data["atol"] = atol;
    ctx->saved_data["dims"] = dims;
    ctx->saved_data["sv"] = singular_values;
    return gA.clone();
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto mode = static_cast<GaugeMode>(g_gauge_mode.load());
    if (mode != GaugeMode::Ignore &&
        has_inside_pair(ctx->get_saved_variables()[0], ctx->saved_data["guard"].toStringRef(),
                        ctx->saved_data["rtol"].toOptional<double>(), ctx->saved_data["atol"].toOptional<double>(),
                        ctx->saved_data["dims"].toInt(), ctx->saved_data["sv"].toBool())) {
      const char* msg =
          "safesvd: a second derivative passes through repeated (or zero) singular values / eigenvalues, where it "
          "is not exact (docs/math.md, \"Second order\"); the matrix functions have an exact second order.";
      report_in_mode(mode, msg);
    }
    return {grads[0], Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

void save_options(AutogradContext* ctx, const GuardOptions& o) {
  ctx->saved_data["guard"] = o.guard;
  ctx->saved_data["rtol"] = o.rtol;
  ctx->saved_data["atol"] = o.atol;
}
GuardOptions load_options(AutogradContext* ctx) {
  return {ctx->saved_data["guard"].toStringRef(), ctx->saved_data["rtol"].toOptional<double>(),
          ctx->saved_data["atol"].toOptional<double>()};
}

struct SvdFunction : public torch::autograd::Function<SvdFunction> {
  static variable_list forward(AutogradContext* ctx, const Tensor& A, bool full, const GuardOptions& o) {
    auto [U, S, Vh] = svd_op(A, full, o.guard, o.rtol, o.atol);
    ctx->save_for_backward({U, S, Vh});
    save_options(ctx, o);
    ctx->set_materialize_grads(false);
    return {U, S, Vh};
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &U = saved[0], &S = saved[1], &Vh = saved[2];
    const GuardOptions o = load_options(ctx);
    const bool differentiable = at::GradMode::is_enabled();
    auto [gA, gauge] = svd_backward_op(differentiable, opt(g[0]), opt(g[1]), opt(g[2]), U, S, Vh, o.guard, o.rtol, o.atol);
    check_gauge(gauge, S, "safesvd::svd backward", o.guard, o.rtol, o.atol);
    if (differentiable)
      gA = SecondOrderCheck::apply(gA, S, o.guard, o.rtol, o.atol, U.size(-2) + Vh.size(-1), true);
    return {gA, Tensor(), Tensor()};
  }
};

struct EighFunction : public torch::autograd::Function<EighFunction> {
  static variable_list forward(AutogradContext* ctx, const Tensor& A, const std::string& UPLO, const GuardOptions& o) {
    auto [L, Q] = eigh_op(A, UPLO, o.guard, o.rtol, o.atol);
    ctx->save_for_backward({L, Q});
    save_options(ctx, o);
    ctx->set_materialize_grads(false);
    return {L, Q};
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    const auto saved = ctx->get_saved_variables();
    const GuardOptions o = load_options(ctx);
    const bool differentiable = at::GradMode::is_enabled();
    auto [gA, gauge] = eigh_backward_op(differentiable, opt(g[0]), opt(g[1]), saved[0], saved[1], o.guard, o.rtol, o.atol);
    check_gauge(gauge, saved[0], "safesvd::eigh backward", o.guard, o.rtol, o.atol);
    if (differentiable)
      gA = SecondOrderCheck::apply(gA, saved[0], o.guard, o.rtol, o.atol, 2 * saved[0].size(-1), false);
    return {gA, Tensor(), Tensor()};
  }
};

// ------------------------------------------------------------ matrix functions

// The values a spectral function needs: f, f', f'' on the detached spectrum
// (docs/math.md, "Parameters of f").
struct SpectralValues {
  Tensor f, df, d2f;
};

Tensor evaluate(const SpectralFunction& fn, const Tensor& x, const char* what, const char* name) {
  Tensor y = fn(x);
  TORCH_CHECK_VALUE(y.defined() && y.sizes() == x.sizes(), name, ": ", what,
                    " must be elementwise and return a tensor of the spectrum's shape ", x.sizes());
  return y.to(x.scalar_type());
}

SpectralValues spectral_values(const Tensor& A, const Tensor& spectrum, const SpectralFunction& f,
                               const SpectralFunction& df, const SpectralFunction& d2f, const char* name) {
  const Tensor x = spectrum.detach();
  SpectralValues v{evaluate(f, x, "f", name), evaluate(df, x, "df", name), Tensor()};
  if (d2f) {
    v.d2f = evaluate(d2f, x, "d2f", name);
  } else if (at::GradMode::is_enabled() && A.requires_grad()) {
    at::AutoGradMode enable(true);
    const Tensor xs = x.clone().requires_grad_(true);
    const Tensor y = df(xs);
    v.d2f = y.requires_grad() ? torch::autograd::grad({y.sum()}, {xs})[0].detach() : at::zeros_like(x);
  }
  return v;
}

using Fn3 = std::tuple<Tensor, Tensor, Tensor>;

struct EighFnBackward : public torch::autograd::Function<EighFnBackward> {
  static variable_list forward(AutogradContext* ctx, const Tensor& G, const Tensor& A, const Tensor& L,
                               const Tensor& Q, const Tensor& fL, const Tensor& dfL, const OptT& d2f, Opt r, Opt a) {
    const Tensor d2fL = d2f.value_or(Tensor());
    static const auto op = find_op<Tensors2(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, Opt,
                                            Opt)>("safesvd::_eigh_fn_backward");
    ctx->save_for_backward({G, L, Q, fL, dfL, d2fL});
    ctx->saved_data["rtol"] = r;
    ctx->saved_data["atol"] = a;
    ctx->set_materialize_grads(false);
    at::AutoDispatchBelowADInplaceOrView below;
    auto [gA, gf] = op.call(G, L, Q, fL, dfL, r, a);
    return {gA, gf};
  }
  static variable_list backward(AutogradContext* ctx, variable_list h) {
    TORCH_CHECK(!h[1].defined(), "safesvd::eigh_fn: second derivatives that mix the parameters of f with the "
                                 "matrix are not implemented");
    if (!h[0].defined()) return variable_list(9);
    const auto s = ctx->get_saved_variables();
    TORCH_CHECK(s[5].defined(), "safesvd::eigh_fn: the second derivative needs d2f");
    const Opt r = ctx->saved_data["rtol"].toOptional<double>(), a = ctx->saved_data["atol"].toOptional<double>();
    static const auto first = find_op<Tensors2(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                               const Tensor&, Opt, Opt)>("safesvd::_eigh_fn_backward");
    static const auto second = find_op<Fn3(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                           const Tensor&, const Tensor&, Opt, Opt)>("safesvd::_eigh_fn_second_order");
    at::AutoDispatchBelowADInplaceOrView below;
    const Tensor gG = std::get<0>(first.call(h[0], s[1], s[2], s[3], s[4], r, a));
    auto [gA, gf, gdf] = second.call(h[0], s[0], s[1], s[2], s[3], s[4], s[5], r, a);
    return {gG, gA, Tensor(), Tensor(), gf, gdf, Tensor(), Tensor(), Tensor()};
  }
};

struct EighFnFunction : public torch::autograd::Function<EighFnFunction> {
  static Tensor forward(AutogradContext* ctx, const Tensor& A, const Tensor& L, const Tensor& Q, const Tensor& fL,
                        const Tensor& dfL, const OptT& d2f, Opt r, Opt a) {
    const Tensor d2fL = d2f.value_or(Tensor());
    static const auto op = find_op<Tensor(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                          const OptT&, Opt, Opt)>("safesvd::eigh_fn");
    ctx->save_for_backward({A, L, Q, fL, dfL, d2fL});
    ctx->saved_data["rtol"] = r;
    ctx->saved_data["atol"] = a;
    at::AutoDispatchBelowADInplaceOrView below;
    return op.call(A, L, Q, fL, dfL, opt(d2fL), r, a);
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    const auto s = ctx->get_saved_variables();
    const Opt r = ctx->saved_data["rtol"].toOptional<double>(), a = ctx->saved_data["atol"].toOptional<double>();
    const auto out = EighFnBackward::apply(g[0], s[0], s[1], s[2], s[3], s[4], opt(s[5]), r, a);
    return {out[0], Tensor(), Tensor(), out[1], Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

struct SvdFnBackward : public torch::autograd::Function<SvdFnBackward> {
  static variable_list forward(AutogradContext* ctx, const Tensor& G, const Tensor& A, const Tensor& U,
                               const Tensor& S, const Tensor& Vh, const Tensor& fS, const Tensor& dfS,
                               const OptT& d2f, const OptT& df0_in, Opt r, Opt a) {
    const Tensor d2fS = d2f.value_or(Tensor()), df0 = df0_in.value_or(Tensor());
    static const auto op = find_op<Tensors2(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                            const Tensor&, Opt, Opt)>("safesvd::_svd_fn_backward");
    ctx->save_for_backward({G, U, S, Vh, fS, dfS, d2fS, df0});
    ctx->saved_data["rtol"] = r;
    ctx->saved_data["atol"] = a;
    ctx->set_materialize_grads(false);
    at::AutoDispatchBelowADInplaceOrView below;
    auto [gA, gf] = op.call(G, U, S, Vh, fS, dfS, r, a);
    return {gA, gf};
  }
  static variable_list backward(AutogradContext* ctx, variable_list h) {
    TORCH_CHECK(!h[1].defined(), "safesvd::svd_fn: second derivatives that mix the parameters of f with the "
                                 "matrix are not implemented");
    if (!h[0].defined()) return variable_list(11);
    const auto s = ctx->get_saved_variables();
    TORCH_CHECK(s[6].defined(), "safesvd::svd_fn: the second derivative needs d2f");
    const Opt r = ctx->saved_data["rtol"].toOptional<double>(), a = ctx->saved_data["atol"].toOptional<double>();
    static const auto first = find_op<Tensors2(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                               const Tensor&, const Tensor&, Opt, Opt)>("safesvd::_svd_fn_backward");
    static const auto second =
        find_op<Fn3(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                    const Tensor&, const Tensor&, const OptT&, Opt, Opt)>("safesvd::_svd_fn_second_order");
    at::AutoDispatchBelowADInplaceOrView below;
    const Tensor gG = std::get<0>(first.call(h[0], s[1], s[2], s[3], s[4], s[5], r, a));
    auto [gA, gf, gdf] = second.call(h[0], s[0], s[1], s[2], s[3], s[4], s[5], s[6], opt(s[7]), r, a);
    return {gG, gA, Tensor(), Tensor(), Tensor(), gf, gdf, Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

struct SvdFnFunction : public torch::autograd::Function<SvdFnFunction> {
  static Tensor forward(AutogradContext* ctx, const Tensor& A, const Tensor& U, const Tensor& S, const Tensor& Vh,
                        const Tensor& fS, const Tensor& dfS, const OptT& d2f, const OptT& df0_in, Opt r, Opt a) {
    const Tensor d2fS = d2f.value_or(Tensor()), df0 = df0_in.value_or(Tensor());
    static const auto op = find_op<Tensor(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                          const Tensor&, const OptT&, const OptT&, Opt, Opt)>("safesvd::svd_fn");
    ctx->save_for_backward({A, U, S, Vh, fS, dfS, d2fS, df0});
    ctx->saved_data["rtol"] = r;
    ctx->saved_data["atol"] = a;
    at::AutoDispatchBelowADInplaceOrView below;
    return op.call(A, U, S, Vh, fS, dfS, opt(d2fS), opt(df0), r, a);
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    const auto s = ctx->get_saved_variables();
    const Opt r = ctx->saved_data["rtol"].toOptional<double>(), a = ctx->saved_data["atol"].toOptional<double>();
    const auto out = SvdFnBackward::apply(g[0], s[0], s[1], s[2], s[3], s[4], s[5], opt(s[6]), opt(s[7]), r, a);
    return {out[0], Tensor(), Tensor(), Tensor(), out[1], Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

// sqrtm, invsqrtm, logm: the library's one definition of their values and domain
// check (`_spectral_function`, with the decomposition in `_eigh_spectral`,
// csrc/aten/fn.cpp), as in Python. The decomposition records nothing: the EighFn node
// carries A's gradient.
Tensor named_eigh_fn(const Tensor& A, const char* name) {
  static const auto op =
      find_op<std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor>(const Tensor&, c10::string_view, c10::string_view,
                                                                 bool)>("safesvd::_eigh_spectral");
  auto [L, Q, f, df, d2f] = op.call(A.detach(), "L", name, true);
  return EighFnFunction::apply(A, L, Q, f, df, opt(d2f), c10::nullopt, c10::nullopt);
}

}  // namespace

void set_gauge_mode(GaugeMode mode) {
  drain(0);  // checks queued under the previous mode report as it said
  g_gauge_mode.store(static_cast<int>(mode));
}
GaugeMode gauge_mode() { return static_cast<GaugeMode>(g_gauge_mode.load()); }

void flush_gauge_warnings() {
  size_t count;
  {
    const std::lock_guard<std::mutex> lock(g_pending_mutex);
    count = g_pending.size();
  }
  drain(count);
}

int64_t pending_gauge_checks() {
  const std::lock_guard<std::mutex> lock(g_pending_mutex);
  return static_cast<int64_t>(g_pending.size());
}

std::tuple<Tensor, Tensor, Tensor> svd(const Tensor& A, bool full_matrices, const GuardOptions& options) {
  const auto out = SvdFunction::apply(A, full_matrices, options);
  return {out[0], out[1], out[2]};
}

Tensor svdvals(const Tensor& A) { return std::get<1>(safesvd::svd(A)); }

std::tuple<Tensor, Tensor> eigh(const Tensor& A, const std::string& UPLO, const GuardOptions& options) {
  const auto out = EighFunction::apply(A, UPLO, options);
  return {out[0], out[1]};
}

Tensor svd_fn(const Tensor& A, const SpectralFunction& f, const SpectralFunction& df, const SpectralFunction& d2f,
              std::optional<double> rtol, std::optional<double> atol) {
  const char* name = "safesvd::svd_fn";
  auto [U, S, Vh] = safesvd::svd(A);
  const SpectralValues v = spectral_values(A, S, f, df, d2f, name);
  Tensor df0;
  if (A.size(-1) != A.size(-2) && S.size(-1) && v.d2f.defined())
    df0 = evaluate(df, at::zeros_like(S.detach().narrow(-1, 0, 1)), "df", name);
  return SvdFnFunction::apply(A, U, S, Vh, v.f, v.df, opt(v.d2f), opt(df0), rtol, atol);
}

Tensor eigh_fn(const Tensor& A, const SpectralFunction& f, const SpectralFunction& df, const SpectralFunction& d2f,
               const std::string& UPLO, std::optional<double> rtol, std::optional<double> atol) {
  auto [L, Q] = safesvd::eigh(A, UPLO);
  const SpectralValues v = spectral_values(A, L, f, df, d2f, "safesvd::eigh_fn");
  return EighFnFunction::apply(A, L, Q, v.f, v.df, opt(v.d2f), rtol, atol);
}

Tensor sqrtm(const Tensor& A) { return named_eigh_fn(A, "sqrtm"); }
Tensor invsqrtm(const Tensor& A) { return named_eigh_fn(A, "invsqrtm"); }
Tensor logm(const Tensor& A) { return named_eigh_fn(A, "logm"); }

// As Python's polar: one _svd_polar call on A.detach() (svd, f = 1, the rank-deficiency
// test; svd_fn carries the whole gradient of A), and the not-unique report in the gauge
// mode: none in Ignore, an error in Raise, a warning in Warn, where reading the test does
// not wait for a device (mode Warn never waits: on CUDA it reports nothing here).
std::tuple<Tensor, Tensor> polar(const Tensor& A) {
  static const auto op =
      find_op<std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>(const Tensor&, bool, bool)>(
          "safesvd::_svd_polar");
  auto [U, S, Vh, ones, zeros, rank_deficient, unused] = op.call(A.detach(), false, false);
  const auto mode = gauge_mode();
  if (mode != GaugeMode::Ignore && !(mode == GaugeMode::Warn && reads_block(rank_deficient)) &&
      rank_deficient.numel() > 0 && rank_deficient.any().item<bool>()) {
    const char* msg =
        "safesvd::polar: A is rank deficient, so its polar factor U V^H is not unique. safesvd returns the finite "
        "guarded value.";
    report_in_mode(mode, msg);
  }
  const Tensor df0 = A.size(-1) != A.size(-2) ? zeros.narrow(-1, 0, S.size(-1) ? 1 : 0) : Tensor();
  const Tensor Q = SvdFnFunction::apply(A, U, S, Vh, ones, zeros, opt(zeros), opt(df0), c10::nullopt, c10::nullopt);
  const Tensor P = at::matmul(Q.mH(), A);
  return {Q, 0.5 * (P + P.mH())};
}

}  // namespace safesvd

extern "C" SAFESVD_TESTING_API int safesvd_testing_gauge_reads_block(int on) {
  return safesvd::g_reads_block_for_testing.exchange(on ? 1 : 0);
}

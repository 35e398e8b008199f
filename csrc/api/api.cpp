// The public C++ API (include/safesvd/safesvd.h): gradients for LibTorch users.
//
// Each function wraps the operators in a torch::autograd::Function. The
// operators are called below the Autograd key (AutoDispatchBelowADInplaceOrView),
// so an autograd kernel registered for them from Python never runs here, and
// these Functions never run for torch.ops.safesvd.* callers: the two wirings
// never both apply (docs/architecture.md, "C++ API").
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>

#include <atomic>
#include <sstream>

#include "../../include/safesvd/safesvd.h"
#include "../aten/common.h"

namespace safesvd {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using Opt = c10::optional<double>;

namespace {

std::atomic<int> g_gauge_mode{static_cast<int>(GaugeMode::Warn)};

template <typename Sig>
c10::TypedOperatorHandle<Sig> find_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Sig>();
}

std::tuple<Tensor, Tensor, Tensor> svd_op(const Tensor& A, bool full, const std::string& guard, Opt r, Opt a) {
  static const auto op = find_op<std::tuple<Tensor, Tensor, Tensor>(const Tensor&, bool, c10::string_view, Opt, Opt,
                                                                    c10::optional<c10::string_view>)>("safesvd::svd");
  at::AutoDispatchBelowADInplaceOrView below;
  return op.call(A, full, guard, r, a, c10::nullopt);
}
std::tuple<Tensor, Tensor> eigh_op(const Tensor& A, const std::string& UPLO, const std::string& guard, Opt r, Opt a) {
  static const auto op = find_op<std::tuple<Tensor, Tensor>(const Tensor&, c10::string_view, c10::string_view, Opt,
                                                             Opt, c10::optional<c10::string_view>)>("safesvd::eigh");
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

OptT opt(const Tensor& t) { return t.defined() ? OptT(t) : c10::nullopt; }

// The gauge check (docs/math.md, "Gauge check"); reads the (..., 3) residuals on the host.
void check_gauge(const Tensor& gauge, const Tensor& spectrum, const char* what, const std::string& guard, Opt rtol,
                 Opt atol) {
  const auto mode = static_cast<GaugeMode>(g_gauge_mode.load());
  if (mode == GaugeMode::Ignore || gauge.numel() == 0) return;
  const double threshold = resolve_guard(guard, spectrum.scalar_type(), rtol, atol, what).gauge_threshold;
  const Tensor flat = gauge.detach().reshape({-1, 3}).to(at::kDouble).cpu();
  const int64_t b = flat.select(1, 0).argmax().item<int64_t>();
  const double residual = flat[b][0].item<double>();
  if (!(residual > threshold)) return;
  std::ostringstream msg;
  msg << what << ": the loss depends on an arbitrary basis (pair (" << flat[b][1].item<double>() << ", "
      << flat[b][2].item<double>() << ") of matrix " << b << ", relative residual " << residual
      << "); the gradient is not unique and the minimum-norm one is returned (docs/math.md, \"Gauge check\").";
  TORCH_CHECK(mode != GaugeMode::Raise, msg.str());
  TORCH_WARN(msg.str());
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
      TORCH_CHECK(mode != GaugeMode::Raise, msg);
      TORCH_WARN(msg);
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

// f'(L) of sqrt taken at max(L, eps max|L|), without forming eps max|L| (docs/math.md,
// "sqrtm at zero eigenvalues"); max|L| = 0 counts as 1.
std::pair<Tensor, Tensor> sqrt_scale(const Tensor& L) {
  Tensor top = L.size(-1) ? L.abs().amax(-1, true) : at::ones(with_trailing(batch_shape(L, 1), {1}), L.options());
  top = at::where(top > 0, top, at::ones_like(top));
  const double eps = L.scalar_type() == at::kFloat ? 1.1920928955078125e-07 : 2.220446049250313e-16;
  return {top, (L / top).clamp_min(eps)};
}

void check_definite(const Tensor& L, bool positive_definite, const char* name) {
  if (L.numel() == 0 || !L.device().is_cpu()) return;
  const Tensor low = L.detach().select(-1, 0);
  const double eps = L.scalar_type() == at::kFloat ? 1.1920928955078125e-07 : 2.220446049250313e-16;
  const Tensor bad = positive_definite ? low.le(0) : low.lt(-std::sqrt(eps) * L.detach().abs().amax(-1));
  TORCH_CHECK_VALUE(!bad.any().item<bool>(), name, ": expected a Hermitian ",
                    positive_definite ? "positive definite" : "positive semidefinite", " matrix");
}

Tensor eigh_fn_checked(const Tensor& A, const SpectralFunction& f, const SpectralFunction& df,
                       const SpectralFunction& d2f, const std::string& UPLO, Opt r, Opt a, const char* name,
                       int definite) {
  auto [L, Q] = safesvd::eigh(A, UPLO);
  if (definite >= 0) check_definite(L, definite == 1, name);
  const SpectralValues v = spectral_values(A, L, f, df, d2f, name);
  return EighFnFunction::apply(A, L, Q, v.f, v.df, opt(v.d2f), r, a);
}

}  // namespace

void set_gauge_mode(GaugeMode mode) { g_gauge_mode.store(static_cast<int>(mode)); }
GaugeMode gauge_mode() { return static_cast<GaugeMode>(g_gauge_mode.load()); }

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
  return eigh_fn_checked(A, f, df, d2f, UPLO, rtol, atol, "safesvd::eigh_fn", -1);
}

Tensor sqrtm(const Tensor& A) {
  return eigh_fn_checked(
      A, [](const Tensor& L) { return L.clamp_min(0).sqrt(); },
      [](const Tensor& L) {
        auto [top, r] = sqrt_scale(L);
        return 0.5 / (top.sqrt() * r.sqrt());
      },
      [](const Tensor& L) {
        auto [top, r] = sqrt_scale(L);
        return -0.25 / (top.sqrt() * top * r * r.sqrt());
      },
      "L", c10::nullopt, c10::nullopt, "safesvd::sqrtm", 0);
}

Tensor invsqrtm(const Tensor& A) {
  return eigh_fn_checked(
      A, [](const Tensor& L) { return L.rsqrt(); }, [](const Tensor& L) { return -0.5 * L.rsqrt() / L; },
      [](const Tensor& L) { return 0.75 * L.rsqrt() / (L * L); }, "L", c10::nullopt, c10::nullopt,
      "safesvd::invsqrtm", 1);
}

Tensor logm(const Tensor& A) {
  return eigh_fn_checked(
      A, [](const Tensor& L) { return L.log(); }, [](const Tensor& L) { return L.reciprocal(); },
      [](const Tensor& L) { return -(L * L).reciprocal(); }, "L", c10::nullopt, c10::nullopt, "safesvd::logm", 1);
}

std::tuple<Tensor, Tensor> polar(const Tensor& A) {
  auto [U, S, Vh] = safesvd::svd(A);
  const Tensor ones = at::ones_like(S.detach()), zeros = at::zeros_like(S.detach());
  const Tensor df0 = A.size(-1) != A.size(-2) ? zeros.narrow(-1, 0, S.size(-1) ? 1 : 0) : Tensor();
  const Tensor Q = SvdFnFunction::apply(A, U, S, Vh, ones, zeros, opt(zeros), opt(df0), c10::nullopt, c10::nullopt);
  const Tensor P = at::matmul(Q.mH(), A);
  return {Q, 0.5 * (P + P.mH())};
}

}  // namespace safesvd

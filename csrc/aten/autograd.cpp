// The Python package's fast autograd path for svd, eigh, svd_fn and eigh_fn
// (docs/architecture.md, "The C++ nodes of svd, eigh, svd_fn and eigh_fn"): `_svd_autograd`, `_eigh_autograd`,
// `_svd_fn_autograd`, `_eigh_fn_autograd` run the operator below the Autograd key inside a
// C++ autograd node, whose backward calls the Python backward (python/safesvd/_ops.py,
// svd_backward, eigh_backward, svd_fn_backward, eigh_fn_backward) through the hook
// operators `_*_backward_hook`, which only Python registers.
//
// Why: a Python torch.autograd.Function costs ~49 us a forward + backward (the 2-core
// Intel Xeon, one thread), a C++ node ~15 us; at small batches that fixed cost was most of
// a call, and safesvd was slower than torch below B = 8. The node decides nothing of the
// math: it saves what the Function saves, and every decision of the backward (create_graph,
// the composite or the exact second order, the second-order and gauge checks and their
// modes) stays in the one Python function that the Python Function calls too. Python
// (_ops._takes_node) chooses this path only where the Function adds nothing: no
// forward-mode level, torch.func transform, dispatch mode (fake tensors, tracing) or torch
// function mode, plain tensor (or nn.Parameter) arguments.
//
// The backward of svd and eigh skips Python where Python would only call the backward
// operator and find nothing to report (backward_in_cpp): a first-order backward of plain
// CPU tensors, gradients not recorded, while Python (python/safesvd/_gauge.py) says that
// none of its state needs to see it (no gauge check queued for a later report). Then the
// node calls the operator and scans the gauge itself, and calls Python (the
// _gauge_check_hook operator, _gauge.check) only when a residual is above the threshold.
// The same result bit for bit; at B = 1 it saves 26-40 us a forward + backward. The
// matrix functions' nodes do the same (they have no gauge to check; 4-10 us at B = 1).
//
// Not the C++ API's Functions (csrc/api/api.cpp): those own a C++ gauge check with its
// own mode, for LibTorch programs without Python.
#include <torch/autograd.h>
#include <torch/library.h>

#include <atomic>

#include "common.h"

namespace safesvd {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using Opt = c10::optional<double>;
using OptT = c10::optional<Tensor>;
using OptS = c10::optional<c10::string_view>;

void save_tolerances(AutogradContext* ctx, Opt rtol, Opt atol) {
  ctx->saved_data["rtol"] = rtol;
  ctx->saved_data["atol"] = atol;
}
Opt saved_rtol(AutogradContext* ctx) { return ctx->saved_data["rtol"].toOptional<double>(); }
Opt saved_atol(AutogradContext* ctx) { return ctx->saved_data["atol"].toOptional<double>(); }
void save_guard(AutogradContext* ctx, c10::string_view guard, Opt rtol, Opt atol) {
  ctx->saved_data["guard"] = std::string(guard);
  save_tolerances(ctx, rtol, atol);
}

// The backward's result for a forward of `inputs` arguments: gA for A (the first), gf for
// the argument at f_index (the matrix functions' f), undefined for the rest.
variable_list gradients(size_t inputs, Tensor gA, size_t f_index = 0, Tensor gf = Tensor()) {
  variable_list out(inputs);
  out[0] = std::move(gA);
  if (f_index > 0) out[f_index] = std::move(gf);
  return out;
}

// On while Python allows the backward without it (set by _set_cpp_backward; off until the
// Python package turns it on, so a program that loads the library alone keeps the hooks).
std::atomic<bool>& cpp_backward() {
  static std::atomic<bool> on{false};
  return on;
}

bool set_cpp_backward(bool on) { return cpp_backward().exchange(on); }

// A tensor that Python would treat as plain data: a dense CPU tensor with no other
// dispatch key (not a subclass, fake, functional, batched or zero tensor, no functorch
// wrapper) and no forward-mode tangent.
bool plain_cpu(const Tensor& t) {
  static const c10::DispatchKeySet plain{c10::DispatchKey::CPU,        c10::DispatchKey::AutogradCPU,
                                         c10::DispatchKey::ADInplaceOrView, c10::DispatchKey::AutocastCPU,
                                         c10::DispatchKey::Conjugate,  c10::DispatchKey::Negative};
  // (Subtracting a key set removes its functionalities and keeps the backend bits.)
  static const c10::DispatchKeySet cpu{c10::BackendComponent::CPUBit};
  return !t.defined() || (t.layout() == at::kStrided && (t.key_set() - plain) == cpu &&
                          !t._fw_grad(/*level=*/0).defined());
}

// Python's backward would compute exactly what the operator computes (python/safesvd/_ops.py,
// _differentiable_backward is False) and has no state to update: no gradient recorded
// (create_graph=False), no torch.func transform or dispatch mode active, plain CPU tensors.
bool backward_in_cpp(std::initializer_list<Tensor> tensors) {
  if (!cpp_backward().load(std::memory_order_relaxed) || at::GradMode::is_enabled() ||
      c10::impl::tls_is_dispatch_key_included(c10::DispatchKey::FuncTorchDynamicLayerFrontMode) ||
      c10::impl::tls_is_dispatch_key_included(c10::DispatchKey::Python))
    return false;
  for (const Tensor& t : tensors)
    if (!plain_cpu(t)) return false;
  return true;
}

// The gauge check of python/safesvd/_gauge.py (check) in its common case: no residual above
// the threshold, nothing to report in any mode. Otherwise Python reports (or raises, or
// ignores, as its mode says).
void check_gauge(const Tensor& gauge, const Tensor& spectrum, const char* op, const char* spectrum_name, Opt rtol) {
  const double threshold =
      resolve_guard("pinv", c10::toRealValueType(spectrum.scalar_type()), rtol, c10::nullopt, op).gauge_threshold;
  if (gauge_worst(gauge) <= threshold) return;
  static const auto hook =
      find_op<void(const Tensor&, const Tensor&, c10::string_view, c10::string_view, Opt)>("safesvd::_gauge_check_hook");
  hook.call(gauge, spectrum, op, spectrum_name, rtol);
}

struct SvdNode : public torch::autograd::Function<SvdNode> {
  static variable_list forward(AutogradContext* ctx, const Tensor& A, bool full_matrices, c10::string_view guard,
                               Opt rtol, Opt atol, OptS driver) {
    static const auto op = find_op<SvdOpSignature>("safesvd::svd");
    at::AutoDispatchBelowADInplaceOrView below;
    auto [U, S, Vh] = op.call(A, full_matrices, guard, rtol, atol, driver);
    ctx->save_for_backward({U, S, Vh});
    save_guard(ctx, guard, rtol, atol);
    ctx->set_materialize_grads(false);
    return {U, S, Vh};
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    static const auto hook = find_op<Tensor(const OptT&, const OptT&, const OptT&, const Tensor&, const Tensor&,
                                            const Tensor&, c10::string_view, Opt, Opt)>("safesvd::_svd_backward_hook");
    if (!g[0].defined() && !g[1].defined() && !g[2].defined()) return gradients(6, Tensor());  // e.g. only svd_fn
    const auto saved = ctx->get_saved_variables();
    const std::string& guard = ctx->saved_data["guard"].toStringRef();
    if (backward_in_cpp({g[0], g[1], g[2], saved[0], saved[1], saved[2]})) {
      static const auto op = find_op<std::tuple<Tensor, Tensor>(const OptT&, const OptT&, const OptT&, const Tensor&,
                                                                const Tensor&, const Tensor&, c10::string_view, Opt,
                                                                Opt)>("safesvd::_svd_backward");
      at::AutoDispatchBelowADInplaceOrView below;
      auto [gA, gauge] = op.call(opt(g[0]), opt(g[1]), opt(g[2]), saved[0], saved[1], saved[2], guard,
                                 saved_rtol(ctx), saved_atol(ctx));
      check_gauge(gauge, saved[1], "safesvd.svd backward", "S", saved_rtol(ctx));
      return gradients(6, gA);
    }
    return gradients(6, hook.call(opt(g[0]), opt(g[1]), opt(g[2]), saved[0], saved[1], saved[2], guard,
                                  saved_rtol(ctx), saved_atol(ctx)));
  }
};

struct EighNode : public torch::autograd::Function<EighNode> {
  static variable_list forward(AutogradContext* ctx, const Tensor& A, c10::string_view UPLO, c10::string_view guard,
                               Opt rtol, Opt atol, OptS driver) {
    static const auto op = find_op<EighOpSignature>("safesvd::eigh");
    at::AutoDispatchBelowADInplaceOrView below;
    auto [L, Q] = op.call(A, UPLO, guard, rtol, atol, driver);
    ctx->save_for_backward({L, Q});
    save_guard(ctx, guard, rtol, atol);
    ctx->set_materialize_grads(false);
    return {L, Q};
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    static const auto hook = find_op<Tensor(const OptT&, const OptT&, const Tensor&, const Tensor&, c10::string_view,
                                            Opt, Opt)>("safesvd::_eigh_backward_hook");
    if (!g[0].defined() && !g[1].defined()) return gradients(6, Tensor());
    const auto saved = ctx->get_saved_variables();
    const std::string& guard = ctx->saved_data["guard"].toStringRef();
    if (backward_in_cpp({g[0], g[1], saved[0], saved[1]})) {
      static const auto op = find_op<std::tuple<Tensor, Tensor>(const OptT&, const OptT&, const Tensor&, const Tensor&,
                                                                c10::string_view, Opt, Opt)>("safesvd::_eigh_backward");
      at::AutoDispatchBelowADInplaceOrView below;
      auto [gA, gauge] = op.call(opt(g[0]), opt(g[1]), saved[0], saved[1], guard, saved_rtol(ctx), saved_atol(ctx));
      check_gauge(gauge, saved[0], "safesvd.eigh backward", "L", saved_rtol(ctx));
      return gradients(6, gA);
    }
    return gradients(6, hook.call(opt(g[0]), opt(g[1]), saved[0], saved[1], guard, saved_rtol(ctx), saved_atol(ctx)));
  }
};

// The matrix functions: the node's inputs are A (the gradient's edge), the decomposition
// (taken of A.detach(), python/safesvd/_functions.py) and f, f', f'' on the spectrum (f(S)
// gets the cotangent its parameters need); the backward returns gA and gf.
struct SvdFnNode : public torch::autograd::Function<SvdFnNode> {
  static Tensor forward(AutogradContext* ctx, const Tensor& A, const Tensor& U, const Tensor& S, const Tensor& Vh,
                        const Tensor& fS, const Tensor& dfS, const OptT& d2fS, const OptT& df0, Opt rtol, Opt atol) {
    static const auto op = find_op<Tensor(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                          const Tensor&, const OptT&, const OptT&, Opt, Opt)>("safesvd::svd_fn");
    at::AutoDispatchBelowADInplaceOrView below;
    Tensor Y = op.call(A, U, S, Vh, fS, dfS, d2fS, df0, rtol, atol);
    ctx->save_for_backward({A, U, S, Vh, fS, dfS, d2fS.value_or(Tensor()), df0.value_or(Tensor())});
    save_tolerances(ctx, rtol, atol);
    return Y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    static const auto hook =
        find_op<std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                           const Tensor&, const Tensor&, const OptT&, const OptT&, Opt, Opt)>(
            "safesvd::_svd_fn_backward_hook");
    const auto s = ctx->get_saved_variables();
    if (backward_in_cpp({g[0], s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]})) {
      static const auto op = find_op<std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&,
                                                                const Tensor&, const Tensor&, const Tensor&, Opt,
                                                                Opt)>("safesvd::_svd_fn_backward");
      at::AutoDispatchBelowADInplaceOrView below;
      auto [gA, gf] = op.call(g[0], s[1], s[2], s[3], s[4], s[5], saved_rtol(ctx), saved_atol(ctx));
      return gradients(10, gA, 4, gf);
    }
    auto [gA, gf] = hook.call(g[0], s[0], s[1], s[2], s[3], s[4], s[5], opt(s[6]), opt(s[7]), saved_rtol(ctx),
                              saved_atol(ctx));
    return gradients(10, gA, 4, gf);  // A, U, S, Vh, fS, ...
  }
};

struct EighFnNode : public torch::autograd::Function<EighFnNode> {
  static Tensor forward(AutogradContext* ctx, const Tensor& A, const Tensor& L, const Tensor& Q, const Tensor& fL,
                        const Tensor& dfL, const OptT& d2fL, Opt rtol, Opt atol) {
    static const auto op = find_op<Tensor(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                          const OptT&, Opt, Opt)>("safesvd::eigh_fn");
    at::AutoDispatchBelowADInplaceOrView below;
    Tensor Y = op.call(A, L, Q, fL, dfL, d2fL, rtol, atol);
    ctx->save_for_backward({A, L, Q, fL, dfL, d2fL.value_or(Tensor())});
    save_tolerances(ctx, rtol, atol);
    return Y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    static const auto hook =
        find_op<std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                           const Tensor&, const OptT&, Opt, Opt)>("safesvd::_eigh_fn_backward_hook");
    const auto s = ctx->get_saved_variables();
    if (backward_in_cpp({g[0], s[0], s[1], s[2], s[3], s[4], s[5]})) {
      static const auto op = find_op<std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&,
                                                                const Tensor&, const Tensor&, Opt, Opt)>(
          "safesvd::_eigh_fn_backward");
      at::AutoDispatchBelowADInplaceOrView below;
      auto [gA, gf] = op.call(g[0], s[1], s[2], s[3], s[4], saved_rtol(ctx), saved_atol(ctx));
      return gradients(8, gA, 3, gf);
    }
    auto [gA, gf] = hook.call(g[0], s[0], s[1], s[2], s[3], s[4], opt(s[5]), saved_rtol(ctx), saved_atol(ctx));
    return gradients(8, gA, 3, gf);  // A, L, Q, fL, ...
  }
};

std::tuple<Tensor, Tensor, Tensor> svd_autograd(const Tensor& A, bool full_matrices, c10::string_view guard, Opt rtol,
                                                Opt atol, OptS driver) {
  auto out = SvdNode::apply(A, full_matrices, guard, rtol, atol, driver);
  return {out[0], out[1], out[2]};
}

std::tuple<Tensor, Tensor> eigh_autograd(const Tensor& A, c10::string_view UPLO, c10::string_view guard, Opt rtol,
                                         Opt atol, OptS driver) {
  auto out = EighNode::apply(A, UPLO, guard, rtol, atol, driver);
  return {out[0], out[1]};
}

Tensor svd_fn_autograd(const Tensor& A, const Tensor& U, const Tensor& S, const Tensor& Vh, const Tensor& fS,
                       const Tensor& dfS, const OptT& d2fS, const OptT& df0, Opt rtol, Opt atol) {
  return SvdFnNode::apply(A, U, S, Vh, fS, dfS, d2fS, df0, rtol, atol);
}

Tensor eigh_fn_autograd(const Tensor& A, const Tensor& L, const Tensor& Q, const Tensor& fL, const Tensor& dfL,
                        const OptT& d2fL, Opt rtol, Opt atol) {
  return EighFnNode::apply(A, L, Q, fL, dfL, d2fL, rtol, atol);
}

}  // namespace

TORCH_LIBRARY_IMPL(safesvd, CompositeImplicitAutograd, m) {
  m.impl("_svd_autograd", &svd_autograd);
  m.impl("_eigh_autograd", &eigh_autograd);
  m.impl("_svd_fn_autograd", &svd_fn_autograd);
  m.impl("_eigh_fn_autograd", &eigh_fn_autograd);
  m.impl("_set_cpp_backward", &set_cpp_backward);
}

}  // namespace safesvd

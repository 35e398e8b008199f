// The Python package's fast autograd path for svd and eigh (docs/architecture.md,
// "Autograd in Python"): `_svd_autograd` / `_eigh_autograd` run the operator below the
// Autograd key inside a C++ autograd node, whose backward calls the Python backward
// (python/safesvd/_ops.py, svd_backward / eigh_backward) through the hook operators
// `_svd_backward_hook` / `_eigh_backward_hook`, which only Python registers.
//
// Why: a Python torch.autograd.Function costs ~49 us a forward + backward (the 2-core
// Intel Xeon, one thread), a C++ node ~15 us; at small batches that fixed cost was most of
// a call, and safesvd was slower than torch below B = 8. The node decides nothing: it
// saves the outputs and the guard options, and every decision of the backward
// (create_graph, the composite, the second-order check, the gauge check and its modes)
// stays in the one Python function that the Python Function calls too. The Python
// Autograd kernel (_ops._autograd_kernel) chooses this path only where the Python
// Function adds nothing: no forward-mode level, no torch.func transform, no dispatch
// mode (fake tensors, tracing), a plain tensor input.
//
// Not the C++ API's Functions (csrc/api/api.cpp): those own a C++ gauge check with its
// own mode, for LibTorch programs without Python.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

namespace safesvd {
namespace {

using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using Opt = c10::optional<double>;
using OptT = c10::optional<Tensor>;
using OptS = c10::optional<c10::string_view>;

template <typename Sig>
c10::TypedOperatorHandle<Sig> find_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Sig>();
}

OptT opt(const Tensor& t) { return t.defined() ? OptT(t) : c10::nullopt; }

void save_guard(AutogradContext* ctx, c10::string_view guard, Opt rtol, Opt atol) {
  ctx->saved_data["guard"] = std::string(guard);
  ctx->saved_data["rtol"] = rtol;
  ctx->saved_data["atol"] = atol;
}

struct SvdNode : public torch::autograd::Function<SvdNode> {
  static variable_list forward(AutogradContext* ctx, const Tensor& A, bool full_matrices, c10::string_view guard,
                               Opt rtol, Opt atol, OptS driver) {
    static const auto op = find_op<std::tuple<Tensor, Tensor, Tensor>(const Tensor&, bool, c10::string_view, Opt, Opt,
                                                                      OptS)>("safesvd::svd");
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
    variable_list out(6);
    if (!g[0].defined() && !g[1].defined() && !g[2].defined()) return out;  // e.g. only through svd_fn
    const auto saved = ctx->get_saved_variables();
    out[0] = hook.call(opt(g[0]), opt(g[1]), opt(g[2]), saved[0], saved[1], saved[2],
                       ctx->saved_data["guard"].toStringRef(), ctx->saved_data["rtol"].toOptional<double>(),
                       ctx->saved_data["atol"].toOptional<double>());
    return out;
  }
};

struct EighNode : public torch::autograd::Function<EighNode> {
  static variable_list forward(AutogradContext* ctx, const Tensor& A, c10::string_view UPLO, c10::string_view guard,
                               Opt rtol, Opt atol, OptS driver) {
    static const auto op = find_op<std::tuple<Tensor, Tensor>(const Tensor&, c10::string_view, c10::string_view, Opt,
                                                               Opt, OptS)>("safesvd::eigh");
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
    variable_list out(6);
    if (!g[0].defined() && !g[1].defined()) return out;
    const auto saved = ctx->get_saved_variables();
    out[0] = hook.call(opt(g[0]), opt(g[1]), saved[0], saved[1], ctx->saved_data["guard"].toStringRef(),
                       ctx->saved_data["rtol"].toOptional<double>(), ctx->saved_data["atol"].toOptional<double>());
    return out;
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

}  // namespace

TORCH_LIBRARY_IMPL(safesvd, CompositeImplicitAutograd, m) {
  m.impl("_svd_autograd", &svd_autograd);
  m.impl("_eigh_autograd", &eigh_autograd);
}

}  // namespace safesvd

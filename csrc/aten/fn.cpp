// The matrix functions svd_fn / eigh_fn (docs/math.md, "Matrix functions"):
// forward, first-order backward (fused per matrix, or batched BLAS with the
// device's X builder), and the exact second order. Device generic.
#include <torch/library.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <sstream>

#include "dispatch.h"

namespace safesvd {
namespace {

void check_optional_like(const c10::optional<Tensor>& t, const Tensor& like, const char* op, const char* name) {
  check_cotangent(t, like, op, name);
}

// U diag(f) Vh (Vh undefined: U diag(f) U^H): the device's kernel where it takes it, else
// batched BLAS.
Tensor product_with_spectrum(const DeviceKernels& dev, const Tensor& U, const Tensor& Vh, const Tensor& f) {
  if (dev.fn_forward) {
    Tensor Y = at::empty(with_trailing(batch_shape(U), {U.size(-2), Vh.defined() ? Vh.size(-1) : U.size(-2)}),
                         U.options());
    if (dev.fn_forward(U, Vh, f, Y)) return Y;
  }
  return at::matmul(U * f.unsqueeze(-2), Vh.defined() ? Vh : U.mH());
}

Tensor svd_fn_forward(const Tensor& A, const Tensor& U, const Tensor& S, const Tensor& Vh, const Tensor& fS,
                      const Tensor& dfS, const c10::optional<Tensor>& d2fS, const c10::optional<Tensor>& df0,
                      c10::optional<double> rtol, c10::optional<double> atol) {
  const char* op = "safesvd.svd_fn";
  const BelowAutograd below;
  check_fn_args(Tensor(), U, S, Vh, fS, dfS, op);
  check_optional_like(d2fS, S, op, "d2f(S)");
  TORCH_CHECK_VALUE(A.dim() >= 2 && A.size(-2) == U.size(-2) && A.size(-1) == Vh.size(-1), op, ": A ",
                    A.sizes(), " does not match its decomposition");
  resolve_divided_difference(S.scalar_type(), rtol, atol, op);
  return product_with_spectrum(device_kernels(U.device(), op), U, Vh, fS);
}

Tensor eigh_fn_forward(const Tensor& A, const Tensor& L, const Tensor& Q, const Tensor& fL, const Tensor& dfL,
                       const c10::optional<Tensor>& d2fL, c10::optional<double> rtol, c10::optional<double> atol) {
  const char* op = "safesvd.eigh_fn";
  const BelowAutograd below;
  check_fn_args(Tensor(), Q, L, Q.mH(), fL, dfL, op);
  check_optional_like(d2fL, L, op, "d2f(L)");
  TORCH_CHECK_VALUE(A.sizes() == Q.sizes(), op, ": A ", A.sizes(), " does not match Q ", Q.sizes());
  resolve_divided_difference(L.scalar_type(), rtol, atol, op);
  return product_with_spectrum(device_kernels(Q.device(), op), Q, Tensor(), fL);
}

// gA and gf (the cotangent of f(S), for parameters of f) of Y = U diag(f(S)) V^H.
std::tuple<Tensor, Tensor> svd_fn_backward(const Tensor& G, const Tensor& U, const Tensor& S, const Tensor& Vh,
                                           const Tensor& fS, const Tensor& dfS, c10::optional<double> rtol,
                                           c10::optional<double> atol) {
  const char* op = "safesvd._svd_fn_backward";
  const BelowAutograd below;
  check_fn_args(G, U, S, Vh, fS, dfS, op);
  const auto [rt, at_] = resolve_divided_difference(S.scalar_type(), rtol, atol, op);
  const int64_t m = U.size(-2), n = Vh.size(-1), k = S.size(-1);
  if (k == 0) return {at::zeros_like(G), at::zeros_like(S)};
  const DeviceKernels& dev = device_kernels(U.device(), op);
  const FnBackwardArgs a{U.reshape({-1, m, k}), Vh.reshape({-1, k, n}), G.reshape({-1, m, n}),
                         S.reshape({-1, k}), fS.reshape({-1, k}), dfS.reshape({-1, k}), m, n, k, rt, at_};
  const int64_t B = a.S.size(0);
  Tensor gA = empty_output({B, m, n}, U.options()), gf = empty_output({B, k}, S.options());
  if (dev.fn_backward_fused ? dev.fn_backward_fused(U, m, n) : std::max(m, n) <= dev.fused_max_dim) {
    dev.svd_fn_backward_fused(a, gA, gf);
  } else {  // batched BLAS, a slice of the batch at a time on the CPU (in_backward_slices)
    const bool tall = m > k, wide = n > k;
    in_backward_slices(U, B, std::max(m, n) * k * U.element_size(), [&](int64_t b0, int64_t b1) {
      const auto part = [&](const Tensor& t) { return batch_slice(t, b0, b1); };
      const Tensor Up = part(a.U), Vhp = part(a.Vh), Gp = part(a.G), V = Vhp.mH();
      // The products through device_bmm, which decides whether the device's own kernel takes
      // them (on the CPU: real, square, n <= 64; it makes the row-major copy of a right
      // factor it needs, Vh here, itself).
      const Tensor GV = tall ? device_bmm(dev, Gp, V, Tensor()) : Tensor();
      const Tensor UhG = tall ? Tensor() : device_bmm(dev, Up.mH(), Gp, Tensor());
      const Tensor M = tall ? device_bmm(dev, Up.mH(), GV, Tensor())
                            : device_bmm(dev, UhG, V, Tensor());
      Tensor X = empty_output(M.sizes(), M.options()), F = empty_output({b1 - b0, k}, S.options()),
             gf_part = part(gf), out = part(gA);
      dev.fn_build_X({true, M, part(a.S).contiguous(), part(a.fS).contiguous(), part(a.dfS).contiguous(), rt, at_},
                     X, F, gf_part);
      if (tall)  // U X Vh + (I - U U^H) G V F Vh
        at::matmul_out(out, at::matmul(Up, X) + (GV - at::matmul(Up, M)) * F.unsqueeze(-2), Vhp);
      else if (wide)  // U X Vh + U F U^H G (I - V V^H)
        at::matmul_out(out, Up, at::matmul(X, Vhp) + F.unsqueeze(-1) * (UhG - at::matmul(M, Vhp)));
      else
        bmm_into(dev, Up, device_bmm(dev, X, Vhp, UhG), out);
    });
  }
  return {gA.reshape(G.sizes()), gf.reshape(S.sizes())};
}

std::tuple<Tensor, Tensor> eigh_fn_backward(const Tensor& G, const Tensor& L, const Tensor& Q, const Tensor& fL,
                                            const Tensor& dfL, c10::optional<double> rtol,
                                            c10::optional<double> atol) {
  const char* op = "safesvd._eigh_fn_backward";
  const BelowAutograd below;
  check_fn_args(G, Q, L, Q.mH(), fL, dfL, op);
  const auto [rt, at_] = resolve_divided_difference(L.scalar_type(), rtol, atol, op);
  const int64_t n = L.size(-1);
  if (n == 0) return {at::zeros_like(G), at::zeros_like(L)};
  const DeviceKernels& dev = device_kernels(Q.device(), op);
  const FnBackwardArgs a{Q.reshape({-1, n, n}), Tensor(), G.reshape({-1, n, n}), L.reshape({-1, n}),
                         fL.reshape({-1, n}), dfL.reshape({-1, n}), n, n, n, rt, at_};
  const int64_t B = a.S.size(0);
  Tensor gA = empty_output({B, n, n}, Q.options()), gf = empty_output({B, n}, L.options());
  if (dev.fn_backward_fused ? dev.fn_backward_fused(Q, n, n) : n <= dev.fused_max_dim) {
    dev.eigh_fn_backward_fused(a, gA, gf);
  } else {  // batched BLAS, a slice of the batch at a time on the CPU (in_backward_slices)
    in_backward_slices(Q, B, n * n * Q.element_size(), [&](int64_t b0, int64_t b1) {
      const auto part = [&](const Tensor& t) { return batch_slice(t, b0, b1); };
      // The four square products through device_bmm (the CPU's own kernel for real n <= 64,
      // which makes the row-major copy of Q it needs as a right factor itself).
      const Tensor Qp = part(a.U), Qh = Qp.mH();
      const Tensor GQ = device_bmm(dev, part(a.G), Qp, Tensor());
      const Tensor T = device_bmm(dev, Qh, GQ, Tensor());
      Tensor X = empty_output(T.sizes(), T.options()), F, gf_part = part(gf), out = part(gA);
      dev.fn_build_X({false, T, part(a.S).contiguous(), part(a.fS).contiguous(), part(a.dfS).contiguous(), rt, at_},
                     X, F, gf_part);
      bmm_into(dev, Qp, device_bmm(dev, X, Qh, GQ), out);
    });
  }
  return {gA.reshape(G.sizes()), gf.reshape(L.sizes())};
}

// Z, gf, gdf of kernels::fn_second_order in the eigenbasis W with eigenvalues lam.
std::tuple<Tensor, Tensor, Tensor> second_order_in_basis(const DeviceKernels& dev, const Tensor& Gt,
                                                         const Tensor& Ht, const Tensor& lam, const Tensor& f,
                                                         const Tensor& df, const Tensor& d2f, double rt,
                                                         double at_) {
  const int64_t N = lam.size(-1);
  const Tensor lam2 = lam.reshape({-1, N}).contiguous();
  const int64_t B = lam2.size(0);
  Tensor Z = empty_output({B, N, N}, Gt.options()), gf = empty_output({B, N}, lam.options()),
         gdf = empty_output({B, N}, lam.options());
  dev.fn_second_order({Gt.reshape({-1, N, N}).contiguous(), Ht.reshape({-1, N, N}).contiguous(), lam2,
                       f.reshape({-1, N}).contiguous(), df.reshape({-1, N}).contiguous(),
                       d2f.reshape({-1, N}).contiguous(), rt, at_},
                      Z, gf, gdf);
  return {Z, gf, gdf};
}

Tensor hermitian_part(const Tensor& X) { return 0.5 * (X + adjoint_of(X)); }

// d/dA <H, gA(A)> for gA = Q (D o Q^H sym(G) Q) Q^H (docs/math.md, "Second
// order"), and the gradients of <H, gA> with respect to f(L), f'(L).
std::tuple<Tensor, Tensor, Tensor> eigh_fn_second_order(const Tensor& H, const Tensor& G, const Tensor& L,
                                                        const Tensor& Q, const Tensor& fL, const Tensor& dfL,
                                                        const Tensor& d2fL, c10::optional<double> rtol,
                                                        c10::optional<double> atol) {
  const char* op = "safesvd._eigh_fn_second_order";
  const BelowAutograd below;
  check_fn_args(G, Q, L, Q.mH(), fL, dfL, op);
  check_fn_args(H, Q, L, Q.mH(), fL, d2fL, op);
  const auto [rt, at_] = resolve_divided_difference(L.scalar_type(), rtol, atol, op);
  if (L.size(-1) == 0) return {at::zeros_like(G), at::zeros_like(L), at::zeros_like(L)};
  const Tensor Qh = adjoint_of(Q);
  const Tensor Gt = at::matmul(Qh, at::matmul(hermitian_part(G), Q));
  const Tensor Ht = at::matmul(Qh, at::matmul(hermitian_part(H), Q));
  auto [Z, gf, gdf] = second_order_in_basis(device_kernels(Q.device(), op), Gt, Ht, L, fL, dfL, d2fL, rt, at_);
  const Tensor gA = at::matmul(Q, at::matmul(Z.view(Q.sizes()), Qh));
  return {gA, gf.view(L.sizes()), gdf.view(L.sizes())};
}

// The same for Y = U diag(f(S)) V^H through the Hermitian dilation
// [[0, A], [A^H, 0]] = W diag(S, -S, 0) W^H with the odd extension of f
// (docs/math.md, "Second order"): W = [[U, U, Uc], [V, -V, Vc]] / sqrt(2) (the
// complement columns unscaled), G -> [[0, G/2], [G^H/2, 0]], H -> [[0, H], [H^H, 0]],
// and gA = 2 [W Z W^H]_12. df0 = f'(0) is needed only for rectangular input.
std::tuple<Tensor, Tensor, Tensor> svd_fn_second_order(const Tensor& H, const Tensor& G, const Tensor& U,
                                                       const Tensor& S, const Tensor& Vh, const Tensor& fS,
                                                       const Tensor& dfS, const Tensor& d2fS,
                                                       const c10::optional<Tensor>& df0, c10::optional<double> rtol,
                                                       c10::optional<double> atol) {
  const char* op = "safesvd._svd_fn_second_order";
  const BelowAutograd below;
  check_fn_args(G, U, S, Vh, fS, dfS, op);
  check_fn_args(H, U, S, Vh, fS, d2fS, op);
  const auto [rt, at_] = resolve_divided_difference(S.scalar_type(), rtol, atol, op);
  const int64_t m = U.size(-2), n = Vh.size(-1), k = S.size(-1), N = m + n, c = N - 2 * k;
  if (k == 0) return {at::zeros_like(G), at::zeros_like(S), at::zeros_like(S)};
  TORCH_CHECK_VALUE(c == 0 || (df0.has_value() && df0->defined()), op,
                    ": rectangular input needs df0 = f'(0) for the second order");
  const auto batch = batch_shape(U);
  const double r2 = 1.0 / std::sqrt(2.0);
  const Tensor V = adjoint_of(Vh);
  const bool tall = m > n;
  // The complement of range(U) (tall) or range(V) (wide): an orthonormal basis.
  Tensor comp;
  if (c > 0) comp = std::get<0>(at::linalg_qr(tall ? U : V, "complete")).narrow(-1, k, c);
  const auto zeros = [&](int64_t r, int64_t cols) { return at::zeros(with_trailing(batch, {r, cols}), U.options()); };
  const Tensor top = at::cat({U * r2, U * r2, tall ? comp : zeros(m, c)}, -1);
  const Tensor bottom = at::cat({V * r2, -V * r2, tall ? zeros(n, c) : comp}, -1);
  const Tensor W = at::cat({top, bottom}, -2);  // (..., N, N)
  const auto dilate = [&](const Tensor& X, double s) {
    return at::cat({at::cat({zeros(m, m), X * s}, -1), at::cat({adjoint_of(X) * s, zeros(n, n)}, -1)}, -2);
  };
  const Tensor Wh = adjoint_of(W);
  const Tensor Gt = at::matmul(Wh, at::matmul(dilate(G, 0.5), W));
  const Tensor Ht = at::matmul(Wh, at::matmul(dilate(H, 1.0), W));
  const Tensor zc = at::zeros(with_trailing(batch, {c}), S.options());
  const Tensor lam = at::cat({S, -S, zc}, -1);
  const Tensor f = at::cat({fS, -fS, zc}, -1);
  const Tensor df = at::cat({dfS, dfS, c > 0 ? df0->expand(zc.sizes()).to(S.scalar_type()) : zc}, -1);
  const Tensor d2f = at::cat({d2fS, -d2fS, zc}, -1);
  auto [Z, gf, gdf] = second_order_in_basis(device_kernels(U.device(), op), Gt, Ht, lam, f, df, d2f, rt, at_);
  const Tensor full = at::matmul(W, at::matmul(Z.view(with_trailing(batch, {N, N})), Wh));
  const Tensor gA = 2.0 * full.narrow(-2, 0, m).narrow(-1, m, n);
  gf = gf.view(with_trailing(batch, {N}));
  gdf = gdf.view(with_trailing(batch, {N}));
  return {gA, gf.narrow(-1, 0, k) - gf.narrow(-1, k, k), gdf.narrow(-1, 0, k) + gdf.narrow(-1, k, k)};
}

// sqrtm and invsqrtm on a contiguous CPU spectrum (B, n): the operations of the ATen path
// of spectral_function below, in the same order, one pass per matrix, each correctly
// rounded (float64: the ATen path's results bit for bit; its float32 sqrt is not always
// correctly rounded, so there they agree to its rounding; tests/test_functions.py checks
// both against numpy's IEEE evaluation). Twenty small ATen calls were most of a small
// sqrtm (~23 -> ~3 us at B = 1). Returns false when the domain check fails: the caller
// reports through the ATen path, which writes the message. logm stays on ATen (its
// vectorized log is not std::log).
template <typename T>
bool spectral_values_cpu(const T* L, int64_t B, int64_t n, bool sqrtm, bool check, double eps, T* f, T* df, T* d2f) {
  std::atomic<bool> ok{true};
  const T check_factor = T(kernels::semidefinite_tolerance(eps)), floor = T(kernels::sqrt_derivative_floor(eps));
  at::parallel_for(0, B, std::max<int64_t>(1, 8192 / n), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const T* l = L + b * n;
      T top = T(0);  // max |l|, NaN propagating (as amax)
      for (int64_t i = 0; i < n; ++i) {
        const T a = std::abs(l[i]);
        top = (a > top || a != a) ? a : top;
      }
      if (check && (sqrtm ? l[0] < -(check_factor * top) : l[0] <= T(0))) ok = false;
      T *fb = f + b * n, *dfb = df + b * n, *d2fb = d2f + b * n;
      if (sqrtm) {
        const T t = top > T(0) ? top : T(1), root_top = std::sqrt(t);
        for (int64_t i = 0; i < n; ++i) {
          const T q = l[i] / t, r = q < floor ? floor : q, sr = std::sqrt(r);
          fb[i] = std::sqrt(l[i] < T(0) ? T(0) : l[i]);
          dfb[i] = T(0.5) / (root_top * sr);
          d2fb[i] = T(-0.25) / (((root_top * t) * r) * sr);
        }
      } else {
        for (int64_t i = 0; i < n; ++i) {
          const T rs = T(1) / std::sqrt(l[i]);
          fb[i] = rs;
          dfb[i] = (T(-0.5) * rs) / l[i];
          d2fb[i] = (T(0.75) * rs) / (l[i] * l[i]);
        }
      }
    }
  });
  return ok;
}

// The named matrix functions' values on the spectrum L (..., n), ascending (docs/math.md,
// "sqrtm at zero eigenvalues"); the domain check reads the smallest eigenvalues (a sync
// on CUDA: callers skip it while tracing or capturing).
std::tuple<Tensor, Tensor, Tensor> spectral_function(const Tensor& L, c10::string_view name, bool check) {
  const char* op = "safesvd._spectral_function";
  const BelowAutograd below;
  TORCH_CHECK_TYPE(L.scalar_type() == at::kFloat || L.scalar_type() == at::kDouble, op,
                   ": expected a real spectrum, got ", L.scalar_type());
  TORCH_CHECK_VALUE(L.dim() >= 1, op, ": expected a spectrum (..., n), got shape ", L.sizes());
  TORCH_CHECK_VALUE(name == "sqrtm" || name == "invsqrtm" || name == "logm", op,
                    ": name must be 'sqrtm', 'invsqrtm' or 'logm', got '", std::string(name), "'");
  at::NoGradGuard no_grad;
  const double eps = epsilon_of_dtype(L.scalar_type());
  const bool semidefinite = name == "sqrtm";
  if (name != "logm" && L.is_cpu() && L.is_contiguous() && L.numel() > 0) {
    Tensor f = at::empty_like(L), df = at::empty_like(L), d2f = at::empty_like(L);
    const int64_t n = L.size(-1);
    bool ok = false;
    AT_DISPATCH_FLOATING_TYPES(L.scalar_type(), "safesvd_spectral_values", [&] {
      ok = spectral_values_cpu<scalar_t>(L.const_data_ptr<scalar_t>(), L.numel() / n, n, semidefinite, check, eps,
                                         f.mutable_data_ptr<scalar_t>(), df.mutable_data_ptr<scalar_t>(),
                                         d2f.mutable_data_ptr<scalar_t>());
    });
    if (ok) return {f, df, d2f};
  }
  if (check && L.numel() > 0) {
    const Tensor low = L.select(-1, 0);
    const Tensor tol = kernels::semidefinite_tolerance(eps) * L.abs().amax(-1);
    const Tensor bad = semidefinite ? low < -tol : low <= 0;
    if (bad.any().item<bool>()) {
      std::ostringstream msg;
      msg << "safesvd." << std::string(name) << ": expected a Hermitian "
          << (semidefinite ? "positive semidefinite" : "positive definite") << " matrix; the smallest eigenvalue is "
          << low.masked_select(bad).min().item<double>();
      if (semidefinite) msg << " (below -sqrt(eps) * max|L| = " << -tol.masked_select(bad).max().item<double>() << ")";
      TORCH_CHECK_VALUE(false, msg.str());
    }
  }
  if (name == "sqrtm") {
    // f'(L) at max(L, floor * top), top = max|L| (1 for the zero matrix), computed in
    // units of top so that it cannot overflow for any finite input.
    Tensor top = L.size(-1) ? L.abs().amax(-1, true) : at::ones(with_trailing(batch_shape(L, 1), {1}), L.options());
    top = at::where(top > 0, top, at::ones_like(top));
    const Tensor root_top = top.sqrt(), r = (L / top).clamp_min(kernels::sqrt_derivative_floor(eps));
    return {L.clamp_min(0).sqrt(), 0.5 / (root_top * r.sqrt()), -0.25 / (root_top * top * r * r.sqrt())};
  }
  if (name == "invsqrtm") return {L.rsqrt(), -0.5 * L.rsqrt() / L, 0.75 * L.rsqrt() / (L * L)};
  return {L.log(), L.reciprocal(), -(L * L).reciprocal()};
}

// sqrtm / invsqrtm / logm before their product: the operator call from Python is most of
// a small decomposition's cost (~2 us at 3 x 3), so the eigendecomposition and the values
// on its spectrum are one call.
std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> eigh_spectral(const Tensor& A, c10::string_view UPLO,
                                                                 c10::string_view name, bool check) {
  static const auto eigh = find_op<EighOpSignature>("safesvd::eigh");
  const BelowAutograd below;
  auto [L, Q] = eigh.call(A, UPLO, "pinv", c10::nullopt, c10::nullopt, c10::nullopt);
  auto [f, df, d2f] = spectral_function(L, name, check);
  return {L, Q, f, df, d2f};
}

// polar and procrustes before their product, for the same reason: svd, the spectrum's
// function f (ones; special: procrustes' flip [1, ..., 1, sign det(U Vh)]), f' = f'' = 0,
// whether the result is not unique (rank deficiency; special: _procrustes_flip's
// ambiguity), and with `product` the product U diag(f) Vh itself, as svd_fn's forward
// computes it (Python returns it where nothing is recorded; else svd_fn carries the
// gradient and computes it, and Q is an empty tensor).
std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> svd_polar(const Tensor& A, bool special,
                                                                             bool product) {
  static const auto svd = find_op<SvdOpSignature>("safesvd::svd");
  static const auto merged_with_zero =
      find_op<Tensor(const Tensor&, c10::optional<double>, c10::optional<double>, c10::optional<int64_t>)>(
          "safesvd::_merged_with_zero");
  static const auto procrustes_flip =
      find_op<std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&)>("safesvd::_procrustes_flip");
  const char* op = "safesvd._svd_polar";
  const BelowAutograd below;
  if (special) {
    TORCH_CHECK_VALUE(A.dim() >= 2 && A.size(-1) == A.size(-2), op,
                      ": special=True expects square matrices (..., n, n), got shape ", A.sizes());
    TORCH_CHECK_TYPE(!A.is_complex(), op, ": special=True expects real input, got ", A.scalar_type());
  }
  auto [U, S, Vh] = svd.call(A, false, "pinv", c10::nullopt, c10::nullopt, c10::nullopt);
  Tensor f, not_unique;
  if (special) {
    std::tie(f, not_unique) = procrustes_flip.call(U, S, Vh);
  } else {
    f = at::ones_like(S);
    not_unique = merged_with_zero.call(S, c10::nullopt, c10::nullopt, c10::nullopt);
  }
  Tensor Q = product ? product_with_spectrum(device_kernels(U.device(), op), U, Vh, f) : at::empty({0}, U.options());
  return {U, S, Vh, f, at::zeros_like(S), not_unique, Q};
}

}  // namespace

TORCH_LIBRARY_IMPL(safesvd, CompositeExplicitAutograd, m) {
  m.impl("_spectral_function", &spectral_function);
  m.impl("_eigh_spectral", &eigh_spectral);
  m.impl("_svd_polar", &svd_polar);
  m.impl("svd_fn", &svd_fn_forward);
  m.impl("eigh_fn", &eigh_fn_forward);
  m.impl("_svd_fn_backward", &svd_fn_backward);
  m.impl("_eigh_fn_backward", &eigh_fn_backward);
  m.impl("_svd_fn_second_order", &svd_fn_second_order);
  m.impl("_eigh_fn_second_order", &eigh_fn_second_order);
}

}  // namespace safesvd

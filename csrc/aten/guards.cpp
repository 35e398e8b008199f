// The guards as operators, for the Python layer and the differentiable
// composite (docs/architecture.md): the resolved defaults, the per-matrix
// guard parameters, and the guarded coefficients of a batch of differences.
// The formulas are those of csrc/kernels/guards.h, evaluated by the device's kernels.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "dispatch.h"

namespace safesvd {
namespace {

// [rtol, atol, gauge threshold] of the guards, or [rtol, atol] of the divided
// differences, for a real dtype.
std::vector<double> guard_defaults(at::ScalarType dtype, c10::optional<double> rtol,
                                   c10::optional<double> atol, bool divided_difference) {
  const at::ScalarType real = at::toRealValueType(dtype);
  TORCH_CHECK_TYPE(real == at::kFloat || real == at::kDouble,
                   "safesvd._guard_defaults: expected a float or complex dtype, got ", dtype);
  if (divided_difference) {
    const auto [r, a] = resolve_divided_difference(real, rtol, atol, "safesvd._guard_defaults");
    return {r, a};
  }
  const ResolvedGuard g = resolve_guard("pinv", real, rtol, atol, "safesvd._guard_defaults");
  return {g.rtol, g.atol, g.gauge_threshold};
}

// (..., 6) per-matrix [f1, f2, tol, floor, noise, cap] (kernels::GuardParamsOp).
// With divided_difference: [f1, f2, rtol, floor, 0, 0] of DividedDifferences.
Tensor guard_params(const Tensor& spectrum, const Tensor& cotangent_scale, int64_t dims,
                    c10::string_view guard, c10::optional<double> rtol, c10::optional<double> atol,
                    bool divided_difference) {
  const char* op = "safesvd._guard_params";
  const BelowAutograd below;
  TORCH_CHECK_TYPE(spectrum.scalar_type() == at::kFloat || spectrum.scalar_type() == at::kDouble, op,
                   ": expected a real spectrum, got ", spectrum.scalar_type());
  TORCH_CHECK_VALUE(spectrum.dim() >= 1 && cotangent_scale.sizes() == spectrum.sizes().slice(0, spectrum.dim() - 1),
                    op, ": expected spectrum (..., k) and cotangent_scale (...), got ", spectrum.sizes(), ", ",
                    cotangent_scale.sizes());
  ResolvedGuard g = resolve_guard(guard, spectrum.scalar_type(), rtol, atol, op);
  if (divided_difference) std::tie(g.rtol, g.atol) = resolve_divided_difference(spectrum.scalar_type(), rtol, atol, op);
  const int64_t k = spectrum.size(-1);
  const Tensor S2 = spectrum.reshape({-1, k}).contiguous();
  const Tensor c = cotangent_scale.reshape({-1}).to(spectrum.scalar_type()).contiguous();
  Tensor out = at::empty({S2.size(0), kernels::kGuardParamCount}, spectrum.options());
  device_kernels(spectrum.device(), op).guard_params({S2, c, dims, divided_difference, g}, out);
  return out.reshape(with_trailing(batch_shape(spectrum, 1), {kernels::kGuardParamCount}));
}

// merged_with_zero below on a contiguous CPU spectrum (B, k): per matrix, the operations
// of its ATen path in the same order (guard_params' max |x| and divided differences, then
// min |x| with NaN propagating like amin, two products, one comparison), in one pass
// instead of eight ATen calls (polar / procrustes at B = 1: ~9 -> ~2.5 us). Every step is
// exact or one IEEE operation, so the answer is the ATen path's (tests/test_functions.py).
// One spectrum s (k values): index < 0 the smallest |value|, else |value index|.
template <typename T>
bool merged_with_zero_one(const T* s, int64_t k, int64_t index, T rtol, T atol) {
  const kernels::DividedDifferences<T> dd = kernels::divided_differences(rtol, atol, kernels::max_abs(s, 1, k));
  T m = std::abs(s[index < 0 ? 0 : index]);
  if (index < 0)
    for (int64_t i = 1; i < k; ++i) {
      const T a = std::abs(s[i]);
      m = (a < m || a != a) ? a : m;
    }
  return (m * dd.scale.f1) * dd.scale.f2 <= dd.floor;
}

template <typename T>
void merged_with_zero_cpu(const T* x, int64_t B, int64_t k, int64_t index, T rtol, T atol, bool* out) {
  at::parallel_for(0, B, std::max<int64_t>(1, 16384 / k), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) out[b] = merged_with_zero_one(x + b * k, k, index, rtol, atol);
  });
}

// Per matrix: is the smallest |value| of the spectrum (or |value index|) zero up to the
// divided differences' rounding floor, the values a matrix function cannot tell from 0?
// scale(min |x|) <= floor with the [f1, f2, ., floor] of guard_params (the same
// operations, in the same order, as the Python composition it replaces: one call instead
// of ten, ~24 -> ~6 us at B = 1; python/safesvd/_guards.py, merged_with_zero).
Tensor merged_with_zero(const Tensor& spectrum, c10::optional<double> rtol, c10::optional<double> atol,
                        c10::optional<int64_t> index) {
  const char* op = "safesvd._merged_with_zero";
  const BelowAutograd below;
  TORCH_CHECK_VALUE(spectrum.dim() >= 1, op, ": expected a spectrum (..., k), got ", spectrum.sizes());
  const auto batch = batch_shape(spectrum, 1);
  const int64_t k = spectrum.size(-1);
  if (k == 0) return at::zeros(batch, spectrum.options().dtype(at::kBool));
  const Tensor x = spectrum.detach();
  const bool in_range = !index || (*index >= -k && *index < k);
  if (x.is_cpu() && x.is_contiguous() && in_range &&
      (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble)) {
    const auto [r, a] = resolve_divided_difference(x.scalar_type(), rtol, atol, op);
    Tensor out = at::empty(batch, x.options().dtype(at::kBool));
    const int64_t i = index ? (*index < 0 ? *index + k : *index) : -1;
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "safesvd_merged_with_zero", [&] {
      merged_with_zero_cpu<scalar_t>(x.const_data_ptr<scalar_t>(), x.numel() / k, k, i, scalar_t(r), scalar_t(a),
                                     out.mutable_data_ptr<bool>());
    });
    return out;
  }
  const Tensor p = guard_params(x, at::zeros(batch, x.options()), 0, "pinv", rtol, atol, true);
  const Tensor a = x.abs();
  const Tensor m = index ? a.select(-1, *index) : a.amin(-1);
  return (m * p.select(-1, 0)) * p.select(-1, 1) <= p.select(-1, 3);
}

std::tuple<Tensor, Tensor, Tensor> guard_coefficients(const Tensor& d, const c10::optional<Tensor>& xabs,
                                                      const Tensor& params, c10::string_view guard) {
  const char* op = "safesvd._guard_coefficients";
  const BelowAutograd below;
  TORCH_CHECK_TYPE(d.scalar_type() == at::kFloat || d.scalar_type() == at::kDouble, op,
                   ": expected real differences, got ", d.scalar_type());
  TORCH_CHECK_VALUE(params.dim() >= 1 && params.size(-1) == kernels::kGuardParamCount, op,
                    ": params must be (..., 6), got ", params.sizes());
  const int64_t batch_dims = params.dim() - 1;
  TORCH_CHECK_VALUE(d.dim() > batch_dims && d.sizes().slice(0, batch_dims) == params.sizes().slice(0, batch_dims),
                    op, ": d ", d.sizes(), " does not start with the batch shape of params ", params.sizes());
  const Tensor P = params.reshape({-1, kernels::kGuardParamCount}).to(d.scalar_type()).contiguous();
  const int64_t B = P.size(0);
  const Tensor d2 = d.reshape({B, -1}).contiguous();
  Tensor x2;
  if (xabs.has_value() && xabs->defined()) {
    TORCH_CHECK_VALUE(xabs->sizes() == d.sizes(), op, ": xabs has shape ", xabs->sizes(), ", expected ", d.sizes());
    x2 = xabs->reshape({B, -1}).to(d.scalar_type()).contiguous();
  }
  Tensor coef = at::empty_like(d2), slope = at::empty_like(d2), note = at::empty_like(d2);
  device_kernels(d.device(), op).guard_coefficients({d2, x2, P, parse_guard(guard, op)}, coef, slope, note);
  return {coef.view(d.sizes()), slope.view(d.sizes()), note.view(d.sizes())};
}

// det of an n x n matrix, n <= 3, by cofactors; e(i, j) reads an entry (a tensor of a
// batch's entries, or one number).
template <typename E>
auto cofactor_det(int64_t n, const E& e) -> decltype(e(0, 0) * e(0, 0)) {
  if (n == 1) return e(0, 0);
  if (n == 2) return e(0, 0) * e(1, 1) - e(0, 1) * e(1, 0);
  return e(0, 0) * (e(1, 1) * e(2, 2) - e(1, 2) * e(2, 1)) - e(0, 1) * (e(1, 0) * e(2, 2) - e(1, 2) * e(2, 0)) +
         e(0, 2) * (e(1, 0) * e(2, 1) - e(1, 1) * e(2, 0));
}

// det of (..., n, n): cofactors for n <= 3, LU above (only its sign is used, of
// orthogonal factors whose det is +-1).
Tensor small_det(const Tensor& M) {
  const int64_t n = M.size(-1);
  if (n > 3) return at::linalg_det(M);
  return cofactor_det(n, [&](int64_t i, int64_t j) { return M.select(-2, i).select(-1, j); });
}

template <typename T>
T sign_of(T x) {
  return T((x > T(0)) - (x < T(0)));
}

// sign det of the n x n matrix at m (row stride rs, column stride cs): cofactors for
// n <= 3, else the signs of the pivots and of the row swaps of an LU factorization with
// partial pivoting, in the n * n scratch w (only its sign is used, of orthogonal factors
// whose det is +-1).
template <typename T>
T det_sign(const T* m, int64_t rs, int64_t cs, int64_t n, T* w) {
  if (n <= 3) return sign_of(cofactor_det(n, [&](int64_t i, int64_t j) { return m[i * rs + j * cs]; }));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) w[i * n + j] = m[i * rs + j * cs];
  T sign = T(1);
  for (int64_t k = 0; k < n; ++k) {
    int64_t p = k;
    for (int64_t i = k + 1; i < n; ++i)
      if (std::abs(w[i * n + k]) > std::abs(w[p * n + k])) p = i;
    const T pivot = w[p * n + k];
    if (pivot == T(0)) return T(0);  // singular
    if (p != k) {
      for (int64_t j = k; j < n; ++j) std::swap(w[p * n + j], w[k * n + j]);
      sign = -sign;
    }
    if (pivot < T(0)) sign = -sign;
    for (int64_t i = k + 1; i < n; ++i) {
      const T l = w[i * n + k] / pivot;
      for (int64_t j = k + 1; j < n; ++j) w[i * n + j] -= l * w[k * n + j];
    }
  }
  return sign;
}

// procrustes_flip below on the CPU, S contiguous: per matrix, the decisions of its ATen
// path (the same guard parameters and comparisons, kernels/guards.h, and
// merged_with_zero_one of merged_with_zero above) in one pass.
template <typename T>
void procrustes_flip_cpu(const Tensor& U, const Tensor& S, const Tensor& Vh, Tensor& fS, Tensor& ambiguous) {
  const int64_t n = S.size(-1), B = S.numel() / n;
  const Tensor U3 = U.reshape({B, n, n}), V3 = Vh.reshape({B, n, n});
  const T *u = U3.const_data_ptr<T>(), *v = V3.const_data_ptr<T>(), *s = S.const_data_ptr<T>();
  const int64_t ub = U3.stride(0), urs = U3.stride(1), ucs = U3.stride(2);
  const int64_t vb = V3.stride(0), vrs = V3.stride(1), vcs = V3.stride(2);
  T* f = fS.mutable_data_ptr<T>();
  bool* amb = ambiguous.mutable_data_ptr<bool>();
  const kernels::GuardParams<T> params = resolve_guard("pinv", S.scalar_type(), c10::nullopt, c10::nullopt,
                                                       "safesvd._procrustes_flip").params<T>();
  const auto [r, a] = resolve_divided_difference(S.scalar_type(), c10::nullopt, c10::nullopt, "safesvd._procrustes_flip");
  // Chunks of 4096 matrices up to 3 x 3 (cofactors), of about as much work above (LU).
  at::parallel_for(0, B, n <= 3 ? 4096 : std::max<int64_t>(1, 4096 * 27 / (n * n * n)), [&](int64_t b0, int64_t b1) {
    std::vector<T> w(n > 3 ? n * n : 0);
    for (int64_t b = b0; b < b1; ++b) {
      const T d = det_sign(u + b * ub, urs, ucs, n, w.data()) * det_sign(v + b * vb, vrs, vcs, n, w.data());
      const T* sb = s + b * n;
      for (int64_t i = 0; i + 1 < n; ++i) f[b * n + i] = T(1);
      f[b * n + n - 1] = d;
      bool out = false;
      if (n > 1) {
        const T top = kernels::max_abs(sb, 1, n);
        const kernels::MatrixGuard<T> mg = kernels::matrix_guard(params, top, T(0), 0);
        const bool close = mg.inside((sb[n - 2] - sb[n - 1]) * mg.scale.f1 * mg.scale.f2);
        out = (close && d < T(0)) || merged_with_zero_one(sb, n, n - 2, T(r), T(a));
      }
      amb[b] = out;
    }
  });
}

// The flip of procrustes(special=True) (python/safesvd/_functions.py): f(S) = [1, ..., 1, d]
// with d = sign det(U Vh) = sign(det U det Vh), and per matrix whether the nearest
// rotation is not unique: a reflection (d < 0) with the two smallest singular values
// within the guard tolerance (close_pair of python/safesvd/_guards.py), or the second
// smallest zero up to the divided differences' floor (merged_with_zero). One call where
// the Python composition took about thirty (3x3, B = 1: 45 -> 3 us on the CPU).
std::tuple<Tensor, Tensor> procrustes_flip(const Tensor& U, const Tensor& S, const Tensor& Vh) {
  const char* op = "safesvd._procrustes_flip";
  const BelowAutograd below;
  TORCH_CHECK_VALUE(S.dim() >= 1 && U.dim() == S.dim() + 1 && Vh.dim() == U.dim() && U.size(-1) == S.size(-1) &&
                        U.size(-2) == S.size(-1) && Vh.sizes() == U.sizes(),
                    op, ": expected square U (..., n, n), S (..., n), Vh (..., n, n), got ", U.sizes(), ", ",
                    S.sizes(), ", ", Vh.sizes());
  TORCH_CHECK_TYPE((S.scalar_type() == at::kFloat || S.scalar_type() == at::kDouble) &&
                       U.scalar_type() == S.scalar_type() && Vh.scalar_type() == S.scalar_type(),
                   op, ": expected real U, S, Vh of one dtype, got ", U.scalar_type(), ", ", S.scalar_type(), ", ",
                   Vh.scalar_type());
  const int64_t n = S.size(-1);
  const auto batch = batch_shape(S, 1);
  if (S.numel() == 0) return {at::ones_like(S, at::MemoryFormat::Contiguous), at::zeros(batch, S.options().dtype(at::kBool))};
  if (S.is_cpu() && U.is_cpu() && Vh.is_cpu() && S.is_contiguous() && !U.is_neg() && !Vh.is_neg()) {
    Tensor fS = at::empty_like(S, at::MemoryFormat::Contiguous), amb = at::empty(batch, S.options().dtype(at::kBool));
    AT_DISPATCH_FLOATING_TYPES(S.scalar_type(), "safesvd_procrustes_flip",
                               [&] { procrustes_flip_cpu<scalar_t>(U, S, Vh, fS, amb); });
    return {fS, amb};
  }
  const Tensor d = (small_det(U) * small_det(Vh)).sign();
  Tensor fS = at::ones_like(S, at::MemoryFormat::Contiguous);
  fS.select(-1, n - 1).copy_(d);
  if (n == 1) return {fS, at::zeros(batch, S.options().dtype(at::kBool))};
  const Tensor p = guard_params(S, at::zeros(batch, S.options()), 0, "pinv", c10::nullopt, c10::nullopt, false);
  const Tensor diff = (S.select(-1, n - 2) - S.select(-1, n - 1)) * p.select(-1, 0) * p.select(-1, 1);
  const Tensor note = std::get<2>(guard_coefficients(diff.unsqueeze(-1), at::ones_like(diff).unsqueeze(-1), p, "pinv"));
  const Tensor close = note.select(-1, 0) > 0;
  return {fS, at::logical_or(at::logical_and(close, d < 0), merged_with_zero(S, c10::nullopt, c10::nullopt, n - 2))};
}

}  // namespace

// The largest gauge residual (column 0 of a CPU (..., 3) gauge tensor of a backward op),
// NaN when one is NaN, 0 for none: what python/safesvd/_gauge.py's check compares with
// the threshold. Over the batch in parallel: each thread reads the part of the column
// that the backward's own parallel loop has just written (mostly in its own cache), where
// torch's max() of the strided column runs on one thread. svd 8x3 float32, B = 20000,
// 2 threads (Intel, 2026-12-06): the whole Python check 0.125 -> 0.095 ms of a 0.8 ms
// backward (the rest of it is Python, slow on caches the op has just flushed).
double gauge_worst(const Tensor& gauge) {
  TORCH_CHECK_VALUE(gauge.device().is_cpu() && gauge.dim() >= 1 && gauge.size(-1) == 3 &&
                        (gauge.scalar_type() == at::kFloat || gauge.scalar_type() == at::kDouble),
                    "safesvd._gauge_worst: expected a real CPU (..., 3) gauge tensor, got ", gauge.scalar_type(), " ",
                    gauge.sizes(), " on ", gauge.device());
  const Tensor g = gauge.reshape({-1, 3}).contiguous();
  const int64_t B = g.size(0);
  if (B == 0) return 0.0;
  double worst = 0.0;
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "safesvd_gauge_worst", [&] {
    const scalar_t* p = g.const_data_ptr<scalar_t>();
    const auto scan = [p](int64_t b0, int64_t b1, double w) {
      for (int64_t b = b0; b < b1; ++b) {
        const double r = double(p[3 * b]);
        if (r != r) return r;  // NaN: reported whatever the rest holds
        w = std::max(w, r);
      }
      return w;
    };
    worst = at::parallel_reduce(0, B, 8192, 0.0, scan, [](double a, double b) {
      return (a != a || b != b) ? std::numeric_limits<double>::quiet_NaN() : std::max(a, b);
    });
  });
  return worst;
}


TORCH_LIBRARY_IMPL(safesvd, CPU, m) {
  m.impl("_gauge_worst", &gauge_worst);
}
TORCH_LIBRARY_IMPL(safesvd, CompositeExplicitAutograd, m) {
  m.impl("_guard_params", &guard_params);
  m.impl("_guard_coefficients", &guard_coefficients);
  m.impl("_merged_with_zero", &merged_with_zero);
  m.impl("_procrustes_flip", &procrustes_flip);
}
TORCH_LIBRARY_IMPL(safesvd, CompositeImplicitAutograd, m) {
  m.impl("_guard_defaults", [](at::ScalarType dtype, c10::optional<double> rtol, c10::optional<double> atol,
                               bool divided_difference) {
    return guard_defaults(dtype, rtol, atol, divided_difference);
  });
}

}  // namespace safesvd

#include "common.h"
#include "dispatch.h"
#include "../testing.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>

namespace safesvd {

Guard parse_guard(c10::string_view guard, const char* op) {
  const int g = kernels::find_guard(guard.data(), guard.size());
  if (g < 0) {
    std::string names;
    for (int i = 0; i < kernels::kGuardCount; ++i)
      names += std::string(i ? ", '" : "'") + kernels::kGuardNames[i] + "'";
    TORCH_CHECK_VALUE(false, op, ": guard must be one of ", names, ", got '", std::string(guard), "'");
  }
  return static_cast<Guard>(g);
}

double epsilon_of_dtype(at::ScalarType real_dtype) {
  return real_dtype == at::kFloat ? std::numeric_limits<float>::epsilon()
                                  : std::numeric_limits<double>::epsilon();
}

namespace {

// max over `len` entries x[j * step] (kUnit: step 1) of |x| into kParts running maxima
// (part, in memory: with step 1 and kParts = 64 GCC vectorizes the loop over them, max and
// a blend, where it leaves kParts = 8 in registers scalar); nan[q] holds the last NaN met
// in part q. The scalar loop over a 16 MB cotangent was 3% of the 64 x 64 eigh
// forward + backward.
template <bool kUnit, int kParts, typename T>
void max_abs_run(const T* x, int64_t len, int64_t step, T* part, T* nan) {
  int64_t j = 0;
  for (; j + kParts <= len; j += kParts)
    for (int q = 0; q < kParts; ++q) {
      const T v = std::abs(x[kUnit ? j + q : (j + q) * step]);
      nan[q] = v != v ? v : nan[q];
      part[q] = v > part[q] ? v : part[q];
    }
  for (; j < len; ++j) {
    const T v = std::abs(x[kUnit ? j : j * step]);
    nan[0] = v != v ? v : nan[0];
    part[0] = v > part[0] ? v : part[0];
  }
}

// One matrix (r x c, strides sr, sc): out[0] = max |x| (over == 0), out[j] = max_i |x_ij|
// (over == 1, per column), out[i] = max_j |x_ij| (over == 2, per row). `v > mx ? v : mx`
// vectorizes as a max instruction; NaN is tracked apart and written last. The whole-matrix
// maximum keeps kParts running maxima in registers (one maximum carried through memory
// was a dependency chain of a store and a load per entry: 10% of the 24x24 svd backward),
// over one run of r c entries where the matrix is contiguous; max is exact and NaN never
// enters them, so the result is the sequential one.
template <typename T>
void max_abs_matrix(const T* x, int64_t r, int64_t c, int64_t sr, int64_t sc, int over, T* out) {
  const int64_t len = over == 0 ? 1 : over == 1 ? c : r;
  std::fill(out, out + len, T(0));
  bool nan = false;
  if (over == 0) {
    constexpr int kFlatParts = 64, kRowParts = 8;
    T part[kFlatParts] = {}, nans[kFlatParts] = {};
    if (sc == 1 && (sr == c || r == 1)) {  // one contiguous run of r c entries
      max_abs_run<true, kFlatParts>(x, r * c, 1, part, nans);
    } else {
      for (int64_t i = 0; i < r; ++i) max_abs_run<false, kRowParts>(x + i * sr, c, sc, part, nans);
    }
    for (int q = 0; q < kFlatParts; ++q) {
      out[0] = part[q] > out[0] ? part[q] : out[0];
      nan |= nans[q] != nans[q];
    }
  }
  for (int64_t i = 0; over != 0 && i < r; ++i) {
    const T* row = x + i * sr;
    if (over == 2) {
      T mx = T(0);
      for (int64_t j = 0; j < c; ++j) {
        const T v = std::abs(row[j * sc]);
        nan |= v != v;
        mx = v > mx ? v : mx;
      }
      out[i] = mx;
    } else {  // over == 1: the running maxima of the columns, independent of each other
      for (int64_t j = 0; j < c; ++j) {
        const T v = std::abs(row[j * sc]);
        nan |= v != v;
        out[j] = v > out[j] ? v : out[j];
      }
    }
  }
  if (!nan) return;
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j)
      if (x[i * sr + j * sc] != x[i * sr + j * sc]) out[over == 0 ? 0 : over == 1 ? j : i] = x[i * sr + j * sc];
}

}  // namespace

Tensor max_abs(const Tensor& x, at::IntArrayRef dims) {
  const bool real = x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble;
  const auto last = [&](int64_t d) { return d == -1 || d == x.dim() - 1; };
  const auto second = [&](int64_t d) { return d == -2 || d == x.dim() - 2; };
  int over = -1;
  if (dims.size() == 2 && ((second(dims[0]) && last(dims[1])) || (last(dims[0]) && second(dims[1])))) over = 0;
  if (dims.size() == 1) over = second(dims[0]) ? 1 : last(dims[0]) ? 2 : -1;
  if (!x.is_cpu() || !real || x.dim() < 2 || over < 0 || x.requires_grad()) return max_abs_traced(x, dims);
  const int64_t r = x.size(-2), c = x.size(-1);
  const Tensor x3 = x.reshape({-1, r, c});
  const int64_t B = x3.size(0), len = over == 0 ? 1 : over == 1 ? c : r;
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end() - 2);
  if (over) shape.push_back(len);
  Tensor out = empty_output(shape, x.options());
  if (B == 0 || len == 0) return out.zero_();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "safesvd_max_abs", [&] {
    const scalar_t* px = x3.const_data_ptr<scalar_t>();
    scalar_t* po = out.mutable_data_ptr<scalar_t>();
    const int64_t sb = x3.stride(0), sr = x3.stride(1), sc = x3.stride(2);
    at::parallel_for(0, B, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, r * c)), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) max_abs_matrix(px + b * sb, r, c, sr, sc, over, po + b * len);
    });
  });
  return out;
}

void in_backward_slices(const Tensor& like, int64_t B, int64_t matrix_bytes,
                        const std::function<void(int64_t, int64_t)>& f) {
  const int64_t per_slice = std::max<int64_t>(1, kBackwardSliceBytes / std::max<int64_t>(1, matrix_bytes));
  if (!like.is_cpu() || B <= per_slice) {
    f(0, B);
    return;
  }
  const int64_t slices = (B + per_slice - 1) / per_slice;
  const at::ThreadLocalState caller;
  at::parallel_for(0, slices, 1, [&](int64_t s0, int64_t s1) {
    at::ThreadLocalStateGuard guard(caller);
    for (int64_t s = s0; s < s1; ++s) f(s * per_slice, std::min(B, (s + 1) * per_slice));
  });
}

void bmm_into(const DeviceKernels& dev, const Tensor& a, const Tensor& b, Tensor& out) {
  if (dev.small_bmm != nullptr && dev.small_bmm(a, b, out)) return;
  at::bmm_out(out, a, b);
}

Tensor device_bmm(const DeviceKernels& dev, const Tensor& a, const Tensor& b, Tensor spare) {
  const auto dtype = at::promote_types(a.scalar_type(), b.scalar_type());
  if (!spare.defined() || !spare.is_contiguous() || spare.scalar_type() != dtype ||
      spare.sizes() != at::IntArrayRef({a.size(0), a.size(1), b.size(2)}) || spare.is_same(a) || spare.is_same(b))
    spare = empty_output({a.size(0), a.size(1), b.size(2)}, a.options().dtype(dtype));
  bmm_into(dev, a, b, spare);
  return spare;
}

namespace {

std::pair<double, double> resolve_tolerances(at::ScalarType real_dtype, c10::optional<double> rtol,
                                             c10::optional<double> atol, const char* op,
                                             double power) {
  const double r = rtol.has_value() ? *rtol : kernels::default_rtol(epsilon_of_dtype(real_dtype), power);
  const double a = atol.has_value() ? *atol : 0.0;
  TORCH_CHECK_VALUE(r >= 0 && std::isfinite(r), op, ": rtol must be finite and >= 0, got ", r);
  TORCH_CHECK_VALUE(a >= 0 && std::isfinite(a), op, ": atol must be finite and >= 0, got ", a);
  return {r, a};
}

}  // namespace

ResolvedGuard resolve_guard(c10::string_view guard, at::ScalarType real_dtype,
                            c10::optional<double> rtol, c10::optional<double> atol, const char* op) {
  const Guard g = parse_guard(guard, op);
  const auto [r, a] = resolve_tolerances(real_dtype, rtol, atol, op, kernels::kGuardRtolPower);
  const double eps = epsilon_of_dtype(real_dtype);
  return {g, r, a, kernels::gauge_threshold(eps, r), eps};
}

std::pair<double, double> resolve_divided_difference(at::ScalarType real_dtype,
                                                     c10::optional<double> rtol,
                                                     c10::optional<double> atol, const char* op) {
  return resolve_tolerances(real_dtype, rtol, atol, op, kernels::kDividedDifferenceRtolPower);
}

void check_matrix_input(const Tensor& A, const char* op, bool square, bool check_finite) {
  TORCH_CHECK_TYPE(!A.is_nested(), op, ": expected a dense (strided) tensor, got a nested tensor");
  TORCH_CHECK_TYPE(A.layout() == at::kStrided, op, ": expected a dense (strided) tensor, got layout ", A.layout());
  const auto dt = A.scalar_type();
  TORCH_CHECK_TYPE(dt == at::kFloat || dt == at::kDouble || dt == at::kComplexFloat ||
                       dt == at::kComplexDouble,
                   op, ": expected a float32, float64, complex64 or complex128 tensor, got ", dt);
  TORCH_CHECK_VALUE(A.dim() >= 2, op, ": expected a tensor of shape (..., m, n) with at least 2 ",
                    "dimensions, got shape ", A.sizes());
  if (square)
    TORCH_CHECK_VALUE(A.size(-1) == A.size(-2), op,
                      ": expected square matrices (..., n, n), got shape ", A.sizes());
  if (check_finite) check_finite_on_cpu(A, op);
}

namespace {

// True when every one of the n values at x is finite: an exponent field of all ones is
// Inf or NaN. Integer tests and an OR, so the loop vectorizes and stops nowhere (one pass
// at memory speed; at::isfinite(A).all() made four passes and three temporaries of A's
// size: a fifth of the eigh forward at n = 32).
template <typename T, typename Bits, int kMantissa, Bits kExponent>
bool all_finite_values(const T* x, int64_t n) {
  Bits bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    Bits b;
    std::memcpy(&b, x + i, sizeof b);
    bad |= Bits((b >> kMantissa) & kExponent) == kExponent;
  }
  return bad == 0;
}

}  // namespace

void check_finite_on_cpu(const Tensor& A, const char* op) {
  if (!A.device().is_cpu() || A.numel() == 0) return;
  const Tensor C = A.is_complex() ? at::view_as_real(A.resolve_conj().contiguous()) : A.contiguous();
  if (C.scalar_type() != at::kFloat && C.scalar_type() != at::kDouble) {
    if (!at::isfinite(A).all().item<bool>()) raise_non_finite(op);
    return;
  }
  std::atomic<bool> finite{true};
  at::parallel_for(0, C.numel(), 1 << 16, [&](int64_t i0, int64_t i1) {
    bool ok;
    if (C.scalar_type() == at::kFloat)
      ok = all_finite_values<float, uint32_t, 23, 0xffu>(C.const_data_ptr<float>() + i0, i1 - i0);
    else
      ok = all_finite_values<double, uint64_t, 52, 0x7ffu>(C.const_data_ptr<double>() + i0, i1 - i0);
    if (!ok) finite = false;
  });
  if (!finite) raise_non_finite(op);
}

void raise_non_finite(const char* op) {
  TORCH_CHECK_VALUE(false, op, ": input contains NaN or Inf; its decomposition is undefined");
}

namespace {
// The engine's flags are on the CPU for the CPU engine: the common case (every matrix
// converged) is then one pass over them, which the compiler vectorizes (B = 20000: a few
// us, where at::any on int32 took 13-90 us, serial below its grain, in every forward).
bool all_zero(const Tensor& info) {
  if (!info.device().is_cpu() || !info.is_contiguous() || info.scalar_type() != at::kInt)
    return !info.any().item<bool>();
  const int* p = info.const_data_ptr<int>();
  int any = 0;
  for (int64_t i = 0, n = info.numel(); i < n; ++i) any |= p[i];
  return any == 0;
}
}  // namespace

Tensor matrices_to_redo(const Tensor& info, const char* op) {
  if (all_zero(info)) return Tensor();
  if ((info == 2).any().item<bool>()) raise_non_finite(op);
  return info.nonzero().squeeze(-1);
}

void check_cotangent(const c10::optional<Tensor>& g, const Tensor& like, const char* op,
                     const char* name) {
  if (!g.has_value() || !g->defined()) return;
  TORCH_CHECK(g->device() == like.device(), op, ": ", name, " is on ", g->device(),
              " but the decomposition is on ", like.device());
  TORCH_CHECK_TYPE(g->scalar_type() == like.scalar_type(), op, ": ", name, " has dtype ",
                   g->scalar_type(), ", expected ", like.scalar_type());
  TORCH_CHECK_VALUE(g->sizes() == like.sizes(), op, ": ", name, " has shape ", g->sizes(),
                    ", expected ", like.sizes());
}

std::tuple<int64_t, int64_t, int64_t> check_svd_backward_args(
    const c10::optional<Tensor>& gU, const c10::optional<Tensor>& gS,
    const c10::optional<Tensor>& gVh, const Tensor& U, const Tensor& S, const Tensor& Vh,
    const char* op) {
  TORCH_CHECK_VALUE(U.dim() >= 2 && Vh.dim() == U.dim() && S.dim() == U.dim() - 1, op,
                    ": expected U (..., m, p), S (..., k), Vh (..., q, n), got ", U.sizes(), ", ",
                    S.sizes(), ", ", Vh.sizes());
  const int64_t m = U.size(-2), n = Vh.size(-1), k = S.size(-1);
  TORCH_CHECK_VALUE(k == std::min(m, n) && U.size(-1) >= k && Vh.size(-2) >= k, op,
                    ": inconsistent shapes U ", U.sizes(), ", S ", S.sizes(), ", Vh ", Vh.sizes());
  TORCH_CHECK_TYPE(S.scalar_type() == at::toRealValueType(U.scalar_type()) &&
                       Vh.scalar_type() == U.scalar_type(),
                   op, ": dtypes of U, S, Vh do not match: ", U.scalar_type(), ", ",
                   S.scalar_type(), ", ", Vh.scalar_type());
  TORCH_CHECK(S.device() == U.device() && Vh.device() == U.device(), op,
              ": U, S, Vh must be on one device");
  check_cotangent(gU, U, op, "grad of U");
  check_cotangent(gS, S, op, "grad of S");
  check_cotangent(gVh, Vh, op, "grad of Vh");
  return {m, n, k};
}

int64_t check_eigh_backward_args(const c10::optional<Tensor>& gL,
                                 const c10::optional<Tensor>& gQ, const Tensor& L,
                                 const Tensor& Q, const char* op) {
  TORCH_CHECK_VALUE(Q.dim() >= 2 && L.dim() == Q.dim() - 1 && Q.size(-1) == Q.size(-2) &&
                        L.size(-1) == Q.size(-1),
                    op, ": expected L (..., n) and Q (..., n, n), got ", L.sizes(), ", ",
                    Q.sizes());
  TORCH_CHECK_TYPE(L.scalar_type() == at::toRealValueType(Q.scalar_type()), op,
                   ": dtypes of L and Q do not match: ", L.scalar_type(), ", ", Q.scalar_type());
  TORCH_CHECK(L.device() == Q.device(), op, ": L and Q must be on one device");
  check_cotangent(gL, L, op, "grad of L");
  check_cotangent(gQ, Q, op, "grad of Q");
  return Q.size(-1);
}

void check_fn_args(const Tensor& G, const Tensor& U, const Tensor& S, const Tensor& Vh,
                   const Tensor& fS, const Tensor& dfS, const char* op) {
  check_svd_backward_args(c10::nullopt, fS, c10::nullopt, U, S, Vh, op);
  check_cotangent(dfS, S, op, "df(S)");
  TORCH_CHECK_VALUE(U.size(-1) == S.size(-1) && Vh.size(-2) == S.size(-1), op,
                    ": expected the thin decomposition (full_matrices=False)");
  if (G.defined()) {
    auto shape = U.sizes().vec();
    shape.back() = Vh.size(-1);
    TORCH_CHECK_VALUE(G.sizes().vec() == shape, op, ": grad has shape ", G.sizes(), ", expected ",
                      at::IntArrayRef(shape));
    TORCH_CHECK_TYPE(G.scalar_type() == U.scalar_type(), op, ": grad has dtype ", G.scalar_type(),
                     ", expected ", U.scalar_type());
    TORCH_CHECK(G.device() == U.device(), op, ": grad is on ", G.device(), ", expected ", U.device());
  }
}

Tensor empty_gauge(const Tensor& like_real, const std::vector<int64_t>& batch) {
  Tensor g = at::full(with_trailing(batch, {3}), -1, like_real.options());
  g.select(-1, 0).zero_();
  return g;
}

void merge_gauge(Tensor& gauge, const Tensor& rel, const Tensor& i, const Tensor& j) {
  const Tensor current = gauge.select(-1, 0);
  const Tensor worse = rel > current;
  gauge = at::stack({at::where(worse, rel, current), at::where(worse, i, gauge.select(-1, 1)),
                     at::where(worse, j, gauge.select(-1, 2))},
                    -1);
}

}  // namespace safesvd

// Testing hook (csrc/testing.h): not an operator of the schema.
extern "C" SAFESVD_TESTING_API int safesvd_testing_max_abs(const void* x, int is_double, long long r, long long c,
                                                           long long sr, long long sc, int over, void* out) {
  if (over < 0 || over > 2) return -1;
  if (is_double)
    safesvd::max_abs_matrix(static_cast<const double*>(x), r, c, sr, sc, over, static_cast<double*>(out));
  else
    safesvd::max_abs_matrix(static_cast<const float*>(x), r, c, sr, sc, over, static_cast<float*>(out));
  return 0;
}

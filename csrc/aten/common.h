// Device-generic helpers of the operator entries: argument checks, the
// resolution of guards and tolerances (whose formulas live in
// csrc/kernels/guards.h), and small tensor utilities.
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/util/Optional.h>

#include <functional>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "../kernels/guards.h"

namespace safesvd {

using at::Tensor;
using kernels::Guard;

// The first line of every CompositeExplicitAutograd entry (svd.cpp, eigh.cpp, fn.cpp,
// guards.cpp): their own ATen calls never record autograd (the differentiable paths are
// the composite operators, composite.cpp), so they run below the ADInplaceOrView key and
// their views and temporaries carry no autograd metadata. Called from Python, a 3x3 svd
// backward at B = 1 took 9.9 us with it, 7.3 without (the 2-core Intel Xeon).
using BelowAutograd = at::AutoDispatchBelowADInplaceOrView;

// ------------------------------------------------------------------- guards

// The guard and tolerances of one call, resolved and validated once.
struct ResolvedGuard {
  Guard guard;
  double rtol, atol;       // tol = max(atol, rtol * max|spectrum|)
  double gauge_threshold;  // relative residual above which the loss is basis dependent
  double eps;              // machine epsilon of the dtype (the signal rule)
  template <typename R>
  kernels::GuardParams<R> params() const {
    return {guard, R(rtol), R(atol), R(eps)};
  }
};

// "pinv" | "lorentz" | "clamp" | "none" (kernels::kGuardNames); anything else
// is a ValueError naming the choices.
Guard parse_guard(c10::string_view guard, const char* op);

// Defaults of csrc/kernels/guards.h for the real dtype; negative or non-finite
// values are a ValueError.
ResolvedGuard resolve_guard(c10::string_view guard, at::ScalarType real_dtype,
                            c10::optional<double> rtol, c10::optional<double> atol, const char* op);
// The machine epsilon of a real dtype (float32, float64).
double epsilon_of_dtype(at::ScalarType real_dtype);
// (rtol, atol) of the divided differences of matrix functions.
std::pair<double, double> resolve_divided_difference(at::ScalarType real_dtype,
                                                     c10::optional<double> rtol,
                                                     c10::optional<double> atol, const char* op);

// ------------------------------------------------------------------- checks

// A float32/64 or complex64/128 tensor with at least 2 dims (square when
// `square`), finite entries when on CPU (on CUDA the check would cost a
// device-to-host sync on every call, so it is skipped).
// dtype, rank, squareness and (CPU, unless check_finite is false) finite entries.
void check_matrix_input(const Tensor& A, const char* op, bool square, bool check_finite = true);
// The CPU operators' clear error for NaN / Inf input (CUDA: no host round trip, NaN out).
void check_finite_on_cpu(const Tensor& A, const char* op);
void raise_non_finite(const char* op);
// After the forward engine: the matrices LAPACK must redo (info = 1, not converged), or
// an undefined tensor when there are none; a non-finite matrix (info = 2) is the CPU's
// clear error. One pass over info when every matrix converged.
Tensor matrices_to_redo(const Tensor& info, const char* op);

// A cotangent on the decomposition's device, with its dtype and shape.
void check_cotangent(const c10::optional<Tensor>& g, const Tensor& like, const char* op,
                     const char* name);

// U (..., m, p), S (..., k), Vh (..., q, n) with k = min(m, n) and the
// cotangents; returns (m, n, k).
std::tuple<int64_t, int64_t, int64_t> check_svd_backward_args(
    const c10::optional<Tensor>& gU, const c10::optional<Tensor>& gS,
    const c10::optional<Tensor>& gVh, const Tensor& U, const Tensor& S, const Tensor& Vh,
    const char* op);
int64_t check_eigh_backward_args(const c10::optional<Tensor>& gL,
                                 const c10::optional<Tensor>& gQ, const Tensor& L,
                                 const Tensor& Q, const char* op);
// The thin decomposition U (..., m, k), S, fS, dfS (..., k) real, Vh (..., k, n)
// and, when defined, G (..., m, n) like U.
void check_fn_args(const Tensor& G, const Tensor& U, const Tensor& S, const Tensor& Vh,
                   const Tensor& fS, const Tensor& dfS, const char* op);

// The largest residual of a CPU (..., 3) gauge tensor of a backward op (column 0), NaN
// when one is NaN, 0 for none (csrc/aten/guards.cpp; the operator _gauge_worst).
double gauge_worst(const Tensor& gauge);

// --------------------------------------------------------------- utilities

// A defined cotangent, or nullopt.
inline c10::optional<Tensor> present(const c10::optional<Tensor>& g) {
  return (g.has_value() && g->defined()) ? g : c10::nullopt;
}
inline Tensor value_or_undefined(const c10::optional<Tensor>& g) {
  return (g.has_value() && g->defined()) ? *g : Tensor();
}
// The reverse: a tensor for an optional argument, nullopt when undefined.
inline c10::optional<Tensor> opt(const Tensor& t) { return t.defined() ? c10::optional<Tensor>(t) : c10::nullopt; }

// The typed handle of a library operator ("safesvd::svd"), for the Functions and nodes that
// call operators through the dispatcher (csrc/api/api.cpp, csrc/aten/autograd.cpp).
template <typename Sig>
c10::TypedOperatorHandle<Sig> find_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Sig>();
}
// The C++ signatures of safesvd::svd and safesvd::eigh (csrc/safesvd.cpp), for find_op.
using SvdOpSignature = std::tuple<Tensor, Tensor, Tensor>(const Tensor&, bool, c10::string_view,
                                                          c10::optional<double>, c10::optional<double>,
                                                          c10::optional<c10::string_view>);
using EighOpSignature = std::tuple<Tensor, Tensor>(const Tensor&, c10::string_view, c10::string_view,
                                                   c10::optional<double>, c10::optional<double>,
                                                   c10::optional<c10::string_view>);

// Batch shape of a (..., r, c) tensor (matrix_dims = 2) or (..., k) (1).
inline std::vector<int64_t> batch_shape(const Tensor& X, int64_t matrix_dims = 2) {
  auto s = X.sizes().vec();
  s.resize(s.size() - matrix_dims);
  return s;
}
inline std::vector<int64_t> with_trailing(std::vector<int64_t> shape, std::initializer_list<int64_t> tail) {
  shape.insert(shape.end(), tail.begin(), tail.end());
  return shape;
}

// A new tensor for an operator's output or a large temporary: on the CPU, from the
// output cache (csrc/aten/output_cache.cpp: memory of an earlier call's freed output of
// the same size, its pages mapped already), elsewhere at::empty / at::empty_strided.
Tensor empty_output(at::IntArrayRef shape, const at::TensorOptions& options);
Tensor empty_strided_output(at::IntArrayRef shape, at::IntArrayRef strides, const at::TensorOptions& options);

// A new (..., r, c) tensor whose matrices are column-major (LAPACK's layout) and
// whose batch is contiguous: the strides torch.linalg.svd / eigh return, so fake
// tensors and forward-mode tangents agree with either driver. Not a view.
inline Tensor empty_column_major(const std::vector<int64_t>& shape, const at::TensorOptions& options) {
  std::vector<int64_t> strides(shape.size());
  const size_t d = shape.size();
  const int64_t r = shape[d - 2], c = shape[d - 1];
  strides[d - 2] = 1;
  strides[d - 1] = std::max<int64_t>(r, 1);
  int64_t step = std::max<int64_t>(r * c, 1);
  for (size_t i = d - 2; i-- > 0;) {
    strides[i] = step;
    step *= std::max<int64_t>(shape[i], 1);
  }
  return empty_strided_output(shape, strides, options);
}
// Its matrices as one (B, r, c) batch (a view of the same memory).
inline Tensor as_matrix_batch(const Tensor& X) {
  return X.mT().reshape({-1, X.size(-1), X.size(-2)}).mT();
}

// (..., 3) gauge info for matrices with nothing to check: residual 0, pair (-1, -1).
Tensor empty_gauge(const Tensor& like_real, const std::vector<int64_t>& batch);

// The full_matrices=True part of the svd gauge check (csrc/aten/svd.cpp).
void note_full_matrices_gauge(Tensor& gauge, const c10::optional<Tensor>& gU,
                              const c10::optional<Tensor>& gVh, int64_t k);

// Where rel (...) exceeds gauge[..., 0], replace the gauge entry by (rel, i, j).
void merge_gauge(Tensor& gauge, const Tensor& rel, const Tensor& i, const Tensor& j);

// X^H with the conjugation done, not a lazy conj view (opcheck's schema check
// reports lazy-conj inputs of matmul's internal expand as mutated).
inline Tensor adjoint_of(const Tensor& X) { return X.transpose(-2, -1).conj_physical(); }

// max |x| over `dims` ({-2, -1}, {-2} or {-1} of a (..., r, c) tensor) in one pass,
// without the temporary |x|; NaN propagates as through amax. For the device ops'
// inputs (real tensors, no autograd): real CPU input runs a loop over the batch
// (torch's reductions over small inner dimensions cost several ns per entry, more
// than the rest of the batched backward); the rest the infinity norm.
Tensor max_abs(const Tensor& x, at::IntArrayRef dims);

// The same by torch operations only, for traced code (the composite backward, which
// may run on fake tensors).
inline Tensor max_abs_traced(const Tensor& x, at::IntArrayRef dims) {
  return at::linalg_vector_norm(x, std::numeric_limits<double>::infinity(), dims);
}

struct DeviceKernels;
// out = a b for (B, m, k) a, (B, k, n) b: the device's small_bmm where it takes them (it
// requires out contiguous), else at::bmm_out (any out, resized as at::bmm_out does).
void bmm_into(const DeviceKernels& dev, const Tensor& a, const Tensor& b, Tensor& out);
// a b as bmm_into, into `spare` (a temporary of the caller that is dead by now) where it
// is a contiguous (B, m, n) tensor of their dtype other than a and b, else into a new
// one. The batched backward reuses its temporaries so: every new tensor of B k^2 values
// is fresh pages from the system, whose first touch (the page faults) cost about a
// quarter of the 24 x 24 float64 svd backward (B = 5000, 2 cores).
Tensor device_bmm(const DeviceKernels& dev, const Tensor& a, const Tensor& b, Tensor spare);

// The batched backward on the CPU, a slice of the batch at a time: f(b0, b1) for slices
// [b0, b1) of about kBackwardSliceBytes per n x n array (one matrix at least), the slices
// in parallel and each single threaded (ATen and MKL inside at::parallel_for), the
// workers under the caller's thread-local state. A slice's temporaries stay in the core's
// L2 and are reused by the allocator from one slice to the next, where whole-batch
// temporaries streamed each product through memory and were fresh pages every call
// (docs/architecture.md, "Batched backward"). One thread or inside a parallel region: the
// slices one after the other; on other devices or for one slice, f(0, B).
constexpr int64_t kBackwardSliceBytes = 256 * 1024;
void in_backward_slices(const Tensor& like, int64_t B, int64_t matrix_bytes,
                        const std::function<void(int64_t, int64_t)>& f);
// Matrices [b0, b1) of a batch (dim 0) for in_backward_slices; undefined stays undefined.
inline Tensor batch_slice(const Tensor& t, int64_t b0, int64_t b1) {
  return t.defined() ? t.narrow(0, b0, b1 - b0) : t;
}

// max |x| over the last two dims, or zeros shaped like `like` when undefined.
inline Tensor max_abs_or_zero(const Tensor& x, const Tensor& like, bool traced = false) {
  if (!x.defined()) return at::zeros_like(like);
  return traced ? max_abs_traced(x, {-2, -1}) : max_abs(x, {-2, -1});
}

}  // namespace safesvd

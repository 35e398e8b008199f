// Every schema of the safesvd operator library, in one place
// (docs/architecture.md).
//
// Entries: csrc/aten/ (device generic, CompositeExplicitAutograd), the
// differentiable composite (csrc/aten/composite.cpp, CompositeImplicitAutograd).
// Device kernels register a dispatch table (csrc/cpu/, csrc/cuda/). Autograd,
// fake and vmap rules are registered from Python (python/safesvd/_ops.py);
// LibTorch users get gradients from the C++ API (include/safesvd/safesvd.h).
#include <torch/library.h>

#ifdef SAFESVD_WITH_PYTHON
#include <Python.h>
// Importing safesvd._C runs the static registrations below; the module itself
// is empty (the pattern of pytorch/extension-cpp).
extern "C" {
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}
#endif

TORCH_LIBRARY(safesvd, m) {
  // Forward decompositions. The guard arguments only affect the backward; they
  // are part of the schema so that autograd sees them, and are validated here.
  // driver: None (the measured choice), "jacobi" (the small-matrix engine,
  // csrc/kernels/jacobi.h) or "lapack" (LAPACK / cuSOLVER through ATen).
  m.def(
      "svd(Tensor A, bool full_matrices=False, str guard=\"pinv\", float? rtol=None, "
      "float? atol=None, str? driver=None) -> (Tensor U, Tensor S, Tensor Vh)");
  m.def(
      "eigh(Tensor A, str UPLO=\"L\", str guard=\"pinv\", float? rtol=None, "
      "float? atol=None, str? driver=None) -> (Tensor L, Tensor Q)");

  // Backward of svd / eigh (docs/math.md). `gauge` is (..., 3):
  // [relative basis-dependent residual, i, j] (docs/math.md, "Gauge check").
  m.def(
      "_svd_backward(Tensor? gU, Tensor? gS, Tensor? gVh, Tensor U, Tensor S, Tensor Vh, "
      "str guard, float? rtol, float? atol) -> (Tensor gA, Tensor gauge)");
  m.def(
      "_eigh_backward(Tensor? gL, Tensor? gQ, Tensor L, Tensor Q, str guard, float? rtol, "
      "float? atol) -> (Tensor gA, Tensor gauge)");
  // The Python package's fast autograd path (csrc/aten/autograd.cpp): svd, eigh, svd_fn,
  // eigh_fn in a C++ autograd node whose backward calls the hook, the Python backward
  // (registered by python/safesvd/_ops.py; a program without Python has no kernel for it).
  m.def(
      "_svd_autograd(Tensor A, bool full_matrices, str guard, float? rtol, float? atol, str? driver) -> "
      "(Tensor U, Tensor S, Tensor Vh)");
  m.def(
      "_eigh_autograd(Tensor A, str UPLO, str guard, float? rtol, float? atol, str? driver) -> (Tensor L, Tensor Q)");
  m.def(
      "_svd_backward_hook(Tensor? gU, Tensor? gS, Tensor? gVh, Tensor U, Tensor S, Tensor Vh, str guard, "
      "float? rtol, float? atol) -> Tensor");
  m.def(
      "_eigh_backward_hook(Tensor? gL, Tensor? gQ, Tensor L, Tensor Q, str guard, float? rtol, float? atol) -> Tensor");
  // The svd / eigh nodes' backward without Python while on (returns the previous value;
  // set by python/safesvd/_gauge.py), and the Python gauge check it calls when a residual
  // is above the threshold (csrc/aten/autograd.cpp, "The backward of svd and eigh").
  m.def("_set_cpp_backward(bool on) -> bool");
  m.def("_gauge_check_hook(Tensor gauge, Tensor spectrum, str op, str spectrum_name, float? rtol) -> ()");
  m.def(
      "_svd_fn_autograd(Tensor A, Tensor U, Tensor S, Tensor Vh, Tensor fS, Tensor dfS, Tensor? d2fS, Tensor? df0, "
      "float? rtol, float? atol) -> Tensor");
  m.def(
      "_eigh_fn_autograd(Tensor A, Tensor L, Tensor Q, Tensor fL, Tensor dfL, Tensor? d2fL, float? rtol, "
      "float? atol) -> Tensor");
  m.def(
      "_svd_fn_backward_hook(Tensor G, Tensor A, Tensor U, Tensor S, Tensor Vh, Tensor fS, Tensor dfS, Tensor? d2fS, "
      "Tensor? df0, float? rtol, float? atol) -> (Tensor gA, Tensor gf)");
  m.def(
      "_eigh_fn_backward_hook(Tensor G, Tensor A, Tensor L, Tensor Q, Tensor fL, Tensor dfL, Tensor? d2fL, "
      "float? rtol, float? atol) -> (Tensor gA, Tensor gf)");
  // The same math as differentiable ATen ops, for create_graph=True.
  m.def(
      "_svd_backward_composite(Tensor? gU, Tensor? gS, Tensor? gVh, Tensor U, Tensor S, "
      "Tensor Vh, str guard, float? rtol, float? atol) -> (Tensor gA, Tensor gauge)");
  m.def(
      "_eigh_backward_composite(Tensor? gL, Tensor? gQ, Tensor L, Tensor Q, str guard, "
      "float? rtol, float? atol) -> (Tensor gA, Tensor gauge)");

  // Spectral matrix functions (docs/math.md, "Matrix functions"). A carries the
  // autograd edge; the decomposition and f, f', f'' on the spectrum come from the
  // caller (f is a Python or C++ callable, not an operator argument).
  // Y = U diag(fS) Vh, resp. Q diag(fL) Q^H. d2f and df0 = f'(0) are needed
  // only for the second order (df0 for rectangular svd_fn).
  m.def(
      "svd_fn(Tensor A, Tensor U, Tensor S, Tensor Vh, Tensor fS, Tensor dfS, Tensor? d2fS=None, "
      "Tensor? df0=None, float? rtol=None, float? atol=None) -> Tensor");
  m.def(
      "eigh_fn(Tensor A, Tensor L, Tensor Q, Tensor fL, Tensor dfL, Tensor? d2fL=None, "
      "float? rtol=None, float? atol=None) -> Tensor");
  // First order: gA and gf, the cotangent of f(S) (for parameters of f).
  m.def(
      "_svd_fn_backward(Tensor G, Tensor U, Tensor S, Tensor Vh, Tensor fS, Tensor dfS, "
      "float? rtol, float? atol) -> (Tensor gA, Tensor gf)");
  m.def(
      "_eigh_fn_backward(Tensor G, Tensor L, Tensor Q, Tensor fL, Tensor dfL, float? rtol, "
      "float? atol) -> (Tensor gA, Tensor gf)");
  // Second order: d/dA <H, gA(A)> for the first-order gA of cotangent G, and the
  // gradients of <H, gA> with respect to f(S) and f'(S).
  m.def(
      "_svd_fn_second_order(Tensor H, Tensor G, Tensor U, Tensor S, Tensor Vh, Tensor fS, "
      "Tensor dfS, Tensor d2fS, Tensor? df0, float? rtol, float? atol) -> (Tensor gA, Tensor gf, "
      "Tensor gdf)");
  m.def(
      "_eigh_fn_second_order(Tensor H, Tensor G, Tensor L, Tensor Q, Tensor fL, Tensor dfL, "
      "Tensor d2fL, float? rtol, float? atol) -> (Tensor gA, Tensor gf, Tensor gdf)");

  // f, f', f'' on a (detached) spectrum for the named matrix functions "sqrtm",
  // "invsqrtm", "logm" (csrc/aten/fn.cpp, tolerances in csrc/kernels/guards.h), with the
  // check of their domain when `check` (ValueError: not semidefinite, not definite).
  // One definition for the Python package and the C++ API.
  m.def("_spectral_function(Tensor L, str name, bool check=True) -> (Tensor f, Tensor df, Tensor d2f)");
  // eigh (default guard and driver) and _spectral_function of its spectrum in one call:
  // what sqrtm / invsqrtm / logm compute before their product (csrc/aten/fn.cpp). Records
  // no gradient (callers pass a detached A; the product, eigh_fn, carries A's gradient).
  m.def(
      "_eigh_spectral(Tensor A, str UPLO, str name, bool check=True) -> (Tensor L, Tensor Q, Tensor f, Tensor df, "
      "Tensor d2f)");
  // svd (default guard and driver), f = 1 (special: procrustes' flip, _procrustes_flip),
  // f' = 0 (also f''), whether the result is not unique (_merged_with_zero's rank
  // deficiency; special: the flip's ambiguity) and, with product, U diag(f) Vh, in one
  // call: what polar and procrustes compute (csrc/aten/fn.cpp). Records no gradient, as
  // _eigh_spectral. Without product, Q is an empty tensor.
  m.def(
      "_svd_polar(Tensor A, bool special=False, bool product=True) -> (Tensor U, Tensor S, Tensor Vh, Tensor f, "
      "Tensor zeros, Tensor not_unique, Tensor Q)");

  // The k largest singular triplets (docs/math.md, "Dominant triplets"). Forward
  // and backward are Python kernels (python/safesvd/_topk.py): a full SVD or a
  // subspace iteration, and a deflated K-system solve (dense or matrix-free CG).
  // method: "auto" | "dense" | "iterative".
  m.def(
      "svd_topk(Tensor A, int k, str method=\"auto\", str guard=\"pinv\", float? rtol=None, "
      "float? atol=None) -> (Tensor U, Tensor S, Tensor Vh)");

  // The guards as operators (csrc/aten/guards.cpp; formulas in csrc/kernels/guards.h).
  // Defaults for a dtype: [rtol, atol, gauge threshold], or [rtol, atol] of the
  // divided differences.
  m.def("_guard_defaults(ScalarType dtype, float? rtol=None, float? atol=None, "
        "bool divided_difference=False) -> float[]");
  // The largest residual of a CPU gauge tensor (..., 3) of a backward op, NaN when one is
  // (the check of python/safesvd/_gauge.py; CPU only).
  m.def("_gauge_worst(Tensor gauge) -> float");
  // Per matrix (..., 6): [f1, f2, tol, floor, noise, cap] (or the divided differences').
  m.def(
      "_guard_params(Tensor spectrum, Tensor cotangent_scale, int dims, str guard, float? rtol, "
      "float? atol, bool divided_difference=False) -> Tensor");
  // Per matrix (...): the smallest |value| (or |value index|) is zero up to the divided
  // differences' rounding floor (matrix functions of rank-deficient input).
  m.def("_merged_with_zero(Tensor spectrum, float? rtol=None, float? atol=None, int? index=None) -> Tensor");
  // procrustes(special=True): f(S) = [1, ..., 1, sign det(U Vh)] and, per matrix, whether
  // the nearest rotation is not unique.
  m.def("_procrustes_flip(Tensor U, Tensor S, Tensor Vh) -> (Tensor fS, Tensor ambiguous)");
  // Guarded coefficients of scaled differences d (..., E...), with their slope
  // and gauge notes.
  m.def(
      "_guard_coefficients(Tensor d, Tensor? xabs, Tensor params, str guard) -> (Tensor coef, "
      "Tensor slope, Tensor note)");

  // The instruction set the CPU forward engine runs ("baseline", "avx2", "avx512").
  m.def("_cpu_isa() -> str");
  // The CPU output cache (csrc/aten/output_cache.cpp): sets the limit of idle bytes when
  // given, empties it when clear, and returns [idle bytes, limit, idle blocks, reuses,
  // new blocks].
  m.def("_cpu_output_cache(int? limit_bytes=None, bool clear=False) -> int[]");
  // Whether this build has kernels for a device type ("cpu", "cuda", ...).
  m.def("_has_device_kernels(str device) -> bool");
  // (Test hooks are exported C symbols, not operators: csrc/testing.h.)
}

// Every schema of the safesvd operator library, in one place (design.md 2).
//
// Kernels live in csrc/cpu/ (CPU), csrc/cuda/ (CUDA) and csrc/aten/composite.cpp
// (CompositeImplicitAutograd, the differentiable backward). Autograd and fake
// kernels are registered from Python (python/safesvd/_ops.py).
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
  // Forward decompositions (ATen). The guard arguments only affect the backward;
  // they are part of the schema so that autograd sees them.
  m.def(
      "svd(Tensor A, bool full_matrices=False, str guard=\"pinv\", float? rtol=None, "
      "float? atol=None) -> (Tensor U, Tensor S, Tensor Vh)");
  m.def(
      "eigh(Tensor A, str UPLO=\"L\", str guard=\"pinv\", float? rtol=None, "
      "float? atol=None) -> (Tensor L, Tensor Q)");

  // Backward of svd / eigh (design.md 3.1, 3.2). `gauge` is (..., 3):
  // [relative basis-dependent residual, i, j] (design.md 3.4).
  m.def(
      "_svd_backward(Tensor? gU, Tensor? gS, Tensor? gVh, Tensor U, Tensor S, Tensor Vh, "
      "str guard, float? rtol, float? atol) -> (Tensor gA, Tensor gauge)");
  m.def(
      "_eigh_backward(Tensor? gL, Tensor? gQ, Tensor L, Tensor Q, str guard, float? rtol, "
      "float? atol) -> (Tensor gA, Tensor gauge)");
  // Spectral matrix functions (design.md 3.5). A carries the autograd edge; the
  // decomposition and f, df on the spectrum are computed by the Python wrapper
  // (f, df are Python callables). Y = U diag(fS) Vh, resp. Q diag(fL) Q^H.
  m.def(
      "svd_fn(Tensor A, Tensor U, Tensor S, Tensor Vh, Tensor fS, Tensor dfS, float? rtol=None, "
      "float? atol=None) -> Tensor");
  m.def(
      "eigh_fn(Tensor A, Tensor L, Tensor Q, Tensor fL, Tensor dfL, float? rtol=None, "
      "float? atol=None) -> Tensor");
  m.def(
      "_svd_fn_backward(Tensor G, Tensor U, Tensor S, Tensor Vh, Tensor fS, Tensor dfS, "
      "float? rtol, float? atol) -> Tensor");
  m.def(
      "_eigh_fn_backward(Tensor G, Tensor L, Tensor Q, Tensor fL, Tensor dfL, float? rtol, "
      "float? atol) -> Tensor");

  // The k largest singular triplets (design.md 3.6; seeds 002, 004). Forward and
  // backward are Python kernels (python/safesvd/_topk.py): a full SVD or a
  // subspace iteration, and a deflated K-system solve (dense or matrix-free CG)
  // for the discarded part of the spectrum. method: "auto" | "dense" | "iterative".
  m.def(
      "svd_topk(Tensor A, int k, str method=\"auto\", str guard=\"pinv\", float? rtol=None, "
      "float? atol=None) -> (Tensor U, Tensor S, Tensor Vh)");

  // The same math as differentiable ATen ops, for create_graph=True.
  m.def(
      "_svd_backward_composite(Tensor? gU, Tensor? gS, Tensor? gVh, Tensor U, Tensor S, "
      "Tensor Vh, str guard, float? rtol, float? atol) -> (Tensor gA, Tensor gauge)");
  m.def(
      "_eigh_backward_composite(Tensor? gL, Tensor? gQ, Tensor L, Tensor Q, str guard, "
      "float? rtol, float? atol) -> (Tensor gA, Tensor gauge)");
  m.def(
      "_svd_fn_backward_composite(Tensor G, Tensor U, Tensor S, Tensor Vh, Tensor fS, "
      "Tensor dfS, float? rtol, float? atol) -> Tensor");
  m.def(
      "_eigh_fn_backward_composite(Tensor G, Tensor L, Tensor Q, Tensor fL, Tensor dfL, "
      "float? rtol, float? atol) -> Tensor");
}

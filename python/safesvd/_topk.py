"""The k largest singular triplets and their VJP (docs/math.md, "Dominant triplets").

Backward, for A ~ U_k diag(S_k) V_k^H:

    gA = U_k J V_k^H  +  X V_k^H + U_k Y^H

- J is the guarded SVD backward of the kept block: the fused op `_svd_backward`
  applied to the k x k core (U = Vh = I, cotangents U_k^H gU and gVh V_k), so
  degeneracies inside the kept k are guarded and gauge-checked like `svd`.
- [x_i; y_i] (the columns of X, Y) solve the K system (docs/math.md) for each kept
  i, restricted to the complement P of the kept vectors:
      K_i = [[s_i I, -A], [-A^H, s_i I]],   K_i [x_i; y_i] = [(I - U U^H) gU_i; (I - V V^H) gV_i]
  P is K_i-invariant, so K_i + c Pi_kept (c = 2 s_1) is Hermitian positive definite
  whenever s_k > s_{k+1}, with the same solution. It needs only s_k > s_{k+1}:
  degeneracy elsewhere in the spectrum does not enter.
  Dense (small, traceable by torch.compile): one eigendecomposition of [[0, -A], [-A^H, 0]] + c Pi serves every
  i (K_i' = s_i I + H), solved with a pseudo-inverse guard. Matrix-free (large):
  block conjugate gradients that only multiply by A and A^H, so a large matrix
  never needs its full SVD (its convergence loop reads values: not traceable by
  torch.compile, like the iterative forward).
"""

from __future__ import annotations

import math

import torch

from . import _gauge, _guards, _inputs, _library, _ops

# Sizes: full SVD forward and dense backward up to this min(m, n) (and m + n);
# above, subspace iteration and matrix-free CG (when k is small against min(m, n)).
DENSE_MAX_MIN_DIM = 256
DENSE_MAX_SUM_DIM = 768
OVERSAMPLING = 8
MAX_ITERATIONS = 2000


def _use_iterative(method: str, m: int, n: int, k: int) -> bool:
    if method not in ("auto", "dense", "iterative"):
        raise ValueError(f"svd_topk: method must be 'auto', 'dense' or 'iterative', got {method!r}")
    if method != "auto":
        return method == "iterative"
    return min(m, n) > DENSE_MAX_MIN_DIM and k + OVERSAMPLING <= min(m, n) // 4


def _iteration_tolerance(dtype: torch.dtype) -> float:
    # 10 eps^(2/3): 2.4e-4 in float32, 3.7e-10 in float64 (relative residuals).
    return 10 * torch.finfo(dtype).eps ** (2 / 3)


def subspace_iteration(A: torch.Tensor, k: int, max_iterations: int = MAX_ITERATIONS):
    """Top-k SVD by block power (subspace) iteration with Rayleigh-Ritz.

    Converged when every kept triplet has ||A v_i - s_i u_i|| and ||A^H u_i - s_i v_i||
    below 10 eps^(2/3) s_1; otherwise a RuntimeError (the rate is (s_{k+p+1}/s_k)^2
    per step, p = 8: a flat spectrum at the k-th value converges slowly).
    """
    m, n = A.shape[-2:]
    p = min(k + OVERSAMPLING, m, n)
    gen = torch.Generator(device=A.device).manual_seed(0)
    Q = torch.randn(*A.shape[:-2], n, p, dtype=A.dtype, device=A.device, generator=gen)
    Q = torch.linalg.qr(Q).Q
    tol = _iteration_tolerance(_guards.real_dtype(A.dtype))
    residual = float("inf")
    for _ in range(max_iterations):
        Y = torch.linalg.qr(A @ Q).Q
        Z = A.mH @ Y  # n x p
        Q = torch.linalg.qr(Z).Q
        # Rayleigh-Ritz on span(Y) x span(Q): Y^H A Q = (Q^H Z)^H.
        Ub, Sb, Vbh = torch.linalg.svd((Q.mH @ Z).mH, full_matrices=False)
        U = Y @ Ub[..., :k]
        V = Q @ Vbh.mH[..., :k]
        S = Sb[..., :k]
        scale = S[..., :1].clamp_min(torch.finfo(S.dtype).tiny).unsqueeze(-1)
        r1 = (A @ V - U * S.unsqueeze(-2).to(A.dtype)).abs().amax((-2,)) / scale[..., 0]
        r2 = (A.mH @ U - V * S.unsqueeze(-2).to(A.dtype)).abs().amax((-2,)) / scale[..., 0]
        residual = float(torch.maximum(r1, r2).max()) if r1.numel() else 0.0
        if residual <= tol:
            return U, S, V.mH
    raise RuntimeError(
        f"safesvd.svd_topk: subspace iteration did not converge in {max_iterations} iterations "
        f"(relative residual {residual:.2e} > {tol:.1e}). The k-th singular value is probably "
        "too close to the next ones; use method='dense' (full SVD) for this matrix."
    )


def topk_forward(A, k, method="auto", guard="pinv", rtol=None, atol=None):
    if A.dim() < 2:
        raise ValueError(f"safesvd.svd_topk: expected (..., m, n), got shape {tuple(A.shape)}")
    m, n = A.shape[-2:]
    if not 0 <= k <= min(m, n):
        raise ValueError(f"safesvd.svd_topk: k must be in [0, min(m, n)] = [0, {min(m, n)}], got {k}")
    if _use_iterative(method, m, n, k) and k > 0 and A.numel() > 0:
        # The iteration reads values every step anyway: check here, on every device,
        # so NaN/Inf input is the same clear error as for the dense path.
        if not bool(torch.isfinite(A).all()):
            raise ValueError("safesvd.svd_topk: input contains NaN or Inf; its decomposition is undefined")
        U, S, Vh = subspace_iteration(A, k)
    else:
        U, S, Vh = torch.ops.safesvd.svd(A, False, guard, rtol, atol)
    return _fix_phase(U[..., :k], S[..., :k].clone(), Vh[..., :k, :])


def _fix_phase(U, S, Vh):
    """One convention for every method: the largest-magnitude entry of each u_i is
    real and positive; v_i gets the same phase, so u_i v_i^H is unchanged."""
    if U.numel() == 0:
        return U.clone(), S, Vh.clone()
    top = U.gather(-2, U.abs().argmax(-2, keepdim=True))  # (..., 1, k)
    phase = (top / top.abs().clamp_min(torch.finfo(S.dtype).tiny)).conj()
    return (U * phase).contiguous(), S, (Vh * phase.mT.conj()).contiguous()


def _apply_K_base(A, x, m):
    """[[0, -A], [-A^H, 0]] x for x (..., m + n, c)."""
    return torch.cat([-(A @ x[..., m:, :]), -(A.mH @ x[..., :m, :])], dim=-2)


def _project_kept(U, V, x, m):
    """Pi_kept x = [U U^H x1; V V^H x2]."""
    return torch.cat([U @ (U.mH @ x[..., :m, :]), V @ (V.mH @ x[..., m:, :])], dim=-2)


def _solve_dense(A, U, S, V, rhs, c, tol):
    """K_i' x_i = rhs_i for all kept i, from one eigendecomposition of H (pinv guard)."""
    m, n = A.shape[-2:]
    Z = torch.zeros(*A.shape[:-2], m, m, dtype=A.dtype, device=A.device)
    W = torch.zeros(*A.shape[:-2], n, n, dtype=A.dtype, device=A.device)
    H = torch.cat([torch.cat([Z, -A], -1), torch.cat([-A.mH, W], -1)], -2)
    Pi = torch.cat([torch.cat([U @ U.mH, torch.zeros_like(A)], -1),
                    torch.cat([torch.zeros_like(A.mH), V @ V.mH], -1)], -2)
    lam, E = torch.linalg.eigh(H + c * Pi)
    denom = S.unsqueeze(-2) + lam.unsqueeze(-1)  # (..., m+n, k): eigenvalues of K_i'
    keep = denom.abs() > tol
    inv = torch.where(keep, 1 / torch.where(keep, denom, torch.ones_like(denom)), torch.zeros_like(denom))
    sol = E @ (inv.to(E.dtype) * (E.mH @ rhs))
    singular = False if _gauge.is_tracing(keep) or not keep.numel() else bool((~keep).any())
    return sol, singular


def _solve_cg(A, U, S, V, rhs, c, tol):
    """Block conjugate gradients, one independent CG per kept column i (matrix-free)."""
    m = A.shape[-2]
    sigma = S.unsqueeze(-2).to(A.dtype)

    def op(x):
        return sigma * x + _apply_K_base(A, x, m) + c * _project_kept(U, V, x, m)

    x = torch.zeros_like(rhs)
    r = rhs.clone()
    d = r.clone()
    rr = (r.conj() * r).real.sum(-2, keepdim=True)
    target = (tol ** 2) * rr.clamp_min(torch.finfo(rr.dtype).tiny)
    max_iter = max(200, 4 * rhs.shape[-2])
    for _ in range(max_iter):
        if bool((rr <= target).all()):
            return x, False
        Kd = op(d)
        dKd = (d.conj() * Kd).real.sum(-2, keepdim=True)
        alpha = torch.where(dKd > 0, rr / torch.where(dKd > 0, dKd, torch.ones_like(dKd)), torch.zeros_like(dKd))
        x = x + alpha.to(x.dtype) * d
        r = r - alpha.to(x.dtype) * Kd
        rr_new = (r.conj() * r).real.sum(-2, keepdim=True)
        beta = torch.where(rr > 0, rr_new / torch.where(rr > 0, rr, torch.ones_like(rr)), torch.zeros_like(rr))
        d = r + beta.to(x.dtype) * d
        rr = rr_new
    worst = float((rr / target.clamp_min(torch.finfo(rr.dtype).tiny)).max().sqrt()) * tol
    raise RuntimeError(
        f"safesvd.svd_topk backward: conjugate gradients did not converge in {max_iter} iterations "
        f"(relative residual {worst:.2e}). The k-th singular value is (nearly) equal to the "
        "(k+1)-th, where the top-k subspace is not unique; use method='dense' to get the guarded value."
    )


def topk_backward(A, U, S, Vh, gU, gS, gVh, method, guard, rtol, atol):
    k = S.shape[-1]
    m, n = A.shape[-2:]
    if k == 0 or A.numel() == 0:
        return torch.zeros_like(A)
    V = Vh.mH
    eye = torch.eye(k, dtype=A.dtype, device=A.device).expand(*A.shape[:-2], k, k)
    core_gU = U.mH @ gU if gU is not None else None
    core_gVh = gVh @ V if gVh is not None else None
    J = _ops.svd_backward(core_gU, gS, core_gVh, eye, S, eye, guard, rtol, atol, "safesvd.svd_topk backward")
    gA = U @ J @ Vh
    if gU is None and gVh is None:
        return gA
    # Complement parts of the vector cotangents (the right-hand side in P).
    G1 = gU - U @ core_gU if gU is not None else torch.zeros_like(U)
    gV = gVh.mH if gVh is not None else None
    G2 = gV - V @ (V.mH @ gV) if gV is not None else torch.zeros_like(V)
    rhs = torch.cat([G1, G2], dim=-2)
    c = 2 * S[..., :1].unsqueeze(-1).to(A.dtype)  # (..., 1, 1): deflation shift 2 s_1
    eps = torch.finfo(S.dtype).eps
    # Per matrix, (..., 1, 1); a tensor so that the dense path traces under torch.compile.
    tol = ((rtol if rtol is not None else eps ** 0.75) * S.detach()[..., :1]).clamp_min(atol or 0.0).unsqueeze(-1)
    if _use_iterative(method, m, n, k):
        sol, singular = _solve_cg(A, U, S, V, rhs, c, max(_iteration_tolerance(S.dtype), math.sqrt(eps)))
    else:
        sol, singular = _solve_dense(A, U, S, V, rhs, c, tol)
    if singular:
        _warn_boundary()
    X, Y = sol[..., :m, :], sol[..., m:, :]
    return gA + X @ Vh + U @ Y.mH


def _warn_boundary():
    import warnings

    message = ("safesvd.svd_topk backward: the k-th singular value is (nearly) equal to the (k+1)-th, "
               "so the top-k subspace is not unique; the guarded (minimum-norm) value is returned.")
    if _gauge.get_gauge_mode() == "raise":
        raise _gauge.GaugeWarning(message)
    if _gauge.get_gauge_mode() == "warn":
        warnings.warn(message, _gauge.GaugeWarning, stacklevel=4)


# ------------------------------------------------------------- registrations


def _fake(A, k, method="auto", guard="pinv", rtol=None, atol=None):
    m, n = A.shape[-2:]
    real = _guards.real_dtype(A.dtype)
    return (A.new_empty((*A.shape[:-2], m, k)), A.new_empty((*A.shape[:-2], k), dtype=real),
            A.new_empty((*A.shape[:-2], k, n)))


class SafesvdSvdTopk(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(A, k, method, guard, rtol, atol):
        with torch._C._AutoDispatchBelowAutograd():
            return torch.ops.safesvd.svd_topk.default(A, k, method, guard, rtol, atol)

    @staticmethod
    def setup_context(ctx, inputs, output):
        A, k, method, guard, rtol, atol = inputs
        ctx.save_for_backward(A, *output)
        ctx.options = (method, guard, rtol, atol)
        ctx.set_materialize_grads(False)

    @staticmethod
    def backward(ctx, gU, gS, gVh):
        if gU is None and gS is None and gVh is None:
            return (None,) * 6
        A, U, S, Vh = ctx.saved_tensors
        method, guard, rtol, atol = ctx.options
        return topk_backward(A, U, S, Vh, gU, gS, gVh, method, guard, rtol, atol), None, None, None, None, None

    @staticmethod
    def jvp(ctx, *tangents):
        raise NotImplementedError(
            "safesvd.svd_topk / svd_rank1: forward-mode AD is not implemented; use reverse mode, "
            "or safesvd.svd (which supports both) when the full decomposition is affordable")


_registered = False


def register() -> None:
    """The Python kernels of safesvd::svd_topk: forward, fake, autograd, vmap (once the library is loaded)."""
    global _registered
    if _registered:
        return
    torch.library.register_kernel("safesvd::svd_topk", ("cpu", "cuda"), topk_forward)
    torch.library.register_fake("safesvd::svd_topk")(_fake)
    lib = torch.library.Library("safesvd", "IMPL")  # noqa: TOR901 (kept alive below)
    _ops.register_autograd(lib, "svd_topk", SafesvdSvdTopk)
    _ops.register_vmap("svd_topk")
    register._lib = lib
    _registered = True


# ------------------------------------------------------------------- public


@_inputs.outside_autocast
def svd_topk(A: torch.Tensor, k: int, *, method: str = "auto", guard: str = "pinv",
             rtol: float | None = None, atol: float | None = None):
    """The k largest singular triplets: ``U_k (..., m, k)``, ``S_k (..., k)``, ``Vh_k (..., k, n)``.

    Forward: a full SVD (``method="dense"``), or subspace iteration with Rayleigh-Ritz
    (``"iterative"``: converged to 10 eps^(2/3) relative residuals, else RuntimeError).
    ``"auto"`` uses the iteration when min(m, n) > 256 and k + 8 <= min(m, n) / 4.
    Every method returns the same phase convention: the largest-magnitude entry of each
    column of U_k is real and positive (V_k rotated to match). float16/bfloat16 input is
    computed and returned in float32.

    Gradient (docs/math.md, "Dominant triplets"): the guarded SVD backward inside the kept
    k (degeneracies there are handled as in :func:`safesvd.svd`) plus the truncation term for
    the discarded spectrum, solved from the K system without the discarded singular vectors
    (dense deflated solve, or matrix-free conjugate gradients for ``"iterative"``). Valid when
    S_k > S_{k+1}; at S_k = S_{k+1} the subspace is not unique: the dense path returns the
    guarded value with a GaugeWarning, CG raises. Reverse mode only.
    """
    _library.require()
    A = _inputs.promote(A, "safesvd.svd_topk")
    return _ops.apply(SafesvdSvdTopk, torch.ops.safesvd.svd_topk.default, A, k, method, guard, rtol, atol)


@_inputs.outside_autocast
def svd_rank1(A: torch.Tensor, *, method: str = "auto"):
    """Dominant singular triplet ``(s, u, v)`` with ``A ~ s * outer(u, v.conj())``.

    Shapes ``(...)``, ``(..., m)``, ``(..., n)``. Its gradient needs only s_1 > s_2:
    repeated or zero singular values elsewhere in the spectrum do not matter (torch's
    is NaN there). See :func:`svd_topk` for the methods.
    """
    U, S, Vh = svd_topk(A, 1, method=method)
    return S[..., 0], U[..., 0], Vh[..., 0, :].conj()

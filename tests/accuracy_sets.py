"""Accuracy test sets and error metrics for the small-matrix SVD / eigh kernels.

Pure Python (torch, numpy, mpmath); no dependency on the extension, so the
integration tests and the scratch harness measure with the same code.

    sets = accuracy_sets(n, torch.float32, count=16, seed=0)              # SVD inputs
    sets = accuracy_sets(n, torch.float64, count=16, seed=0, kind="eigh")  # symmetric inputs
    S_ref = reference_svdvals(A)
    errs = svd_errors(A, U, S, Vh, S_ref)   # {"values", "orth_u", "orth_v", "recon"}

Errors are maxima over the batch of per-matrix errors:
    values : max_j |S_j - S_ref_j| / max_j |S_ref_j|       (eigh: L, L_ref)
    orth_u : max |U^T U - I|        orth_v : max |V^T V - I|  (eigh: orth_q)
    recon  : max |A - U S V^T| / max |A|                      (eigh: A - Q L Q^T)
They are computed in float64 for float32 inputs and in numpy's longdouble
(x87 80-bit, 64-bit mantissa on x86-64) for float64 inputs, whose errors are
near float64 rounding. References: float64 LAPACK for float32 inputs, mpmath
at 30 digits for float64 inputs (about 0.1 s per 16x16 matrix: keep counts small).
"""

from __future__ import annotations

import numpy as np
import torch

SET_NAMES = ("random", "ill_conditioned", "rank_deficient", "repeated", "clustered", "scaled_small", "scaled_large")


def _orthogonal(g: torch.Generator, count: int, n: int) -> torch.Tensor:
    """Haar-distributed random orthogonal matrices (float64)."""
    X = torch.randn(count, n, n, generator=g, dtype=torch.float64)
    Q, R = torch.linalg.qr(X)
    d = torch.sign(torch.diagonal(R, dim1=-2, dim2=-1))
    d[d == 0] = 1
    return Q * d.unsqueeze(-2)


def _with_values(g: torch.Generator, vals: torch.Tensor, kind: str) -> torch.Tensor:
    """U diag(vals) V^T (svd) or Q diag(vals) Q^T (eigh), in float64."""
    count, n = vals.shape
    Q1 = _orthogonal(g, count, n)
    if kind == "eigh":
        A = (Q1 * vals.unsqueeze(-2)) @ Q1.mT
        return (A + A.mT) / 2
    Q2 = _orthogonal(g, count, n)
    return (Q1 * vals.unsqueeze(-2)) @ Q2.mT


def _random_signs(g: torch.Generator, shape) -> torch.Tensor:
    return torch.where(torch.rand(shape, generator=g, dtype=torch.float64) < 0.5, -1.0, 1.0)


def accuracy_sets(n: int, dtype, count: int, seed: int, kind: str = "svd") -> dict[str, torch.Tensor]:
    """The accuracy test sets, each a (count, n, n) tensor of `dtype`.

    kind="svd": general matrices with prescribed singular values; kind="eigh":
    symmetric matrices with prescribed (signed) eigenvalues.

    random          Gaussian entries (eigh: (G + G^T) / 2).
    ill_conditioned values logspaced 1 .. 1e-6 (condition number 1e6), random
                    orthogonal factors (eigh: random signs).
    rank_deficient  A = B C with inner dimension r < n: the first half with small
                    integer B, C (the product is exact, so rank <= r exactly and
                    n - r singular values are exactly 0), the rest Gaussian.
                    eigh: B D B^T with D = diag(+-1).
    repeated        exactly repeated values: identity, diag(2, 2, 1, 1, ...),
                    and (2, 2, 1, 1, ...) / (1, ..., 1, 0.5) with random
                    orthogonal factors (eigh: also negative repeats).
    clustered       values 1 + k * gap (k = 0 .. n-1) and two such clusters at 1
                    and 0.5; gap = 1e-6 (float64) or 1e-3 (float32).
    scaled_small    Gaussian * 1e-30 (float64) or 1e-15 (float32).
    scaled_large    Gaussian * 1e30 (float64) or 1e15 (float32).
    """
    if kind not in ("svd", "eigh"):
        raise ValueError(f"kind must be 'svd' or 'eigh', got {kind!r}")
    g = torch.Generator().manual_seed(seed * 1000003 + n * 101 + (0 if dtype == torch.float32 else 7))
    f64 = torch.float64
    single = dtype == torch.float32
    out: dict[str, torch.Tensor] = {}

    def sym(X):
        return (X + X.mT) / 2 if kind == "eigh" else X

    # random
    out["random"] = sym(torch.randn(count, n, n, generator=g, dtype=f64))

    # ill_conditioned
    vals = torch.logspace(0, -6, n, dtype=f64).expand(count, n).clone()
    if kind == "eigh":
        vals = vals * _random_signs(g, (count, n))
    out["ill_conditioned"] = _with_values(g, vals, kind)

    # rank_deficient
    r = max(1, n // 2)
    h = count // 2
    Bi = torch.randint(-2, 3, (h, n, r), generator=g).to(f64)
    Ci = torch.randint(-2, 3, (h, r, n), generator=g).to(f64)
    Bg = torch.randn(count - h, n, r, generator=g, dtype=f64)
    Cg = torch.randn(count - h, r, n, generator=g, dtype=f64)
    if kind == "eigh":
        Di = _random_signs(g, (h, 1, r))
        Dg = _random_signs(g, (count - h, 1, r))
        A_exact = (Bi * Di) @ Bi.mT
        A_gauss = (Bg * Dg) @ Bg.mT
        A_gauss = (A_gauss + A_gauss.mT) / 2
    else:
        A_exact = Bi @ Ci
        A_gauss = Bg @ Cg
    out["rank_deficient"] = torch.cat([A_exact, A_gauss])

    # repeated
    pattern = torch.tensor([2.0 if k < (n + 1) // 2 else 1.0 for k in range(n)], dtype=f64)
    pattern2 = torch.tensor([1.0] * (n - 1) + [0.5], dtype=f64)
    if kind == "eigh":
        pattern = torch.tensor([2.0 if k < (n + 1) // 2 else -1.0 for k in range(n)], dtype=f64)
    q = max(1, count // 4)
    A_id = torch.eye(n, dtype=f64).expand(q, n, n).clone()
    A_diag = torch.diag_embed(pattern.expand(q, n)).clone()
    rest = count - 2 * q
    pats = torch.stack([pattern if k % 2 == 0 else pattern2 for k in range(rest)]) if rest > 0 else pattern[:0].reshape(0, n)
    A_rot = _with_values(g, pats, kind) if rest > 0 else torch.empty(0, n, n, dtype=f64)
    out["repeated"] = torch.cat([A_id, A_diag, A_rot])[:count]

    # clustered
    gap = 1e-3 if single else 1e-6
    k = torch.arange(n, dtype=f64)
    one = 1 + k * gap
    two = torch.where(k < n // 2, 1 + k * gap, 0.5 * (1 + (k - n // 2) * gap))
    vals = torch.stack([one if i % 2 == 0 else two for i in range(count)])
    if kind == "eigh":
        vals = vals * torch.where(torch.arange(count) % 4 == 3, -1.0, 1.0).to(f64).unsqueeze(-1)
    out["clustered"] = _with_values(g, vals, kind)

    # scaled
    small, large = (1e-15, 1e15) if single else (1e-30, 1e30)
    out["scaled_small"] = sym(torch.randn(count, n, n, generator=g, dtype=f64)) * small
    out["scaled_large"] = sym(torch.randn(count, n, n, generator=g, dtype=f64)) * large

    res = {}
    for name in SET_NAMES:
        A = out[name].to(dtype)
        if kind == "eigh":
            A = (A + A.mT) / 2  # exactly symmetric after rounding (x + y == y + x)
        res[name] = A.contiguous()
    return res


# ----------------------------------------------------------------------------
# References


def _mp_rows(M):
    import mpmath

    return mpmath.matrix([[mpmath.mpf(float(x)) for x in row] for row in M])


def reference_svdvals(A: torch.Tensor, dps: int = 30) -> torch.Tensor:
    """Singular values (descending, float64): float64 LAPACK for float32 input,
    mpmath at `dps` digits for float64 input."""
    if A.dtype != torch.float64:
        return torch.linalg.svdvals(A.to(torch.float64))
    import mpmath

    B = A.reshape(-1, A.shape[-2], A.shape[-1])
    out = torch.empty(B.shape[0], min(A.shape[-2:]), dtype=torch.float64)
    with mpmath.workdps(dps):
        for i, M in enumerate(B.tolist()):
            if not any(x != 0 for row in M for x in row):
                out[i] = 0
                continue
            s = mpmath.svd_r(_mp_rows(M), compute_uv=False)
            out[i] = torch.tensor(sorted((float(x) for x in s), reverse=True), dtype=torch.float64)
    return out.reshape(A.shape[:-2] + (out.shape[-1],))


def reference_eigvalsh(A: torch.Tensor, dps: int = 30) -> torch.Tensor:
    """Eigenvalues (ascending, float64) of the symmetric A: float64 LAPACK for
    float32 input, mpmath at `dps` digits for float64 input."""
    if A.dtype != torch.float64:
        return torch.linalg.eigvalsh(A.to(torch.float64))
    import mpmath

    B = A.reshape(-1, A.shape[-2], A.shape[-1])
    out = torch.empty(B.shape[0], A.shape[-1], dtype=torch.float64)
    with mpmath.workdps(dps):
        for i, M in enumerate(B.tolist()):
            if not any(x != 0 for row in M for x in row):
                out[i] = 0
                continue
            e = mpmath.eigsy(_mp_rows(M), eigvals_only=True)
            out[i] = torch.tensor(sorted(float(x) for x in e), dtype=torch.float64)
    return out.reshape(A.shape[:-1])


# ----------------------------------------------------------------------------
# Error metrics


def _np_hi(x: torch.Tensor, dtype_in) -> np.ndarray:
    """float64 (float32 inputs) or longdouble (float64 inputs) numpy copy."""
    a = x.detach().cpu().numpy()
    return a.astype(np.longdouble if dtype_in == torch.float64 else np.float64)


def _orth_err(Q: np.ndarray) -> float:
    k = Q.shape[-1]
    G = np.matmul(np.swapaxes(Q, -1, -2), Q)
    G[..., range(k), range(k)] -= 1
    return float(np.abs(G).max()) if G.size else 0.0


def _per_matrix_max(x: np.ndarray) -> np.ndarray:
    return np.abs(x).reshape(x.shape[0], -1).max(axis=1)


def _rel(num: np.ndarray, den: np.ndarray) -> float:
    den = np.where(den > 0, den, 1)
    return float((num / den).max()) if num.size else 0.0


def svd_errors(A, U, S, Vh, S_ref) -> dict[str, float]:
    """Max over the batch of: value error / max|S_ref|, ||U^T U - I||_max,
    ||V^T V - I||_max, ||A - U S V^T||_max / ||A||_max. U may be reduced or full;
    only its first k = min(m, n) columns enter the reconstruction."""
    dt = A.dtype
    m, n = A.shape[-2:]
    k = min(m, n)
    A_ = _np_hi(A.reshape(-1, m, n), dt)
    U_ = _np_hi(U.reshape(-1, m, U.shape[-1]), dt)
    S_ = _np_hi(S.reshape(-1, k), dt)
    V_ = np.swapaxes(_np_hi(Vh.reshape(-1, Vh.shape[-2], n), dt), -1, -2)
    Sr = _np_hi(S_ref.reshape(-1, k), torch.float64 if dt == torch.float64 else torch.float32)
    smax = np.abs(Sr).max(axis=1)
    values = _rel(np.abs(S_ - Sr).max(axis=1), smax)
    R = A_ - np.matmul(U_[..., :k] * S_[..., None, :], np.swapaxes(V_[..., :k], -1, -2))
    recon = _rel(_per_matrix_max(R), _per_matrix_max(A_))
    return {"values": values, "orth_u": _orth_err(U_), "orth_v": _orth_err(V_), "recon": recon}


def eigh_errors(A, L, Q, L_ref) -> dict[str, float]:
    """Max over the batch of: value error / max|L_ref|, ||Q^T Q - I||_max,
    ||A - Q L Q^T||_max / ||A||_max."""
    dt = A.dtype
    n = A.shape[-1]
    A_ = _np_hi(A.reshape(-1, n, n), dt)
    Q_ = _np_hi(Q.reshape(-1, n, n), dt)
    L_ = _np_hi(L.reshape(-1, n), dt)
    Lr = _np_hi(L_ref.reshape(-1, n), torch.float64 if dt == torch.float64 else torch.float32)
    lmax = np.abs(Lr).max(axis=1)
    values = _rel(np.abs(L_ - Lr).max(axis=1), lmax)
    R = A_ - np.matmul(Q_ * L_[..., None, :], np.swapaxes(Q_, -1, -2))
    recon = _rel(_per_matrix_max(R), _per_matrix_max(A_))
    return {"values": values, "orth_q": _orth_err(Q_), "recon": recon}


def lapack_svd(A: torch.Tensor):
    """torch.linalg.svd (LAPACK) on the same inputs, same dtype: the baseline."""
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    return U, S, Vh


def lapack_eigh(A: torch.Tensor):
    L, Q = torch.linalg.eigh(A)
    return L, Q


def within(ours: dict, lapack: dict, factor: float = 4.0, floor: float | None = None, dtype=None) -> dict:
    """Per metric: ours <= factor * max(lapack, floor). `floor` (default: one
    unit roundoff of dtype, eps/2) keeps a LAPACK error of exactly 0 (e.g. on
    the identity) from demanding exactly 0 of us."""
    if floor is None:
        eps = torch.finfo(dtype).eps if dtype is not None else 0.0
        floor = eps / 2
    return {k: ours[k] <= factor * max(lapack[k], floor) for k in ours}


__all__ = [
    "SET_NAMES",
    "accuracy_sets",
    "reference_svdvals",
    "reference_eigvalsh",
    "svd_errors",
    "eigh_errors",
    "lapack_svd",
    "lapack_eigh",
    "within",
]

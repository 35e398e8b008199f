"""Property-based tests (hypothesis): random batch shapes, m, n, dtypes, spectra with
repeated and zero singular values, scales from 1e-30 to 1e30.

Profiles: "ci" (default, few examples, what `make test` runs) and "dev" (more):
    HYPOTHESIS_PROFILE=dev pytest tests/test_properties.py
"""

import os

import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import safesvd
from helpers import autograd_grad, finite_difference_grad, rel_err, unitary

settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.register_profile("dev", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

DTYPES = [torch.float32, torch.float64, torch.complex64, torch.complex128]


@st.composite
def matrices(draw, dtypes=DTYPES, allow_zero=True, distinct=False, max_batch=2):
    """A batch of matrices with a drawn spectrum: values from a small set (so
    repeats are common), zeros allowed, times 10^e for e in [-30, 30]."""
    dtype = draw(st.sampled_from(dtypes))
    m, n = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    batch = tuple(draw(st.lists(st.integers(1, 2), max_size=max_batch)))
    k = min(m, n)
    if distinct:
        values = sorted(draw(st.lists(st.floats(1.0, 10.0), min_size=k, max_size=k, unique=True)), reverse=True)
        gaps_ok = all(a - b > 0.1 * a for a, b in zip(values, values[1:]))
        if not gaps_ok:
            values = [10.0 * 0.5 ** i for i in range(k)]
    else:
        pool = [0.0, 1.0, 2.0, 3.0] if allow_zero else [1.0, 2.0, 3.0]
        values = sorted(draw(st.lists(st.sampled_from(pool), min_size=k, max_size=k)), reverse=True)
    scale = 10.0 ** draw(st.integers(-30, 30))
    seed = draw(st.integers(0, 2 ** 16))
    torch.manual_seed(seed)
    base = torch.complex128 if dtype.is_complex else torch.float64
    count = 1
    for b in batch:
        count *= b
    mats = []
    for _ in range(count):
        U, V = unitary(m, base), unitary(n, base)
        mats.append((U[:, :k] * torch.tensor(values, dtype=torch.float64).to(base)) @ V[:, :k].mH)
    A = (torch.stack(mats).reshape(*batch, m, n) * scale).to(dtype)
    return A, scale


@given(matrices())
def test_gradients_always_finite(case):
    A, scale = case
    X = A.clone().requires_grad_()
    with safesvd.gauge_mode("ignore"):  # include basis-dependent terms on purpose
        U, S, Vh = safesvd.svd(X)
        k = min(A.shape[-2:])
        L, Q = safesvd.eigh((X[..., :k, :k] + X[..., :k, :k].mH) / 2)
        loss = (S / scale).sum() + (U @ Vh).real.sum() + U.real.sum() + Vh.real.sum() + (L / scale).sum() + Q.real.sum()
        loss.backward()
    assert torch.isfinite(X.grad).all()


@given(matrices(dtypes=[torch.float64, torch.complex128], distinct=True))
def test_equal_to_torch_on_well_separated_spectra(case):
    A, scale = case
    k = min(A.shape[-2:])
    W = torch.randn(*A.shape[:-2], k, dtype=torch.float64)

    def make(decompose):
        def loss(X):
            U, S, Vh = decompose(X)
            # phase invariant: |U|^2, |Vh|^2 and singular values
            return (W * S / scale).sum() + (W.unsqueeze(-2) * U.abs() ** 2).sum() + (W.unsqueeze(-1) * Vh.abs() ** 2).sum()
        return loss

    # torch's own phase term for complex input loses accuracy as the scale grows
    # (1e-7 relative at 1e5, 1e-5 at 1e6, where safesvd's is exact: 0 for |U|^2 of a
    # 1x1 matrix); compare complex input where torch itself is accurate.
    assume(not A.is_complex() or scale <= 1e4)
    ours = autograd_grad(make(safesvd.svd), A)
    ref = autograd_grad(make(lambda X: torch.linalg.svd(X, full_matrices=False)), A)
    assert torch.isfinite(ref).all()
    assert rel_err(ours, ref) < (1e-6 if A.is_complex() else 1e-8)


@given(matrices(dtypes=[torch.float64, torch.complex128], allow_zero=False, max_batch=1))
def test_basis_independent_losses_match_finite_differences(case):
    """Polar factor and singular values: exact at any repeats (no zeros: the polar
    factor of a rank-deficient matrix is not unique)."""
    A, scale = case
    W = torch.randn(*A.shape, dtype=A.dtype)

    def loss(X):
        U, S, Vh = safesvd.svd(X)
        return (W * (U @ Vh)).real.sum() + (S / scale).sum()

    g = autograd_grad(loss, A)
    fd = finite_difference_grad(loss, A, h=1e-6 * scale)
    assert rel_err(g * scale, fd * scale) < 1e-5

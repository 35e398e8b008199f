"""Python's view of the guards: everything is read from the C++ library
(csrc/kernels/guards.h, the one home of guard names, default tolerances, the
tolerance formula and the gauge threshold), never re-derived here.
"""

from __future__ import annotations

import functools

import torch

# The library's answers for a (dtype, rtol, atol) never change within a process: they are
# cached (the gauge check of every backward asks; the op call and the tensor that
# real_dtype made cost ~5 us of a 2x2 svd's ~100 us forward + backward). A ValueError is
# not cached: a bad value raises each time.


@functools.lru_cache(maxsize=64)
def real_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.empty((), dtype=dtype).real.dtype


@functools.lru_cache(maxsize=256)
def defaults(dtype: torch.dtype, rtol: float | None = None, atol: float | None = None) -> tuple[float, float, float]:
    """(rtol, atol, gauge threshold) of the guards for a dtype (ValueError for bad values)."""
    r, a, t = torch.ops.safesvd._guard_defaults(real_dtype(dtype), rtol, atol, False)
    return r, a, t


@functools.lru_cache(maxsize=256)
def divided_difference_defaults(dtype: torch.dtype, rtol: float | None = None,
                                atol: float | None = None) -> tuple[float, float]:
    """(rtol, atol) of the divided differences of matrix functions."""
    r, a = torch.ops.safesvd._guard_defaults(real_dtype(dtype), rtol, atol, True)
    return r, a


def validate(guard: str, rtol: float | None = None, atol: float | None = None) -> None:
    """ValueError (from the library, with its message) for an unknown guard or a bad tolerance."""
    torch.ops.safesvd._guard_params(torch.zeros(1, 1), torch.zeros(1), 2, guard, rtol, atol, False)


def params(spectrum: torch.Tensor, cotangent_scale: torch.Tensor | None, dims: int, guard: str = "pinv",
           rtol: float | None = None, atol: float | None = None, divided_difference: bool = False) -> torch.Tensor:
    """Per-matrix guard parameters (..., 6): [f1, f2, tol, floor, noise, cap] (see guards.h)."""
    spectrum = spectrum.detach()
    if cotangent_scale is None:
        cotangent_scale = spectrum.new_zeros(spectrum.shape[:-1])
    return torch.ops.safesvd._guard_params(spectrum, cotangent_scale.detach(), dims, guard, rtol, atol,
                                           divided_difference)


def scaled(x: torch.Tensor, p: torch.Tensor, trailing: int) -> torch.Tensor:
    """x in the scaled units of its matrix's spectrum (two exact power-of-two factors)."""
    f1, f2 = p[..., 0], p[..., 1]
    for _ in range(trailing):
        f1, f2 = f1.unsqueeze(-1), f2.unsqueeze(-1)
    return (x * f1) * f2


def coefficient(d: torch.Tensor, xabs: torch.Tensor | None, p: torch.Tensor, guard: str):
    """(g(d), note) for scaled differences d, with dg/dd as the derivative of g (straight through)."""
    dd = d.detach()
    coef, slope, note = torch.ops.safesvd._guard_coefficients(dd, None if xabs is None else xabs.detach(), p, guard)
    return coef + (d - dd) * slope, note


def inside_pairs(spectrum: torch.Tensor, guard: str, rtol, atol, dims: int, singular_values: bool) -> torch.Tensor:
    """Per matrix: True where two values (or, for singular values, a value and zero or two
    values summing to about zero) are within the guard tolerance: where a quotient is guarded."""
    k = spectrum.shape[-1]
    if k == 0:
        return torch.zeros(spectrum.shape[:-1], dtype=torch.bool, device=spectrum.device)
    p = params(spectrum, None, dims, guard, rtol, atol)
    s = scaled(spectrum.detach(), p, 1)
    off = ~torch.eye(k, dtype=torch.bool, device=s.device)
    # (differences, where they count): S_j - S_i off the diagonal; for singular
    # values also S_j + S_i, whose diagonal 2 S_i covers a lone zero value.
    diffs = [(s.unsqueeze(-2) - s.unsqueeze(-1), off)]
    if singular_values:
        diffs.append((s.unsqueeze(-2) + s.unsqueeze(-1), torch.ones_like(off)))
    found = torch.zeros(spectrum.shape[:-1], dtype=torch.bool, device=spectrum.device)
    for d, where in diffs:
        note = torch.ops.safesvd._guard_coefficients(d, torch.ones_like(d), p, guard)[2]
        found = found | ((note > 0) & where).flatten(-2).any(-1)
    return found


def merged_with_zero(spectrum: torch.Tensor, rtol=None, atol=None, index: int | None = None) -> torch.Tensor:
    """Per matrix: True where the smallest value (or value `index`) is zero up to the divided
    differences' rounding floor (the values a matrix function cannot tell from 0)."""
    return torch.ops.safesvd._merged_with_zero(spectrum.detach(), rtol, atol, index)

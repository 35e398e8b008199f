"""The gauge check (docs/math.md, "Gauge check").

A loss that changes when the basis of a degenerate subspace is rotated (or the
phase of a complex singular/eigen vector is changed) has no unique gradient.
The backward ops report, per matrix, the largest basis-dependent part of the
cotangent relative to its size, and where it was found; this module turns that
into a :class:`GaugeWarning` (mode "warn", default), an exception ("raise"),
or nothing ("ignore"). The threshold comes from the C++ library
(csrc/kernels/guards.h).
"""

from __future__ import annotations

import contextlib
import warnings

import torch

from . import _guards


class GaugeWarning(UserWarning):
    """The loss depends on an arbitrary choice of basis; the gradient is not unique.

    safesvd still returns a finite gradient: the minimum-norm one, with the
    basis-dependent part of the cotangent removed. Also used when a second
    derivative passes through a degeneracy where it cannot be exact. In mode
    "raise" this class is raised as an exception.
    """


_MODES = ("warn", "raise", "ignore")
_mode = "warn"


def set_gauge_mode(mode: str) -> None:
    """Set what a basis-dependent loss does in the backward: "warn", "raise" or "ignore"."""
    global _mode
    if mode not in _MODES:
        raise ValueError(f"gauge mode must be one of {_MODES}, got {mode!r}")
    _mode = mode


def get_gauge_mode() -> str:
    return _mode


@contextlib.contextmanager
def gauge_mode(mode: str):
    """Context manager (and decorator) form of :func:`set_gauge_mode`."""
    previous = _mode
    set_gauge_mode(mode)
    try:
        yield
    finally:
        set_gauge_mode(previous)


def is_tracing(*tensors) -> bool:
    """True while values cannot (or must not) be read on the host: torch.compile or
    AOT tracing (fake / functional tensors), torch.func transforms (wrapped
    tensors), or CUDA graph capture."""
    if torch.compiler.is_compiling():
        return True
    from torch._subclasses.fake_tensor import FakeTensor
    from torch._subclasses.functional_tensor import FunctionalTensor

    if any(isinstance(t, (FakeTensor, FunctionalTensor)) or torch._C._functorch.is_functorch_wrapped_tensor(t)
           for t in tensors if isinstance(t, torch.Tensor)):
        return True
    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()


def report(message: str, stacklevel: int = 3) -> None:
    """Warn or raise `message` as a GaugeWarning, as the mode says."""
    if _mode == "raise":
        raise GaugeWarning(message)
    if _mode == "warn":
        warnings.warn(message, GaugeWarning, stacklevel=stacklevel + 1)


def _describe(op: str, spectrum_name: str, values: list, i: int, j: int) -> str:
    if i == -2:
        return (
            f"{op}: the loss reads the extra columns of U / rows of Vh of "
            "full_matrices=True, which are an arbitrary basis of a complement; their "
            "cotangent is ignored"
        )
    if i == j:
        if spectrum_name == "L":
            return f"{op}: the loss depends on the phase of eigenvector {i} (complex input)"
        return (
            f"{op}: the loss depends on the phase (complex) or, for a zero singular "
            f"value, the direction of vector {i} ({spectrum_name}[{i}] = {values[i]:.6g})"
        )
    kind = "eigenvalues" if spectrum_name == "L" else "singular values"
    return (
        f"{op}: the loss depends on the basis inside a degenerate subspace: "
        f"{spectrum_name}[{i}] = {values[i]:.6g} and {spectrum_name}[{j}] = {values[j]:.6g} "
        f"are equal {kind} within the tolerance" + (" (or both zero)" if spectrum_name == "S" else "")
    )


def check(gauge: torch.Tensor, spectrum: torch.Tensor, op: str, spectrum_name: str,
          rtol: float | None) -> None:
    """Warn or raise if any matrix of the batch has a basis-dependent cotangent.

    ``gauge`` is the (..., 3) output of a backward op. Reading it costs one small
    device-to-host copy; mode "ignore", torch.compile tracing and CUDA graph
    capture skip the check and never synchronize.
    """
    if _mode == "ignore" or gauge.numel() == 0 or is_tracing(gauge):
        return
    threshold = _guards.defaults(spectrum.dtype, rtol)[2]
    flat = gauge.detach().reshape(-1, 3)
    b = int(flat[:, 0].argmax())
    residual, i, j = flat[b].tolist()
    if not residual > threshold:
        return
    batch_shape = gauge.shape[:-1]
    index = tuple(int(x) for x in torch.unravel_index(torch.tensor(b), batch_shape)) if batch_shape else ()
    values = spectrum.detach().reshape(-1, spectrum.shape[-1])[b].tolist()
    report(
        _describe(op, spectrum_name, values, int(i), int(j))
        + f" (matrix {index}, relative residual {residual:.3g}). The gradient is not unique; "
        "safesvd returns the minimum-norm choice, with the basis-dependent part removed. "
        "Use a loss that does not depend on the basis (projectors, matrix functions, "
        "singular values), or safesvd.set_gauge_mode('ignore') to silence this."
    )

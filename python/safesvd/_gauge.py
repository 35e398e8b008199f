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

import collections
import contextlib
import functools
import threading
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
    if _pending:
        _drain()  # checks queued under the previous mode report as it said
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
    traced = _traced_types()
    cuda = False
    for t in tensors:
        if isinstance(t, torch.Tensor):
            if isinstance(t, traced) or torch._C._functorch.is_functorch_wrapped_tensor(t):
                return True
            cuda = cuda or t.is_cuda
    # Only a CUDA tensor can be part of a graph capture (and asking costs ~0.5 us a call,
    # a tenth of the check of a small backward).
    return cuda and torch.cuda.is_current_stream_capturing()


@functools.lru_cache(maxsize=1)
def _traced_types() -> tuple:
    from torch._subclasses.fake_tensor import FakeTensor
    from torch._subclasses.functional_tensor import FunctionalTensor

    return (FakeTensor, FunctionalTensor)


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


def _message(op: str, spectrum_name: str, values: list, i: int, j: int, index: tuple, residual: float) -> str:
    return (
        _describe(op, spectrum_name, values, i, j)
        + f" (matrix {index}, relative residual {residual:.3g}). The gradient is not unique; "
        "safesvd returns the minimum-norm choice, with the basis-dependent part removed. "
        "Use a loss that does not depend on the basis (projectors, matrix functions, "
        "singular values), or safesvd.set_gauge_mode('ignore') to silence this."
    )


def _index(b: int, batch_shape) -> tuple:
    return tuple(int(x) for x in torch.unravel_index(torch.tensor(b), batch_shape)) if batch_shape else ()


# ---------------------------------------------------------------------------------------
# Non-blocking check (mode "warn" on devices whose memory the host cannot read without
# waiting, i.e. CUDA). The backward reduces the gauge output on the device to one row
# (residual, matrix, i, j) plus that matrix's spectrum, copies it to pinned host memory
# behind an event, and returns at once; the row is read when its event has completed: at
# a later safesvd backward, when the gauge mode changes, or at flush_gauge_warnings() /
# interpreter exit.
# "raise" must stop the backward that found the problem, so it waits (documented).


class _Pending:
    __slots__ = ("row", "values", "event", "op", "spectrum_name", "threshold", "batch_shape")

    def __init__(self, row, values, event, op, spectrum_name, threshold, batch_shape):
        self.row, self.values, self.event = row, values, event
        self.op, self.spectrum_name, self.threshold = op, spectrum_name, threshold
        self.batch_shape = batch_shape


_pending: collections.deque = collections.deque()
_pending_lock = threading.Lock()
_MAX_PENDING = 1024  # beyond this, the oldest entries are resolved (waiting on their event)

# The C++ nodes of svd and eigh check the gauge of a CPU backward themselves and call
# check() only when there is something to report (csrc/aten/autograd.cpp, "The backward of
# svd and eigh"). Allowed while `wanted` and no check is queued: a queued check reports
# before the next one, which only check() does. `on` mirrors the library's switch.
_cpp_backward = {"wanted": False, "on": False}


def set_cpp_backward(wanted: bool) -> bool:
    """Allow (or forbid) the C++ nodes' CPU backward without Python; returns the previous
    setting. On once the library is loaded (safesvd._ops.register); tests turn it off to see
    every check in Python."""
    previous = _cpp_backward["wanted"]
    _cpp_backward["wanted"] = bool(wanted)
    _sync_cpp_backward()
    return previous


def _sync_cpp_backward() -> None:
    on = _cpp_backward["wanted"] and not _pending
    if on != _cpp_backward["on"]:
        torch.ops.safesvd._set_cpp_backward(on)
        _cpp_backward["on"] = on


@functools.lru_cache(maxsize=1)
def _gauge_worst():
    """The library's CPU scan of a gauge tensor, looked up once the library is loaded."""
    return torch.ops.safesvd._gauge_worst.default


def _reads_block(t: torch.Tensor) -> bool:
    """True where reading `t` on the host would wait for its device (tests patch this)."""
    return t.is_cuda


class _ReadyEvent:
    """The event of a device without streams (tests; a CPU tensor is always ready)."""

    def query(self) -> bool:
        return True

    def synchronize(self) -> None:
        pass


def _event_for(device: torch.device):
    if device.type == "cuda":
        e = torch.cuda.Event()
        e.record(torch.cuda.current_stream(device))
        return e
    return _ReadyEvent()


def _host_copy(x: torch.Tensor) -> torch.Tensor:
    if x.device.type == "cuda":
        out = torch.empty(x.shape, dtype=x.dtype, pin_memory=True)
        out.copy_(x, non_blocking=True)
        return out
    return x.clone()


def _enqueue(gauge: torch.Tensor, spectrum: torch.Tensor, op: str, spectrum_name: str, threshold: float) -> None:
    flat = gauge.detach().reshape(-1, 3)
    b = flat[:, 0].argmax()
    row = torch.cat([flat[b], b.to(flat.dtype).reshape(1)])  # residual, i, j, b (on the device)
    values = spectrum.detach().reshape(-1, spectrum.shape[-1]).index_select(0, b.reshape(1))[0]
    entry = _Pending(_host_copy(row), _host_copy(values), _event_for(gauge.device), op, spectrum_name,
                     threshold, tuple(gauge.shape[:-1]))
    with _pending_lock:
        _pending.append(entry)
        overflow = len(_pending) > _MAX_PENDING
    _sync_cpp_backward()
    if overflow:
        _drain(wait_for=1)


def _resolve(e: _Pending) -> None:
    residual, i, j, b = e.row.tolist()
    if not residual > e.threshold:
        return
    msg = _message(e.op, e.spectrum_name, e.values.tolist(), int(i), int(j), _index(int(b), e.batch_shape), residual)
    msg += " [reported after the backward that found it: mode 'warn' does not wait for the device]"
    warnings.warn(msg, GaugeWarning, stacklevel=3)  # queued in mode "warn" only


def _drain(wait_for: int = 0) -> None:
    """Report the queued checks whose copies have arrived, in order; wait for the first
    `wait_for` of them if they have not."""
    while True:
        with _pending_lock:
            if not _pending:
                _sync_cpp_backward()
                return
            e = _pending[0]
            if wait_for > 0:
                wait_for -= 1
            elif not e.event.query():
                return
            _pending.popleft()
        e.event.synchronize()
        _resolve(e)


def flush_gauge_warnings() -> None:
    """Wait for every queued gauge check and report it (warnings in mode "warn").

    Mode "warn" on CUDA does not read the device in the backward: the check is
    queued and reported at a later safesvd backward, when the gauge mode changes,
    at interpreter exit, or here. Call it (for example after ``torch.cuda.synchronize()`` at the end of
    an epoch, or in a test) to see every warning up to now."""
    _drain(wait_for=len(_pending))


def pending_gauge_checks() -> int:
    """Number of queued (not yet reported) gauge checks."""
    return len(_pending)


def check(gauge: torch.Tensor, spectrum: torch.Tensor, op: str, spectrum_name: str,
          rtol: float | None) -> None:
    """Warn or raise if any matrix of the batch has a basis-dependent cotangent.

    ``gauge`` is the (..., 3) output of a backward op. On the CPU (and in mode
    "raise") reading it costs one small copy and waits for the result; in mode "warn"
    on CUDA the check is queued and reported later without waiting (see
    :func:`flush_gauge_warnings`).
    Mode "ignore", torch.compile tracing and CUDA graph capture skip the check and never
    synchronize.
    """
    if _pending:
        _drain()
    if _mode == "ignore" or gauge.numel() == 0 or is_tracing(gauge):
        return
    threshold = _guards.defaults(spectrum.dtype, rtol)[2]
    if _mode == "warn" and _reads_block(gauge):
        _enqueue(gauge, spectrum, op, spectrum_name, threshold)
        return
    # The largest residual first (a NaN one propagates, and fails the comparison as
    # argmax's would): on the CPU max() of the column takes half of argmax's time
    # (B = 100000: 73-83 vs 144-224 us, one thread), and it is most of the check; the
    # library's own scan (_gauge_worst, any (..., 3) shape) reads it over the batch in
    # parallel, each thread the part the backward has just written (svd 8x3, B = 20000: the
    # check 0.125 -> 0.095 ms). (A tensor subclass other than those is_tracing skips gets
    # torch's max(), which it handles like any op; the library's scan is for plain CPU
    # tensors.) At B = 1 the check costs ~2.5 us (5.1 with a reshape before the scan and
    # the CUDA questions asked of CPU tensors).
    if type(gauge) is torch.Tensor and gauge.is_cpu:
        worst = _gauge_worst()(gauge)
    else:
        worst = float(gauge.detach().reshape(-1, 3)[:, 0].max())
    if not worst > threshold:
        return
    flat = gauge.detach().reshape(-1, 3)
    b = int(flat[:, 0].argmax())
    residual, i, j = flat[b].tolist()
    values = spectrum.detach().reshape(-1, spectrum.shape[-1])[b].tolist()
    report(_message(op, spectrum_name, values, int(i), int(j), _index(b, gauge.shape[:-1]), residual))


def _flush_quietly() -> None:
    try:
        flush_gauge_warnings()
    except Exception:  # noqa: BLE001 - interpreter shutdown: report what can be reported
        pass


import atexit  # noqa: E402

atexit.register(_flush_quietly)

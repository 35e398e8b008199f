"""Route torch's own SVD / eigh calls to safesvd, without rewriting the code that makes them.

``override_torch()`` is a :class:`torch.overrides.TorchFunctionMode`: while it is
active, every call of the functions below made from Python, in your code or in a
library's (roma, kornia, ...), is answered by safesvd instead of torch. Nothing in
torch is rebound; leaving the mode restores torch exactly.

    with safesvd.override_torch():
        R = roma.special_procrustes_naive(M)      # finite gradient at repeated singular values

See docs/override.md for the full description.
"""

from __future__ import annotations

import functools

import torch
from torch.overrides import TorchFunctionMode

from . import _guards, _library
from ._eigh import eigh
from ._svd import svd

__all__ = ["override_torch"]

# dtypes safesvd computes in; float16/bfloat16 are computed in float32 (safesvd._inputs.promote).
_NATIVE_DTYPES = (torch.float32, torch.float64, torch.complex64, torch.complex128)
_HALF_DTYPES = (torch.float16, torch.bfloat16)
_ROUTED_DTYPES = _NATIVE_DTYPES + _HALF_DTYPES
# Device types safesvd has kernels for, asked once per type (and for cpu, cuda and
# meta when the first override_torch is built), so that a lookup under the mode or
# while torch.compile traces is plain Python, not an operator call.
_KERNEL_DEVICES: dict[str, bool] = {}


def _has_kernels(device_type: str) -> bool:
    """Whether this build of safesvd has kernels for the device (else torch answers)."""
    known = _KERNEL_DEVICES.get(device_type)
    if known is None:
        try:
            with torch._C.DisableTorchFunction():
                known = bool(torch.ops.safesvd._has_device_kernels(device_type))
        except RuntimeError:  # a device type torch does not know
            known = False
        _KERNEL_DEVICES[device_type] = known
    return known


def _routable(A, square: bool = False) -> bool:
    """Whether safesvd can answer for this input; otherwise torch answers (and raises
    its own error where it does)."""
    return (
        isinstance(A, torch.Tensor)
        and A.dtype in _ROUTED_DTYPES
        and A.dim() >= 2
        and (not square or A.shape[-1] == A.shape[-2])
        and _has_kernels(A.device.type)
    )


# Argument binders with torch's exact signatures: a call torch would reject with a
# TypeError makes the binder raise, and then torch itself is called (and raises).


def _bind_linalg_svd(A, full_matrices=True, *, driver=None, out=None):
    return A, full_matrices, driver, out


def _bind_linalg_svdvals(A, *, driver=None, out=None):
    return A, driver, out


def _bind_svd(input, some=True, compute_uv=True, *, out=None):
    return input, some, compute_uv, out


def _bind_eigh(A, UPLO="L", *, out=None):
    return A, UPLO, out


_NON_FINITE = "input contains NaN or Inf"


def _is_non_finite_error(e: Exception) -> bool:
    return _NON_FINITE in str(e)


class override_torch(TorchFunctionMode):
    """Answer torch's SVD and Hermitian eigendecomposition calls with safesvd.

    While active, for calls made from Python anywhere (third-party code included):

    =============================================  ==========================================
    torch call                                     answered by
    =============================================  ==========================================
    ``torch.linalg.svd(A, full_matrices=True)``    ``safesvd.svd(A, full_matrices)`` as a
                                                   ``torch.return_types.linalg_svd`` (U, S, Vh)
    ``torch.linalg.svdvals(A)``                    ``safesvd.svd(A)[1]``
    ``torch.svd(A, some=True, compute_uv=True)``   ``safesvd.svd(A, not some)``, returned as
    and ``A.svd(...)``                             ``torch.return_types.svd`` (U, S, **V**);
                                                   ``compute_uv=False``: S and zero-filled U
                                                   (m x m) and V (n x n), as torch
    ``torch.linalg.eigh(A, UPLO="L")``             ``safesvd.eigh(A, UPLO)`` as a
                                                   ``torch.return_types.linalg_eigh``
    ``torch.linalg.eigvalsh(A, UPLO="L")``         ``safesvd.eigh(A, UPLO)[0]``
    =============================================  ==========================================

    Forward values agree with torch's to rounding (for small real matrices safesvd's
    Jacobi engine may pick the other sign of a vector, as two LAPACK drivers may);
    gradients equal torch's wherever torch's are finite and stay finite (exact for
    basis-independent losses) at repeated and zero singular values.

    Args:
        guard, rtol, atol: forwarded to :func:`safesvd.svd` / :func:`safesvd.eigh`
            for every routed call.

    Fallbacks: the call goes to the original torch function, unchanged, when
        - ``out=`` is given: torch's out= variants are not differentiable (autograd
          rejects them for inputs that require grad), so there is nothing to make
          safe, and torch keeps its resize/``*_out`` return conventions;
        - ``driver=`` is not None: torch's drivers are cuSOLVER's. On CPU torch rejects
          any driver with its own RuntimeError, which is kept; on CUDA the requested
          cuSOLVER driver is honoured by torch, with torch's backward;
        - the arguments do not match torch's signature (torch raises its TypeError);
        - the input is not a tensor, has an unsupported dtype (integer, bool,
          complex32), fewer than 2 dimensions, is non-square for eigh, or lives on a
          device safesvd has no kernels for: torch's own result or error;
        - the input contains NaN or Inf (found by safesvd's CPU check): torch's own
          ``torch.linalg.LinAlgError`` is raised, not safesvd's ValueError, so code
          that catches torch's error (kornia does) keeps working.

    Half precision: float16 / bfloat16 input (which stock torch rejects) is
    decomposed in float32 and the results are float32; the gradient flows back to
    the half tensor in its dtype.

    Differences from torch that remain: a loss that reads the arbitrary extra
    columns of ``full_matrices=True`` (or any other basis-dependent quantity) gets
    the minimum-norm gradient and a :class:`safesvd.GaugeWarning`, where torch
    silently drops that cotangent (extra columns) or returns NaN.

    Use:
        - context manager: ``with safesvd.override_torch(): ...``;
        - decorator: ``@safesvd.override_torch()`` (each call enters the mode);
        - whole program: ``o = safesvd.override_torch().enable()``, later
          ``o.disable()``.

    Torch function modes are thread-local: the mode (entered or enabled) applies
    to the thread that entered it. New threads start without it (call ``enable()``
    in each), and so do spawned processes (DataLoader workers with the ``spawn``
    start method: use ``worker_init_fn``). Autograd's backward does not need the
    mode: the routed calls recorded safesvd's backward in the graph. Nested modes:
    the innermost one answers, with its options.

    Cost: while active, every torch call (not only the routed ones) passes through
    this Python ``__torch_function__``, about 5 us per call on a small CPU; keep the
    override around the code that decomposes if the rest is made of many tiny ops.

    torch.compile: calling a compiled function inside an active override (or under
    ``enable()``) traces the safesvd ops, ``fullgraph=True`` included, and the
    compiled function is guarded on the mode stack (called without the override it
    recompiles for plain torch). torch.func transforms (grad, vmap, jacrev) work,
    with the mode entered inside or outside the transform.
    """

    def __init__(self, *, guard: str = "pinv", rtol: float | None = None, atol: float | None = None):
        super().__init__()
        _library.require()
        with torch._C.DisableTorchFunction():  # validating is not a routed call
            _guards.validate(guard, rtol, atol)
        self._svd = svd
        self._eigh = eigh
        self.guard, self.rtol, self.atol = guard, rtol, atol
        self._enabled_in = None  # thread id while enable()d
        for device_type in ("cpu", "cuda", "meta"):
            _has_kernels(device_type)

    def __repr__(self) -> str:
        return f"safesvd.override_torch(guard={self.guard!r}, rtol={self.rtol!r}, atol={self.atol!r})"

    # ------------------------------------------------------------------ routing

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if kwargs is None:
            kwargs = {}
        # The mode is off while this runs, so the calls below go to torch (or to
        # an outer mode), never back here.
        result = None
        if func is torch.linalg.svd:
            result = self._linalg_svd(args, kwargs)
        elif func is torch.svd or func is torch.Tensor.svd:
            result = self._torch_svd(args, kwargs)
        elif func is torch.linalg.eigh:
            result = self._linalg_eigh(args, kwargs, values_only=False)
        elif func is torch.linalg.eigvalsh:
            result = self._linalg_eigh(args, kwargs, values_only=True)
        elif func is torch.linalg.svdvals:
            result = self._linalg_svdvals(args, kwargs)
        if result is not None:
            return result
        return func(*args, **kwargs)

    def _call_svd(self, A, full_matrices):
        try:
            return self._svd(A, full_matrices, guard=self.guard, rtol=self.rtol, atol=self.atol)
        except ValueError as e:
            if _is_non_finite_error(e):
                return None  # torch answers, with its own LinAlgError
            raise

    def _call_eigh(self, A, UPLO):
        try:
            return self._eigh(A, UPLO, guard=self.guard, rtol=self.rtol, atol=self.atol)
        except ValueError as e:
            if _is_non_finite_error(e):
                return None
            raise

    def _linalg_svd(self, args, kwargs):
        try:
            A, full_matrices, driver, out = _bind_linalg_svd(*args, **kwargs)
        except TypeError:
            return None
        if out is not None or driver is not None or not _routable(A):
            return None
        r = self._call_svd(A, bool(full_matrices))
        return None if r is None else torch.return_types.linalg_svd(r)

    def _linalg_svdvals(self, args, kwargs):
        try:
            A, driver, out = _bind_linalg_svdvals(*args, **kwargs)
        except TypeError:
            return None
        if out is not None or driver is not None or not _routable(A):
            return None
        r = self._call_svd(A, False)
        return None if r is None else r[1]

    def _torch_svd(self, args, kwargs):
        try:
            A, some, compute_uv, out = _bind_svd(*args, **kwargs)
        except TypeError:
            return None
        if out is not None or not _routable(A):
            return None
        if compute_uv:
            r = self._call_svd(A, not some)
            if r is None:
                return None
            U, S, Vh = r
            return torch.return_types.svd((U, S, Vh.mH))
        # torch: S, and U, V zero-filled (m x m), (n x n) whatever `some` is.
        r = self._call_svd(A, False)
        if r is None:
            return None
        S = r[1]
        m, n = A.shape[-2], A.shape[-1]
        dtype = r[0].dtype
        U = torch.zeros((*A.shape[:-2], m, m), dtype=dtype, device=A.device)
        V = torch.zeros((*A.shape[:-2], n, n), dtype=dtype, device=A.device)
        return torch.return_types.svd((U, S, V))

    def _linalg_eigh(self, args, kwargs, values_only):
        try:
            A, UPLO, out = _bind_eigh(*args, **kwargs)
        except TypeError:
            return None
        if out is not None or UPLO not in ("L", "U") or not _routable(A, square=True):
            return None
        r = self._call_eigh(A, UPLO)
        if r is None:
            return None
        return r[0] if values_only else torch.return_types.linalg_eigh(r)

    # ------------------------------------------------------ decorator, program-wide

    def __call__(self, func):
        """Decorator: run ``func`` with this override active (entered per call)."""

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self:
                return func(*args, **kwargs)

        return wrapper

    def enable(self) -> override_torch:
        """Turn the override on for the rest of this thread's run (until :meth:`disable`).

        Returns self, so ``o = safesvd.override_torch().enable()``. Other threads
        are not affected: call ``enable()`` in each thread that should be covered.
        """
        import threading

        if self._enabled_in is not None:
            raise RuntimeError(f"{self!r} is already enabled; call disable() first")
        torch.overrides._push_mode(self)
        self._enabled_in = threading.get_ident()
        return self

    def disable(self) -> None:
        """Undo :meth:`enable` (in the thread that called it). Modes entered after it
        and still active stay active, in their order."""
        import threading

        if self._enabled_in is None:
            raise RuntimeError(f"{self!r} is not enabled")
        if self._enabled_in != threading.get_ident():
            raise RuntimeError(f"{self!r} was enabled in another thread; torch function modes are "
                               "thread-local, so it must be disabled there")
        if not any(mode is self for mode in torch.overrides._get_current_function_mode_stack()):
            self._enabled_in = None
            raise RuntimeError(f"{self!r} is no longer on the torch function mode stack (it was "
                               "popped by other code)")
        above = []
        while True:
            mode = torch.overrides._pop_mode()
            if mode is self:
                break
            above.append(mode)
        for mode in reversed(above):
            torch.overrides._push_mode(mode)
        self._enabled_in = None

    @property
    def enabled(self) -> bool:
        """Whether :meth:`enable` is in effect (for the thread that called it)."""
        return self._enabled_in is not None

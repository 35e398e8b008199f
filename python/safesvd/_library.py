"""Whether the compiled operator library is loaded, and where from.

A leaf module (it imports nothing of the package): every public function calls
:func:`require` first, the start-up code (``_loader``) records the outcome here.
``require`` never builds anything; a JIT build happens only in :func:`safesvd.load`
(or at ``import safesvd`` with ``SAFESVD_JIT=1``).
"""

from __future__ import annotations

_state: dict = {"loaded": False, "how": None, "path": None, "error": None}


def loaded() -> bool:
    return _state["loaded"]


def how() -> str | None:
    """A short description of how the library was loaded, or None."""
    return _state["how"]


def path() -> str | None:
    """The file of the loaded library (the extension module or the JIT build), or None."""
    return _state["path"]


def record_loaded(how: str, path: str) -> None:
    _state.update(loaded=True, how=how, path=path, error=None)


def record_error(error: BaseException) -> None:
    _state["error"] = error


def require() -> None:
    """Raise a clear error when no operator library is loaded."""
    if _state["loaded"]:
        return
    raise RuntimeError(
        "safesvd's compiled operators are not loaded. Install the package with "
        "`pip install --no-build-isolation .`, or call safesvd.load() (or set "
        "SAFESVD_JIT=1 before importing safesvd) to JIT-build them from a source checkout. "
        f"Original error: {_state['error']!r}"
    )

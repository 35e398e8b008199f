"""Finding and loading the compiled operator library.

Two ways in: the extension module ``safesvd._C`` built by ``pip install
--no-build-isolation .`` (imported at ``import safesvd``), or :func:`load`, which
JIT-compiles ``csrc/`` with ninja for development. Either way the Python side
(autograd and fake kernels) is registered only after the C++ library loaded,
and a failure keeps its original error for the message users see.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import torch

_state: dict = {"loaded": False, "how": None, "error": None}

# The source tree: <repo>/python/safesvd/_loader.py -> <repo>/csrc
_CSRC = Path(__file__).resolve().parent.parent.parent / "csrc"


def _register_python_side(how: str) -> None:
    from . import _ops

    _ops.register()
    _state.update(loaded=True, how=how, error=None)


def check_build_matches_torch() -> None:
    """Raise ImportError when the extension was built for another torch / CUDA.

    Compares major.minor of the torch recorded at build time (_build_info.py,
    written by setup.py) with the installed one, and the CUDA major version when
    the extension has CUDA kernels. Without it, a mismatch surfaces as an
    undefined-symbol error from the dynamic loader.
    """
    try:
        from . import _build_info
    except ImportError:  # a JIT build or a bare source checkout: nothing recorded
        return
    from packaging.version import Version

    built, installed = Version(_build_info.TORCH_VERSION), Version(torch.__version__.split("+")[0])
    if (built.major, built.minor) != (installed.major, installed.minor):
        raise ImportError(
            f"safesvd was built against torch {_build_info.TORCH_VERSION} but torch {torch.__version__} "
            f"is installed. Install the safesvd build for torch {installed.major}.{installed.minor} "
            "(its version tag names the torch it needs, e.g. +pt213cpu), or rebuild with "
            "`pip install --no-build-isolation .`."
        )
    if _build_info.WITH_CUDA:
        if torch.version.cuda is None:
            raise ImportError(
                f"safesvd was built with CUDA {_build_info.TORCH_CUDA_VERSION} kernels, but the installed "
                f"torch {torch.__version__} has no CUDA. Install the CPU build of safesvd (+pt..cpu)."
            )
        if Version(torch.version.cuda).major != Version(_build_info.TORCH_CUDA_VERSION).major:
            raise ImportError(
                f"safesvd was built for CUDA {_build_info.TORCH_CUDA_VERSION} but torch uses CUDA "
                f"{torch.version.cuda}; install the matching safesvd build or rebuild it."
            )


def try_import_compiled() -> bool:
    """Import ``safesvd._C`` if it was built; remember the error if not.

    A build made for another torch is a hard ImportError (check_build_matches_torch)."""
    check_build_matches_torch()
    try:
        from . import _C  # noqa: F401  (import runs the TORCH_LIBRARY registrations)
    except ImportError as e:  # not built, or built against another torch
        _state["error"] = e
        return False
    _register_python_side("extension module safesvd._C")
    return True


def cuda_sources_wanted() -> bool:
    """Compile CUDA when torch has CUDA and a toolkit exists (never from is_available())."""
    from torch.utils import cpp_extension

    if os.environ.get("FORCE_ONLY_CPU") == "1":
        return False
    if os.environ.get("FORCE_CUDA") == "1":
        return True
    return torch.version.cuda is not None and cpp_extension.CUDA_HOME is not None


def load(verbose: bool = False, with_cuda: bool | None = None) -> str:
    """JIT-compile ``csrc/`` with ninja and register the operators (development).

    Args:
        verbose: print the compiler commands.
        with_cuda: compile ``csrc/cuda/*.cu`` too; default: when torch was built
            with CUDA and a CUDA toolkit is found (``FORCE_CUDA=1`` forces it,
            ``FORCE_ONLY_CPU=1`` disables it).

    Returns:
        A short description of how the library was loaded. Calling it again, or
        after the installed extension was imported, does nothing.
    """
    if _state["loaded"]:
        return _state["how"]
    if not (_CSRC / "safesvd.cpp").exists():
        raise RuntimeError(
            f"safesvd.load(): the C++ sources are not at {_CSRC}; load() works from a "
            "source checkout. Installed packages use the prebuilt extension instead."
        )
    from torch.utils import cpp_extension

    sources = [str(_CSRC / "safesvd.cpp")]
    sources += sorted(glob.glob(str(_CSRC / "aten" / "*.cpp")))
    sources += sorted(glob.glob(str(_CSRC / "api" / "*.cpp")))
    sources += sorted(glob.glob(str(_CSRC / "cpu" / "*.cpp")))
    sources += sorted(glob.glob(str(_CSRC / "cpu" / "isa" / "*.cpp")))
    cuda = cuda_sources_wanted() if with_cuda is None else with_cuda
    cuda_flags = ["-O3", "--expt-relaxed-constexpr"]
    if cuda:
        sources += sorted(glob.glob(str(_CSRC / "cuda" / "*.cu")))
    cpp_extension.load(
        name="safesvd_jit_cuda" if cuda else "safesvd_jit",
        sources=sources,
        # See setup.py for why these flags matter to the fused CPU loop.
        extra_cflags=["-O3", "-fno-wrapv", "-fno-math-errno", "-fopenmp"],
        extra_ldflags=["-fopenmp"],
        extra_cuda_cflags=cuda_flags,
        is_python_module=False,
        verbose=verbose,
    )
    how = "JIT build of csrc/" + (" with CUDA" if cuda else " (CPU only)")
    _register_python_side(how)
    return how


def require() -> None:
    """Raise a clear error when no operator library is loaded."""
    if _state["loaded"]:
        return
    if os.environ.get("SAFESVD_JIT") == "1":
        load()
        return
    raise RuntimeError(
        "safesvd's compiled operators are not loaded. Install the package with "
        "`pip install --no-build-isolation .`, or call safesvd.load() (or set "
        "SAFESVD_JIT=1) to JIT-build them from a source checkout. Original error: "
        f"{_state['error']!r}"
    )

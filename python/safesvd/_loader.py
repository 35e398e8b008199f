"""Starting the package: finding, checking and loading the compiled operator library.

Two ways in: the extension module ``safesvd._C`` built by ``pip install
--no-build-isolation .`` (imported at ``import safesvd``), or :func:`load`, which
JIT-compiles ``csrc/`` with ninja for development (at import with ``SAFESVD_JIT=1``).
Either way the Python side (autograd, fake and vmap kernels of every module) is
registered only after the C++ library loaded, and a failure keeps its original
error for the message users see (``_library.require``). No module of the package
imports this one but ``__init__``: the load state lives in the leaf ``_library``.
"""

from __future__ import annotations

import os

import torch

from . import _library, _manifest, _ops, _topk


def _register_python_side(how: str, path: str) -> None:
    _ops.register()
    _topk.register()
    _library.record_loaded(how, path)


def check_build_matches_torch() -> None:
    """Raise ImportError when the extension was built for another torch / CUDA.

    Compares major.minor of the torch recorded at build time (_build_info.py,
    written by setup.py) with the installed one, and the CUDA major version when
    the extension has CUDA kernels. Without it, a mismatch surfaces as an
    undefined-symbol error from the dynamic loader. A source build of torch
    (2.11.0a0+git...) counts as its release (2.11).
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
        from . import _C  # (import runs the TORCH_LIBRARY registrations)
    except ImportError as e:  # not built, or built against another torch
        _library.record_error(e)
        return False
    _register_python_side("extension module safesvd._C", _C.__file__)
    return True


def start() -> None:
    """At ``import safesvd``: the built extension, else (``SAFESVD_JIT=1``) a JIT build."""
    if not try_import_compiled() and os.environ.get("SAFESVD_JIT") == "1":
        load()


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

    The sources and flags are csrc/manifest.txt's, as for setup.py and CMake.

    Args:
        verbose: print the compiler commands.
        with_cuda: compile the CUDA sources too; default: when torch was built
            with CUDA and a CUDA toolkit is found (``FORCE_CUDA=1`` forces it,
            ``FORCE_ONLY_CPU=1`` disables it; ``SAFESVD_CUDA_JACOBI=1`` adds the
            one matrix per thread forward engine).

    Returns:
        A short description of how the library was loaded. Calling it again, or
        after the installed extension was imported, does nothing.
    """
    if _library.loaded():
        return _library.how()
    manifest = _manifest.read()
    if not (manifest.root / "csrc" / "safesvd.cpp").exists():
        raise RuntimeError(
            f"safesvd.load(): the C++ sources are not at {manifest.root / 'csrc'}; load() works from a "
            "source checkout. Installed packages use the prebuilt extension instead."
        )
    from torch.utils import cpp_extension

    cuda = cuda_sources_wanted() if with_cuda is None else with_cuda
    groups = ["cpu"] + (["cuda"] + (["cuda_jacobi"] if os.environ.get("SAFESVD_CUDA_JACOBI") == "1" else [])
                        if cuda else [])
    defines = [f"-D{m}" for m in manifest.macros(groups)]
    # The toolkit nvcc really uses (setup.py sets CUDA_HOME to it; here torch has already
    # read its guess): its headers for the host glue, its libcudart for the link.
    toolkit = _manifest.cuda_toolkit_root(cpp_extension.CUDA_HOME) if cuda else None
    path = cpp_extension.load(
        name="safesvd_jit_cuda" if cuda else "safesvd_jit",
        sources=manifest.paths(groups),
        extra_cflags=manifest.flags["cxx"] + defines,
        extra_ldflags=manifest.flags["ld"] + ([f"-L{toolkit}/lib64"] if toolkit else []),
        extra_cuda_cflags=manifest.flags["nvcc"] + defines,
        extra_include_paths=[f"{toolkit}/include"] if toolkit else None,
        is_python_module=False,
        verbose=verbose,
    )
    how = "JIT build of csrc/" + (" with CUDA" if cuda else " (CPU only)")
    _register_python_side(how, path)
    return how

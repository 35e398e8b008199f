"""Build safesvd's extension module against the installed torch.

    pip install torch==2.13.0              # first: safesvd builds against it
    pip install --no-build-isolation .     # never with build isolation (see README)

Switches (environment):
    FORCE_CUDA=1        compile csrc/cuda/*.cu even without a visible GPU
    FORCE_ONLY_CPU=1    never compile CUDA
    TORCH_CUDA_ARCH_LIST  GPU architectures; default "8.0;9.0+PTX" (A100, H100/H200, PTX for newer)
CUDA is built when FORCE_CUDA=1, or when torch has CUDA and a toolkit is found;
never decided by torch.cuda.is_available() alone, so a GPU-less build node
still builds the kernels.
"""

import glob
import os

from setuptools import setup

try:
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension
except ImportError as e:  # build isolation, or torch missing
    raise SystemExit(
        "safesvd builds against the installed torch. Install torch first "
        "(pip install torch==2.13.0), then: pip install --no-build-isolation .\n"
        f"({e})"
    )

DEFAULT_ARCH_LIST = "8.0;9.0+PTX"


def want_cuda() -> bool:
    if os.environ.get("FORCE_ONLY_CPU") == "1":
        return False
    if os.environ.get("FORCE_CUDA") == "1":
        return True
    return torch.version.cuda is not None and CUDA_HOME is not None


def torch_tag() -> str:
    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return f"{major}.{minor}"


with_cuda = want_cuda()
sources = ["csrc/safesvd.cpp"] + sorted(glob.glob("csrc/aten/*.cpp")) + sorted(glob.glob("csrc/cpu/*.cpp"))
# -fno-wrapv: Python's CFLAGS carry -fwrapv, which blocks loop optimizations of
# the fused kernels (measured: 1.5x slower per matrix).
# -fopenmp: at::parallel_for is an inline `omp parallel` in ATen's headers; without
# it the batch loop silently runs on one thread.
extra = {"cxx": ["-O3", "-fno-wrapv", "-fopenmp"]}
macros = [("SAFESVD_WITH_PYTHON", None)]
if with_cuda:
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", DEFAULT_ARCH_LIST)
    sources += sorted(glob.glob("csrc/cuda/*.cu"))
    extra["nvcc"] = ["-O3", "--expt-relaxed-constexpr"]
    ext = CUDAExtension("safesvd._C", sources, extra_compile_args=extra, extra_link_args=["-fopenmp"],
                        define_macros=macros)
else:
    ext = CppExtension("safesvd._C", sources, extra_compile_args=extra, extra_link_args=["-fopenmp"],
                       define_macros=macros)

print(
    f"safesvd build: torch {torch.__version__}, CUDA kernels: {'yes' if with_cuda else 'no'}"
    + (f" (CUDA_HOME={CUDA_HOME}, TORCH_CUDA_ARCH_LIST={os.environ['TORCH_CUDA_ARCH_LIST']})" if with_cuda else "")
)

major, minor = torch_tag().split(".")
setup(
    name="safesvd",
    version="0.1.0",
    description="Differentiable SVD and eigh for PyTorch with finite gradients at degeneracies",
    package_dir={"": "python"},
    packages=["safesvd"],
    ext_modules=[ext],
    cmdclass={"build_ext": BuildExtension},
    # Pinned to the minor version the extension was compiled against.
    install_requires=[f"torch>={major}.{minor},<{major}.{int(minor) + 1}"],
    python_requires=">=3.9",
)

"""The CUDA emulation (csrc/emulation, docs/cuda_emulation.md) on a machine
without a GPU: the self-test kernels run on the CPU through g++, in an
executable and in shared libraries, and the same kernels compile with nvcc."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import find_nvcc

ROOT = Path(__file__).resolve().parents[1]
CSRC = ROOT / "csrc"
EMU_TESTS = ROOT / "tests" / "emulation"
CXX = os.environ.get("CXX", "g++")
# -ldl: dlopen/dlsym live outside libc before glibc 2.34.
CXXFLAGS = ["-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", "-pthread", f"-I{CSRC}"]
LDLIBS = ["-ldl"]

pytestmark = pytest.mark.cuda_emulated


def run(cmd, **kwargs):
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, (f"{cmd[0]} failed ({result.returncode}):\n"
                                    f"{result.stdout[-6000:]}\n{result.stderr[-6000:]}")
    return result


def test_selftest_passes_and_detects_broken_kernels(tmp_path):
    """Correct kernels exact under every schedule, each broken variant caught,
    limits and misuse throw (emulation_selftest.cpp checks all of it)."""
    exe = tmp_path / "emulation_selftest"
    run([CXX, *CXXFLAGS, EMU_TESTS / "emulation_selftest.cpp", "-o", exe, *LDLIBS])
    result = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    out = result.stdout
    assert result.returncode == 0, f"self-test failed:\n{out[-8000:]}\n{result.stderr[-4000:]}"
    assert out.rstrip().endswith(" 0 failures"), out[-2000:]
    broken = [line for line in out.splitlines() if "BROKEN" in line]
    assert len(broken) == 6 and all("detected:" in line for line in broken), "\n".join(broken)


def test_shared_libraries(tmp_path):
    """In a .so built by torch.utils.cpp_extension and in one built by plain
    g++, loaded into one process (RTLD_GLOBAL and RTLD_LOCAL), shared memory
    is NaN-filled and results are exact."""
    from torch.utils import cpp_extension

    build = tmp_path / "ext"
    build.mkdir()
    plain = tmp_path / "libemu_plain.so"
    gxx = subprocess.Popen([CXX, *CXXFLAGS, "-fPIC", "-shared", str(EMU_TESTS / "emulation_so.cpp"), "-o", str(plain),
                            *LDLIBS], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ext = cpp_extension.load(name="safesvd_emu_selftest_so", sources=[str(EMU_TESTS / "emulation_so.cpp")],
                                 extra_include_paths=[str(CSRC)], build_directory=str(build),
                                 is_python_module=False, verbose=False)
    finally:
        log, _ = gxx.communicate()
    assert gxx.returncode == 0, log
    script = (
        "import ctypes, sys\n"
        "libs = [ctypes.CDLL(sys.argv[1], mode=ctypes.RTLD_GLOBAL), ctypes.CDLL(sys.argv[2], mode=ctypes.RTLD_LOCAL)]\n"
        "print([lib.safesvd_emu_so_check() for lib in libs + libs])\n"
    )
    # The cpp_extension library links libc10/libtorch without an rpath.
    torch_lib = os.path.join(os.path.dirname(cpp_extension.__file__), "..", "lib")
    paths = [torch_lib, os.environ.get("LD_LIBRARY_PATH")]
    env = dict(os.environ, LD_LIBRARY_PATH=os.pathsep.join(p for p in paths if p))
    result = run([sys.executable, "-c", script, ext, plain], env=env)
    assert result.stdout.strip() == "[0, 0, 0, 0]", result.stdout + result.stderr


@pytest.mark.parametrize("c10_first", [True, False], ids=["c10-first", "emulation-first"])
def test_headers_compose_with_c10_and_kernels(tmp_path, c10_first):
    """The emulation header and c10's macros may be included in either order,
    and the project's kernel headers compile through it."""
    from torch.utils import cpp_extension

    c10 = "#include <c10/macros/Macros.h>\n#include <c10/util/complex.h>\n"
    emu = '#include "cuda/compat.h"\n'
    source = tmp_path / "compose.cpp"
    source.write_text((c10 + emu if c10_first else emu + c10) + '#include "kernels/fn_backward.h"\n'
                      "__global__ void k(c10::complex<float>* p) {\n"
                      "  __shared__ c10::complex<float> s[4];\n"
                      "  s[threadIdx.x % 4] = p[0];\n"
                      "  __syncthreads();\n"
                      "  p[threadIdx.x] = s[0];\n"
                      "}\n"
                      "void launch(c10::complex<float>* p) { SAFESVD_LAUNCH(k, 1, 8, 0, nullptr)(p); }\n")
    includes = [f"-I{d}" for d in cpp_extension.include_paths()]
    run([CXX, "-std=c++17", "-fsyntax-only", "-Wall", "-Werror", f"-I{CSRC}", *includes, source])


def test_kernels_compile_with_nvcc(tmp_path):
    """The self-test kernels are valid CUDA: nvcc compiles them for sm_90."""
    nvcc = find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found")
    run([nvcc, "-c", "-arch=sm_90", "-std=c++17", f"-I{CSRC}", EMU_TESTS / "test_kernels.cu", "-o", tmp_path / "k.o"])

"""The guards' bit-level helpers (csrc/kernels/guards.h: frexp_exponent, pow2_of, and
SpectrumScale::from_max built on them) equal libm's frexp / ldexp over every exponent,
subnormals included, in float32 and float64 (tests/cpp/float_bits_test.cpp)."""
import os
import subprocess
from pathlib import Path

from torch.utils import cpp_extension

ROOT = Path(__file__).resolve().parents[1]
CXX = os.environ.get("CXX", "g++")


def test_float_bits_match_libm(tmp_path):
    exe = tmp_path / "float_bits_test"
    includes = [f"-I{p}" for p in [ROOT / "csrc", *cpp_extension.include_paths()]]
    build = subprocess.run([CXX, "-std=c++17", "-O2", "-Wall", "-Werror", *includes,
                            str(ROOT / "tests" / "cpp" / "float_bits_test.cpp"), "-o", str(exe)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-6000:]
    result = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.splitlines()[-1:] == ["0 failures"], result.stdout[-4000:]

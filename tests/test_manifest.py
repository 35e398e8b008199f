"""The build's one truth (docs/architecture.md, "Build"): csrc/manifest.txt names every
source and kernel instance, the generated units are current, the kernel units do not
see ATen or csrc/aten/ (so editing those recompiles no kernel unit), and no module of
the Python package is part of an import loop."""

import ast
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from safesvd import _manifest

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = _manifest.read(ROOT)
CXX = os.environ.get("CXX", "g++")


def test_generated_units_are_current():
    result = subprocess.run([sys.executable, ROOT / "scripts" / "gen_units.py", "--check"], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_source_is_in_the_manifest_once():
    listed = [s.path for s in MANIFEST.sources]
    assert len(listed) == len(set(listed)), "a source is listed twice"
    on_disk = sorted(str(p.relative_to(ROOT)) for ext in ("*.cpp", "*.cu") for p in (ROOT / "csrc").rglob(ext))
    assert sorted(listed) == on_disk, "sources on disk and in csrc/manifest.txt differ"
    # torch.utils.cpp_extension (safesvd.load) names objects after the file's stem.
    stems = [Path(p).stem for p in listed]
    assert len(stems) == len(set(stems)), "two sources share a file name"


def test_instance_expansion():
    assert _manifest.expand("A<{1..3}, {x,y}>") == ["A<1, x>", "A<1, y>", "A<2, x>", "A<2, y>", "A<3, x>", "A<3, y>"]
    assert _manifest.expand("B<float>") == ["B<float>"]


def test_manifest_errors_are_clear(tmp_path):
    (tmp_path / "csrc").mkdir()
    (tmp_path / "csrc" / "manifest.txt").write_text("source gpu csrc/x.cpp\n")
    with pytest.raises(ValueError, match="unknown group 'gpu'"):
        _manifest.read(tmp_path)
    (tmp_path / "csrc" / "manifest.txt").write_text("  Foo<1>\n")
    with pytest.raises(ValueError, match="must follow a unit"):
        _manifest.read(tmp_path)
    (tmp_path / "csrc" / "manifest.txt").write_text(
        "isa avx2 16 8 avx2\nunit cpu csrc/u.cpp isa=avx2 include=x.inc lanes=4x\n")
    with pytest.raises(ValueError, match="lanes must be 1x or 2x"):
        _manifest.read(tmp_path)


def test_lanes_option_doubles_the_tile_width():
    """A unit with lanes=2x gets tiles of twice its instruction set's lanes (the small
    band, docs/jacobi.md); the others its lanes."""
    seen = set()
    for unit in MANIFEST.units():
        if "isa" not in unit.options:
            continue
        isa = MANIFEST.isas[unit.options["isa"]]
        factor = 2 if unit.options.get("lanes") == "2x" else 1
        text = _manifest.render(MANIFEST, unit)
        assert f"#define SAFESVD_ISA_WIDTH_FLOAT {isa.width_float * factor}\n" in text, unit.path
        assert f"#define SAFESVD_ISA_WIDTH_DOUBLE {isa.width_double * factor}\n" in text, unit.path
        seen.add(factor)
    assert seen == {1, 2}


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or shutil.which("objdump") is None,
                    reason="reads x86-64 instructions with objdump")
@pytest.mark.parametrize("isa", sorted(MANIFEST.isas))
def test_batched_products_use_the_fma_instruction(isa, tmp_path):
    """The batched backward's products (csrc/kernels/small_gemm.h) compile in the SoA
    "builders" units, whose FMA contraction is off (csrc/cpu/isa/soa_isa.inc), and GCC's
    target pragma does not define __FMA__: until SAFESVD_ISA_FMA every term was a multiply
    and an add, which ran at half rate on Intel (docs/architecture.md, "Batched
    backward"). Compiles the generated unit with the build's flags and reads the kernel's
    functions: fma instructions and no separate vector multiply or add where the target
    has FMA, no fma where it has not (the x86-64 baseline)."""
    from torch.utils import cpp_extension

    version = subprocess.run([CXX, "--version"], capture_output=True, text=True).stdout
    if "clang" in version.lower():
        pytest.skip("the ISA variants' target pragmas are GCC's (csrc/cpu/isa/isa_prelude.h)")
    unit = ROOT / f"csrc/cpu/inst/cpu_soa_builders_{isa}.cpp"
    obj = tmp_path / "unit.o"
    flags = ["-std=c++20", "-fPIC", *MANIFEST.flags["cxx"], *(f"-I{p}" for p in cpp_extension.include_paths())]
    result = subprocess.run([CXX, *flags, "-c", str(unit), "-o", str(obj)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    listing = subprocess.run(["objdump", "-d", "-C", "--no-show-raw-insn", str(obj)], capture_output=True,
                             text=True, check=True).stdout
    ops, names = [], []
    for function in listing.split("\n\n"):
        lines = function.strip().splitlines()
        if not lines or not any(n in lines[0] for n in ("gemm_detail::", "kernels::small_gemm<", "gemm_matrices<")):
            continue  # (the register blocks may be inlined into their callers: all of them are read)
        names.append(lines[0])
        ops += [line.split()[1] for line in lines[1:] if len(line.split()) > 1]
    assert names, "no function of the kernel found in the object"
    fmas = [op for op in ops if op.startswith(("vfmadd", "vfnmadd"))]
    if MANIFEST.isas[isa].has_fma:
        assert fmas, names
        assert not [op for op in ops if op in ("vmulpd", "vmulps", "vaddpd", "vaddps")], names
    else:
        assert not fmas, names


def _includes(source, *extra):
    """Every header `source` includes, by g++ -MM semantics but with system headers (-M)."""
    from torch.utils import cpp_extension

    flags = ["-std=c++20", f"-I{ROOT / 'csrc'}", *(f"-I{p}" for p in cpp_extension.include_paths()), *extra]
    if source.endswith(".cu"):
        flags = ["-x", "c++", *flags]  # the emulation's view of the unit: no CUDA toolkit needed
    result = subprocess.run([CXX, "-M", *flags, str(ROOT / source)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-4000:]
    return [Path(tok).resolve() for tok in result.stdout.replace("\\\n", " ").split()[1:]]


KERNEL_UNITS = [u.path for u in MANIFEST.units()]


@pytest.mark.parametrize("unit", KERNEL_UNITS)
def test_kernel_units_do_not_include_aten(unit):
    """No CUDA kernel unit sees ATen; no kernel unit sees csrc/aten/ (the glue's headers),
    so editing them recompiles only the glue. (The CPU's parallel loop includes
    ATen/Parallel.h.)"""
    headers = _includes(unit, "-DSAFESVD_CUDA_JACOBI")
    glue = [h for h in headers if (ROOT / "csrc" / "aten") in h.parents]
    assert not glue, f"{unit} includes csrc/aten/: {glue[:3]}"
    if unit.endswith(".cu"):
        aten = [h for h in headers if "ATen" in h.parts or ("torch" in h.parts and "csrc" in h.parts)]
        assert not aten, f"{unit} includes ATen: {aten[:3]}"


def test_include_check_sees_aten():
    """The check above can fail: the CPU glue (host code) does include ATen and csrc/aten/."""
    headers = _includes("csrc/cpu/cpu.cpp")
    assert any((ROOT / "csrc" / "aten") in h.parents for h in headers)
    assert any("ATen" in h.parts for h in headers)


# ------------------------------------------------------------------ import loops


def _imports(path: Path, package: str) -> set:
    """The package's modules that `path` imports, at module level or inside functions."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                base = node.module
                if base is None:
                    found |= {alias.name for alias in node.names}
                else:
                    found.add(base.split(".")[0])
            elif node.level == 0 and node.module and node.module.split(".")[0] == package:
                parts = node.module.split(".")
                found.add(parts[1] if len(parts) > 1 else "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == package:
                    found.add(parts[1] if len(parts) > 1 else "__init__")
    return found


def _graph(package_dir: Path, package: str) -> dict:
    modules = {p.stem: p for p in package_dir.glob("*.py")}
    return {name: {t for t in _imports(path, package) if t in modules and t != name} for name, path in modules.items()}


def _cycles(graph: dict) -> list:
    state: dict = {}
    cycles = []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return cycles


def test_python_package_has_no_import_loop():
    """Module-level and function-level imports alike: a module that imports the package
    itself (`import safesvd`) depends on __init__."""
    cycles = _cycles(_graph(ROOT / "python" / "safesvd", "safesvd"))
    assert not cycles, "import loops: " + "; ".join(" -> ".join(c) for c in cycles)


def test_import_loop_detection_sees_loops(tmp_path):
    """The check above can fail: a loop through a function-level import in a scratch
    package is found."""
    (tmp_path / "__init__.py").write_text("from .a import f\n")
    (tmp_path / "a.py").write_text("from . import b\n")
    (tmp_path / "b.py").write_text("def f():\n    import pkg\n")
    assert _cycles(_graph(tmp_path, "pkg")) == [["__init__", "a", "b", "__init__"]]

"""csrc/manifest.txt: the one list of safesvd's sources, flags and kernel instances.

Read by setup.py (which loads this file by path, before the package can be
imported), :func:`safesvd.load`, scripts/gen_units.py and the tests; CMakeLists.txt
parses the same lines itself. Standard library only: no torch, no package imports.
The format is described at the top of the manifest (docs/architecture.md, "Build").
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

GROUPS = ("cpu", "cuda", "cuda_jacobi")
GENERATED_NOTE = "Generated from csrc/manifest.txt by scripts/gen_units.py: do not edit."


@dataclass
class Isa:
    name: str
    width_float: int
    width_double: int
    target: str | None  # gcc target attribute string; None: the compiler's default

    @property
    def has_fma(self) -> bool:
        """Whether the target enables FMA. GCC's target pragma does not define __FMA__
        (g++ 12), so the generated units say it (SAFESVD_ISA_FMA) for the code that asks
        for the instruction explicitly (csrc/kernels/small_gemm.h)."""
        return self.target is not None and "fma" in self.target.split(",")


@dataclass
class Source:
    group: str
    path: str  # relative to the repository root
    generated: bool = False
    options: dict = field(default_factory=dict)
    instances: list = field(default_factory=list)  # template-ids as written (unexpanded)


@dataclass
class Manifest:
    root: Path
    flags: dict  # lang -> [flag]
    defines: dict  # group -> [macro]
    isas: dict  # name -> Isa
    sources: list  # [Source], in manifest order

    def paths(self, groups) -> list[str]:
        """Absolute paths of the sources of the given groups, in manifest order."""
        return [str(self.root / s.path) for s in self.sources if s.group in groups]

    def macros(self, groups) -> list[str]:
        return [m for g in groups for m in self.defines.get(g, [])]

    def units(self) -> list[Source]:
        return [s for s in self.sources if s.generated]


def expand(template_id: str) -> list[str]:
    """Every combination of the {a..b} (integer range) and {x,y,...} (list) groups of a line."""
    parts = re.split(r"(\{[^{}]*\})", template_id)
    choices = []
    for part in parts:
        if part.startswith("{") and part.endswith("}"):
            body = part[1:-1]
            m = re.fullmatch(r"\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*", body)
            if m:
                lo, hi = int(m.group(1)), int(m.group(2))
                choices.append([str(i) for i in range(lo, hi + 1)])
            else:
                choices.append([x.strip() for x in body.split(",")])
        else:
            choices.append([part])
    return ["".join(c) for c in itertools.product(*choices)]


def read(root: str | Path | None = None) -> Manifest:
    """Parse <root>/csrc/manifest.txt (root: the repository; default: this file's checkout)."""
    root = Path(root) if root is not None else Path(__file__).resolve().parents[2]
    text = (root / "csrc" / "manifest.txt").read_text()
    flags: dict = {}
    defines: dict = {}
    isas: dict = {}
    sources: list = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        where = f"csrc/manifest.txt:{number}"
        if raw[0].isspace():
            if not sources or not sources[-1].generated or "header" not in sources[-1].options:
                raise ValueError(f"{where}: an instance line must follow a unit with header=")
            sources[-1].instances.append(line.strip())
            continue
        words = line.split()
        kind, args = words[0], words[1:]
        if kind == "flags":
            flags.setdefault(args[0], []).extend(args[1:])
        elif kind == "define":
            defines.setdefault(args[0], []).extend(args[1:])
        elif kind == "isa":
            isas[args[0]] = Isa(args[0], int(args[1]), int(args[2]), args[3] if len(args) > 3 else None)
        elif kind in ("source", "unit"):
            group, path = args[0], args[1]
            if group not in GROUPS:
                raise ValueError(f"{where}: unknown group {group!r} (one of {GROUPS})")
            options = dict(a.split("=", 1) for a in args[2:])
            sources.append(Source(group, path, kind == "unit", options))
        else:
            raise ValueError(f"{where}: unknown line kind {kind!r}")
    manifest = Manifest(root, flags, defines, isas, sources)
    for unit in manifest.units():
        if "isa" in unit.options and unit.options["isa"] not in isas:
            raise ValueError(f"csrc/manifest.txt: {unit.path} names an unknown isa {unit.options['isa']!r}")
        lane_factor(unit)  # a bad lanes= is an error here, not at generation
    return manifest


def lane_factor(unit: Source) -> int:
    """A unit's tile width in multiples of its instruction set's lanes (lanes=1x / 2x)."""
    lanes = unit.options.get("lanes", "1x")
    if lanes not in ("1x", "2x"):
        raise ValueError(f"csrc/manifest.txt: {unit.path}: lanes must be 1x or 2x, got {lanes!r}")
    return int(lanes[0])


def cuda_toolkit_root(cuda_home: str | None = None) -> str | None:
    """The CUDA toolkit's directory (holding include/cuda_runtime.h and lib64/): torch
    derives CUDA_HOME from the nvcc on PATH, and a wrapper script at /usr/local/bin/nvcc
    gives /usr/local, where the host compiler finds no CUDA headers (the CUDA host glue
    includes c10/cuda headers) and the linker no libcudart. So nvcc is asked where it
    lives (`--dryrun` prints its TOP). None when no toolkit is found."""
    import shutil
    import subprocess

    candidates = [Path(cuda_home)] if cuda_home else []
    nvcc = shutil.which("nvcc") or (str(Path(cuda_home) / "bin" / "nvcc") if cuda_home else None)
    if nvcc and Path(nvcc).exists():
        try:
            out = subprocess.run([nvcc, "--dryrun", "-c", "-x", "cu", os.devnull, "-o", os.devnull],
                                 capture_output=True, text=True, timeout=60).stderr
            candidates += [Path(p) for p in re.findall(r"#\$ TOP=(\S+)", out)]
        except (OSError, subprocess.SubprocessError):
            pass
    for root in candidates:
        if (root / "include" / "cuda_runtime.h").exists():
            return str(root.resolve())
    return None


def _relative_include(unit: Source, target: str) -> str:
    """The #include path of `target` (root-relative) from the unit's directory."""
    import os

    return os.path.relpath(target, os.path.dirname(unit.path)).replace(os.sep, "/")


def render(manifest: Manifest, unit: Source) -> str:
    """The text of a generated unit."""
    head = f"// {GENERATED_NOTE}\n"
    if "header" in unit.options:
        namespace = unit.options["namespace"]
        lines = [head, f'#include "{_relative_include(unit, unit.options["header"])}"\n\n', f"namespace {namespace} {{\n"]
        for template_id in unit.instances:
            lines += [f"template struct {x};\n" for x in expand(template_id)]
        lines.append(f"}}  // namespace {namespace}\n")
        return "".join(lines)
    isa = manifest.isas[unit.options["isa"]]
    include = unit.options["include"]
    lines = [head, f"// {include} for the {isa.name} instruction set"]
    if "band" in unit.options:
        lines.append(f", size band {unit.options['band']}")
    lines.append(" (docs/architecture.md, \"Build\").\n")
    lines.append("// The C++ library is included before the target pragma (in the prelude), so none of its\n"
                 "// inline functions is compiled for a wider ISA and then shared by the linker.\n")
    lines.append(f'#include "{_relative_include(unit, "csrc/cpu/isa/isa_prelude.h")}"\n')
    if isa.target:
        lines.append(f'#if SAFESVD_ISA_PRAGMAS\n#pragma GCC target("{isa.target}")\n#endif\n')
    lines.append(f"#define SAFESVD_ISA {isa.name}\n")
    lines.append(f"#define SAFESVD_ISA_FMA {int(isa.has_fma)}\n")
    factor = lane_factor(unit)
    lines.append(f"#define SAFESVD_ISA_WIDTH_FLOAT {isa.width_float * factor}\n")
    lines.append(f"#define SAFESVD_ISA_WIDTH_DOUBLE {isa.width_double * factor}\n")
    if "band" in unit.options:
        lines.append(f"#define SAFESVD_BAND {unit.options['band']}\n")
    lines.append(f'#include "{_relative_include(unit, include)}"\n')
    return "".join(lines)

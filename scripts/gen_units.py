#!/usr/bin/env python3
"""Write the generated units of csrc/manifest.txt (csrc/cpu/inst/, csrc/cuda/inst/).

    python3 scripts/gen_units.py          # write every unit whose text changed
    python3 scripts/gen_units.py --check  # exit 1 and name the stale units, write nothing

Each unit is a few lines: explicit instantiations of the launchers its manifest line
names, or one source file compiled for an instruction set. They are committed, so a
build needs no generation step; tests/test_manifest.py runs --check.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _manifest_module():
    spec = importlib.util.spec_from_file_location("safesvd_manifest", ROOT / "python" / "safesvd" / "_manifest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report stale units, write nothing")
    args = parser.parse_args()
    mf = _manifest_module()
    manifest = mf.read(ROOT)
    stale = []
    for unit in manifest.units():
        path = ROOT / unit.path
        text = mf.render(manifest, unit)
        if path.exists() and path.read_text() == text:
            continue
        stale.append(unit.path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    listed = {str(ROOT / u.path) for u in manifest.units()}
    extra = [str(p.relative_to(ROOT)) for d in ("csrc/cpu/inst", "csrc/cuda/inst") for p in sorted((ROOT / d).glob("*"))
             if str(p) not in listed]
    if args.check:
        for path in stale:
            print(f"stale: {path} (run python3 scripts/gen_units.py)")
        for path in extra:
            print(f"not in csrc/manifest.txt: {path}")
        return 1 if stale or extra else 0
    for path in stale:
        print(f"wrote {path}")
    for path in extra:
        print(f"warning: {path} is not a unit of csrc/manifest.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Accuracy tables of the mid-size engine (n = 17..64) and the tall path against LAPACK.

For every set of tests/accuracy_sets.py (random, ill-conditioned 1e6, rank-deficient,
repeated, clustered, scaled by 1e-30 / 1e30 in float64, 1e-15 / 1e15 in float32), each
error (values relative to max |spectrum|, orthogonality, reconstruction relative to max |A|)
of safesvd's engine and of LAPACK (torch.linalg), both against a float64 (float32 inputs)
or 30-digit mpmath (float64 inputs) reference, in units of eps. The test suite checks the
same gate (within 4x) on a subset (tests/test_engine.py); float64 references of n = 48, 64
take minutes, so their figures come from this script (docs/jacobi.md).

    PYTHONPATH=python python bench/accuracy_midsize.py [--count 4] [--sizes 17 24 32 48 64]
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

import torch

import safesvd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from accuracy_sets import (  # noqa: E402
    accuracy_sets,
    eigh_errors,
    lapack_eigh,
    lapack_svd,
    reference_eigvalsh,
    reference_svdvals,
    svd_errors,
    within,
)
from _common import RESULTS, machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=4, help="matrices per set (float64: mpmath references)")
    parser.add_argument("--sizes", type=int, nargs="*", default=[17, 24, 32, 48, 64])
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    safesvd.load()
    lines = []
    worst = {}
    for dtype in (torch.float32, torch.float64):
        eps = torch.finfo(dtype).eps
        for kind in ("svd", "eigh"):
            lines += ["", f"### {kind}, {str(dtype).replace('torch.', '')} (errors in eps: engine / LAPACK)", ""]
            keys = ["values", "orth_u", "orth_v", "recon"] if kind == "svd" else ["values", "orth_q", "recon"]
            lines += ["| n | set | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
            for n in args.sizes:
                count = args.count if dtype == torch.float64 else 4 * args.count
                for name, A in accuracy_sets(n, dtype, count=count, seed=5, kind=kind).items():
                    if kind == "svd":
                        ref = reference_svdvals(A)
                        ours = svd_errors(A, *safesvd.svd(A, driver="jacobi"), ref)
                        theirs = svd_errors(A, *lapack_svd(A), ref)
                    else:
                        ref = reference_eigvalsh(A)
                        ours = eigh_errors(A, *safesvd.eigh(A, driver="jacobi"), ref)
                        theirs = eigh_errors(A, *lapack_eigh(A), ref)
                    ok = within(ours, theirs, 4.0, dtype=dtype)
                    cells = [f"{ours[k] / eps:.1f} / {theirs[k] / eps:.1f}" + ("" if ok[k] else " **beyond 4x**")
                             for k in keys]
                    lines.append(f"| {n} | {name} | " + " | ".join(cells) + " |")
                    for k in keys:
                        ratio = ours[k] / max(theirs[k], eps / 2)
                        key = (kind, str(dtype), k)
                        worst[key] = max(worst.get(key, 0.0), ratio)
                    print(lines[-1], flush=True)
    info = machine(cpu_isa=torch.ops.safesvd._cpu_isa())
    summary = ["| op | dtype | metric | worst engine / LAPACK |", "|---|---|---|---|"]
    summary += [f"| {k[0]} | {k[1].replace('torch.', '')} | {k[2]} | {v:.2f} |" for k, v in sorted(worst.items())]
    text = ["# Accuracy of the mid-size engine against LAPACK", "", *(f"- {k}: {v}" for k, v in info.items()),
            f"- matrices per set: {4 * args.count} (float32), {args.count} (float64)", "",
            "Worst ratio over every set and size (the gate is 4):", "", *summary, "", *lines]
    stem = args.output or f"accuracy_midsize_{datetime.date.today().isoformat()}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.md").write_text("\n".join(text) + "\n")
    print(f"\nwrote {RESULTS / (stem + '.md')}")


if __name__ == "__main__":
    main()

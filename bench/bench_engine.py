"""The small-matrix engine against torch: forward and forward + backward of the public functions.

For svd and eigh, n = 2 .. 16, float32 and float64, on the CPU:
    torch fwd            torch.linalg.svd(A, full_matrices=False) / torch.linalg.eigh(A)
    safesvd fwd          safesvd.svd(A) / safesvd.eigh(A)   (driver=None: the engine where it is the default)
    torch fwd+bwd        the same with autograd, backward of random cotangents on every output
    safesvd fwd+bwd      idem through safesvd
    safesvd lapack f+b   safesvd with driver="lapack" (LAPACK forward, safesvd's backward)
Random Gaussian input (eigh: symmetrized), so every spectrum is simple and random cotangents
are gauge invariant. Methods interleaved, median of the kept rounds (bench/_common.py).
Speedup = torch time / safesvd time in the same run.

    PYTHONPATH=python python bench/bench_engine.py           # writes bench/results/cpu_engine_<date>.{md,json,png}
    PYTHONPATH=python python bench/bench_engine.py --quick   # smoke run, nothing written
"""

from __future__ import annotations

import argparse
import datetime
import json
import os

import torch

import safesvd

from _common import RESULTS, machine, median, timed_rounds

SIZES = [2, 3, 4, 5, 8, 16]


def batch_for(n: int, quick: bool) -> int:
    if quick:
        return 2000
    return 100_000 if n <= 4 else 20_000


def methods(op: str, A: torch.Tensor) -> dict:
    g = torch.Generator().manual_seed(3)
    if op == "svd":
        U, S, Vh = torch.linalg.svd(A, full_matrices=False)
        cot = [torch.randn(x.shape, dtype=x.dtype, generator=g) for x in (U, S, Vh)]
        torch_f = lambda X: torch.linalg.svd(X, full_matrices=False)  # noqa: E731
        safe_f = lambda X, driver=None: safesvd.svd(X, driver=driver)  # noqa: E731
    else:
        L, Q = torch.linalg.eigh(A)
        cot = [torch.randn(x.shape, dtype=x.dtype, generator=g) for x in (L, Q)]
        torch_f = torch.linalg.eigh
        safe_f = lambda X, driver=None: safesvd.eigh(X, driver=driver)  # noqa: E731

    def fwd_bwd(f):
        X = A.clone().requires_grad_()
        torch.autograd.backward(list(f(X)), cot)
        return X.grad

    return {
        "torch fwd": lambda: torch_f(A),
        "safesvd fwd": lambda: safe_f(A),
        "torch fwd+bwd": lambda: fwd_bwd(torch_f),
        "safesvd fwd+bwd": lambda: fwd_bwd(safe_f),
        "safesvd lapack f+b": lambda: fwd_bwd(lambda X: safe_f(X, "lapack")),
    }


def run(quick: bool, repeats: int, shared: bool, sizes: list[int]) -> tuple[list[dict], dict]:
    rows, stats = [], {}
    for op in ("svd", "eigh"):
        for dtype in (torch.float32, torch.float64):
            for n in sizes:
                B = batch_for(n, quick)
                A = torch.randn(B, n, n, dtype=dtype, generator=torch.Generator().manual_seed(n))
                if op == "eigh":
                    A = (A + A.mT) / 2
                times = timed_rounds(methods(op, A), repeats, warmup=1, stats=stats, shared=shared, max_wait=20.0)
                med = {k: median(v) for k, v in times.items()}
                row = {"op": op, "dtype": str(dtype).replace("torch.", ""), "n": n, "B": B, "repeats": repeats,
                       "median_ms": med, "min_ms": {k: min(v) for k, v in times.items()},
                       "speedup_fwd": med["torch fwd"] / med["safesvd fwd"],
                       "speedup_fwd_bwd": med["torch fwd+bwd"] / med["safesvd fwd+bwd"],
                       "ns_per_matrix_safesvd_fwd_bwd": med["safesvd fwd+bwd"] * 1e6 / B}
                rows.append(row)
                print(f"{op:4s} {row['dtype']} n={n:2d} B={B}: fwd {row['speedup_fwd']:.1f}x "
                      f"({med['torch fwd']:.1f} / {med['safesvd fwd']:.1f} ms), fwd+bwd {row['speedup_fwd_bwd']:.1f}x "
                      f"({med['torch fwd+bwd']:.1f} / {med['safesvd fwd+bwd']:.1f} ms), "
                      f"lapack-forward f+b {med['safesvd lapack f+b']:.1f} ms", flush=True)
    return rows, stats


def plot(rows: list[dict], path, title: str) -> bool:
    try:
        import matplotlib
    except ImportError:
        print("matplotlib not installed: no plot")
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for op, marker in (("svd", "o"), ("eigh", "s")):
        for dtype, ls in (("float32", "-"), ("float64", "--")):
            sel = [r for r in rows if r["op"] == op and r["dtype"] == dtype]
            if not sel:
                continue
            ns = [r["n"] for r in sel]
            ax.plot(ns, [r["speedup_fwd_bwd"] for r in sel], ls, marker=marker, label=f"{op} {dtype} fwd+bwd")
            ax.plot(ns, [r["speedup_fwd"] for r in sel], ls, marker=marker, alpha=0.35, label=f"{op} {dtype} fwd")
    ax.axhline(1, color="gray", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(sorted({r["n"] for r in rows}))
    ax.set_xticklabels([str(n) for n in sorted({r["n"] for r in rows})])
    ax.set_xlabel("n (n x n matrices; B = 100k for n <= 4, 20k above)")
    ax.set_ylabel("speedup over torch (same run)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small batches, one round; writes nothing")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--sizes", type=int, nargs="*", default=SIZES)
    parser.add_argument("--output", default=None, help="results file stem")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    safesvd.load()
    info = machine(cpu_isa=torch.ops.safesvd._cpu_isa())
    info["load_average_before"] = os.getloadavg()
    print(f"# {info}")
    rows, stats = run(args.quick, 1 if args.quick else args.repeats, not args.quick, args.sizes)
    info.update(timing_rounds_discarded_other_load=stats.get("rounds_discarded", 0),
                seconds_waited_for_quiet_cpu=round(stats.get("waited_s", 0.0), 1),
                load_average_after=os.getloadavg())
    if args.quick:
        return
    stem = args.output or f"cpu_engine_{datetime.date.today().isoformat()}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps({"machine": info, "rows": rows}, indent=1))
    lines = ["# Small-matrix engine vs torch (CPU)", "", *(f"- {k}: {v}" for k, v in info.items()), "",
             "Produced by `bench/bench_engine.py`: random input and cotangents, methods interleaved, median of "
             f"{args.repeats} kept rounds (a round is discarded when other processes used > 10% of the CPUs). "
             "Times in ms for the whole batch; speedup = torch / safesvd in the same run.", "",
             "| op | dtype | n | B | torch fwd | safesvd fwd | speedup fwd | torch fwd+bwd | safesvd fwd+bwd "
             "| speedup fwd+bwd | safesvd (lapack fwd) fwd+bwd |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        m = r["median_ms"]
        lines.append(f"| {r['op']} | {r['dtype']} | {r['n']} | {r['B']} | {m['torch fwd']:.1f} | {m['safesvd fwd']:.1f} "
                     f"| **{r['speedup_fwd']:.1f}x** | {m['torch fwd+bwd']:.1f} | {m['safesvd fwd+bwd']:.1f} "
                     f"| **{r['speedup_fwd_bwd']:.1f}x** | {m['safesvd lapack f+b']:.1f} |")
    if plot(rows, RESULTS / f"{stem}.png", f"safesvd small-matrix engine vs torch, CPU {info['cpu']}, "
                                              f"{info['threads']} threads"):
        lines += ["", f"![speedup]({stem}.png)"]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / (stem + '.md')}")


if __name__ == "__main__":
    main()

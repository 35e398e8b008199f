"""The engine against torch: forward and forward + backward of the public functions.

svd and eigh of square n = 2 .. 64, tall and wide svd (64 x 16, 256 x 8, 8 x 3, 16 x 64,
3 x 8), sqrtm of covariance matrices (32 x 32), float32 and float64, on the CPU:
    torch fwd            torch.linalg.svd(A, full_matrices=False) / torch.linalg.eigh(A) / eigh-based sqrtm
    safesvd fwd          safesvd.svd(A) / safesvd.eigh(A) / safesvd.sqrtm(A) (driver=None: the engine
                         where it is the default)
    torch fwd+bwd        the same with autograd, backward of random cotangents on every output
    safesvd fwd+bwd      idem through safesvd
    safesvd lapack f+b   safesvd with driver="lapack" (LAPACK forward, safesvd's backward)
    safesvd f+b 1 thread safesvd fwd+bwd with torch.set_num_threads(1) (the scaling with cores)
Random Gaussian input (eigh: symmetrized; sqrtm: X X^T / d + 0.1 I from d = 2n samples), so
every spectrum is simple and random cotangents are gauge invariant. Methods interleaved,
median of the kept rounds (bench/_common.py). Speedup = torch time / safesvd time in the
same run; thread scaling = safesvd's 1-thread time / its time on all threads, as the ratio of
the interleaved medians and as the median ratio of pairs, each call timed as the second of
two in a row (bench/_common.py, paired_ratios). The forward + backward speedup is also given
from such pairs (torch's call / safesvd's, each the second of two in a row: "warm"). The
interleaved rounds time each call after a different method (after the 1 s idle probe that
opens a round, or after torch's serial loops): on the 2-core KVM guests of 2026-12 a call
that starts there pays the idle core's wake-up and a slow start of the memory system (not
the caches' refill), 1-2 ms or more whatever its length (README, "Cold and warm calls"):
half of a 4 ms safesvd call, 2-3% of torch's 60 ms one. Both columns are kept: the
interleaved one is what a call among other work sees, the warm one what a loop of calls does.

    PYTHONPATH=python python bench/bench_engine.py           # writes bench/results/cpu_engine_<date>.{md,json,png}
    PYTHONPATH=python python bench/bench_engine.py --quick   # smoke run, nothing written
"""

from __future__ import annotations

import argparse
import datetime
import os

import torch

import safesvd

from _common import machine, median, paired_ratios, timed_rounds, torch_sqrtm, write_results

SQUARE = [2, 3, 4, 5, 8, 16, 24, 32, 48, 64]
RECTANGULAR = [(64, 16), (256, 8), (8, 3), (16, 64), (3, 8)]


def batch_for(m: int, n: int, quick: bool) -> int:
    if quick:
        return 1000
    work = m * n * min(m, n)
    return 100_000 if work <= 64 else 20_000 if work <= 4096 else 5_000 if work <= 16_384 else 2_000 if work <= 32_768 \
        else 500


def with_threads(threads: int, fn):
    def run():
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return fn()
        finally:
            torch.set_num_threads(previous)
    return run


def methods(op: str, A: torch.Tensor) -> dict:
    g = torch.Generator().manual_seed(3)
    if op == "svd":
        U, S, Vh = torch.linalg.svd(A, full_matrices=False)
        cot = [torch.randn(x.shape, dtype=x.dtype, generator=g) for x in (U, S, Vh)]
        torch_f = lambda X: torch.linalg.svd(X, full_matrices=False)  # noqa: E731
        safe_f = lambda X, driver=None: safesvd.svd(X, driver=driver)  # noqa: E731
    elif op == "eigh":
        L, Q = torch.linalg.eigh(A)
        cot = [torch.randn(x.shape, dtype=x.dtype, generator=g) for x in (L, Q)]
        torch_f = torch.linalg.eigh
        safe_f = lambda X, driver=None: safesvd.eigh(X, driver=driver)  # noqa: E731
    else:  # sqrtm: torch's through its eigh, the way a user writes it
        cot = [torch.randn(A.shape, dtype=A.dtype, generator=g)]

        torch_f = lambda X: (torch_sqrtm(X),)  # noqa: E731
        safe_f = lambda X, driver=None: (safesvd.sqrtm(X),)  # noqa: E731

    def fwd_bwd(f):
        X = A.clone().requires_grad_()
        torch.autograd.backward(list(f(X)), cot)
        return X.grad

    out = {
        "torch fwd": lambda: torch_f(A),
        "safesvd fwd": lambda: safe_f(A),
        "torch fwd+bwd": lambda: fwd_bwd(torch_f),
        "safesvd fwd+bwd": lambda: fwd_bwd(safe_f),
        "safesvd f+b 1 thread": with_threads(1, lambda: fwd_bwd(safe_f)),
    }
    if op != "sqrtm":
        out["safesvd lapack f+b"] = lambda: fwd_bwd(lambda X: safe_f(X, "lapack"))
    return out


def cases(sizes: list[int], rectangular: bool) -> list[tuple[str, int, int]]:
    out = [(op, n, n) for op in ("svd", "eigh") for n in sizes]
    if rectangular:
        out += [("svd", m, n) for m, n in RECTANGULAR]
        out += [("sqrtm", 32, 32)]
    return out


def make_input(op: str, m: int, n: int, B: int, dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(m * 1000 + n)
    if op == "sqrtm":
        X = torch.randn(B, n, 2 * n, dtype=dtype, generator=g)
        return X @ X.mT / (2 * n) + 0.1 * torch.eye(n, dtype=dtype)
    A = torch.randn(B, m, n, dtype=dtype, generator=g)
    return (A + A.mT) / 2 if op == "eigh" else A


def run(quick: bool, repeats: int, shared: bool, sizes: list[int], rectangular: bool,
        warm_pairs: int) -> tuple[list[dict], dict]:
    rows, stats = [], {}
    for op, m, n in cases(sizes, rectangular):
        for dtype in (torch.float32, torch.float64):
            B = batch_for(m, n, quick)
            A = make_input(op, m, n, B, dtype)
            meth = methods(op, A)
            times = timed_rounds(meth, repeats, warmup=1, stats=stats, shared=shared, max_wait=20.0)
            ratios = paired_ratios(meth["safesvd f+b 1 thread"], meth["safesvd fwd+bwd"], 2 * repeats, stats)
            warm = (paired_ratios(meth["torch fwd+bwd"], meth["safesvd fwd+bwd"], warm_pairs, stats)
                    if warm_pairs > 0 else [])
            med = {k: median(v) for k, v in times.items()}
            row = {"op": op, "dtype": str(dtype).replace("torch.", ""), "m": m, "n": n, "B": B, "repeats": repeats,
                   "median_ms": med, "min_ms": {k: min(v) for k, v in times.items()},
                   "speedup_fwd": med["torch fwd"] / med["safesvd fwd"],
                   "speedup_fwd_bwd": med["torch fwd+bwd"] / med["safesvd fwd+bwd"],
                   "thread_scaling": med["safesvd f+b 1 thread"] / med["safesvd fwd+bwd"],
                   "thread_scaling_paired": median(ratios), "thread_scaling_paired_all": ratios,
                   "speedup_fwd_bwd_warm": median(warm) if warm else None, "speedup_fwd_bwd_warm_all": warm,
                   "ns_per_matrix_safesvd_fwd_bwd": med["safesvd fwd+bwd"] * 1e6 / B}
            rows.append(row)
            print(f"{op:5s} {row['dtype']} {m}x{n} B={B}: fwd {row['speedup_fwd']:.1f}x "
                  f"({med['torch fwd']:.1f} / {med['safesvd fwd']:.1f} ms), fwd+bwd {row['speedup_fwd_bwd']:.1f}x "
                  f"({med['torch fwd+bwd']:.1f} / {med['safesvd fwd+bwd']:.1f} ms), "
                  f"threads {row['thread_scaling']:.2f}x (paired {row['thread_scaling_paired']:.2f}x)"
                  + (f", warm fwd+bwd {row['speedup_fwd_bwd_warm']:.1f}x" if warm else ""), flush=True)
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
            sel = [r for r in rows if r["op"] == op and r["dtype"] == dtype and r["m"] == r["n"]]
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
    ax.set_xlabel("n (n x n matrices; B from 100k at n <= 4 to 500 at n = 64)")
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
    parser.add_argument("--sizes", type=int, nargs="*", default=SQUARE)
    parser.add_argument("--no-rectangular", action="store_true", help="square sizes only")
    parser.add_argument("--warm-pairs", type=int, default=None,
                        help="pairs for the warm forward + backward speedup (default: --repeats; 0: none)")
    parser.add_argument("--output", default=None, help="results file stem")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    safesvd.load()
    info = machine(cpu_isa=torch.ops.safesvd._cpu_isa())
    info["load_average_before"] = os.getloadavg()
    print(f"# {info}")
    repeats = 1 if args.quick else args.repeats
    warm_pairs = repeats if args.warm_pairs is None else args.warm_pairs
    rows, stats = run(args.quick, repeats, not args.quick, args.sizes, not args.no_rectangular, warm_pairs)
    info.update(timing_rounds_discarded_other_load=stats.get("rounds_discarded", 0),
                seconds_waited_for_quiet_cpu=round(stats.get("waited_s", 0.0), 1),
                load_average_after=os.getloadavg())
    if args.quick:
        return
    stem = args.output or f"cpu_engine_{datetime.date.today().isoformat()}"
    lines = ["Produced by `bench/bench_engine.py`: random input and cotangents, methods interleaved, median of "
             f"{args.repeats} kept rounds (a round is discarded when other processes used > 10% of the CPUs). "
             "Times in ms for the whole batch; speedup = torch / safesvd in the same run. Thread scaling "
             "(safesvd forward + backward, 1 thread / all): the ratio of the two interleaved medians, and the "
             f"median ratio of {2 * args.repeats} pairs, each call timed as the second of two in a row "
             "(`paired_ratios` in bench/_common.py: the cores are awake when the timed call starts). "
             f"Speedup fwd+bwd (warm): the median ratio torch / safesvd of {warm_pairs} such pairs (a loop of "
             "calls); the interleaved column times each call after a different method, which costs a call "
             "1-2 ms or more of wake-up on this kind of machine (see the script's docstring).", "",
             "| op | dtype | shape | B | torch fwd | safesvd fwd | speedup fwd | torch fwd+bwd | safesvd fwd+bwd "
             "| speedup fwd+bwd | speedup fwd+bwd (warm) | safesvd (lapack fwd) fwd+bwd | 1 thread / all (medians) "
             "| 1 thread / all (pairs) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        m = r["median_ms"]
        lapack = f"{m['safesvd lapack f+b']:.1f}" if "safesvd lapack f+b" in m else "-"
        warm = f"{r['speedup_fwd_bwd_warm']:.1f}x" if r.get("speedup_fwd_bwd_warm") else "-"
        lines.append(f"| {r['op']} | {r['dtype']} | {r['m']}x{r['n']} | {r['B']} | {m['torch fwd']:.1f} "
                     f"| {m['safesvd fwd']:.1f} | **{r['speedup_fwd']:.1f}x** | {m['torch fwd+bwd']:.1f} "
                     f"| {m['safesvd fwd+bwd']:.1f} | **{r['speedup_fwd_bwd']:.1f}x** | {warm} | {lapack} "
                     f"| {r['thread_scaling']:.2f}x | {r['thread_scaling_paired']:.2f}x |")
    title = f"safesvd small-matrix engine vs torch, CPU {info['cpu']}, {info['threads']} threads"
    write_results(stem, "Small-matrix engine vs torch (CPU)", info, rows, lines,
                  plot=lambda path: plot(rows, path, title))


if __name__ == "__main__":
    main()

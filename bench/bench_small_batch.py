"""Batches of one to a few matrices: the engine, LAPACK and driver=None's choice (CPU).

    PYTHONPATH=python python bench/bench_small_batch.py [--threads 1] [--output NAME]

The engine decomposes a whole SIMD tile of 16 or 32 matrices (two registers a row) however
few of them are real, so for one large matrix it does many times LAPACK's work. driver=None
sends a batch of at most `lapack_batch_limit(m, n)` matrices to LAPACK (csrc/cpu/cpu.cpp);
this script measures the forward of both drivers at B = 1..4, driver=None, and torch, and
forward + backward at B = 1 (safesvd's default against torch), us per call: each method a
loop of calls sized to ~20 ms, methods (and batch sizes) interleaved, median of `--repeats` kept rounds
(bench/_common.py). The "default" column should follow the faster driver; "picks" says
which driver it took.

Results (with machine and versions) under bench/results/ when --output is given.
"""

from __future__ import annotations

import statistics
import time

import torch

import safesvd

from _common import fwd_bwd, loop, small_call_parser, start, timed_rounds, write_results

SHAPES = [(3, 3), (6, 6), (8, 8), (12, 12), (16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (64, 16), (16, 64),
          (256, 8), (1024, 16)]
BATCHES = [1, 2, 3, 4]
MORE_BATCHES = {(1024, 16): [5, 6, 10, 11]}  # tall: the limit grows with the rows


def calls_for(fn) -> int:
    fn()
    t0 = time.perf_counter()
    fn()
    return max(5, min(400, int(0.02 / max(time.perf_counter() - t0, 1e-6))))


def case(op: str, m: int, n: int, B: int, dtype) -> dict:
    g = torch.Generator().manual_seed(m * 1000 + n * 10 + B)
    A = torch.randn(B, m, n, dtype=dtype, generator=g)
    if op == "eigh":
        A = A + A.mT
        torch_f = torch.linalg.eigh
        safe_f = lambda X, driver=None: safesvd.eigh(X, driver=driver)  # noqa: E731
    else:
        torch_f = lambda X: torch.linalg.svd(X, full_matrices=False)  # noqa: E731
        safe_f = lambda X, driver=None: safesvd.svd(X, driver=driver)  # noqa: E731
    out = {
        "torch fwd": lambda: torch_f(A),
        "engine fwd": lambda: safe_f(A, "jacobi"),
        "lapack fwd": lambda: safe_f(A, "lapack"),
        "default fwd": lambda: safe_f(A),
    }
    if B == 1:
        cot = [torch.randn(x.shape, dtype=dtype, generator=g) for x in torch_f(A)]
        out["torch f+b"] = fwd_bwd(torch_f, A, cot)
        out["default f+b"] = fwd_bwd(safe_f, A, cot)
    calls = {k: calls_for(f) for k, f in out.items()}
    return {k: (loop(f, calls[k]), calls[k]) for k, f in out.items()}


def picks(op: str, A_shape, dtype) -> str:
    """Which driver driver=None took, from the layout of its output: LAPACK's U (Q) is
    column-major, the engine's too; tell them apart by comparing with each driver."""
    A = torch.randn(*A_shape, dtype=dtype, generator=torch.Generator().manual_seed(1))
    if op == "eigh":
        A = A + A.mT
        f = lambda d=None: safesvd.eigh(A, driver=d)[1]  # noqa: E731
    else:
        f = lambda d=None: safesvd.svd(A, driver=d)[0]  # noqa: E731
    default = f()
    return "lapack" if torch.equal(default, f("lapack")) else "engine" if torch.equal(default, f("jacobi")) else "?"


def main() -> None:
    args = small_call_parser(repeats=5).parse_args()
    info = start(args.threads)
    rows, stats = [], {}
    for dtype in (torch.float32, torch.float64):
        for m, n in SHAPES:
            for op in (("svd", "eigh") if m == n else ("svd",)):
                batches = BATCHES + MORE_BATCHES.get((m, n), [])
                # One set of interleaved rounds for all batch sizes of a shape.
                meth = {(B, k): v for B in batches for k, v in case(op, m, n, B, dtype).items()}
                times = timed_rounds({key: f for key, (f, _) in meth.items()}, args.repeats, warmup=1, stats=stats,
                                     max_wait=20.0)
                for B in batches:
                    us = {k: statistics.median(v) * 1e3 / meth[(b, k)][1] for (b, k), v in times.items() if b == B}
                    row = {"op": op, "shape": f"{m}x{n}", "dtype": str(dtype).replace("torch.", ""), "B": B,
                           "us_per_call": us, "picks": picks(op, (B, m, n), dtype)}
                    rows.append(row)
                    print(f"{op:4s} {m}x{n} {row['dtype']} B={B}: picks {row['picks']:6s} "
                          + "  ".join(f"{k} {v:.1f}" for k, v in us.items()), flush=True)
    info["rounds_discarded_other_load"] = stats.get("rounds_discarded", 0)
    if not args.output:
        return
    cols = ["torch fwd", "engine fwd", "lapack fwd", "default fwd"]
    lines = ["Produced by `bench/bench_small_batch.py`: us per call (a loop of calls sized to ~20 ms), "
              f"methods interleaved, median of {args.repeats} kept rounds; {args.threads} thread(s). "
              "engine / lapack: driver='jacobi' / 'lapack'; default: driver=None, which took `picks`; "
              "f+b: forward + backward with random cotangents (B = 1 only). "
              "default / best: the default's forward time over the faster driver's.", "",
              "| op | dtype | shape | B | " + " | ".join(cols) + " | picks | default / best | torch f+b | default f+b |",
              "|---|---|---|---|" + "---|" * len(cols) + "---|---|---|---|"]
    for r in rows:
        u = r["us_per_call"]
        best = min(u["engine fwd"], u["lapack fwd"])
        fb = (f"{u['torch f+b']:.1f} | {u['default f+b']:.1f}" if "torch f+b" in u else " | ")
        lines.append(f"| {r['op']} | {r['dtype']} | {r['shape']} | {r['B']} | "
                     + " | ".join(f"{u[c]:.1f}" for c in cols) + f" | {r['picks']} | {u['default fwd'] / best:.2f} | {fb} |")
    write_results(args.output, "Small batches: the engine, LAPACK and driver=None's choice (CPU)", info, rows, lines)


if __name__ == "__main__":
    main()

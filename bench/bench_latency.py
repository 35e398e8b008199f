"""The fixed cost of a call: forward + backward of small batches, safesvd vs torch.

    PYTHONPATH=python python bench/bench_latency.py [--threads 1] [--output NAME]

At small B a call is mostly fixed cost: argument handling, the autograd graph, the
backward's Python code and the gauge check. Methods, each timed as a loop of `--calls`
calls (us per call), interleaved rounds, median of `--repeats` kept rounds (a round is
discarded when other processes used > 10% of the CPUs; bench/_common.py):

    torch f+b           torch.linalg.svd / eigh, forward + backward, random cotangents
                        (sqrtm: torch's eigh, Q sqrt(L) Q^T; procrustes: torch's svd, U Vh;
                        rotation: U diag(1, .., 1, sign det(U Vh)) Vh)
    safesvd f+b         safesvd.svd / eigh / sqrtm / procrustes / procrustes(special=True):
                        the C++ autograd node
                        (csrc/aten/autograd.cpp)
    safesvd f+b (Function)  the same with the Python torch.autograd.Function
                        (safesvd._ops.use_cpp_node = False: the path before the node, and
                        the one forward mode and torch.func still take)
    torch fwd, safesvd fwd  the forward alone, no gradient recorded

Results (with machine and versions) under bench/results/ when --output is given.
"""

from __future__ import annotations

import statistics

import torch

import safesvd
from safesvd import _ops

from _common import fwd_bwd, loop, small_call_parser, start, timed_rounds, torch_sqrtm, write_results


def with_function_path(fn):
    def run():
        previous, _ops.use_cpp_node = _ops.use_cpp_node, False
        try:
            return fn()
        finally:
            _ops.use_cpp_node = previous
    return run


def methods(op: str, n: int, B: int, dtype, calls: int) -> dict:
    g = torch.Generator().manual_seed(n * 1000 + B)
    A = torch.randn(B, n, n, dtype=dtype, generator=g)
    if op == "eigh":
        A = A + A.mT
        torch_f, safe_f = torch.linalg.eigh, safesvd.eigh
    elif op == "svd":
        torch_f, safe_f = (lambda X: torch.linalg.svd(X, full_matrices=False)), safesvd.svd
    elif op == "sqrtm":  # torch's the way a user writes it, through its eigh
        A = A @ A.mT / n + 0.1 * torch.eye(n, dtype=dtype)

        def torch_f(X):
            return (torch_sqrtm(X),)

        def safe_f(X):
            return (safesvd.sqrtm(X),)
    elif op == "rotation":  # procrustes(special=True), the nearest rotation (Kabsch): torch's
        # U diag(1, .., 1, sign det(U Vh)) Vh

        def torch_f(X):
            U, _, Vh = torch.linalg.svd(X)
            d = torch.ones(X.shape[:-1], dtype=X.dtype)
            d[..., -1] = torch.linalg.det(U @ Vh).sign()
            return ((U * d.unsqueeze(-2)) @ Vh,)

        def safe_f(X):
            return (safesvd.procrustes(X, special=True),)
    else:  # procrustes (the nearest orthogonal matrix): torch's U @ Vh

        def torch_f(X):
            U, _, Vh = torch.linalg.svd(X)
            return (U @ Vh,)

        def safe_f(X):
            return (safesvd.procrustes(X),)
    cot = [torch.randn(x.shape, dtype=dtype, generator=g) for x in torch_f(A)]
    out = {
        "torch f+b": fwd_bwd(torch_f, A, cot),
        "safesvd f+b": fwd_bwd(safe_f, A, cot),
        "safesvd f+b (Function)": with_function_path(fwd_bwd(safe_f, A, cot)),
        "torch fwd": lambda: torch_f(A),
        "safesvd fwd": lambda: safe_f(A),
    }
    return {k: loop(f, calls) for k, f in out.items()}


CASES = [("svd", 3, torch.float32), ("eigh", 3, torch.float32), ("svd", 3, torch.float64),
         ("eigh", 3, torch.float64), ("svd", 8, torch.float32), ("eigh", 8, torch.float32),
         ("sqrtm", 3, torch.float32), ("procrustes", 3, torch.float32), ("rotation", 3, torch.float32)]
BATCHES = [1, 8, 32]


def main() -> None:
    parser = small_call_parser(repeats=7)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    info = start(args.threads)
    rows, stats = [], {}
    for op, n, dtype in CASES:
        for B in BATCHES:
            meth = methods(op, n, B, dtype, args.calls)
            times = timed_rounds(meth, args.repeats, warmup=1, stats=stats, max_wait=20.0)
            us = {k: statistics.median(v) * 1e3 / args.calls for k, v in times.items()}
            row = {"op": op, "n": n, "dtype": str(dtype).replace("torch.", ""), "B": B, "us_per_call": us,
                   "speedup_fwd_bwd": us["torch f+b"] / us["safesvd f+b"],
                   "node_vs_function": us["safesvd f+b (Function)"] / us["safesvd f+b"]}
            rows.append(row)
            print(f"{op:4s} {n}x{n} {row['dtype']} B={B:3d}: " + "  ".join(f"{k} {v:.1f}" for k, v in us.items())
                  + f"  -> torch / safesvd f+b {row['speedup_fwd_bwd']:.2f}x", flush=True)
    info["rounds_discarded_other_load"] = stats.get("rounds_discarded", 0)
    if not args.output:
        return
    cols = ["torch f+b", "safesvd f+b", "safesvd f+b (Function)", "torch fwd", "safesvd fwd"]
    lines = [f"Produced by `bench/bench_latency.py`: us per call, each method a loop of {args.calls} calls, "
              f"methods interleaved, median of {args.repeats} kept rounds; {args.threads} thread(s). "
              "safesvd f+b is the C++ autograd node; (Function) the Python torch.autograd.Function path "
              "(docs/architecture.md, \"Autograd in Python\").", "",
              "| op | dtype | n | B | " + " | ".join(cols) + " | torch / safesvd f+b |",
              "|---|---|---|---|" + "---|" * len(cols) + "---|"]
    for r in rows:
        lines.append(f"| {r['op']} | {r['dtype']} | {r['n']}x{r['n']} | {r['B']} | "
                     + " | ".join(f"{r['us_per_call'][c]:.1f}" for c in cols) + f" | {r['speedup_fwd_bwd']:.2f}x |")
    write_results(args.output, "Fixed cost of a call: forward + backward at small B (CPU)", info, rows, lines)


if __name__ == "__main__":
    main()

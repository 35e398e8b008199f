"""safesvd's backward vs torch's own backward, CPU, batched small matrices.

For each (op, dtype, n) it times, with torch.utils.benchmark (median of
repeated blocks, same process, same inputs):
  torch    : autograd of torch.linalg.svd / eigh (torch's own backward)
  safesvd  : autograd of safesvd.svd / eigh (the full user path: Python
             autograd, fused op, gauge check)
  fused op : torch.ops.safesvd._svd_backward / _eigh_backward alone
  composite: the differentiable ATen form of the same math (double backward)
and writes a Markdown table and JSON to bench/results/.

    PYTHONPATH=python python bench/bench_backward.py [--quick] [--threads 2]
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
from pathlib import Path

import torch
import torch.utils.benchmark as benchmark

import safesvd

SIZES = [2, 3, 4, 8, 16, 32, 64]
RESULTS = Path(__file__).resolve().parent / "results"


def batch_for(n: int, quick: bool) -> int:
    # Large batches for small n (the design target: B >= 10000 for n <= 8);
    # fewer matrices for n = 32, 64 to keep a 2-core run short.
    b = min(16384, (1 << 22) // (n * n))
    return max(64, b // 8) if quick else b


def median_ms(stmt, min_run_time: float) -> float:
    t = benchmark.Timer(stmt="stmt()", globals={"stmt": stmt})
    return t.blocked_autorange(min_run_time=min_run_time).median * 1e3


def svd_case(B, n, dtype):
    A = torch.randn(B, n, n, dtype=dtype)
    cot = None
    out = {}
    for name, decompose in (("torch", lambda X: torch.linalg.svd(X, full_matrices=False)), ("safesvd", safesvd.svd)):
        X = A.clone().requires_grad_()
        U, S, Vh = decompose(X)
        if cot is None:
            cot = (torch.randn_like(U), torch.randn_like(S), torch.randn_like(Vh))
        out[name] = lambda U=U, S=S, Vh=Vh, X=X: torch.autograd.grad((U, S, Vh), X, cot, retain_graph=True)
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    out["fused op"] = lambda: torch.ops.safesvd._svd_backward(*cot, U, S, Vh, "pinv", None, None)
    out["composite"] = lambda: torch.ops.safesvd._svd_backward_composite(*cot, U, S, Vh, "pinv", None, None)
    return out


def eigh_case(B, n, dtype):
    X0 = torch.randn(B, n, n, dtype=dtype)
    A = X0 + X0.mT
    cot = None
    out = {}
    for name, decompose in (("torch", torch.linalg.eigh), ("safesvd", safesvd.eigh)):
        X = A.clone().requires_grad_()
        L, Q = decompose(X)
        if cot is None:
            cot = (torch.randn_like(L), torch.randn_like(Q))
        out[name] = lambda L=L, Q=Q, X=X: torch.autograd.grad((L, Q), X, cot, retain_graph=True)
    L, Q = torch.linalg.eigh(A)
    out["fused op"] = lambda: torch.ops.safesvd._eigh_backward(*cot, L, Q, "pinv", None, None)
    out["composite"] = lambda: torch.ops.safesvd._eigh_backward_composite(*cot, L, Q, "pinv", None, None)
    return out


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": "cpu",
        "cpu": cpu,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "safesvd": safesvd.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small batches, short timing (smoke run)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="*", default=SIZES)
    parser.add_argument("--output", default=None, help="results file stem (default: cpu_backward_<date>)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    safesvd.load()
    info = machine()
    min_run_time = 0.05 if args.quick else 0.4
    rows = []
    header = f"| op | dtype | n | B | torch ms | safesvd ms | fused op ms | composite ms | speedup (torch / safesvd) |"
    print(f"# CPU backward, {info['cpu']}, {info['threads']} threads, torch {info['torch']}, {info['date']}")
    print(header)
    print("|" + "---|" * 9)
    for op, make in (("svd", svd_case), ("eigh", eigh_case)):
        for dtype in (torch.float32, torch.float64):
            for n in args.sizes:
                B = batch_for(n, args.quick)
                fns = make(B, n, dtype)
                times = {name: median_ms(fn, min_run_time) for name, fn in fns.items()}
                row = {"op": op, "dtype": str(dtype).replace("torch.", ""), "n": n, "B": B, **{k + " ms": v for k, v in times.items()},
                       "speedup": times["torch"] / times["safesvd"]}
                rows.append(row)
                print(f"| {op} | {row['dtype']} | {n} | {B} | {times['torch']:.3f} | {times['safesvd']:.3f} | "
                      f"{times['fused op']:.3f} | {times['ATen path']:.3f} | {row['speedup']:.2f}x |", flush=True)
    stem = args.output or f"cpu_backward_{datetime.date.today().isoformat()}"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps({"machine": info, "rows": rows}, indent=1))
    lines = [f"# CPU backward benchmark", "", *(f"- {k}: {v}" for k, v in info.items()), "",
             "Median of repeated blocks (torch.utils.benchmark), all three cotangents, well-separated spectra.",
             "`safesvd` is the full autograd path; `fused op` the C++ backward alone; `composite` the differentiable ATen form (used for double backward).", "",
             header, "|" + "---|" * 9]
    for r in rows:
        lines.append(f"| {r['op']} | {r['dtype']} | {r['n']} | {r['B']} | {r['torch ms']:.3f} | {r['safesvd ms']:.3f} | "
                     f"{r['fused op ms']:.3f} | {r['composite ms']:.3f} | {r['speedup']:.2f}x |")
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print(f"\nwrote {RESULTS / (stem + '.md')}")


if __name__ == "__main__":
    main()

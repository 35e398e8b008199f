"""The forward engine on CUDA, and forward + backward of the public functions, vs torch.

For each (op, dtype, n), on the same inputs in one process:
  torch           torch.linalg.svd / eigh (cuSOLVER)
  engine          safesvd's one-matrix-per-thread Jacobi engine (driver="jacobi"; builds with
                  SAFESVD_CUDA_JACOBI=1, square n <= 16)
  default         safesvd's default driver (on CUDA: cuSOLVER through torch)
forward alone, and forward + backward with random cotangents on every output (torch's
autograd vs safesvd's). Timing: CUDA events around a loop of calls (as many as fit in about
0.1 s, at most 100), median of repeats; where a loop can be captured, also a CUDA-graph replay
(device time without the host's dispatch). These figures decide whether CUDA's
driver=None should run the engine (docs/gpu_check.md).

    PYTHONPATH=python python bench/bench_cuda_forward.py [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import warnings
from pathlib import Path

import torch

import safesvd

from _common import RESULTS, cuda_graph_ms, cuda_loop_ms, write_results

SIZES = [3, 8, 16, 32]


def batch_for(n: int, quick: bool) -> int:
    b = 1_000_000 if n <= 3 else 65536
    return max(1024, b // 64) if quick else b


def time_ms(fn, repeats: int) -> tuple[float, int]:
    """(median ms per call, calls per loop): the loop is sized to about 0.1 s from one timed call."""
    fn()
    torch.cuda.synchronize()
    one = cuda_loop_ms([fn], 1, 1)
    calls = max(1, min(100, int(100 / max(one, 1e-3))))
    return cuda_loop_ms([fn], repeats, calls), calls


def methods(op: str, n: int, engine: bool):
    torch_fn = {"svd": lambda X: torch.linalg.svd(X, full_matrices=False), "eigh": torch.linalg.eigh}[op]
    safe = {"svd": safesvd.svd, "eigh": safesvd.eigh}[op]
    out = {"torch": torch_fn, "default": safe}
    if engine and n <= 16:
        out["engine"] = lambda X: safe(X, driver="jacobi")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help="results directory (default bench/results)")
    parser.add_argument("--quick", action="store_true", help="small batches (smoke run)")
    parser.add_argument("--sizes", type=int, nargs="*", default=SIZES)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_cuda_forward.py: no CUDA device")
    torch.manual_seed(0)
    safesvd.load()
    warnings.filterwarnings("ignore", category=safesvd.GaugeWarning)
    engine = torch.ops.safesvd._has_device_kernels("cuda") and _engine_built()
    info = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "python": platform.python_version(), "safesvd": safesvd.__version__, "engine built": engine}
    print(f"# CUDA forward: {info}")
    header = ("| op | dtype | n | B | method | forward ms | forward graph ms | fwd+bwd ms | "
              "forward vs torch | fwd+bwd vs torch |")
    sep = "|" + "---|" * (header.count("|") - 1)
    print(header)
    print(sep)
    rows = []
    reps = 3 if args.quick else 7
    for op in ("svd", "eigh"):
        for dtype in (torch.float32, torch.float64):
            for n in args.sizes:
                B = batch_for(n, args.quick)
                X = torch.randn(B, n, n, dtype=dtype, device="cuda")
                A = X if op == "svd" else X + X.mT
                base = {}
                for name, decompose in methods(op, n, engine).items():
                    fwd, calls = time_ms(lambda: decompose(A), reps)
                    fwd_graph = cuda_graph_ms([lambda: decompose(A)], reps, calls)
                    Ar = A.clone().requires_grad_()
                    outs = decompose(Ar)
                    cot = [torch.randn_like(t) for t in outs]

                    def both(decompose=decompose, cot=cot):
                        Y = A.clone().requires_grad_()
                        torch.autograd.grad(decompose(Y), Y, cot)

                    full, _ = time_ms(both, reps)
                    if name == "torch":
                        base = {"fwd": fwd, "full": full}
                    row = {"op": op, "dtype": str(dtype).replace("torch.", ""), "n": n, "B": B, "method": name,
                           "forward ms": fwd, "forward graph ms": fwd_graph, "fwd+bwd ms": full,
                           "forward vs torch": base["fwd"] / fwd, "fwd+bwd vs torch": base["full"] / full}
                    rows.append(row)
                    print(format_row(row), flush=True)
    stem = f"cuda_forward_{datetime.date.today().isoformat()}"
    lines = ["Median of repeated loops timed with CUDA events; `forward graph` is a CUDA-graph replay of the "
             "loop where it can be captured. `vs torch` = torch's time / this method's (higher is faster).", "",
             header, sep, *map(format_row, rows)]
    print()
    write_results(stem, "CUDA forward (and forward + backward) vs torch", info, rows, lines,
                  out=Path(args.out) if args.out else RESULTS)


def _engine_built() -> bool:
    """Whether this build has CUDA's one-matrix-per-thread engine (SAFESVD_CUDA_JACOBI=1)."""
    try:
        safesvd.svd(torch.eye(3, device="cuda").unsqueeze(0), driver="jacobi")
        return True
    except ValueError:
        return False


def format_row(r: dict) -> str:
    graph = f"{r['forward graph ms']:.3f}" if r["forward graph ms"] is not None else "-"
    return (f"| {r['op']} | {r['dtype']} | {r['n']} | {r['B']} | {r['method']} | {r['forward ms']:.3f} | {graph} | "
            f"{r['fwd+bwd ms']:.3f} | {r['forward vs torch']:.2f}x | {r['fwd+bwd vs torch']:.2f}x |")


if __name__ == "__main__":
    main()

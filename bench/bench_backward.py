"""safesvd's backward vs torch's own backward, batched small matrices, CPU or CUDA.

For each (op, dtype, n, cotangents, spectrum) it times, in one process on the
same inputs (median of repeated runs):
  torch     : torch's own backward (autograd of torch.linalg.svd / eigh)
  safesvd   : the full safesvd autograd path (Python backward, fused op, gauge check)
  fused op  : torch.ops.safesvd._svd_backward / _eigh_backward alone
and, on CUDA, the memory floor (from the CUDA-graph time of the fused op where the
loop can be captured): bytes of U, S, Vh, gU, gS, gVh read once and gA
written once, over the measured device-to-device copy bandwidth.

CPU timing: torch.utils.benchmark (blocked_autorange median). CUDA timing: CUDA
events around a loop of 100 calls (and, for the fused op, a CUDA graph replay of
that loop), median of repeats, rotating over enough input sets that the data
exceed L2. Results go to bench/results/<device>_backward_<date>.{md,json,png}.

    PYTHONPATH=python python bench/bench_backward.py                 # CPU, 2 threads
    PYTHONPATH=python python bench/bench_backward.py --device cuda   # GPU
"""

from __future__ import annotations

import argparse
import datetime
import platform
import warnings
from pathlib import Path

import torch
import torch.utils.benchmark as benchmark

import safesvd

from _common import RESULTS, cpu_name, cuda_graph_ms, cuda_loop_ms, write_results

CPU_SIZES = [2, 3, 4, 8, 16, 32, 64]
GPU_SIZES = [2, 3, 4, 8, 16, 32, 33, 48, 64]


def batch_for(device: str, n: int, quick: bool) -> int:
    if device == "cuda":
        b = 1_000_000 if n <= 4 else 65536
    else:
        b = min(16384, (1 << 22) // (n * n))
    return max(64, b // 16) if quick else b


# ------------------------------------------------------------------ timing


def time_cpu_ms(fn, min_run_time: float) -> float:
    return benchmark.Timer("fn()", globals={"fn": fn}).blocked_autorange(min_run_time=min_run_time).median * 1e3


def copy_bandwidth_gbs() -> float:
    """Device-to-device copy, bytes read + written, GB/s (the floor's denominator)."""
    x = torch.empty(1 << 28, dtype=torch.float32, device="cuda")  # 1 GiB
    y = torch.empty_like(x)
    ms = cuda_loop_ms([lambda: y.copy_(x)], 20)
    return 2 * x.numel() * 4 / (ms * 1e-3) / 1e9


# ------------------------------------------------------------------ cases


def make_inputs(op, B, n, dtype, device, spectrum):
    if op == "svd":
        A = torch.randn(B, n, n, dtype=dtype, device=device)
        if spectrum == "degenerate":  # two equal singular values and a zero one in every matrix
            U, S, Vh = torch.linalg.svd(A)
            S = S.clone()
            S[:, 1] = S[:, 0]
            S[:, -1] = 0
            A = (U * S.unsqueeze(-2).to(dtype)) @ Vh
        return A
    X = torch.randn(B, n, n, dtype=dtype, device=device)
    A = X + X.mH
    if spectrum == "degenerate":
        L, Q = torch.linalg.eigh(A)
        L = L.clone()
        L[:, 1] = L[:, 0]
        A = (Q * L.unsqueeze(-2).to(dtype)) @ Q.mH
    return A


def case_fns(op, A, cotangents):
    """Three callables (torch, safesvd, fused op) backpropagating the same cotangents."""
    out = {}
    cot = None
    decompositions = {
        "svd": (lambda X: torch.linalg.svd(X, full_matrices=False), safesvd.svd),
        "eigh": (torch.linalg.eigh, safesvd.eigh),
    }[op]
    for name, decompose in zip(("torch", "safesvd"), decompositions):
        X = A.clone().requires_grad_()
        outs = decompose(X)
        if cot is None:
            cot = [torch.randn_like(t) for t in outs]
            if cotangents == "gU only":  # the vector cotangent alone (gU, resp. gQ)
                cot = [c if i == (0 if op == "svd" else 1) else torch.zeros_like(c) for i, c in enumerate(cot)]
        out[name] = lambda outs=outs, X=X: torch.autograd.grad(outs, X, cot, retain_graph=True)
    outs = [t.detach() for t in decompositions[0](A)]
    present = [c if (cotangents == "all" or i == (0 if op == "svd" else 1)) else None for i, c in enumerate(cot)]
    if op == "svd":
        out["fused op"] = lambda: torch.ops.safesvd._svd_backward(*present, *outs, "pinv", None, None)
    else:
        out["fused op"] = lambda: torch.ops.safesvd._eigh_backward(*present, *outs, "pinv", None, None)
    floor_bytes = sum(t.numel() * t.element_size() for t in outs) + \
        sum(c.numel() * c.element_size() for c in present if c is not None) + A.numel() * A.element_size()
    return out, floor_bytes


def machine(device: str) -> dict:
    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "safesvd": safesvd.__version__,
        "threads": torch.get_num_threads(),
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
    else:
        info["cpu"] = cpu_name()
    return info


def plot(rows, path: Path, title: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    keys = sorted({(r["op"], r["dtype"], r["cotangents"], r["spectrum"]) for r in rows})
    for key in keys:
        pts = sorted((r["n"], r["speedup"]) for r in rows if (r["op"], r["dtype"], r["cotangents"], r["spectrum"]) == key)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=" ".join(key))
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("n (matrices n x n)")
    ax.set_ylabel("speedup: torch backward / safesvd backward")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def format_row(r: dict) -> str:
    line = (f"| {r['op']} | {r['dtype']} | {r['n']} | {r['B']} | {r['cotangents']} | {r['spectrum']} | "
            f"{r['torch ms']:.3f} | {r['safesvd ms']:.3f} | {r['fused op ms']:.3f} | {r['speedup']:.2f}x |")
    if "GB/s" in r:
        line += f" {r['GB/s']:.0f} | {r['floor %']:.0f}% |"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--quick", action="store_true", help="small batches, short timing (smoke run)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    parser.add_argument("--sizes", type=int, nargs="*")
    parser.add_argument("--dtypes", nargs="*")
    parser.add_argument("--ops", nargs="*", default=["svd", "eigh"])
    parser.add_argument("--variants", action="store_true",
                        help="also gU-only cotangents and degenerate spectra (default on CUDA)")
    parser.add_argument("--plain", action="store_true", help="only all cotangents, separated spectra")
    parser.add_argument("--repeats", type=int, default=None, help="CUDA: timed loops per figure (default 50)")
    parser.add_argument("--output", default=None, help="results file stem")
    parser.add_argument("--out", default=None, help="results directory (default bench/results)")
    args = parser.parse_args()
    device = args.device
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    safesvd.load()
    # The gauge check runs (its device-to-host read is part of the cost measured);
    # random cotangents at degenerate spectra are basis dependent, so don't print.
    safesvd.set_gauge_mode("warn")
    warnings.filterwarnings("ignore", category=safesvd.GaugeWarning)
    sizes = args.sizes or (GPU_SIZES if device == "cuda" else CPU_SIZES)
    dtypes = [getattr(torch, d) for d in (args.dtypes or (["float32", "float64", "complex64"] if device == "cuda"
                                                          else ["float32", "float64"]))]
    variants = [("all", "separated")]
    if (args.variants or device == "cuda") and not args.plain:
        variants += [("gU only", "separated"), ("all", "degenerate")]
    info = machine(device)
    bandwidth = copy_bandwidth_gbs() if device == "cuda" else None
    if bandwidth:
        info["copy_bandwidth_GBps"] = round(bandwidth, 1)
    header = ("| op | dtype | n | B | cotangents | spectrum | torch ms | safesvd ms | fused op ms | speedup |"
              + (" GB/s | % of floor |" if device == "cuda" else ""))
    sep = "|" + "---|" * (header.count("|") - 1)
    print(f"# {device} backward: {info}")
    print(header)
    print(sep)
    rows = []
    for op in args.ops:
        for dtype in dtypes:
            for n in sizes:
                for cotangents, spectrum in variants:
                    B = batch_for(device, n, args.quick)
                    if device == "cuda":
                        A0 = make_inputs(op, B, n, dtype, device, spectrum)
                        set_bytes = 8 * A0.numel() * A0.element_size()
                        sets = max(1, min(8, int(2 * 60e6 // set_bytes) + 1))  # > 2x L2 in flight
                        cases = [case_fns(op, A0 if i == 0 else make_inputs(op, B, n, dtype, device, spectrum), cotangents)
                                 for i in range(sets)]
                        floor_bytes = cases[0][1]
                        reps = args.repeats or (10 if args.quick else 50)
                        times = {k: cuda_loop_ms([c[0][k] for c in cases], reps) for k in ("torch", "safesvd", "fused op")}
                        graph_ms = cuda_graph_ms([c[0]["fused op"] for c in cases], reps)
                        if graph_ms is not None:
                            times["fused op (graph)"] = graph_ms
                    else:
                        fns, floor_bytes = case_fns(op, make_inputs(op, B, n, dtype, device, spectrum), cotangents)
                        times = {k: time_cpu_ms(f, 0.05 if args.quick else 0.4) for k, f in fns.items()}
                    row = {"op": op, "dtype": str(dtype).replace("torch.", ""), "n": n, "B": B,
                           "cotangents": cotangents, "spectrum": spectrum,
                           **{f"{k} ms": v for k, v in times.items()}, "speedup": times["torch"] / times["safesvd"]}
                    if bandwidth:
                        gbs = floor_bytes / (times.get("fused op (graph)", times["fused op"]) * 1e-3) / 1e9
                        row.update({"GB/s": gbs, "floor %": 100 * gbs / bandwidth})
                    rows.append(row)
                    print(format_row(row), flush=True)
    stem = args.output or f"{device}_backward_{datetime.date.today().isoformat()}"
    lines = ["Median of repeated runs; `torch` is torch's own backward, `safesvd` the full autograd path "
             "(gauge check included), `fused op` the C++/CUDA backward alone. Speedup = torch / safesvd.", "",
             header, sep, *map(format_row, rows)]
    title = f"safesvd backward speedup over torch, {device}, {info.get('gpu', info.get('cpu'))}"
    print()
    write_results(stem, f"{device.upper()} backward benchmark", info, rows, lines,
                  out=Path(args.out) if args.out else RESULTS, plot=lambda path: plot(rows, path, title))


if __name__ == "__main__":
    main()

"""Dominant / top-k triplets of a large matrix: forward + backward cost.

safesvd.svd_rank1 and safesvd.svd_topk(k=8) (method "auto": subspace iteration
forward, matrix-free CG backward at this size) against torch.linalg.svd forward
+ backward of the same loss, on a 2048 x 1024 matrix with singular values
exp(-i/20) (a decaying spectrum, as in low-rank models; on a flat random
spectrum an iterative method cannot win). Median of repeated runs, CPU.

    PYTHONPATH=python python bench/bench_topk.py [--m 2048 --n 1024 --repeats 3]
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import time
from pathlib import Path

import torch

import safesvd
from _common import write_results


def decaying_matrix(m, n, dtype):
    g = torch.Generator().manual_seed(0)
    U = torch.linalg.qr(torch.randn(m, n, dtype=torch.float64, generator=g)).Q
    V = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64, generator=g)).Q
    s = torch.exp(-torch.arange(n, dtype=torch.float64) / 20)
    return ((U * s) @ V.T).to(dtype)


def timed(fn, repeats):
    fn()  # warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--m", type=int, default=2048)
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    safesvd.load()
    m, n, k = args.m, args.n, args.k
    rows = []
    for dtype in (torch.float32, torch.float64):
        A0 = decaying_matrix(m, n, dtype)
        Wu, Wv = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)

        def rank1_ours():
            A = A0.clone().requires_grad_()
            s, u, v = safesvd.svd_rank1(A)
            (s + Wu[:, 0] @ u + Wv[0] @ v).backward()

        def rank1_torch():
            A = A0.clone().requires_grad_()
            U, S, Vh = torch.linalg.svd(A, full_matrices=False)
            (S[0] + Wu[:, 0] @ U[:, 0] + Wv[0] @ Vh[0]).backward()

        def topk_ours():
            A = A0.clone().requires_grad_()
            U, S, Vh = safesvd.svd_topk(A, k)
            (S.sum() + (Wu * U).sum() + (Wv * Vh).sum()).backward()

        def topk_torch():
            A = A0.clone().requires_grad_()
            U, S, Vh = torch.linalg.svd(A, full_matrices=False)
            (S[:k].sum() + (Wu * U[:, :k]).sum() + (Wv * Vh[:k]).sum()).backward()

        for name, ours, ref in (("svd_rank1", rank1_ours, rank1_torch), (f"svd_topk(k={k})", topk_ours, topk_torch)):
            t_ours, t_ref = timed(ours, args.repeats), timed(ref, args.repeats)
            row = {"op": name, "dtype": str(dtype).replace("torch.", ""), "m": m, "n": n,
                   "safesvd ms": t_ours, "torch.linalg.svd ms": t_ref, "speedup": t_ref / t_ours}
            rows.append(row)
            print(row, flush=True)
    info = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
            "cpu": next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                         if l.startswith("model name")), platform.processor())}
    stem = f"cpu_topk_{datetime.date.today().isoformat()}"
    lines = [f"- matrix: {m} x {n}, singular values exp(-i/20); loss: singular values plus random linear terms of "
             "the kept vectors; median of repeated runs", "",
             "| op | dtype | safesvd fwd+bwd ms | torch.linalg.svd fwd+bwd ms | speedup |", "|---|---|---|---|---|"]
    lines += [f"| {r['op']} | {r['dtype']} | {r['safesvd ms']:.1f} | {r['torch.linalg.svd ms']:.1f} | {r['speedup']:.1f}x |"
              for r in rows]
    write_results(stem, "Top-k / rank-1 forward + backward, large matrix (CPU)", info, rows, lines)


if __name__ == "__main__":
    main()

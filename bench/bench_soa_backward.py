"""CPU fused backward: SoA tiles (docs/soa_backward.md) against the per-matrix
kernels and torch's autograd.

    PYTHONPATH=python python bench/bench_soa_backward.py [--sweep] [--rectangular] [--repeats 21]

Times, in one process with torch.set_num_threads(2) by default,
torch.ops.safesvd._svd_backward(gU, gS, gVh, U, S, Vh, "pinv", None, None) (and
_eigh_backward) with the test hook cpu_soa_mode 0 (before: per-matrix kernels, batched BLAS
above n = 7), 1 (SoA) and 2 (per-matrix kernels over the SoA's range), and the
backward of torch.linalg.svd / eigh through autograd (the graph built once,
retain_graph=True). Reports the median over --repeats runs in ns per matrix.
--rectangular times the svd backward of tall / wide input with the hook
cpu_fused_rectangular 0 (batched BLAS), cpu_soa_mode 2 (the fused per-matrix kernel
over the SoA's range, batched BLAS above it) and 1 (the SoA tiles where the short side is
<= 8 and m n <= 16384), the measurement behind backward_fused_cpu in csrc/cpu/cpu.cpp.
"""
import argparse
import statistics
import time

import torch

import safesvd
from safesvd._testing import cpu_fused_rectangular, cpu_soa_mode

safesvd.load()


def median_ns(fns, B, repeats, min_sample_s=0.1):
    """{name: median ns per matrix} over `repeats` rounds; each round times every fn
    once, interleaved (so that the load of a shared machine falls on all alike), and a
    sample runs fn enough times to last min_sample_s (short samples are quantized by
    the scheduler of a loaded machine)."""
    inner = {}
    for name, fn in fns.items():
        t0 = time.perf_counter()
        fn()  # warm up, and the inner count
        inner[name] = max(1, int(min_sample_s / max(time.perf_counter() - t0, 1e-6)))
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(inner[name]):
                fn()
            times[name].append((time.perf_counter() - t0) / inner[name])
    return {name: statistics.median(t) / B * 1e9 for name, t in times.items()}


def with_mode(mode, fn, hook=cpu_soa_mode):
    def run():
        previous = hook(mode)
        try:
            return fn()
        finally:
            hook(previous)
    return run


def svd_case(n, dtype, B, repeats, modes=(0, 1, 2), torch_ref=True):
    A = torch.randn(B, n, n, dtype=dtype)
    A_ = A.clone().requires_grad_()
    U, S, Vh = torch.linalg.svd(A_)  # LAPACK: U, Vh column-major
    gU, gS, gVh = torch.randn_like(U), torch.randn_like(S), torch.randn_like(Vh)
    Ud, Sd, Vhd = U.detach(), S.detach(), Vh.detach()
    op = lambda: torch.ops.safesvd._svd_backward(gU, gS, gVh, Ud, Sd, Vhd, "pinv", None, None)
    fns = {f"mode{m}": with_mode(m, op) for m in modes}
    if torch_ref:
        fns["torch"] = lambda: torch.autograd.grad([U, S, Vh], [A_], [gU, gS, gVh], retain_graph=True)
    return median_ns(fns, B, repeats)


def eigh_case(n, dtype, B, repeats, modes=(0, 1, 2), torch_ref=True):
    X = torch.randn(B, n, n, dtype=dtype)
    A_ = (X + X.mT).requires_grad_()
    L, Q = torch.linalg.eigh(A_)
    gL, gQ = torch.randn_like(L), torch.randn_like(Q)
    Ld, Qd = L.detach(), Q.detach()
    op = lambda: torch.ops.safesvd._eigh_backward(gL, gQ, Ld, Qd, "pinv", None, None)
    fns = {f"mode{m}": with_mode(m, op) for m in modes}
    if torch_ref:
        fns["torch"] = lambda: torch.autograd.grad([L, Q], [A_], [gL, gQ], retain_graph=True)
    return median_ns(fns, B, repeats)


def rectangular_case(m, n, dtype, B, repeats):
    A = torch.randn(B, m, n, dtype=dtype)
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    gU, gS, gVh = torch.randn_like(U), torch.randn_like(S), torch.randn_like(Vh)
    op = lambda: torch.ops.safesvd._svd_backward(gU, gS, gVh, U, S, Vh, "pinv", None, None)
    return median_ns({"batched": with_mode(0, op, cpu_fused_rectangular),
                      "per-matrix": with_mode(2, op),
                      "SoA": with_mode(1, op)}, B, repeats)


def show(name, row):
    before, after = row["mode0"], row["mode1"]
    extra = f"  per-matrix {row['mode2']:8.1f}" if "mode2" in row else ""
    ref = f"  torch {row['torch']:8.1f}  torch/SoA {row['torch'] / after:5.2f}x" if "torch" in row else ""
    print(f"{name:28s} before {before:8.1f}  SoA {after:8.1f}  before/SoA {before / after:5.2f}x{extra}{ref}",
          flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=21)
    p.add_argument("--sweep", action="store_true", help="also n = 1..8, svd and eigh, both dtypes (range choice)")
    p.add_argument("--rectangular", action="store_true", help="tall / wide svd: batched BLAS, fused per-matrix, SoA")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, ISA {torch.ops.safesvd._cpu_isa()}; "
          "ns per matrix, median of", args.repeats)
    show("svd 3x3 float32 B=100000", svd_case(3, torch.float32, 100000, args.repeats))
    show("svd 8x8 float32 B=20000", svd_case(8, torch.float32, 20000, args.repeats))
    show("svd 3x3 float64 B=100000", svd_case(3, torch.float64, 100000, args.repeats))
    show("eigh 3x3 float32 B=100000", eigh_case(3, torch.float32, 100000, args.repeats))
    if args.rectangular:
        for m, n, B in ((8, 3, 20000), (3, 8, 20000), (12, 4, 20000), (32, 8, 5000), (64, 16, 5000),
                        (256, 8, 5000), (8, 256, 5000), (2048, 8, 500), (16, 64, 5000), (128, 16, 2000),
                        (16, 1024, 500), (32, 9, 5000), (40, 12, 5000), (20, 16, 5000), (4, 3000, 200)):
            for dtype in (torch.float32, torch.float64):
                row = rectangular_case(m, n, dtype, B, max(7, args.repeats // 3))
                print(f"svd {m}x{n} {str(dtype)[6:]:8s} B={B:6d} batched {row['batched']:8.1f}  per-matrix "
                      f"{row['per-matrix']:8.1f}  SoA {row['SoA']:8.1f}  batched/SoA "
                      f"{row['batched'] / row['SoA']:5.2f}x  per-matrix/SoA {row['per-matrix'] / row['SoA']:5.2f}x",
                      flush=True)
    if args.sweep:
        for op, case in (("svd", svd_case), ("eigh", eigh_case)):
            for dtype in (torch.float32, torch.float64):
                for n in range(1, 9):
                    B = max(20000, 2000000 // (n * n))  # calls of 10+ ms: shorter ones are quantized by a shared machine
                    show(f"{op} {n}x{n} {str(dtype)[6:]} B={B}", case(n, dtype, B, max(7, args.repeats // 3),
                                                                       torch_ref=False))


if __name__ == "__main__":
    main()

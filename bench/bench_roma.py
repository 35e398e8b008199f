"""safesvd.procrustes(special=True) vs roma's nearest-rotation functions: gradient accuracy and speed.

(a) Gradient error against float64 central finite differences of each method's own
    function, loss sum(W * R) with a random W, on 3x3 inputs: generic, singular values
    (2, 2, 1) and (1, 1, 0) with random singular vectors, generic scaled by 1e-4 and 1e-6,
    and (2, 2, 1) scaled by 1e-6. Median and max relative error over random draws.
(b) Forward + backward time on B = 100000 random 3x3 matrices (random cotangent),
    float32 and float64, 2 threads; all methods in the same run, interleaved, after
    warm-up; median of the repeats. On a shared machine, rounds during which other
    processes used > 10% of the CPUs are discarded and repeated (Linux /proc; see timings).

Methods:
    safesvd.procrustes           safesvd.procrustes(A, special=True)
    roma (default: Horn)         roma.special_procrustes(A): closed form (Horn's quaternion
                                 method), computed in float64, derivative damped by
                                 gradient_eps = 1e-5
    roma (method="svd")          roma.special_procrustes(A, method="svd"): SVD with roma's
                                 manual derivative, same damping
    roma naive (torch)           roma.special_procrustes_naive(A): torch.linalg.svd + autograd
    roma naive + override        the same call inside safesvd.override_torch()

    PYTHONPATH=python python bench/bench_roma.py            # writes bench/results/roma_<date>.{md,json}
    PYTHONPATH=python python bench/bench_roma.py --quick    # smoke run, nothing written
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import warnings

import roma
import torch

import safesvd
from safesvd._override import override_torch
from safesvd._testing import finite_difference_grad, with_singular_values

from _common import machine, timed_rounds, write_results



def naive_override(A):
    with override_torch():
        return roma.special_procrustes_naive(A)


METHODS = {
    "safesvd.procrustes": lambda A: safesvd.procrustes(A, special=True),
    "roma (default: Horn)": lambda A: roma.special_procrustes(A),
    'roma (method="svd")': lambda A: roma.special_procrustes(A, method="svd"),
    "roma naive (torch)": lambda A: roma.special_procrustes_naive(A),
    "roma naive + override": naive_override,
}


def case_input(case: str, g: torch.Generator) -> torch.Tensor:
    torch.manual_seed(int(torch.randint(0, 2**31 - 1, (), generator=g)))
    if case.startswith("generic"):
        A = torch.randn(3, 3, dtype=torch.float64)
    elif case.startswith("(2, 2, 1)"):
        A = with_singular_values([2.0, 2.0, 1.0], 3, 3)
    elif case.startswith("(1, 1, 0)"):
        A = with_singular_values([1.0, 1.0, 0.0], 3, 3)
    else:
        raise ValueError(case)
    if case.endswith("x 1e-4"):
        A = A * 1e-4
    elif case.endswith("x 1e-6"):
        A = A * 1e-6
    return A


CASES = ["generic", "(2, 2, 1)", "(1, 1, 0)", "generic x 1e-4", "generic x 1e-6", "(2, 2, 1) x 1e-6"]


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def gradient_errors(draws: int) -> list[dict]:
    rows = []
    g = torch.Generator().manual_seed(2026)
    for case in CASES:
        errs = {name: [] for name in METHODS}
        warned = {name: 0 for name in METHODS}
        for _ in range(draws):
            A = case_input(case, g)
            W = torch.randn(3, 3, dtype=torch.float64, generator=g)
            h = 1e-6 * float(torch.linalg.matrix_norm(A, 2))
            for name, f in METHODS.items():
                loss = lambda X, f=f: (W * f(X)).sum()  # noqa: E731
                with warnings.catch_warnings(record=True) as w:
                    warnings.simplefilter("always")
                    X = A.clone().requires_grad_()
                    (grad,) = torch.autograd.grad(loss(X), X)
                    fd = finite_difference_grad(loss, A, h=h)
                warned[name] += any(issubclass(x.category, safesvd.GaugeWarning) for x in w)
                errs[name].append(rel_err(grad, fd) if torch.isfinite(grad).all() else float("nan"))
        for name in METHODS:
            e = errs[name]
            finite = [x for x in e if x == x]
            rows.append({"case": case, "method": name, "draws": draws, "nan": len(e) - len(finite),
                         "median": statistics.median(finite) if finite else None,
                         "max": max(finite) if finite else None, "gauge_warnings": warned[name]})
    return rows


def format_err(r: dict) -> str:
    if r["median"] is None:
        return f"NaN ({r['nan']}/{r['draws']})"
    s = f"{r['median']:.1e} / {r['max']:.1e}"
    if r["nan"]:
        s += f", NaN {r['nan']}/{r['draws']}"
    return s


def timings(B: int, repeats: int, warmup: int, quiet_stats: dict, shared: bool = True) -> list[dict]:
    rows = []
    for dtype in (torch.float32, torch.float64):
        g = torch.Generator().manual_seed(1)
        A0 = torch.randn(B, 3, 3, dtype=dtype, generator=g)
        G = torch.randn(B, 3, 3, dtype=dtype, generator=g)

        def run(f):
            A = A0.clone().requires_grad_()
            f(A).backward(G)
            return A.grad

        times = timed_rounds({name: (lambda f=f: run(f)) for name, f in METHODS.items()}, repeats, warmup,
                             quiet_stats, shared=shared)
        base = statistics.median(times["safesvd.procrustes"])
        for name, t in times.items():
            rows.append({"dtype": str(dtype).replace("torch.", ""), "method": name, "B": B,
                         "median_ms": statistics.median(t), "min_ms": min(t), "max_ms": max(t),
                         "repeats": repeats, "vs_safesvd": statistics.median(t) / base})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small batch, few draws; writes nothing")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--draws", type=int, default=20, help="random inputs per gradient-error case")
    parser.add_argument("--output", default=None, help="results file stem")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    safesvd.load()
    B = 2000 if args.quick else args.batch
    repeats = 3 if args.quick else args.repeats
    draws = 3 if args.quick else args.draws

    info = machine(roma=roma.__version__)
    info["load_average_before"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"# {info}")
    err_rows = gradient_errors(draws)
    quiet_stats = {"waited_s": 0.0, "rounds_discarded": 0}
    time_rows = timings(B, repeats, warmup=2, quiet_stats=quiet_stats, shared=not args.quick)
    info["timing_rounds_kept"] = 2 * repeats
    info["timing_rounds_discarded_other_load"] = quiet_stats["rounds_discarded"]
    info["seconds_waited_for_quiet_cpu"] = round(quiet_stats["waited_s"], 1)
    info["load_average_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None

    names = list(METHODS)
    err_header = "| input | " + " | ".join(names) + " |"
    sep = "|" + "---|" * (len(names) + 1)
    err_lines = [err_header, sep]
    for case in CASES:
        cells = [format_err(next(r for r in err_rows if r["case"] == case and r["method"] == n)) for n in names]
        err_lines.append(f"| {case} | " + " | ".join(cells) + " |")
    warn_notes = [f"{r['method']} at {r['case']}: GaugeWarning in {r['gauge_warnings']}/{r['draws']} draws"
                  for r in err_rows if r["gauge_warnings"]]
    time_header = "| dtype | " + " | ".join(names) + " |"
    time_lines = [time_header, sep]
    for dtype in ("float32", "float64"):
        cells = []
        for n in names:
            r = next(r for r in time_rows if r["dtype"] == dtype and r["method"] == n)
            cells.append(f"{r['median_ms']:.0f} ms ({r['vs_safesvd']:.2f}x), min {r['min_ms']:.0f}")
        time_lines.append(f"| {dtype} | " + " | ".join(cells) + " |")
    print("\n".join(err_lines + [""] + warn_notes + [""] + time_lines))
    if args.quick:
        return

    stem = args.output or f"roma_{datetime.date.today().isoformat()}"
    lines = [
        "Produced by `bench/bench_roma.py`. Methods: `safesvd.procrustes(A, special=True)`; "
        "`roma.special_procrustes(A)` (its default, Horn's closed form in float64, derivative damped by "
        "`gradient_eps=1e-5`); `roma.special_procrustes(A, method=\"svd\")` (manual derivative, same damping); "
        "`roma.special_procrustes_naive(A)` (torch.linalg.svd + autograd), and the same inside "
        "`safesvd.override_torch()`.", "",
        f"## (a) Gradient error vs float64 finite differences", "",
        f"Loss `sum(W * R)`, W random; relative max-abs error against central differences of the same "
        f"function (step 1e-6 |A|_2), float64, median / max over {draws} random draws (random singular "
        f"vectors, so repeated singular values are repeated up to rounding). NaN (k/n): the gradient had "
        f"NaN in k of n draws.", "",
        *err_lines, "",
        *([f"- {w}" for w in warn_notes] + [""] if warn_notes else []),
        f"## (b) Forward + backward time, B = {B} 3x3 matrices", "",
        f"Random input and cotangent, {info['threads']} threads, median of {repeats} interleaved runs after "
        "2 warm-up runs; in parentheses: median relative to safesvd.procrustes; then the fastest run. The "
        "machine is shared: a round (every method once) is kept only if other processes used <= 10% of the "
        "CPUs while it ran (timing_rounds_* above).", "",
        *time_lines, "",
        f"Run-to-run spread of the kept rounds: median / fastest run up to "
        f"{max(r['median_ms'] / r['min_ms'] for r in time_rows):.2f}x, so differences of a few tens of "
        "percent between methods are within it.",
    ]
    print()
    write_results(stem, "Nearest rotation: safesvd.procrustes(special=True) vs roma", info, None, lines,
                  data={"gradient_errors": err_rows, "timings": time_rows})


if __name__ == "__main__":
    main()

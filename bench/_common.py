"""Shared by the CPU benchmarks in bench/: machine description and quiet-CPU timing.

The CI machine is shared: other processes can take a core in the middle of a
run. `timed_rounds` interleaves the methods of one comparison (every method once
per round), and on Linux keeps a round only if other processes used <= 10% of
the CPUs while it ran, so the ratios of one run compare like with like.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def torch_sqrtm(X: torch.Tensor) -> torch.Tensor:
    """torch's matrix square root of a covariance the way a user writes it, through its eigh
    (the baseline safesvd.sqrtm is compared with)."""
    L, Q = torch.linalg.eigh(X)
    return (Q * L.clamp_min(0).sqrt().unsqueeze(-2)) @ Q.mT


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def machine(**extra) -> dict:
    cpu = cpu_name()
    import safesvd

    info = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "safesvd": safesvd.__version__,
        "python": platform.python_version(),
    }
    info.update(extra)
    return info


def _jiffies() -> tuple[int, int, int] | None:
    """(busy jiffies of all CPUs, total jiffies, this process's jiffies incl. its threads)."""
    try:
        f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        return sum(f) - f[3] - f[4], sum(f), int(own[11]) + int(own[12])
    except (OSError, ValueError, IndexError):
        return None


def others_busy(before, after) -> float:
    """Fraction of all CPU time used by other processes between two _jiffies() samples."""
    if before is None or after is None or after[1] <= before[1]:
        return 0.0
    return max(0, (after[0] - before[0]) - (after[2] - before[2])) / (after[1] - before[1])


def wait_for_quiet(max_wait: float = 60.0) -> float:
    """Sleep until other processes leave the CPUs >= 90% idle for 1 s (max max_wait s).
    Returns the seconds waited beyond that first one-second probe (0 on a quiet machine:
    the probe alone, once per round, is not a wait for other load)."""
    start = time.perf_counter()
    probed = False
    while time.perf_counter() - start < max_wait:
        a = _jiffies()
        if a is None:
            break
        time.sleep(1.0)
        probed = True
        if others_busy(a, _jiffies()) <= 0.1:
            break
    return max(0.0, time.perf_counter() - start - (1.0 if probed else 0.0))


def timed_rounds(methods: dict[str, Callable[[], object]], repeats: int, warmup: int, stats: dict,
                 shared: bool = True, max_wait: float = 60.0) -> dict[str, list[float]]:
    """Milliseconds per call of each method, `repeats` interleaved rounds after `warmup`.

    On a shared machine a round is kept only if other processes used <= 10% of the
    CPUs while it ran (each round after one untimed call of every method, in an order
    that rotates); after 6 * repeats attempts the remaining rounds are kept as they come.
    `stats` accumulates "waited_s" and "rounds_discarded"."""
    stats.setdefault("waited_s", 0.0)
    stats.setdefault("rounds_discarded", 0)
    for _ in range(warmup):
        for f in methods.values():
            f()
    times = {name: [] for name in methods}
    names = list(methods)
    kept = attempts = 0
    while kept < repeats:
        if shared:
            stats["waited_s"] += wait_for_quiet(max_wait)
            # The probe leaves the CPU idle for a second, and the method timed first after
            # it ran on cold caches: on the 2-core KVM guest (2026-12-06) torch's 3x3 svd
            # in a loop of 4 ms took 47 us a call there against 11 warm, which had made
            # bench_small_batch's torch forward look 2-4x slower than it is. Every method
            # runs once untimed first, and the order rotates from round to round.
            for f in methods.values():
                f()
        before = _jiffies()
        round_ms = {}
        shift = attempts % len(names)
        for name in names[shift:] + names[:shift]:
            t0 = time.perf_counter()
            methods[name]()
            round_ms[name] = (time.perf_counter() - t0) * 1e3
        attempts += 1
        if shared and others_busy(before, _jiffies()) > 0.1 and attempts < 6 * repeats:
            stats["rounds_discarded"] += 1
            continue
        kept += 1
        for name, t in round_ms.items():
            times[name].append(t)
    return times


def paired_ratios(slow: Callable[[], object], fast: Callable[[], object], pairs: int,
                  stats: dict) -> list[float]:
    """time(slow) / time(fast) of `pairs` pairs, each call timed as the second of two
    back-to-back calls (order alternating; a pair is discarded when other processes used
    > 10% of the CPUs).

    For ratios of one code at two settings (one thread vs all): a multi-threaded call that
    starts on cores left idle pays their wake-up, which a loop of calls (training) does
    not. On the 2-core KVM guest of 2026-12-05 a 2-thread op of 50 us took 0.4-5 ms as the
    first call after 50 ms idle, 70 us as the second; timed_rounds' rounds start after a
    1 s idle probe and put each safesvd call after a serial method (torch's LAPACK loops,
    or the 1-thread call), where the cores have gone idle."""
    stats.setdefault("rounds_discarded", 0)

    def second_of_two(f) -> float:
        f()
        t0 = time.perf_counter()
        f()
        return time.perf_counter() - t0

    ratios: list[float] = []
    attempts = 0
    while len(ratios) < pairs:
        before = _jiffies()
        if len(ratios) % 2 == 0:
            t_fast = second_of_two(fast)
            t_slow = second_of_two(slow)
        else:
            t_slow = second_of_two(slow)
            t_fast = second_of_two(fast)
        attempts += 1
        if others_busy(before, _jiffies()) > 0.1 and attempts < 6 * pairs:
            stats["rounds_discarded"] += 1
            continue
        ratios.append(t_slow / t_fast)
    return ratios


def loop(fn: Callable[[], object], calls: int) -> Callable[[], None]:
    """fn called `calls` times in a row: one timed method of a small call."""
    def run():
        for _ in range(calls):
            fn()
    return run


def fwd_bwd(f: Callable, A: torch.Tensor, cot: list[torch.Tensor]) -> Callable[[], None]:
    """Forward + backward of f on a fresh leaf copy of A with the cotangents `cot` (f
    returns a tuple of outputs)."""
    def run():
        X = A.clone().requires_grad_()
        torch.autograd.backward(list(f(X)), cot)
    return run


def small_call_parser(repeats: int) -> argparse.ArgumentParser:
    """The options the one-thread small-call benches share (bench_latency, bench_small_batch)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--output", default=None, help="results file stem (bench/results/<stem>.md / .json)")
    return parser


def start(threads: int) -> dict:
    """Set the thread count; the machine description (with the CPU variant the library
    dispatches to), printed as the run's first line."""
    torch.set_num_threads(threads)
    info = machine(cpu_isa=torch.ops.safesvd._cpu_isa())
    print("#", info)
    return info


def write_results(stem: str, title: str, info: dict, rows: list[dict] | None, body: list[str], *,
                  out: Path = RESULTS, plot: Callable[[Path], bool] | None = None,
                  data: dict | None = None) -> None:
    """<out>/<stem>.json (the machine and `data`, by default {"rows": rows}) and <stem>.md:
    the title, the machine as a list, then `body` (the description and the tables), then
    the plot's link where `plot(<out>/<stem>.png)` drew one (True). Every bench writes its
    results here (out: bench/results unless the caller names another folder)."""
    out.mkdir(parents=True, exist_ok=True)
    payload = {"machine": info, **(data if data is not None else {"rows": rows})}
    (out / f"{stem}.json").write_text(json.dumps(payload, indent=1))
    lines = [f"# {title}", ""] + [f"- {k}: {v}" for k, v in info.items()] + [""] + body
    if plot is not None and plot(out / f"{stem}.png"):
        lines += ["", f"![speedup]({stem}.png)"]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("wrote", out / f"{stem}.md")


def median(xs: list[float]) -> float:
    return statistics.median(xs)


# ------------------------------------------------------------------ CUDA timing


def cuda_loop_ms(fns: list[Callable[[], object]], repeats: int, calls: int = 100) -> float:
    """Milliseconds per call: CUDA events around a loop of `calls` calls (cycling through
    fns, e.g. one per input set so that the data exceed L2), median over `repeats` loops.
    A single call between two events would time the host's dispatch (15-30 us) at small
    n, not the kernel."""
    for f in fns:  # warm up
        f()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for c in range(calls):
            fns[c % len(fns)]()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / calls)
    return statistics.median(times)


def cuda_graph_ms(fns: list[Callable[[], object]], repeats: int, calls: int = 100) -> float | None:
    """The same loop captured once in a CUDA graph and replayed: device time without any
    host dispatch. None (with the reason printed) where the callables cannot be captured."""
    try:
        stream = torch.cuda.Stream()  # warm up on a side stream, as capture requires
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for f in fns:
                f()
        torch.cuda.current_stream().wait_stream(stream)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for c in range(calls):
                fns[c % len(fns)]()
        graph.replay()
        torch.cuda.synchronize()
    except Exception as e:  # noqa: BLE001 - a figure is missing, the run goes on
        print(f"    (no CUDA graph: {type(e).__name__}: {str(e)[:160]})")
        return None
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / calls)
    return statistics.median(times)

#!/usr/bin/env python3
"""Per-unit compile times of a build, from ninja's log, and the wall time with J jobs.

    python scripts/build_times.py build/temp.*/.ninja_log [--jobs 2 16] [--top 8] [--match /csrc/cuda/]

Reads the last run of each target in the log (ninja log v5: start ms, end ms, mtime,
target, hash), prints the units' times, their sum, the wall time of that run (first
start to last end: meaningful for the log of one clean build, as ninja's clock starts
at 0 in every run), and for each J of --jobs an estimate of the wall time with J
parallel jobs: the longest-processing-time-first schedule of the measured unit times
(a lower bound is max(longest unit, sum / J); the link is not included). --match keeps
the units whose object path contains the text (e.g. /csrc/cuda/: the CUDA units). The times
are those of the machine and load the build ran under (docs/architecture.md, "Build").
"""
import argparse
import heapq
from pathlib import Path


def read_log(path: Path) -> dict[str, tuple[int, int]]:
    """{target: (start ms, end ms)} of the last build of each target."""
    runs: dict[str, tuple[int, int]] = {}
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        start, end, _mtime, target, *_ = line.split("\t")
        runs[target] = (int(start), int(end))
    return runs


def schedule(times: list[float], jobs: int) -> float:
    """Wall time of the longest-first list schedule of `times` on `jobs` workers."""
    workers = [0.0] * max(1, jobs)
    for t in sorted(times, reverse=True):
        heapq.heappush(workers, heapq.heappop(workers) + t)
    return max(workers) if times else 0.0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("log", type=Path)
    p.add_argument("--jobs", type=int, nargs="*", default=[2, 16])
    p.add_argument("--top", type=int, default=8, help="list the N longest units")
    p.add_argument("--match", default="", help="only the units whose path contains this text")
    args = p.parse_args()
    runs = {t: r for t, r in read_log(args.log).items() if args.match in t}
    if not runs:
        raise SystemExit(f"{args.log}: no targets" + (f" matching {args.match!r}" if args.match else ""))
    times = {t: (e - s) / 1000 for t, (s, e) in runs.items()}
    wall = (max(e for _, e in runs.values()) - min(s for s, _ in runs.values())) / 1000
    total = sum(times.values())
    print(f"{len(times)} units, sum {total:.1f} s, wall (first start to last end) {wall:.1f} s")
    for target, t in sorted(times.items(), key=lambda kv: -kv[1])[: args.top]:
        print(f"  {t:7.1f} s  {Path(target).name}")
    for j in args.jobs:
        print(f"estimate with {j:2d} jobs: {schedule(list(times.values()), j):6.1f} s "
              f"(bound max(longest, sum/{j}) = {max(max(times.values()), total / j):.1f} s)")


if __name__ == "__main__":
    main()

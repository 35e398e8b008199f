"""scripts/build_times.py: reading ninja's log and the J-job estimate (docs/architecture.md,
"Build"). The estimate is a list schedule, so it lies between the lower bound
max(longest unit, sum / J) and the bound of any list schedule, sum / J + longest."""
import importlib.util
import random
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("build_times", ROOT / "scripts" / "build_times.py")
build_times = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_times)


def test_read_log_keeps_the_last_run_of_each_target(tmp_path):
    log = tmp_path / ".ninja_log"
    log.write_text("# ninja log v5\n"
                   "0\t1000\t1\ta.o\th1\n"
                   "5\t3005\t1\tb.o\th2\n"
                   "0\t2500\t2\ta.o\th3\n")  # a later run of a.o replaces the first
    assert build_times.read_log(log) == {"a.o": (0, 2500), "b.o": (5, 3005)}


@pytest.mark.parametrize("jobs", [1, 2, 3, 16])
def test_schedule_between_the_bounds(jobs):
    rng = random.Random(jobs)
    for _ in range(50):
        times = [rng.uniform(0.1, 100.0) for _ in range(rng.randint(1, 40))]
        wall = build_times.schedule(times, jobs)
        lower = max(max(times), sum(times) / jobs)
        assert lower - 1e-9 <= wall <= sum(times) / jobs + max(times) + 1e-9
    assert build_times.schedule([], jobs) == 0.0
    assert build_times.schedule([5.0, 5.0], 1) == 10.0


def test_schedule_longest_first_is_exact_here():
    # Longest first on 2 workers: 8 | 7, then 5 -> 7+5, 4 -> 8+4: makespan 12 = sum / 2.
    assert build_times.schedule([4.0, 5.0, 7.0, 8.0], 2) == 12.0

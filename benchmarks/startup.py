"""Where the fixed cost of a short `sweeper run` goes: the driver's phases, and Ray's own record of the trials' tasks.

    python benchmarks/startup.py search_spaces/anchor-digits.yaml epochs=1 --out /tmp/startup

Runs `sweeper run ARGS...` in this process with timers around its phases (imports, reading the data, Ray's start,
Tune's fit, Ray's stop) and, just before Ray stops, reads `ray.timeline()`: when each trial's actor was created and
how long its train task ran (worker start, imports, the Training's build, its epochs and writes). Prints one line a
phase, in seconds from this process's start. Reading the timeline itself takes about a second, shown apart. Not a test.
"""
from __future__ import annotations

import sys
import time

START = time.perf_counter()
MARKS: list[tuple[str, float]] = []


def mark(name: str) -> None:
    MARKS.append((name, time.perf_counter() - START))


def timed(owner, name: str, label: str) -> None:
    """Put timers around owner.name."""
    inner = getattr(owner, name)

    def wrapper(*args, **kwargs):
        mark(f"{label} starts")
        try:
            return inner(*args, **kwargs)
        finally:
            mark(f"{label} ends")

    setattr(owner, name, wrapper)


def trial_tasks(wall_start: float) -> list[str]:
    """The trials' actor creations and train tasks from Ray's timeline, in seconds from this process's start."""
    import ray

    lines = []
    for event in sorted(ray.timeline(), key=lambda e: e.get("ts", 0)):
        if event.get("ph") == "X" and event.get("cat", "").startswith("task::ImplicitFunc.") and event["cat"].split(".")[-1] in (
                "__init__", "train"):
            lines.append(f"{event['ts'] / 1e6 - wall_start:7.2f} trial {event['cat'].split('.')[-1]} runs {event['dur'] / 1e6:.2f} s")
    return lines


def main() -> int:
    from sweeper import cli
    mark("sweeper.cli imported")
    from sweeper import sweep
    mark("sweeper.sweep imported (torch, Ray Tune, pandas)")
    import ray
    from ray import tune

    timed(sweep, "_datasets", "reading the data")
    timed(sweep, "_start_ray", "Ray's start")
    timed(tune.Tuner, "fit", "Tune's fit")
    stop = ray.shutdown
    tasks: list[str] = []

    def shutdown(*args, **kwargs):
        mark("reading Ray's timeline starts")
        tasks.extend(trial_tasks(time.time() - (time.perf_counter() - START)))
        mark("Ray's stop starts")
        stop(*args, **kwargs)
        mark("Ray's stop ends")

    ray.shutdown = shutdown
    code = cli.main(["run", *sys.argv[1:], "--quiet"])
    mark("sweeper run returned")
    for line in sorted([f"{t:7.2f} {name}" for name, t in MARKS] + tasks, key=lambda s: float(s.split()[0])):
        print(line)
    return code


if __name__ == "__main__":
    sys.exit(main())

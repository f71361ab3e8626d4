"""The least a two-trial Ray Tune sweep with a torch optimiser costs on this machine, before any model trains.

    python benchmarks/floor.py [--trials 2]

What `sweeper run search_spaces/anchor-digits.yaml epochs=1` cannot go below while it uses Ray Tune and torch as
documented: this process imports torch and Ray Tune, starts a local Ray with sweeper's options (no dashboard, its
workers' malloc settings, one CPU a trial), and runs a function trainable per trial that imports torch, takes one
`torch.optim.Adam` step on one parameter (the first optimiser call imports torch._dynamo) and reports one result;
then Ray stops. No data, no model, no Optuna, no checkpoint, no rows: a floor a little below any real sweep's. Time
it whole, beside the sweep, e.g. with `/usr/bin/time -f %e`. Prints the phases in seconds from this process's start.
Not a test.
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time

START = time.perf_counter()


def trainable(config: dict) -> None:
    import torch
    from ray import tune

    weight = torch.nn.Parameter(torch.zeros(1))
    optimiser = torch.optim.Adam([weight], lr=1e-3)
    weight.sum().backward()
    optimiser.step()
    tune.report({"epoch": 1, "objective": float(weight.item()) + config["index"]})


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2)
    args = parser.parse_args(argv)
    marks = []

    def mark(name: str) -> None:
        marks.append((time.perf_counter() - START, name))

    import torch  # noqa: F401  (the driver's imports, as sweeper's)
    import ray
    from ray import tune
    mark("torch and Ray Tune imported")
    from sweeper import allocator  # no torch, no Ray: the workers' environment as a sweep's

    ray.init(num_cpus=args.trials, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False,
             runtime_env={"env_vars": allocator.worker_env()})
    mark("Ray started")
    with tempfile.TemporaryDirectory(prefix="floor-") as storage:  # Tune's experiment state, as sweeper's beside its rows
        tuner = tune.Tuner(tune.with_resources(trainable, {"cpu": 1}),
                           param_space={"index": tune.grid_search(list(range(args.trials)))},
                           tune_config=tune.TuneConfig(metric="objective", mode="max"),
                           run_config=tune.RunConfig(storage_path=storage, verbose=0))
        results = tuner.fit()
        mark(f"Tune's fit returned ({len(results)} trials, {sum(r.error is None for r in results)} without error)")
        ray.shutdown()
        mark("Ray stopped")
    for seconds, name in marks:
        print(f"{seconds:7.2f} {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

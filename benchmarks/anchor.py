"""sweeper against the sweep a user would write without it, on the same grid, in one go.

    python benchmarks/anchor.py [--spec search_spaces/anchor-digits.yaml] [--skip-plain]

The plain anchor: Ray Tune with Optuna's GridSampler (OptunaSearch), one Tune trial per (alpha, seed),
each training one model in float32 with its own Adam on one thread, as many at once as there are CPUs
(both runs use every CPU of this machine). The model is sweeper's own M2 (it enumerates labels in one
batched pass), so the runs differ in what sweeper adds around the model: packing, the vmapped step,
thread and pack sizing, bfloat16 where the CPU multiplies it natively, and malloc keeping freed memory
(allocator.py). sweeper runs twice: as the spec says (its default `step: {bf16: auto}`) and in float32
(`step.bf16=false`). All runs read the same data and labelled subsets, and each is one fresh Python
process timed whole: start, imports, data, Ray's start and shutdown, the sweep (the plain run also
prints its Tuner.fit alone, fit_s). Prints one JSON line per run, the tables side by side, then the
ratios of the walls and of each sweeper run's training time to the grid's matmul time at this CPU's
measured speed in that run's precision. A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent


def plain_trainable(config: dict, spec, data) -> None:
    """One (alpha, seed) as a user writes it: build, loop over batches, Adam, report each epoch."""
    import torch
    from ray import tune

    from sweeper import models
    from sweeper.data import labelled_split
    from sweeper.models import Batch
    from sweeper.models.noise import fold_in, key
    from sweeper.train import batch_indices, schedule, steps_per_epoch

    torch.set_num_threads(1)
    seed, hyper = config["seed"], {**spec.fixed, "alpha": config["alpha"]}
    torch.manual_seed(seed)
    model = models.build("m2", data.input_shape, data.n_classes, hyper)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(hyper["lr"]))
    x, y = torch.as_tensor(data.x_train), torch.as_tensor(data.y_train)
    labelled, unlabelled = (torch.as_tensor(i) for i in labelled_split(data.y_train, spec.label_counts[0], data.n_classes, seed))
    weights = {name: torch.tensor(float(hyper.get(name, h.default))) for name, h in type(model).loss_weights.items()}
    order, noise = torch.Generator().manual_seed(seed), key(seed)
    steps = steps_per_epoch(len(unlabelled), spec.batches[0].unlabelled)
    step = 0
    for epoch in range(spec.epochs):
        now = schedule(epoch, spec.epochs, len(y), len(labelled), len(unlabelled))
        batches_l = labelled[batch_indices(len(labelled), steps, spec.batches[0].labelled, order, "cpu")]
        batches_u = unlabelled[batch_indices(len(unlabelled), steps, spec.batches[0].unlabelled, order, "cpu")]
        for s in range(steps):
            loss, _ = model(Batch(x[batches_l[s]], y[batches_l[s]], x[batches_u[s]]), weights, now, fold_in(noise, step))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
        with torch.no_grad():
            accuracy = lambda xs, ys: float((model.classify(torch.as_tensor(xs)).argmax(-1) == torch.as_tensor(ys)).float().mean())  # noqa: E731
            tune.report({"val_acc": accuracy(data.x_val, data.y_val), "test_acc": accuracy(data.x_test, data.y_test)})


def plain(spec_path: str, cpus: int) -> dict:
    """The plain anchor in a fresh process (this script with --plain-into), timed whole like sweeper's run."""
    with tempfile.TemporaryDirectory() as d:
        figures = Path(d) / "plain.json"
        start = time.monotonic()
        subprocess.run([sys.executable, __file__, "--spec", spec_path, "--plain-into", str(figures), "--cpus", str(cpus)],
                       check=True, cwd=REPOSITORY)
        wall = time.monotonic() - start
        return {"run": "plain ray tune", "precision": "float32", "wall_s": round(wall, 1), **json.loads(figures.read_text())}


def plain_fit(spec, cpus: int) -> dict:
    """The grid through plain Ray Tune: Tuner.fit's seconds and each alpha's test accuracy at the best validation epoch."""
    import optuna
    import ray
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    from sweeper.data import load

    alphas = list(spec.search["alpha"].values)
    data = load(spec.datasets[0])
    grid = {"alpha": alphas, "seed": list(spec.seeds)}
    searcher = OptunaSearch(space={"alpha": optuna.distributions.CategoricalDistribution(alphas),
                                   "seed": optuna.distributions.CategoricalDistribution(list(spec.seeds))},
                            sampler=optuna.samplers.GridSampler(grid), metric="val_acc", mode="max")
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory() as storage:
            start = time.monotonic()
            tuner = tune.Tuner(tune.with_resources(tune.with_parameters(plain_trainable, spec=spec, data=data), {"cpu": 1}),
                               tune_config=tune.TuneConfig(search_alg=searcher, num_samples=len(alphas) * len(spec.seeds),
                                                           max_concurrent_trials=cpus),
                               run_config=tune.RunConfig(storage_path=storage, name="plain", verbose=0))
            grid_results = tuner.fit()
            wall = time.monotonic() - start
    finally:
        ray.shutdown()
    by_alpha: dict[float, list[float]] = {}
    for result in grid_results:
        history = result.metrics_dataframe
        best = history.loc[history["val_acc"].idxmax()]  # the first epoch of best validation accuracy
        by_alpha.setdefault(result.config["alpha"], []).append(100 * float(best["test_acc"]))
    return {"trials": len(grid_results), "fit_s": round(wall, 1), "table": _table(by_alpha)}


def sweeper_run(spec_path: str, overrides: list[str]) -> dict:
    """The same grid through `sweeper run`, in a fresh process: wall seconds and the table's cells."""
    import pandas as pd

    with tempfile.TemporaryDirectory() as out:
        start = time.monotonic()
        subprocess.run([sys.executable, "-c", "from sweeper.cli import entry; entry()", "run", spec_path, *overrides,
                        "--out", out, "--quiet"], check=True, cwd=REPOSITORY)
        wall = time.monotonic() - start
        trials = pd.read_parquet(Path(out) / "trials")
        training_s = float(trials["wall_s"].sum())
    by_alpha = {alpha: list(100 * group["test_acc"]) for alpha, group in trials.groupby("alpha")}
    return {"run": " ".join(["sweeper", *overrides]), "precision": "/".join(sorted(set(trials["precision"]))),
            "configurations": len(by_alpha), "wall_s": round(wall, 1), "training_s": round(training_s, 1),
            "table": _table(by_alpha)}


def matmul_seconds(spec) -> dict[str, float]:
    """The grid's matmul work (torch's FLOP count of one float32 step, forward and backward) at this CPU's
    measured dense matmul speed on one thread, in float32 and (where native) bfloat16."""
    import torch

    from sweeper import bench, space
    from sweeper.data import DATASETS
    from sweeper.bench import steps_in_an_epoch

    torch.set_num_threads(1)
    chosen = space.configuration(spec, space.grid_points(spec)[0])
    info = DATASETS[chosen.dataset]
    _, flop = bench.time_stack("m2", info.input_shape, info.n_classes, [chosen.hyper], (chosen.batch_labelled, chosen.batch_unlabelled),
                               torch.device("cpu"), 2, False, False, bench.costlier_stage(info.n_train, chosen.label_count))
    steps = steps_in_an_epoch(spec, chosen) * spec.epochs * len(spec.seeds) * len(space.grid_points(spec))
    speeds = {"fp32": "float32", "bf16": "bfloat16"}
    return {speeds[kind]: flop * steps / speed for kind, speed in bench._matmul_flops(torch.device("cpu")).items()}


def _table(by_alpha: dict) -> dict:
    cells = {}
    for alpha, accs in sorted(by_alpha.items()):
        mean = sum(accs) / len(accs)
        std = math.sqrt(sum((a - mean) ** 2 for a in accs) / (len(accs) - 1)) if len(accs) > 1 else float("nan")
        cells[f"{alpha:g}"] = f"{mean:.2f} ± {std:.2f} ({len(accs)})"
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="search_spaces/anchor-digits.yaml")
    parser.add_argument("--skip-plain", action="store_true", help="time sweeper alone")
    parser.add_argument("--plain-into", help=argparse.SUPPRESS)  # the plain run's own process writes its figures here
    parser.add_argument("--cpus", type=int, default=os.cpu_count(), help=argparse.SUPPRESS)
    args = parser.parse_args()
    from sweeper.spec import load

    spec = load(REPOSITORY / args.spec)
    if args.plain_into:
        Path(args.plain_into).write_text(json.dumps(plain_fit(spec, args.cpus)))
        return
    cpus = args.cpus
    runs = [] if args.skip_plain else [plain(args.spec, cpus)]
    runs += [sweeper_run(args.spec, []), sweeper_run(args.spec, ["step.bf16=false"])]
    for run in runs:
        print(json.dumps(run), flush=True)
    print("alpha | " + " | ".join(f"{run['run']} ({run['precision']})" for run in runs))
    for alpha in runs[0]["table"]:
        print(f"{alpha} | " + " | ".join(run["table"][alpha] for run in runs))
    matmul = matmul_seconds(spec)
    summary = {"cpus": cpus, **{f"matmul_s_{precision}": round(s, 1) for precision, s in matmul.items()}}
    for run in runs[-2:]:
        if not args.skip_plain:
            summary[f"plain_over_{run['run']}"] = round(runs[0]["wall_s"] / run["wall_s"], 2)
        if run["precision"] in matmul:
            summary[f"training_over_matmul_{run['run']}"] = round(run["training_s"] / matmul[run["precision"]], 2)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()

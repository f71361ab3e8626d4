"""Benchmarks that print figures (one JSON line per case); no timing lives in the tests.

--report: a synthetic sweep of 400 configurations × 5 seeds × 500 epochs (one million
per-epoch rows, written as sweeper writes them), then the time to build the table and to
read the epochs table's needed columns and aggregate learning curves from it.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np

from . import report, results

HYPER = {"alpha": "number"}


def report_case(configurations: int = 400, seeds: int = 5, epochs: int = 500) -> dict:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        out = Path(d)
        start = time.perf_counter()
        for c in range(configurations):
            config_id = f"c{c:05d}"
            alpha = float(10.0 ** (c % 8 - 3))
            epoch_rows, trial_rows = [], []
            for seed in range(seeds):
                trial_id = f"{config_id}-seed{seed}"
                acc = rng.random(epochs)
                epoch_rows += [{"trial_id": trial_id, "config_id": config_id, "model": "m2", "seed": seed, "epoch": e + 1,
                                "loss": 1.0, "val_acc": float(acc[e]), "test_acc": float(acc[e]), "wall_s": 0.1,
                                "entropy_unlabelled": 0.5, "mi_unlabelled": 0.5} for e in range(epochs)]
                trial_rows.append({"trial_id": trial_id, "config_id": config_id, "model": "m2", "seed": seed, "dataset": "mnist",
                                   "label_count": 100, "batch_labelled": 100, "batch_unlabelled": 100, "alpha": alpha,
                                   "status": "completed", "best_val_acc": float(acc.max()), "test_acc": float(acc.max()),
                                   "best_epoch": int(acc.argmax()) + 1, "epochs": epochs, "wall_s": 50.0})
            results.write_configuration(out, config_id, epoch_rows, trial_rows, HYPER)
        written_s = time.perf_counter() - start

        start = time.perf_counter()
        report.table([out])
        table_s = time.perf_counter() - start

        start = time.perf_counter()
        curves = results.read([out], "epochs", columns=["config_id", "epoch", "val_acc"])
        curves.groupby(["config_id", "epoch"])["val_acc"].agg(["mean", "std"])
        curves_s = time.perf_counter() - start
    return {"case": "report", "epoch_rows": configurations * seeds * epochs, "trial_rows": configurations * seeds,
            "files": configurations, "table_s": round(table_s, 3), "learning_curves_s": round(curves_s, 3),
            "write_s": round(written_s, 1)}


def overhead_case(configurations: int = 20) -> dict:
    """A grid of tiny configurations through a real local Ray with one CPU, so trials run one after
    another: (sweep wall time - the trials' own training time) / configurations."""
    from .spec import parse
    from .sweep import run

    spec = parse({"name": "overhead", "dataset": "digits", "label_count": 50, "models": ["baseline"], "seeds": [0],
                  "epochs": 2, "fixed": {"hidden": 16}, "search": {"lr": [round(1e-3 * (1 + i), 6) for i in range(configurations)]}})
    with tempfile.TemporaryDirectory() as d:
        outcome = run(spec, Path(d) / "out", quiet=True, num_cpus=1)
        training_s = float(results.read(Path(d) / "out", "trials")["wall_s"].sum())
    return {"case": "overhead", "configurations": configurations, "sweep_s": round(outcome.wall_s, 2),
            "training_s": round(training_s, 2), "overhead_per_trial_s": round((outcome.wall_s - training_s) / configurations, 3)}


def main(cases: list[str]) -> None:
    for case in cases:
        print(json.dumps({"report": report_case, "overhead": overhead_case}[case]()), flush=True)

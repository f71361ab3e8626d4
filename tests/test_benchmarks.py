"""The benchmarks' own code, which no sweep runs: kept working as the package changes."""
import importlib.util
from pathlib import Path

from sweeper.data import load
from sweeper.spec import parse

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def benchmark(name: str):
    """benchmarks/<name>.py as a module (the folder is no package)."""
    spec_of_module = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec_of_module)
    spec_of_module.loader.exec_module(module)
    return module


def test_the_anchor_benchmarks_plain_trainable_trains_and_reports_every_epoch(monkeypatch):
    """benchmarks/anchor.py's plain Ray Tune trainable, called as Tune calls it, with Tune's report caught."""
    anchor = benchmark("anchor")
    import torch
    from ray import tune

    reported = []
    monkeypatch.setattr(tune, "report", reported.append)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # the trainable's one thread, not the test session's
    spec = parse({"name": "anchor-test", "dataset": "digits", "label_count": 50, "models": ["m2"], "seeds": [0], "epochs": 2,
                  "fixed": {"hidden": 16, "latent": 4, "lr": 0.001}, "search": {"alpha": [1.0]}})
    anchor.plain_trainable({"alpha": 1.0, "seed": 0}, spec, load("digits"))
    assert [sorted(row) for row in reported] == [["test_acc", "val_acc"]] * 2
    assert all(0.0 <= value <= 1.0 for row in reported for value in row.values())


def test_the_baseline_epoch_benchmark_times_epochs_it_does_not_evaluate():
    bench = benchmark("baseline_epoch")
    seconds = bench.epoch_seconds(load("digits"), repeats=1)  # 2 steps of 1:499 on digits' 1,157 unlabelled points
    assert 0.0 < seconds < 60.0


def test_the_startup_profile_times_phases_the_package_still_has():
    """benchmarks/startup.py puts timers around these by name: a rename would leave its profile silently short."""
    from ray import tune

    from sweeper import sweep

    assert callable(sweep._datasets) and callable(sweep._start_ray) and callable(tune.Tuner.fit)
    text = (BENCHMARKS / "startup.py").read_text()
    assert '"_datasets"' in text and '"_start_ray"' in text and '"fit"' in text


def test_the_floor_benchmarks_trainable_takes_one_adam_step_and_reports_it(monkeypatch):
    floor = benchmark("floor")
    from ray import tune

    reported = []
    monkeypatch.setattr(tune, "report", reported.append)
    floor.trainable({"index": 3})
    assert len(reported) == 1 and reported[0]["epoch"] == 1
    assert abs(reported[0]["objective"] - (3 - 1e-3)) < 1e-6  # Adam's first step moves the weight by lr against the gradient


def test_the_step_profile_benchmark_profiles_the_stacks_step():
    table = benchmark("step_profile").main(["--shape", "anchor", "--pack", "2", "--steps", "1"])
    assert "aten::bmm" in table and "aten::softplus" in table

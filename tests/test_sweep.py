"""Integration: tiny sweeps through a real Ray Tune and Optuna (num_cpus=2)."""
import optuna
import pandas as pd
import pytest

from conftest import tiny_spec
from sweeper import sweep
from sweeper.cli import main

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def study(out):
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / sweep.STUDY_FILE)))
    return optuna.load_study(study_name="tiny", storage=storage)


def test_a_grid_sweep_runs_every_point_once_per_seed_and_reports(write_spec, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(write_spec(tiny_spec())), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "configurations: 3/3 done, 0 running, 0 failed (2 seeds each)" in printed
    assert f"report:  sweeper report {out}" in printed

    trials = pd.read_parquet(out / "trials")
    configs = sorted(zip(trials["model"], trials["alpha"].fillna(-1), trials["seed"]))
    assert configs == [("baseline", -1, 0), ("baseline", -1, 1), ("m2", 0.5, 0), ("m2", 0.5, 1), ("m2", 5.0, 0), ("m2", 5.0, 1)]
    assert trials["status"].eq("completed").all() and trials["trial_id"].is_unique
    assert trials["test_acc"].between(0, 1).all() and trials["epochs"].eq(2).all()
    epochs = pd.read_parquet(out / "epochs")
    assert len(epochs) == 12 and sorted(epochs.groupby("trial_id").size().unique()) == [2]

    # the study: one completed Optuna trial per configuration, each with its own parameters
    ot_trials = study(out).get_trials(states=[optuna.trial.TrialState.COMPLETE])
    assert sorted(str(sorted(t.params.items())) for t in ot_trials) == sorted(
        [str([("model", "baseline")]), str([("alpha", 0.5), ("model", "m2")]), str([("alpha", 5.0), ("model", "m2")])]
    )

    assert main(["report", str(out)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[2:4] == ["| alpha | baseline | m2 |", "|---|---|---|"]
    assert [line.split(" | ")[0] for line in table[4:]] == ["| 0.5", "| 5", "| n/a"]
    assert all(line.count("(2)") == 1 for line in table[4:])  # each configuration: both seeds


def test_a_sampled_sweep_draws_within_the_range(write_spec, tmp_path):
    spec = tiny_spec(models=["m2"], seeds=[0], epochs=1, search={"alpha": [1.0], "lr": {"low": 1e-4, "high": 1e-2, "log": True}},
                     sampler="random", trials=3, max_concurrent=2)
    out = tmp_path / "out"
    assert main(["run", str(write_spec(spec)), "--out", str(out), "--quiet"]) == 0
    trials = pd.read_parquet(out / "trials")
    assert len(trials) == 3 and trials["lr"].between(1e-4, 1e-2).all() and trials["lr"].nunique() == 3


def test_a_directory_that_holds_a_sweep_is_not_overwritten(write_spec, tmp_path, capsys):
    (tmp_path / "out" / "trials").mkdir(parents=True)
    assert main(["run", str(write_spec(tiny_spec())), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.endswith("already holds a sweep; choose another --out directory or remove this one\n")


def test_every_model_runs_in_a_sweep_and_beats_chance(write_spec, tmp_path):
    from sweeper.models import MODELS

    spec = tiny_spec(models=sorted(MODELS), seeds=[0], epochs=20, search={}, batch={"labelled": 25, "unlabelled": 100},
                     fixed={"hidden": 32, "latent": 8, "auxiliary": 8, "features": 8, "lr": 0.003, "vae_fraction": 0.3})
    out = tmp_path / "out"
    assert main(["run", str(write_spec(spec)), "--out", str(out), "--quiet"]) == 0
    trials = pd.read_parquet(out / "trials").set_index("model")
    assert sorted(trials.index) == sorted(MODELS)
    assert trials["status"].eq("completed").all()
    assert (trials["test_acc"] > 0.2).all(), trials["test_acc"].to_dict()  # chance is 0.1
    assert trials.loc["ssgmm", "lr"] != trials.loc["ssgmm", "lr"]  # NaN: EM takes no learning rate
    assert trials.loc["m2", "likelihood"] == "bernoulli"

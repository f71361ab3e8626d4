"""Integration: tiny sweeps through a real Ray Tune and Optuna (num_cpus=2)."""
from pathlib import Path

import optuna
import pandas as pd
import pytest

from helpers import tiny_spec
from sweeper import space, sweep
from sweeper.cli import main
from sweeper.spec import at_scale, load, parse

SPECS = sorted((Path(__file__).resolve().parent.parent / "search_spaces").glob("*.yaml"))

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def study(out, name="tiny"):
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / sweep.STUDY_FILE)))
    return optuna.load_study(study_name=name, storage=storage)


def test_a_grid_sweep_runs_every_point_once_per_seed_and_reports(write_spec, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(write_spec(tiny_spec())), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "configurations (in 2 packs of 1-2, 1 CPU each): 3/3 done, 0 running, 0 failed; epochs 12/12 (100%), about 0m00s left" in printed
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
    # seeds are an axis of their own: the sampler was told the mean over seeds of each configuration
    best = trials.groupby(["model", trials["alpha"].fillna(-1)])["best_val_acc"].mean()
    for t in ot_trials:
        assert t.value == pytest.approx(best[(t.params["model"], t.params.get("alpha", -1))])

    assert main(["report", str(out)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[2:4] == ["| alpha | baseline | m2 |", "|---|---|---|"]
    body = table[4:7]  # then the selection, and where the numbers came from
    assert [line.split(" | ")[0] for line in body] == ["| 0.5", "| 5", "| n/a"] and table[7] == ""
    assert all(line.count("(2)") == 1 for line in body)  # each configuration: both seeds
    assert table[8].startswith("selected by validation: ") and table[9].startswith(f"provenance of {out}: run: sweeper 0.1.0")


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
    assert capsys.readouterr().err.endswith(f"already holds a sweep; continue it with 'sweeper resume {tmp_path / 'out'}', or choose another --out\n")


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


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_every_spec_runs_at_smoke_scale(path, tmp_path):
    out = tmp_path / "out"
    assert main(["run", str(path), "--scale", "smoke", "--out", str(out), "--quiet"]) == 0
    spec = at_scale(load(path), "smoke")
    trials = pd.read_parquet(out / "trials")
    assert len(trials) == space.configuration_count(spec) * len(spec.seeds)
    assert trials["trial_id"].is_unique and trials["status"].isin(["completed", "stopped"]).all()
    kept = sorted(p.stem for p in (out / "models").glob("*.pt"))  # each seed's weights at its best epoch, packed or not
    assert kept == sorted(trials.loc[trials["best_epoch"] > 0, "trial_id"])
    if path.stem in ("jurasinski-disentanglement", "jurasinski-pretrained-vae"):
        assert main(["inspect", str(out), "--each"]) == 0
        summaries = list((out / "inspect").glob("*/summary.json"))
        assert len(summaries) == trials["config_id"].nunique() and all("probe_accuracy" in p.read_text() for p in summaries)


ASHA_GRID = dict(models=["baseline"], seeds=[0], epochs=4, fixed={"hidden": 16},
                 search={"lr": [0.01, 0.008, 0.006, 1.0e-7, 2.0e-7, 3.0e-7]},  # the good first
                 scheduler={"type": "asha", "grace_period": 1, "reduction_factor": 2})


def test_asha_stops_poor_configurations_and_their_rows_say_stopped(write_spec, tmp_path):
    """Unpacked (pack: 1), each configuration is a Tune trial, stopped by Ray Tune's ASHAScheduler."""
    spec = tiny_spec(**ASHA_GRID, max_concurrent=1, pack=1)  # run in grid order
    out = tmp_path / "out"
    assert main(["run", str(write_spec(spec)), "--out", str(out), "--quiet"]) == 0
    trials = pd.read_parquet(out / "trials")
    poor = trials[trials["lr"] < 1e-6]
    assert poor["status"].eq("stopped").all() and poor["epochs"].lt(4).all()
    assert (poor["stopped_at_rung"] == poor["epochs"]).all()
    assert trials["status"].eq("completed").any() and not trials["status"].eq("running").any()


def test_asha_inside_a_pack_stops_each_member_on_its_own_curve_and_prunes_its_trial(tmp_path):
    """One pack of six (2 CPUs a trial: one slot): at rung 1 every member is judged against the other five, so the
    three that barely learn stop there; at rung 2 the three left are judged against each other (stopping.py)."""
    spec = parse(tiny_spec(**ASHA_GRID, resources={"cpu": 2, "gpu": 0}))
    out = tmp_path / "out"
    assert sweep.run(spec, out, quiet=True, num_cpus=2).errored == 0  # a Ray of 2 CPUs: whatever the machine has
    trials = pd.read_parquet(out / "trials").sort_values("lr")
    assert trials["config_id"].str.fullmatch(r"[0-9a-f]+_\d+-\d").all() and trials["config_id"].str.split("-").str[0].nunique() == 1
    poor = trials[trials["lr"] < 1e-6]
    assert poor["status"].eq("stopped").all() and poor["stopped_by"].eq("scheduler").all()
    assert poor["epochs"].eq(1).all() and poor["stopped_at_rung"].eq(1).all()
    assert trials["status"].eq("completed").any() and not trials["status"].eq("running").any()
    ot = study(out)
    pruned = ot.get_trials(states=[optuna.trial.TrialState.PRUNED])
    assert sorted(t.params["lr"] for t in pruned) == sorted(trials.loc[trials["status"] == "stopped", "lr"])
    assert {len(t.intermediate_values) for t in pruned if t.params["lr"] < 1e-6} == {1}


def test_nsga2_optimises_accuracy_and_wall_time(write_spec, tmp_path):
    spec = tiny_spec(models=["m2"], seeds=[0], epochs=1, search={"alpha": {"low": 0.1, "high": 10.0}},
                     sampler="nsga2", objectives=["val_acc", "wall_s"], trials=3)
    out = tmp_path / "out"
    assert main(["run", str(write_spec(spec)), "--out", str(out), "--quiet"]) == 0
    ot = study(out)
    assert len(ot.directions) == 2
    done = ot.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    assert len(done) == 3 and all(len(t.values) == 2 and t.values[1] > 0 for t in done)


def test_storage_uri_takes_the_results_and_checkpoints(write_spec, tmp_path, capsys):
    shared = tmp_path / "shared"
    spec = tiny_spec(models=["baseline"], seeds=[0, 1], epochs=2, fixed={"hidden": 16}, search={})
    out = tmp_path / "driver"
    assert main(["run", str(write_spec(spec)), "--out", str(out), "--storage", f"file://{shared}", "--quiet"]) == 0
    assert f"report:  sweeper report file://{shared}/tiny" in capsys.readouterr().out
    assert len(pd.read_parquet(shared / "tiny" / "trials")) == 2 and (shared / "tiny" / "tune").is_dir()
    assert (out / sweep.STUDY_FILE).is_file() and not (out / "trials").exists()  # the study stays with the driver
    assert main(["report", f"file://{shared}/tiny"]) == 0
    printed = capsys.readouterr().out
    caption, table, notes = printed.split("\n\n")
    assert (shared / "tiny" / "report.md").read_text() == printed and table.count("(2)") == 1  # one cell, both seeds
    assert f"provenance of file://{shared}/tiny: run: sweeper" in notes
    # a second sweep of the same name into the same storage is refused: two sweeps' rows would mix there
    before = sorted(p.relative_to(shared) for p in shared.rglob("*"))
    assert main(["run", str(write_spec(spec)), "--out", str(tmp_path / "second"), "--storage", f"file://{shared}", "--quiet"]) == 2
    assert "already holds a sweep of this name" in capsys.readouterr().err
    assert sorted(p.relative_to(shared) for p in shared.rglob("*")) == before and not (tmp_path / "second").exists()


def test_eval_every_writes_nan_accuracies_between_evaluations_and_reports_the_measured_ones(write_spec, tmp_path, capsys):
    out = tmp_path / "out"
    spec = tiny_spec(models=["baseline"], fixed={"hidden": 16}, search={}, epochs=3, eval_every=2)
    assert main(["run", str(write_spec(spec)), "--out", str(out), "--quiet"]) == 0
    epochs = pd.read_parquet(out / "epochs").sort_values(["trial_id", "epoch"])
    assert epochs.groupby("epoch")["val_acc"].apply(lambda v: v.notna().all()).to_dict() == {1: False, 2: True, 3: True}
    assert epochs[epochs["epoch"] == 1]["test_acc"].isna().all() and epochs["loss"].notna().all()
    trials = pd.read_parquet(out / "trials")
    assert trials["status"].eq("completed").all() and trials["best_epoch"].isin([2, 3]).all()
    assert main(["report", str(out), "--at", "final"]) == 0
    final = capsys.readouterr().out
    last = epochs[epochs["epoch"] == 3]["test_acc"]
    assert f"{100 * last.mean():.2f} ± {100 * last.std():.2f}" in final
    reported = pd.read_json(next((out / "tune").glob("*/result.json")), lines=True).set_index("epoch")
    assert reported["val_acc"].isna().tolist() == [True, False, False]  # Tune hears no accuracy at epoch 1

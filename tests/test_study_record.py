"""Every configuration as one finished trial of the results directory's study, for optuna-dashboard:
its outcome from its rows (study.summarise), each recorded once (study.RecordedConfigurations, sweep.RecordConfigurations),
and tiny real sweeps, packed or not, read back with the storage optuna-dashboard opens a journal with."""
import json
import os
import pickle
import statistics
from types import SimpleNamespace

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from helpers import tiny_spec
from sweeper.ids import RERUN_KEY
from sweeper import results, space, study, sweep
from sweeper.spec import parse, with_pack

GRID = {"models": ["m2", "baseline"], "search": {"alpha": [0.5, 5.0]}}


def row(seed, status="completed", val=0.5, test=0.4, wall=1.0, error=None, point=None):
    return {"seed": seed, "status": status, "best_val_acc": val, "test_acc": test, "wall_s": wall, "error": error,
            "point": space.point_key(point or {"model": "m2", "alpha": 0.5})}


def journal(path):
    """The storage optuna-dashboard opens a journal file with."""
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


# ------------------------------------------------------------------ a configuration's outcome


def test_a_configuration_whose_seeds_completed_is_complete_with_its_means_and_spreads():
    spec = parse(tiny_spec(**GRID))
    summary = study.summarise(spec, [row(0, val=0.5, test=0.4, wall=2.0), row(1, val=0.7, test=0.6, wall=3.0)], tune_finished=True)
    assert summary.state == TrialState.COMPLETE and summary.values == [pytest.approx(0.6)]
    assert summary.user_attrs == {"seeds": 2, "test_acc": pytest.approx(0.5), "test_acc_std": pytest.approx(statistics.stdev([0.4, 0.6])),
                                  "val_acc_std": pytest.approx(statistics.stdev([0.5, 0.7])), "diverged": 0}
    json.dumps(summary.user_attrs, allow_nan=False)  # what a browser can parse


def test_one_seed_has_no_spread_and_two_objectives_have_two_values():
    spec = parse(tiny_spec(models=["m2"], seeds=[0], sampler="nsga2", trials=2, objectives=["val_acc", "wall_s"],
                           search={"alpha": {"low": 0.1, "high": 10.0}}))
    summary = study.summarise(spec, [row(0, val=0.5, wall=2.5)], tune_finished=True)
    assert summary.values == [0.5, 2.5] and summary.user_attrs["test_acc_std"] is None and summary.user_attrs["val_acc_std"] is None


def test_a_configuration_still_running_is_not_recorded_unless_tune_ended_it_which_the_scheduler_did():
    spec = parse(tiny_spec(**GRID))
    rows = [row(0), row(1, status="running", val=0.3)]
    assert study.summarise(spec, rows, tune_finished=False) is None
    stopped = study.summarise(spec, rows, tune_finished=True)
    assert stopped.state == TrialState.PRUNED and stopped.values == [pytest.approx(0.4)]
    assert study.summarise(spec, [], tune_finished=True) is None


def test_a_seed_stopped_by_patience_has_its_result_and_leaves_the_configuration_complete():
    spec = parse(tiny_spec(**GRID))
    rows = [row(0), {**row(1, status="stopped", val=0.7), "stopped_by": "patience"}]
    summary = study.summarise(spec, rows, tune_finished=True)
    assert summary.state == TrialState.COMPLETE and summary.values == [pytest.approx(0.6)]
    scheduler = study.summarise(spec, [row(0), {**row(1, status="stopped"), "stopped_by": "scheduler"}], tune_finished=True)
    assert scheduler.state == TrialState.PRUNED


def test_a_failed_seed_fails_the_configuration_and_so_does_every_seed_diverging():
    spec = parse(tiny_spec(**GRID))
    failed = study.summarise(spec, [row(0), row(1, status="failed", error="RuntimeError: out of memory")], tune_finished=False)
    assert (failed.state, failed.values, failed.user_attrs) == (TrialState.FAIL, None, {"seeds": 2, "error": "RuntimeError: out of memory"})
    diverged = study.summarise(spec, [row(0, status="diverged"), row(1, status="diverged", val=float("nan"))], tune_finished=True)
    assert diverged.state == TrialState.FAIL and diverged.user_attrs["error"].startswith("diverged")


def test_a_diverged_seed_counts_zero_as_the_sampler_is_told():
    spec = parse(tiny_spec(**GRID))
    summary = study.summarise(spec, [row(0, val=0.8, test=0.6), row(1, status="diverged", val=0.5, test=float("nan"))], tune_finished=True)
    assert summary.state == TrialState.COMPLETE and summary.values == [pytest.approx(0.4)]
    assert summary.user_attrs["test_acc"] == pytest.approx(0.3) and summary.user_attrs["diverged"] == 1


# ------------------------------------------------------------------ each configuration once


def write_rows(location, spec, config_id, point, statuses, val=0.5):
    trials = [{"trial_id": f"{config_id}-seed{seed}", "config_id": config_id, "model": point["model"], "seed": seed,
               "point": space.point_key(point), "status": status, "best_val_acc": val, "test_acc": val - 0.1, "wall_s": 1.0,
               "error": "RuntimeError: boom" if status == "failed" else None}
              for seed, status in zip(spec.seeds, statuses)]
    results.write_configuration(location, config_id, [], trials, spec.hyperparameter_columns())


def recorder(spec, tmp_path):
    sweep._local_study(spec, tmp_path)
    return sweep.RecordConfigurations(spec, str(tmp_path), str(tmp_path / sweep.STUDY_FILE))


def trials_of(tmp_path, spec):
    return optuna.load_study(study_name=spec.name, storage=journal(tmp_path / sweep.STUDY_FILE)).get_trials()


def test_each_member_of_a_pack_is_a_trial_of_its_own_recorded_once_however_often_its_trial_ends(tmp_path):
    spec = with_pack(parse(tiny_spec(**GRID)), 2)
    pack = space.grid_points(spec)[:2]
    for i, point in enumerate(pack):
        write_rows(tmp_path, spec, f"t1-{i}", point, ["completed", "completed"], val=0.5 + i / 10)
    trial = SimpleNamespace(config={"pack": pack}, trial_id="t1")
    callback = recorder(spec, tmp_path)
    callback.on_trial_complete(0, [], trial)
    callback.on_trial_complete(0, [], trial)  # Tune again (a resumed experiment)
    callback.on_trial_error(0, [], trial)
    pickle.loads(pickle.dumps(callback)).on_trial_complete(0, [], trial)  # as Tune restores it on resume
    done = trials_of(tmp_path, spec)
    assert [(t.state, t.params, t.value) for t in done] == [
        (TrialState.COMPLETE, pack[0], pytest.approx(0.5)), (TrialState.COMPLETE, pack[1], pytest.approx(0.6))]
    assert done[0].distributions == {"model": optuna.distributions.CategoricalDistribution(["m2", "baseline"]),
                                     "alpha": optuna.distributions.CategoricalDistribution([0.5, 5.0])}


def test_a_pack_member_that_diverged_is_recorded_then_and_one_still_running_later(tmp_path):
    spec = with_pack(parse(tiny_spec(**GRID)), 2)
    pack = space.grid_points(spec)[:2]
    write_rows(tmp_path, spec, "t1-0", pack[0], ["diverged", "diverged"])
    write_rows(tmp_path, spec, "t1-1", pack[1], ["running", "running"])
    trial = SimpleNamespace(config={"pack": pack}, trial_id="t1")
    callback = recorder(spec, tmp_path)
    callback.on_trial_result(0, [], trial, {"diverged": 2})
    assert [(t.state, t.params) for t in trials_of(tmp_path, spec)] == [(TrialState.FAIL, pack[0])]
    write_rows(tmp_path, spec, "t1-1", pack[1], ["completed", "completed"])
    callback.on_trial_complete(0, [], trial)
    assert [(t.state, t.params) for t in trials_of(tmp_path, spec)] == [(TrialState.FAIL, pack[0]), (TrialState.COMPLETE, pack[1])]


def test_a_grid_point_a_killed_driver_left_running_is_finished_not_joined_by_another_trial(tmp_path):
    spec = parse(tiny_spec(**GRID))
    local, _ = sweep._local_study(spec, tmp_path)
    space.enqueue_grid(local, spec)
    asked = local.ask()
    space.DefineByRun(spec)(asked)  # popped, then the driver died: Tune never heard of it
    point = dict(asked.params)
    write_rows(tmp_path, spec, "rerun1", point, ["completed", "completed"], val=0.7)
    recorder(spec, tmp_path).on_trial_complete(0, [], SimpleNamespace(config={RERUN_KEY: point}, trial_id="rerun1"))
    trials = trials_of(tmp_path, spec)
    assert len(trials) == len(space.grid_points(spec))
    assert [(t.number, t.state, t.value) for t in trials if t.state.is_finished()] == [(asked.number, TrialState.COMPLETE, pytest.approx(0.7))]
    assert trials[asked.number].user_attrs["test_acc"] == pytest.approx(0.6)


def test_a_configuration_the_scheduler_stopped_is_pruned_with_its_value_at_the_epoch_it_stopped(tmp_path):
    spec = parse(tiny_spec(**GRID))
    local, storage = sweep._local_study(spec, tmp_path)
    space.enqueue_grid(local, spec)
    asked = local.ask()
    space.DefineByRun(spec)(asked)
    asked.report(0.2, 1)  # what Tune passed on; the result it stopped the trial at, epoch 2, it does not
    stopped = study.summarise(spec, [{**row(0, status="running", val=0.5), "epochs": 2}], tune_finished=True)
    study.finish(local, storage, asked.number, stopped, "key")
    pruned = trials_of(tmp_path, spec)[asked.number]
    assert pruned.state == TrialState.PRUNED and pruned.value == pytest.approx(0.5) and pruned.intermediate_values == {1: 0.2, 2: 0.5}


def test_a_point_a_sampler_draws_twice_is_two_configurations(tmp_path):
    spec = parse(tiny_spec(models=["m2"], sampler="random", trials=2, search={"alpha": [0.5, 5.0]}))
    callback = recorder(spec, tmp_path)
    point = {"model": "m2", "alpha": 5.0}
    for config_id in ("a", "b"):
        write_rows(tmp_path, spec, config_id, point, ["completed", "completed"])
        callback.on_trial_complete(0, [], SimpleNamespace(config=point, trial_id=config_id))
    assert [t.params for t in trials_of(tmp_path, spec)] == [point, point]


# ------------------------------------------------------------------ tiny real sweeps, read as the dashboard reads them


def failing_once_at_epoch_2(marks: str):
    """A trainable whose every Tune trial fails once, at epoch 2, and is retried from its checkpoint."""

    def run(config, setup, data):
        from ray import tune

        from sweeper.trainable import train_configuration

        attempt = os.path.join(marks, tune.get_context().get_trial_id())

        def trained_epoch(epoch):
            if epoch == 2 and not os.path.exists(attempt):
                open(attempt, "w").close()
                raise RuntimeError("injected failure at epoch 2")

        train_configuration(config, setup, data, trained_epoch=trained_epoch)

    return run


SWEEPS = {
    "grid": tiny_spec(epochs=3, **GRID),
    "packed-grid": tiny_spec(epochs=3, pack=2, **GRID),
    "sampled": tiny_spec(models=["m2"], epochs=3, sampler="random", trials=3, search={"lr": {"low": 1e-4, "high": 1e-2, "log": True}}),
}


@pytest.mark.ray
@pytest.mark.parametrize("kind", sorted(SWEEPS))
def test_every_configuration_is_one_trial_with_its_outcome_also_after_a_retry(kind, tmp_path):
    import ray

    spec = parse(SWEEPS[kind])
    marks = tmp_path / "marks"
    marks.mkdir()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        outcome = sweep.run(spec, tmp_path / "out", quiet=True, trainable=failing_once_at_epoch_2(str(marks)))
    finally:
        ray.shutdown()
    assert outcome.errored == 0 and any(marks.iterdir())
    rows = pd.read_parquet(tmp_path / "out" / "trials")
    assert rows["restarts"].eq(1).all()  # every trial was retried once

    shown = optuna.load_study(study_name="tiny", storage=journal(tmp_path / "out" / sweep.STUDY_FILE)).get_trials()
    assert len(shown) == space.configuration_count(spec) == rows["config_id"].nunique()
    assert all(t.state == TrialState.COMPLETE and t.user_attrs["seeds"] == 2 for t in shown)
    by_config = rows.groupby("config_id")
    expected = sorted((g["point"].iloc[0], g["best_val_acc"].mean(), g["test_acc"].mean(), g["test_acc"].std(), g["best_val_acc"].std())
                      for _, g in by_config)
    recorded = sorted((space.point_key(t.params), t.value, t.user_attrs["test_acc"], t.user_attrs["test_acc_std"], t.user_attrs["val_acc_std"])
                      for t in shown)
    for got, want in zip(recorded, expected, strict=True):
        assert got[0] == want[0] and got[1:] == pytest.approx(want[1:])

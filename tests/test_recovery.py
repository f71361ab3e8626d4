"""What clusters do to a sweep: crashing trials, a killed driver. Real Ray on one machine."""
import os
import shutil
import signal
import subprocess
import sys
import time

import optuna
import pandas as pd
import pytest
from ray.tune.search import Searcher

from helpers import tiny_spec
from sweeper import load, searchers, space, sweep
from sweeper.spec import parse

pytestmark = pytest.mark.ray


def faulty(fail_at_epoch: int, always: set, once: set, marks: str):
    """A trainable that makes some configurations raise inside training, through the trainable's
    trained_epoch hook: `once` on the first attempt only, `always` on every attempt. Defined in a
    closure, so Ray ships it by value."""

    def run(config, setup, data):
        from ray import tune

        from sweeper.trainable import train_configuration

        alpha = config.get("alpha")
        attempt = os.path.join(marks, tune.get_context().get_trial_id())
        fail = alpha in always or (alpha in once and not os.path.exists(attempt))

        def trained_epoch(epoch):
            if fail and epoch == fail_at_epoch:
                open(attempt, "w").close()
                raise RuntimeError(f"injected failure at epoch {epoch}")

        train_configuration(config, setup, data, trained_epoch=trained_epoch)

    return run


def recorded(out, name="tiny") -> list:
    """The trials of the results directory's study, as optuna-dashboard reads them."""
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(out / sweep.STUDY_FILE)))
    return optuna.load_study(study_name=name, storage=storage).get_trials()


def assert_each_configuration_recorded_once(out, trials: pd.DataFrame, values: bool = True) -> None:
    """One finished trial per configuration, COMPLETE, with (`values`) the mean over seeds its rows give."""
    shown = recorded(out)
    assert len(shown) == trials["config_id"].nunique() and all(t.state.name == "COMPLETE" for t in shown)
    means = trials.groupby("point")["best_val_acc"].mean()
    assert sorted(space.point_key(t.params) for t in shown) == sorted(means.index)
    for t in shown if values else ():
        assert t.value == pytest.approx(means[space.point_key(t.params)])


def test_a_crashing_trial_is_retried_from_its_checkpoint_and_one_that_always_crashes_ends_failed(tmp_path):
    import ray

    spec = parse(tiny_spec(models=["m2"], seeds=[0, 1], epochs=3, search={"alpha": [0.5, 5.0, 50.0]}, retries=2, pack=1))  # a trial each
    marks = tmp_path / "marks"
    marks.mkdir()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        outcome = sweep.run(spec, tmp_path / "out", quiet=True, trainable=faulty(2, always={50.0}, once={5.0}, marks=str(marks)))
    finally:
        ray.shutdown()
    assert (outcome.configurations, outcome.errored) == (3, 1)
    trials = pd.read_parquet(tmp_path / "out" / "trials").set_index(["alpha", "seed"]).sort_index()
    assert trials.loc[5.0, "status"].tolist() == ["completed", "completed"]  # retried from its epoch-1 checkpoint
    assert trials.loc[5.0, "epochs"].tolist() == [3, 3] and trials.loc[5.0, "restarts"].tolist() == [1, 1]
    assert trials.loc[0.5, "restarts"].tolist() == [0, 0]
    assert trials.loc[50.0, "status"].tolist() == ["failed", "failed"]
    assert trials.loc[50.0, "error"].tolist() == ["RuntimeError: injected failure at epoch 2"] * 2
    assert trials.loc[0.5, "status"].tolist() == ["completed", "completed"]
    epochs = pd.read_parquet(tmp_path / "out" / "epochs")
    assert not epochs.duplicated(["trial_id", "epoch"]).any()  # the retry did not leave a second copy of epoch 1
    assert sorted(epochs[epochs["trial_id"] == trials.loc[(5.0, 0), "trial_id"]]["epoch"]) == [1, 2, 3]
    shown = {t.params["alpha"]: t for t in recorded(tmp_path / "out")}  # one trial each, the retried one too
    assert len(recorded(tmp_path / "out")) == 3 and {a: t.state.name for a, t in shown.items()} == {
        0.5: "COMPLETE", 5.0: "COMPLETE", 50.0: "FAIL"}
    assert shown[50.0].user_attrs["error"] == "RuntimeError: injected failure at epoch 2"


def test_a_trial_that_fails_keeps_the_weights_of_the_epoch_its_rows_call_best(tmp_path):
    """It fails after training epoch 1, which improves on nothing before it: the failed row names epoch 1 as its best,
    and that epoch's weights are kept, as they would have been had the epoch finished."""
    import ray

    spec = parse(tiny_spec(models=["m2"], seeds=[0], epochs=3, search={"alpha": [50.0]}, retries=0, pack=1))
    marks = tmp_path / "marks"
    marks.mkdir()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        outcome = sweep.run(spec, tmp_path / "out", quiet=True, trainable=faulty(1, always={50.0}, once=set(), marks=str(marks)))
    finally:
        ray.shutdown()
    assert outcome.errored == 1
    row = pd.read_parquet(tmp_path / "out" / "trials").iloc[0]
    assert (row["status"], row["best_epoch"]) == ("failed", 1)
    assert load(tmp_path / "out", row["trial_id"]).about["epoch"] == 1


def killed_and_resumed(path, out, checkpoints_lost: bool) -> dict:
    """Run the spec at `path`, SIGKILL its driver once a configuration is done and another under way, and resume it:
    the files of the configurations done before the kill, with their times."""
    driver = subprocess.Popen([sys.executable, "-m", "sweeper", "run", str(path), "--out", str(out), "--quiet"],
                              start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    finished = {}
    while time.monotonic() < deadline:  # wait for one configuration done and the next one under way
        files = sorted((out / "trials").glob("*.parquet")) if (out / "trials").is_dir() else []
        try:  # the sweep replaces these files as it goes: one replaced while pandas reads it can read as damaged
            frames = [pd.read_parquet(f) for f in files]
        except OSError:  # read again at the next poll
            frames = files = []
        if files:
            done = [f for f, frame in zip(files, frames) if frame["status"].eq("completed").all()]
            running = {c for frame in frames if not frame["status"].eq("completed").all() for c in frame["config_id"]}
            if done and running and (checkpoints_lost or all(_tune_saved_after_a_checkpoint(out, c) for c in running)):
                finished = {f.name: f.stat().st_mtime_ns for f in done}
                break
        time.sleep(0.5)
    assert finished, "the sweep did not get under way"
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray it started, at once
    driver.wait()
    if checkpoints_lost:  # what a kill between Tune deleting an old checkpoint and saving its state leaves
        for checkpoint in (out / "tune").glob("*/checkpoint_*"):
            shutil.rmtree(checkpoint)

    resumed = subprocess.run([sys.executable, "-m", "sweeper", "resume", str(out)], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    return finished


def _tune_saved_after_a_checkpoint(out, config_id: str) -> bool:
    """Tune's experiment state names the configuration and was saved after its first checkpoint: what a resume
    needs to continue it (Tune saves that state every few seconds, not at every checkpoint)."""
    trial_id = config_id.split("-")[0]  # a pack's member: <Tune trial id>-<position>
    states = list((out / "tune").glob("experiment_state-*.json"))
    checkpoints = list((out / "tune").glob(f"*{trial_id}*/checkpoint_*"))
    if not states or not checkpoints:
        return False
    try:
        return trial_id in states[0].read_text() and states[0].stat().st_mtime > min(c.stat().st_mtime for c in checkpoints)
    except FileNotFoundError:  # replaced while read
        return False


@pytest.mark.parametrize("checkpoints_lost", [False, True], ids=["checkpoints-kept", "checkpoints-lost"])
def test_a_killed_driver_is_resumed_without_rerunning_finished_trials(write_spec, tmp_path, checkpoints_lost):
    spec = tiny_spec(models=["m2"], seeds=[0], epochs=12, max_concurrent=1, search={"alpha": [0.1, 1.0, 10.0, 100.0]},
                     batch={"labelled": 25, "unlabelled": 100}, pack=1)
    path, out = write_spec(spec), tmp_path / "out"
    finished = killed_and_resumed(path, out, checkpoints_lost)
    trials = pd.read_parquet(out / "trials")
    assert sorted(trials["alpha"]) == [0.1, 1.0, 10.0, 100.0] and trials["status"].eq("completed").all()
    assert trials["trial_id"].is_unique and trials["epochs"].eq(12).all()
    if not checkpoints_lost:  # the interrupted configuration continued from its checkpoint ...
        assert trials["restarts"].sum() >= 1
    else:  # ... or, with its checkpoint gone, started over
        assert trials["restarts"].sum() == 0
    for name, mtime in finished.items():  # finished configurations were not rerun
        assert (out / "trials" / name).stat().st_mtime_ns == mtime
    epochs = pd.read_parquet(out / "epochs")
    assert len(epochs) == 4 * 12 and not epochs.duplicated(["trial_id", "epoch"]).any()
    assert_each_configuration_recorded_once(out, trials)


def test_a_grid_searcher_ends_the_sweep_when_its_queue_is_empty(tmp_path):
    spec = parse(tiny_spec(models=["m2"], search={"alpha": [0.5, 5.0]}))
    searcher = sweep._searcher(spec, tmp_path, str(tmp_path), size=1)  # a grid asks one point at a time
    assert isinstance(searcher, searchers.GridSearch)
    suggested = [searcher.suggest(f"t{i}") for i in range(3)]
    assert suggested[:2] == [{"model": "m2", "alpha": 0.5}, {"model": "m2", "alpha": 5.0}]
    assert suggested[2] == Searcher.FINISHED  # not a point the sampler made up
    assert [t.state.name for t in recorded(tmp_path)] == ["RUNNING", "RUNNING"]  # and no trial asked past the queue


def test_resume_runs_again_the_grid_points_no_configuration_finished(tmp_path):
    """What a kill leaves when Tune saved its state before the Optuna study handed out more points:
    a point with no rows at all, and one whose rows stopped mid-run under a trial Tune never knew."""
    import ray

    spec = parse(tiny_spec(models=["m2"], seeds=[0, 1], epochs=2, search={"alpha": [0.5, 5.0, 50.0]}, pack=1))
    out = tmp_path / "out"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        sweep.run(spec, out, quiet=True)
        trials = pd.read_parquet(out / "trials").set_index("alpha")
        files = {alpha: out / "trials" / f"{trials.loc[alpha, 'config_id'].iloc[0]}.parquet" for alpha in (0.5, 5.0, 50.0)}
        kept = files[0.5].stat().st_mtime_ns
        for table in ("trials", "epochs"):  # alpha 5: never ran as far as the rows know
            (out / table / files[5.0].name).unlink()
        killed = pd.read_parquet(files[50.0])  # alpha 50: killed at epoch 1 under an id Tune does not know
        killed["status"], killed["epochs"] = "running", 1
        orphan = out / "trials" / "0rphan.parquet"
        killed.assign(config_id="0rphan", trial_id=["0rphan-seed0", "0rphan-seed1"]).to_parquet(orphan, index=False)
        files[50.0].unlink()
        (out / "epochs" / files[50.0].name).rename(out / "epochs" / "0rphan.parquet")
        outcome = sweep.resume(out)
    finally:
        ray.shutdown()
    assert (outcome.configurations, outcome.errored) == (3, 0)
    trials = pd.read_parquet(out / "trials")
    assert sorted(trials["alpha"]) == [0.5, 0.5, 5.0, 5.0, 50.0, 50.0] and trials["status"].eq("completed").all()
    assert trials["trial_id"].is_unique and not orphan.exists()
    assert files[0.5].stat().st_mtime_ns == kept  # the finished configuration was left alone
    epochs = pd.read_parquet(out / "epochs")
    assert len(epochs) == 3 * 2 * 2 and not epochs.duplicated(["trial_id", "epoch"]).any()
    assert_each_configuration_recorded_once(out, trials, values=False)  # recorded before the rows were taken: not again

"""Experiment trackers: the spec key, logging each epoch once (no Ray), and real sweeps into MLflow and W&B (offline)."""
import json
import math
import os
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from helpers import tiny_spec
from sweeper import results, sweep, tracking
from sweeper.errors import SpecError, SweeperError
from sweeper.spec import Tracking, parse, to_yaml

HYPER = {"alpha": "number", "hidden": "number"}


# ---------------------------------------------------------------------------- the spec key


@pytest.mark.parametrize("given, parsed", [
    ("mlflow", Tracking(kind="mlflow")),
    ("wandb", Tracking(kind="wandb")),
    ({"kind": "mlflow", "uri": "http://host:5000", "experiment": "E"}, Tracking(kind="mlflow", uri="http://host:5000", experiment="E")),
    ({"kind": "wandb", "project": "P", "entity": "E", "mode": "offline"}, Tracking(kind="wandb", project="P", entity="E", mode="offline")),
])
def test_tracking_is_read_and_written_back(given, parsed):
    spec = parse(tiny_spec(tracking=given))
    assert spec.tracking == parsed
    assert parse(yaml.safe_load(to_yaml(spec))) == spec


def test_a_spec_without_tracking_keeps_its_yaml():
    assert "tracking" not in to_yaml(parse(tiny_spec())) and parse(tiny_spec(tracking=None)).tracking is None


@pytest.mark.parametrize("given, message", [
    ("neptune", "tracking.kind: unknown tracker 'neptune'; allowed: mlflow, wandb"),
    (3, "tracking: expected mlflow, wandb, or a mapping {kind: ..., uri: ..., experiment: ..., project: ..., entity: ..., mode: ...}"),
    ({"uri": "http://host"}, "tracking: missing required key 'kind'; required keys: kind"),
    ({"kind": "mlflow", "project": "P"}, "tracking.project: is not a key of mlflow; mlflow takes: kind, uri, experiment"),
    ({"kind": "wandb", "mode": "loud"}, "tracking.mode: unknown W&B mode 'loud'; allowed: online, offline, disabled"),
    ({"kind": "mlflow", "uri": 5}, "tracking.uri: expected text, got 5"),
    ({"kind": "mlflow", "uri": "https://me:s3cret@host:5000"},
     "tracking.uri: https://me:***@host:5000 holds a password or token, and the spec is saved with the results; "
     "give it as $MLFLOW_TRACKING_USERNAME and $MLFLOW_TRACKING_PASSWORD (or $MLFLOW_TRACKING_TOKEN)"),
])
def test_a_bad_tracking_value_is_one_line(given, message):
    with pytest.raises(SpecError) as info:
        parse(tiny_spec(tracking=given))
    assert str(info.value) == f"<spec>: {message}" and "s3cret" not in str(info.value)


def test_a_missing_library_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed: importing it raises ImportError
    with pytest.raises(SweeperError) as info:
        tracking.check(parse(tiny_spec(tracking="wandb")))
    assert str(info.value) == "<spec>: tracking: wandb is not installed; install it with pip install -e '.[wandb]'"


# ---------------------------------------------------------------------------- each epoch once, without Ray


class Recorded:
    """A tracker that keeps what it is told; `holds` plays the tracker's own record of a run's last epoch."""

    def __init__(self, holds=None):
        self.calls, self.holds = [], holds or {}

    def group(self, config_id, params, tags):
        self.calls.append(("group", config_id, params))
        return f"parent-{config_id}"

    def run(self, group, trial_id, params, tags):
        self.calls.append(("run", group, trial_id, params))
        return f"run-{trial_id}"

    def log(self, run, epochs):
        self.calls.append(("log", run, [epoch for epoch, _ in epochs]))

    def logged(self, run):
        return self.holds.get(run)

    def end(self, run, final, status, state):
        self.calls.append(("end", run, final.get("final/test_acc"), status, state))

    def end_group(self, group, final, status, state):
        mean = final.get("final/test_acc")
        self.calls.append(("end_group", group, None if mean is None else round(mean, 6), status, state))

    def close(self):
        pass


def trials(epochs: int, status="running", seeds=(0, 1)) -> list[dict]:
    return [{"trial_id": f"c-seed{s}", "config_id": "c", "model": "m2", "seed": s, "dataset": "digits", "label_count": 50,
             "point": '{"alpha": 0.5}', "alpha": 0.5, "hidden": 16.0, "status": status, "best_val_acc": 0.8, "test_acc": (0.7, 0.8)[s],
             "best_epoch": 1, "epochs": epochs, "wall_s": 1.0} for s in seeds]


def epochs(upto: int, val_acc=0.5, seeds=(0, 1)) -> list[dict]:
    return [{"trial_id": f"c-seed{s}", "epoch": e, "loss": 1.0, "recon": math.nan, "val_acc": val_acc, "wall_s": 0.1}
            for s in seeds for e in range(1, upto + 1)]


def reader(rows: list[dict], asked: list):
    def read(wanted: range) -> list[dict]:
        asked.append((wanted.start, wanted.stop))
        return [r for r in rows if r["epoch"] in wanted]
    return read


def checked_in_a_process_of_its_own(spec: dict, **env) -> str:
    """tracking.check's outcome, in a process of its own: W&B keeps what its first call found (a key, its
    settings) for the whole process, which would reach the tests after this one."""
    code = ("import json, sys; from sweeper import tracking; from sweeper.spec import parse; from sweeper.errors import SweeperError\n"
            "try:\n    tracking.check(parse(json.loads(sys.argv[1]))); print('taken')\nexcept SweeperError as e:\n    print(e)")
    # none of this session's W&B state either: an earlier test's WANDB_SERVICE would send the child to that test's service
    environment = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")} | env
    done = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], capture_output=True, text=True, timeout=120, env=environment)
    assert done.stderr == "", done.stderr
    return done.stdout.strip()


def test_a_tracker_that_would_stop_the_sweep_is_refused_before_it_starts(tmp_path):
    dead = parse(tiny_spec(tracking={"kind": "mlflow", "uri": "http://127.0.0.1:1/hunter2"}))
    with pytest.raises(SweeperError) as refused:
        tracking.check(dead)
    assert str(refused.value).startswith("<spec>: tracking: mlflow: http://127.0.0.1:1/hunter2 does not answer, or refuses this client (")
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ  # MLflow's settings left as they were
    home = str(tmp_path)  # no ~/.netrc
    assert "wandb runs online but finds no API key here" in checked_in_a_process_of_its_own(tiny_spec(tracking="wandb"), HOME=home)
    assert checked_in_a_process_of_its_own(tiny_spec(tracking={"kind": "wandb", "mode": "offline"}), HOME=home) == "taken"
    assert checked_in_a_process_of_its_own(tiny_spec(tracking="wandb"), HOME=home, WANDB_API_KEY="0" * 40) == "taken"
    assert checked_in_a_process_of_its_own(tiny_spec(tracking="wandb"), HOME=home, WANDB_DISABLED="true") == "taken"
    assert "wandb cannot log in" in checked_in_a_process_of_its_own(tiny_spec(tracking="wandb"), HOME=home, WANDB_API_KEY="abc")
    tracking.check(dead, reach=False)  # a resume goes on while the server is away


def test_mlflows_default_store_stays_in_a_results_directory_named_with_percent_and_question_marks(tmp_path):
    out = tmp_path / "r%41x?1"
    out.mkdir()
    tracking.MLflowTracker(Tracking(kind="mlflow"), "tiny", out)
    assert sorted(p.name for p in tmp_path.rglob("*.db")) == ["mlflow.db"] and (out / "mlflow.db").is_file()


def test_a_tracker_that_failed_to_open_is_not_opened_again_at_every_result(tmp_path, monkeypatch):
    opened = []

    class Failing:
        def __init__(self, *args):
            opened.append(1)
            raise ConnectionError("no server")

    monkeypatch.setitem(tracking.TRACKER_TYPES, "mlflow", Failing)
    callback = tracking.TrackSeeds(parse(tiny_spec(tracking="mlflow")), str(tmp_path), str(tmp_path))
    for _ in range(5):
        callback._safely(lambda follow: None)
    assert opened == [1]
    callback._open_again_at = 0.0  # the wait is over
    callback._safely(lambda follow: None)
    assert opened == [1, 1]
    callback.on_experiment_end([])  # the last chance: tried whatever the back-off says
    assert opened == [1, 1, 1]


def test_configurations_that_ended_while_the_tracker_was_away_are_logged_at_the_end(tmp_path, monkeypatch):
    from helpers import HYPER, epoch_rows, trial_row

    results.write_configuration(tmp_path, "c0", epoch_rows("c0", "baseline", 0), [trial_row("c0", "baseline", 0)], HYPER)
    updated, away = [], [True]

    class Sometimes:
        def __init__(self, *args):
            if away[0]:
                raise ConnectionError("no server")

        def close(self):
            pass

    monkeypatch.setitem(tracking.TRACKER_TYPES, "mlflow", Sometimes)
    callback = tracking.TrackSeeds(parse(tiny_spec(tracking="mlflow")), str(tmp_path), str(tmp_path))
    monkeypatch.setattr(callback, "_update_configuration", lambda follow, config_id, done: updated.append(config_id))
    callback._safely(lambda follow: None)  # c0 ends while the server is away: no record names it
    away[0] = False
    callback.on_experiment_end([])
    assert updated == ["c0"]


def test_each_epoch_is_logged_once_through_retries_and_a_restart(tmp_path):
    spec = parse(tiny_spec(tracking="mlflow"))
    records = tracking.Records(tmp_path / "tracking")
    tracker, asked = Recorded(), []
    follow = tracking.TrackerLog(tracker, records, spec)

    follow.update("c", trials(2), reader(epochs(2), asked), tune_done=False)
    follow.update("c", trials(2), reader(epochs(2), asked), tune_done=False)  # the same rows again: nothing new
    follow.update("c", trials(2, "failed"), reader(epochs(2), asked), tune_done=False)  # a failure Tune will retry
    follow.update("c", trials(3), reader(epochs(3, val_acc=0.6), asked), tune_done=False)  # the retry trains 2 and 3 again
    assert tracker.calls == [
        ("group", "c", {"model": "m2", "dataset": "digits", "label_count": 50, "alpha": 0.5, "hidden": 16.0}),
        ("run", "parent-c", "c-seed0", {"model": "m2", "dataset": "digits", "label_count": 50, "alpha": 0.5, "hidden": 16.0, "seed": 0}),
        ("run", "parent-c", "c-seed1", {"model": "m2", "dataset": "digits", "label_count": 50, "alpha": 0.5, "hidden": 16.0, "seed": 1}),
        ("log", "run-c-seed0", [1, 2]), ("log", "run-c-seed1", [1, 2]),
        ("log", "run-c-seed0", [3]), ("log", "run-c-seed1", [3]),
    ]
    assert asked == [(1, 3), (3, 4)]  # only epochs not logged are read (none while the rows say nothing new)

    # a new driver (sweeper resume) from the records; the tracker holds one epoch more than they say (a crash between the two)
    tracker = Recorded(holds={"run-c-seed0": 4})
    follow = tracking.TrackerLog(tracker, tracking.Records(tmp_path / "tracking"), spec)
    for _ in range(2):
        follow.update("c", trials(5, "completed"), reader(epochs(5), asked), tune_done=True)
    assert tracker.calls == [
        ("log", "run-c-seed0", [5]), ("end", "run-c-seed0", 0.7, "completed", "FINISHED"),
        ("log", "run-c-seed1", [4, 5]), ("end", "run-c-seed1", 0.8, "completed", "FINISHED"),
        ("end_group", "parent-c", 0.75, "completed", "FINISHED"),
    ]
    saved = json.loads((tmp_path / "tracking" / "c.json").read_text())
    assert saved["ended"] == "COMPLETE" and {t: s["epoch"] for t, s in saved["seeds"].items()} == {"c-seed0": 5, "c-seed1": 5}


def test_a_seed_ends_when_its_rows_say_so_and_a_failure_only_once_tune_gives_up(tmp_path):
    spec = parse(tiny_spec(tracking="mlflow"))
    tracker = Recorded()
    follow = tracking.TrackerLog(tracker, tracking.Records(tmp_path), spec)
    diverged = trials(1, seeds=(0,)) + [{**trials(1, "diverged", seeds=(1,))[0], "test_acc": math.nan}]
    follow.update("c", diverged, reader(epochs(1), []), tune_done=False)
    assert [c for c in tracker.calls if c[0] == "end"] == [("end", "run-c-seed1", None, "diverged", "FAILED")]
    follow.update("c", trials(1, "failed", seeds=(0,)) + diverged[1:], reader(epochs(1), []), tune_done=False)
    assert len([c for c in tracker.calls if c[0] == "end"]) == 1  # Tune may retry it
    follow.update("c", trials(1, "failed", seeds=(0,)) + diverged[1:], reader(epochs(1), []), tune_done=True)
    assert tracker.calls[-2:] == [("end", "run-c-seed0", 0.7, "failed", "FAILED"), ("end_group", "parent-c", None, "failed", "FAILED")]


def test_runs_of_removed_rows_are_ended(tmp_path):
    spec = parse(tiny_spec(tracking="mlflow"))
    tracker = Recorded()
    follow = tracking.TrackerLog(tracker, tracking.Records(tmp_path), spec)
    follow.update("c", trials(1), reader(epochs(1), []), tune_done=False)
    follow.end_removed(lambda config_id: True)
    assert tracker.calls[-1][0] == "log"
    follow.end_removed(lambda config_id: False)  # sweeper resume deleted them, to run the configuration again
    assert [c[3] for c in tracker.calls[-3:]] == ["removed"] * 3 and tracking.Records(tmp_path).open_ones() == []


def test_an_unreadable_record_does_not_keep_the_other_removed_configurations_runs_open(tmp_path):
    spec = parse(tiny_spec(tracking="mlflow"))
    tracker = Recorded()
    follow = tracking.TrackerLog(tracker, tracking.Records(tmp_path), spec)
    follow.update("z", trials(1), reader(epochs(1), []), tune_done=False)
    (tmp_path / "a.json").write_text("{")  # sorted before z
    with pytest.raises(SweeperError, match=r"a.json: not the record of logged runs sweeper writes; remove it$"):
        follow.end_removed(lambda config_id: False)
    assert [c[3] for c in tracker.calls[-3:]] == ["removed"] * 3  # z's two runs and its group all the same


def test_several_unreadable_records_are_named_in_one_line(tmp_path):
    spec = parse(tiny_spec(tracking="mlflow"))
    follow = tracking.TrackerLog(Recorded(), tracking.Records(tmp_path), spec)
    for n in range(12):
        (tmp_path / f"c{n:02d}.json").write_text("{")
    with pytest.raises(SweeperError) as caught:
        follow.end_removed(lambda config_id: False)
    assert str(caught.value) == (f"12 files in {tmp_path} are not records of logged runs sweeper writes; remove them: "
                                 + ", ".join(f"c{n:02d}.json" for n in range(10)) + " and 2 more")


def test_epoch_rows_are_found_in_parts_and_in_the_whole_file_by_name(tmp_path):
    def rows(upto, status):
        trial = {"trial_id": "c-seed0", "config_id": "c", "model": "m2", "seed": 0, "status": status, "epochs": upto}
        return [{"trial_id": "c-seed0", "config_id": "c", "model": "m2", "seed": 0, "epoch": e, "loss": float(e)}
                for e in range(1, upto + 1)], [trial]

    for epoch in (1, 2):
        results.write_configuration(tmp_path, "c", *rows(epoch, "running"), HYPER, epoch=epoch)  # a part per epoch
    assert [r["epoch"] for r in results.configuration_epoch_rows(str(tmp_path), "c", range(2, 3))] == [2]
    results.write_configuration(tmp_path, "c", *rows(3, "completed"), HYPER, epoch=3)  # ended: one whole file
    assert sorted(r["epoch"] for r in results.configuration_epoch_rows(str(tmp_path), "c", range(1, 4))) == [1, 2, 3]
    assert results.configuration_epoch_rows(str(tmp_path), "other", range(1, 4)) == []


# ---------------------------------------------------------------------------- real sweeps


@pytest.fixture
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def fails_once(at_epoch: int, alpha: float, marks: str):
    """A trainable whose configuration with `alpha` raises at `at_epoch` on its first attempt (Ray ships it by value)."""

    def run(config, setup, data):
        from ray import tune

        from sweeper.trainable import train_configuration

        attempt = os.path.join(marks, tune.get_context().get_trial_id())
        fail = config.get("alpha") == alpha and not os.path.exists(attempt)

        def trained_epoch(epoch):
            if fail and epoch == at_epoch:
                open(attempt, "w").close()
                raise RuntimeError("injected failure")

        train_configuration(config, setup, data, trained_epoch=trained_epoch)

    return run


@pytest.mark.ray
def test_a_sweep_logs_a_run_per_seed_under_a_parent_per_configuration_in_mlflow(tmp_path, local_ray):
    from mlflow import MlflowClient

    marks = tmp_path / "marks"
    marks.mkdir()
    spec = parse(tiny_spec(tracking="mlflow", epochs=3, pack=1, retries=1))
    out = tmp_path / "out"
    outcome = sweep.run(spec, out, quiet=True, trainable=fails_once(2, 5.0, str(marks)))  # alpha 5 retried from epoch 1
    assert outcome.errored == 0
    trials = pd.read_parquet(out / "trials").set_index("trial_id")
    epochs = pd.read_parquet(out / "epochs")
    assert trials["restarts"].max() == 1

    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    parents = {r.info.run_id: r for r in runs if "mlflow.parentRunId" not in r.data.tags}
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert sorted(r.info.run_name for r in parents.values()) == sorted(trials["config_id"].unique())
    assert sorted(r.info.run_name for r in children) == sorted(trials.index)
    hyper = list(spec.hyperparameter_columns())
    for child in children:
        row = trials.loc[child.info.run_name]
        parent = parents[child.data.tags["mlflow.parentRunId"]]
        assert parent.info.run_name == row["config_id"] and child.info.status == parent.info.status == "FINISHED"
        expected = {k: str(row[k]) for k in ("model", "dataset", "label_count", "batch_labelled", "batch_unlabelled", *hyper)
                    if row[k] is not None and row[k] == row[k]}  # not null, not NaN
        assert child.data.params == {**expected, "seed": str(row["seed"])} and parent.data.params == expected
        mine = epochs[epochs["trial_id"] == child.info.run_name].sort_values("epoch")
        for metric in ("val_acc", "loss", "wall_s"):
            history = client.get_metric_history(child.info.run_id, metric)
            assert [m.step for m in history] == [1, 2, 3]  # one value per epoch, the retried one too
            assert [m.value for m in history] == pytest.approx(mine[metric].tolist())
        assert child.data.metrics["final/test_acc"] == pytest.approx(row["test_acc"])
        assert child.data.metrics["final/best_epoch"] == row["best_epoch"] and child.data.tags["status"] == "completed"
        seeds = trials[trials["config_id"] == row["config_id"]]
        assert parent.data.metrics["final/test_acc"] == pytest.approx(seeds["test_acc"].mean())
    assert json.loads((out / "tracking" / f"{trials['config_id'].iloc[0]}.json").read_text())["ended"] == "COMPLETE"


@pytest.mark.ray
def test_a_sweep_logs_a_wandb_run_per_seed_offline_and_reaches_no_network(tmp_path, local_ray, monkeypatch):
    for name, value in {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path / "wandb-dir"), "WANDB_SILENT": "true",
                        "WANDB_BASE_URL": "http://127.0.0.1:9"}.items():  # should it try to reach a server: none there
        monkeypatch.setenv(name, value)
    (tmp_path / "wandb-dir").mkdir()
    reached = []

    def audit(event, args):  # every connection this process opens, but local ones (Ray's, W&B's own service)
        if event == "socket.connect" and isinstance(args[1], tuple) and args[1][0] not in ("127.0.0.1", "::1", "localhost"):
            reached.append(args[1])

    sys.addaudithook(audit)  # stays for the process: it only notes
    spec = parse(tiny_spec(tracking="wandb", models=["baseline"], search={}, fixed={"hidden": 16}))
    out = tmp_path / "out"
    assert sweep.run(spec, out, quiet=True).errored == 0
    trials = pd.read_parquet(out / "trials").set_index("trial_id")
    found = sorted((tmp_path / "wandb-dir" / "wandb").glob("offline-run-*"))
    assert len(found) == len(trials) == 2 and reached == []

    for directory in found:
        printed = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", str(directory), "--json"],
                                 capture_output=True, text=True, timeout=120, check=True).stdout
        records = [json.loads(line) for line in printed.splitlines() if line.strip()]
        run = next(r["run"] for r in records if r["type"] == "run")
        row = trials.loc[run["display_name"]]
        assert run["run_group"] == row["config_id"] and run["project"] == "tiny"
        assert run["config"]["update"]["seed"] == row["seed"] and run["config"]["update"]["model"] == "baseline"
        history = [r["history"] for r in records if r["type"] == "history"]
        assert [h["step"]["num"] for h in history] == [1, 2] and all("val_acc" in h["item"] for h in history)
        summary = {k: v for r in records if r["type"] == "summary" for k, v in r["summary"]["update"].items()}
        assert summary["final/test_acc"] == pytest.approx(row["test_acc"]) and summary["status"] == "completed"
        assert [r["exit"].get("exit_code", 0) for r in records if r["type"] == "exit"] == [0]
        assert next(r for r in records if r["type"] == "run")["run"]["telemetry"]["feature"]["offline"] is True


def terminated_in_tune_state(out) -> set[str]:
    """The Tune trials that Tune's saved experiment state has TERMINATED: those a resume does not start again."""
    found = set()
    for path in (out / "tune").glob("experiment_state-*.json"):
        try:
            saved = [json.loads(trial[0]) for trial in json.loads(path.read_text())["trial_data"]]
        except (FileNotFoundError, ValueError, KeyError):  # replaced while read
            continue
        found |= {trial["trial_id"] for trial in saved if trial.get("status") == "TERMINATED"}
    return found


@pytest.mark.ray
def test_a_killed_and_resumed_sweep_logs_each_epoch_once(write_spec, tmp_path):
    import signal
    import time

    from mlflow import MlflowClient

    spec = tiny_spec(models=["m2"], seeds=[0], epochs=8, max_concurrent=1, pack=1, search={"alpha": [0.1, 1.0, 10.0]},
                     batch={"labelled": 25, "unlabelled": 100}, tracking="mlflow")
    path, out = write_spec(spec), tmp_path / "out"
    driver = subprocess.Popen([sys.executable, "-m", "sweeper", "run", str(path), "--out", str(out), "--quiet"],
                              start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "TUNE_GLOBAL_CHECKPOINT_S": "1"})  # Tune saves its state every second
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and driver.poll() is None:  # a configuration done (in Tune's saved state too), the next under way
        records = {p.stem: json.loads(p.read_text()) for p in (out / "tracking").glob("*.json")} if (out / "tracking").is_dir() else {}
        done = [c for c, r in records.items() if r["ended"] and c.split("-")[0] in terminated_in_tune_state(out)]
        if done and any(not r["ended"] and s["epoch"] >= 2 for r in records.values() for s in r["seeds"].values()):
            break
        time.sleep(0.2)
    else:
        pytest.fail("the sweep did not get under way")
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray it started, at once
    driver.wait()

    resumed = subprocess.run([sys.executable, "-m", "sweeper", "resume", str(out)], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "tracking:" not in resumed.stderr
    trials = pd.read_parquet(out / "trials")
    assert trials["status"].eq("completed").all() and len(trials) == 3
    client = MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id], max_results=100)
    children = {r.info.run_name: r for r in runs if "mlflow.parentRunId" in r.data.tags and r.data.tags.get("status") != "removed"}
    assert sorted(children) == sorted(trials["trial_id"])
    for run in children.values():
        assert [m.step for m in client.get_metric_history(run.info.run_id, "val_acc")] == list(range(1, 9))
        assert run.info.status == "FINISHED"
    # a configuration whose checkpoint was lost runs again under a new id: its first runs end as removed
    assert all(r.info.status == "KILLED" for r in runs if r.data.tags.get("status") == "removed")


def test_a_record_of_logged_runs_that_is_not_sweepers_is_said_in_one_line_and_a_pipe_is_never_read(tmp_path):
    records = tracking.Records(tmp_path)
    (tmp_path / "torn.json").write_text('{"group": "g", "seeds": ')  # cut short by hand, or another program's file
    (tmp_path / "list.json").write_text("[1, 2]")
    os.mkfifo(tmp_path / "pipe.json")  # reading it would wait for a writer for ever
    assert records.open_ones() == ["list", "torn"]  # unreadable: still open, so that loading it says why
    for name in ("torn", "list"):
        with pytest.raises(SweeperError, match=rf"{name}.json: not the record of logged runs sweeper writes; remove it$"):
            records.load(name)
    assert records.load("pipe") is None

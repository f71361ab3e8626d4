"""Experiment trackers (MLflow, W&B): listeners on the rows a sweep already writes, not a second record.

With `tracking:` in a spec, the driver's TrackSeeds callback reads, after each Tune result, the rows its
trial has just written for each of its configurations (results.py), and logs what is new:

- one tracker run per seed (a trial of the results, `<config_id>-seed<N>`), grouped by configuration:
  in MLflow a parent run per configuration (named by its config id) with a child run per seed (the
  `mlflow.parentRunId` tag), in W&B a run per seed with `group=<config_id>`;
- as parameters, the configuration's model, data settings and hyperparameters (a seed's run: and its seed);
- each epoch's metrics (loss and its parts, val_acc, test_acc, entropy and MI of q(y|x) on unlabelled
  data, wall_s), at step = epoch;
- once a seed ends, `final/test_acc` (at its best validation epoch), `final/best_val_acc`, `final/best_epoch`,
  `final/epochs`, `final/wall_s` and its status; once every seed has, the configuration's means and spreads
  over seeds on its parent run (MLflow), as optuna-dashboard shows them (study.summarise).

Each epoch is logged once. DIR/tracking/<config_id>.json records a configuration's runs and the last epoch
logged of each seed, rewritten after each log, and only later epochs are logged: a retried trial trains
again the epochs after its checkpoint, and a resumed sweep restarts this callback, and neither logs an epoch
twice. After a restart MLflow's own record counts too, for a driver killed between logging and recording:
the last step of a run's wall_s, a metric every epoch has (MLflow commits a batch's metrics at once).

A tracker that fails (a server down) does not stop the sweep: one line on stderr, and what was not logged is
logged at a later result. mlflow and wandb are imported here only, when a spec names them.
"""
from __future__ import annotations

import importlib
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from ray import tune

from . import redact, results, study
from .errors import SweeperError, first_line
from .spec import Spec, Tracking
from .ids import trial_config_ids

RECORDS = "tracking"  # DIR/tracking/<config_id>.json: what has been logged of a configuration
EVERY_EPOCH = "wall_s"  # the metric every epoch row has (train.py times every epoch): its last step is the last epoch logged
EPOCH_METRICS = tuple(name for name, _ in results.EPOCH_FIELDS if name not in {"trial_id", "config_id", "model", "seed", "epoch"})
FINAL = ("test_acc", "best_val_acc", "best_epoch", "epochs", "wall_s")  # of a seed's trial row, logged as final/<name>
SETTINGS = ("model", "dataset", "label_count", "batch_labelled", "batch_unlabelled")  # parameters besides hyperparameters
ENDED = ("completed", "stopped", "diverged")  # no retry changes these; 'failed' is final once Tune gives the trial up
OUTCOMES = {"COMPLETE": ("completed", "FINISHED"), "PRUNED": ("stopped", "KILLED"), "FAIL": ("failed", "FAILED")}


# ---------------------------------------------------------------------------- what has been logged


@dataclass
class Seed:
    """One seed's tracker run and what it holds."""

    run: str  # the tracker's run id
    epoch: int = 0  # the last epoch logged
    ended: str | None = None  # the status it was ended with; None while open


@dataclass
class Logged:
    """One configuration's runs: its group and its seeds' runs (by trial id)."""

    group: str  # MLflow: the parent run's id; W&B: the group's name
    seeds: dict[str, Seed] = field(default_factory=dict)
    ended: str | None = None


MAX_NAMED = 10  # unreadable records named in one message; the rest counted


class Records:
    """What has been logged, a small JSON file per configuration in `directory`, written whole (results.atomic)."""

    def __init__(self, directory: Path):
        self.directory = directory

    def load(self, config_id: str) -> Logged | None:
        path = self.directory / f"{config_id}.json"
        if not path.is_file():  # nothing, or no regular file (a FIFO would block the read)
            return None
        raw = self._read(path)
        try:
            return Logged(raw["group"], {trial: Seed(**seed) for trial, seed in raw["seeds"].items()}, raw.get("ended"))
        except (KeyError, TypeError, AttributeError):
            raise self._unreadable(path) from None

    def _read(self, path: Path) -> dict:
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            raise self._unreadable(path) from None
        if not isinstance(raw, dict):
            raise self._unreadable(path)
        return raw

    @staticmethod
    def _unreadable(path: Path) -> results.SweeperError:
        return results.SweeperError(f"{path}: not the record of logged runs sweeper writes; remove it")

    def save(self, config_id: str, logged: Logged) -> None:
        with results.atomic(self.directory / f"{config_id}.json") as temporary:
            temporary.write_text(json.dumps(asdict(logged)))

    def open_ones(self) -> list[str]:
        """The configurations whose runs are not all ended; a record that cannot be read among them (loading it says
        why, where a tracker's failure is said)."""
        found = sorted(self.directory.glob("*.json")) if self.directory.is_dir() else []
        return [path.stem for path in found if not path.name.startswith(".") and path.is_file() and not self._ended(path)]

    def _ended(self, path: Path) -> bool:
        try:
            return self._read(path).get("ended") is not None
        except results.SweeperError:
            return False


# ---------------------------------------------------------------------------- logging what is new


class Tracker(Protocol):
    """What TrackerLog asks of a tracker library. `state` is MLflow's word for how a run ended: FINISHED, KILLED, FAILED."""

    def group(self, config_id: str, params: dict, tags: dict) -> str: ...
    def run(self, group: str, trial_id: str, params: dict, tags: dict) -> str: ...
    def log(self, run: str, epochs: list[tuple[int, dict[str, float]]]) -> None: ...
    def logged(self, run: str) -> int | None: ...  # the last epoch the tracker holds; None: it cannot say
    def end(self, run: str, final: dict, status: str, state: str) -> None: ...
    def end_group(self, group: str, final: dict, status: str, state: str) -> None: ...
    def close(self) -> None: ...


class TrackerLog:
    """Logs configurations' rows to a tracker: each seed's epochs after the last one logged, each once, however
    often it is called with the same rows; a seed's end once its rows say it ended, the configuration's once all did."""

    def __init__(self, tracker: Tracker, records: Records, spec: Spec):
        self.tracker, self.records, self.spec = tracker, records, spec
        self.known: dict[str, Logged] = {}  # what this process has loaded or opened

    def update(self, config_id: str, trials: list[dict], read_epochs: Callable[[range], list[dict]], tune_done: bool) -> None:
        """One configuration's trial rows (a row per seed, as results has them now) and `read_epochs(wanted)`, its
        epoch rows of those epochs. `tune_done`: Tune is done with its trial, so a failed seed has ended."""
        if not trials:
            return
        logged = self._logged(config_id, trials[0])
        seeds = [self._seed(logged, config_id, row) for row in trials]
        wanted = range(min(s.epoch for s in seeds) + 1, max(int(row["epochs"] or 0) for row in trials) + 1)
        rows = read_epochs(wanted) if wanted else []
        for seed, row in zip(seeds, trials):
            self._log(config_id, logged, seed, [r for r in rows if r["trial_id"] == row["trial_id"]])
            self._end(config_id, logged, seed, row, tune_done)
        if all(s.ended for s in seeds):
            self._end_configuration(config_id, logged, trials)

    def end_removed(self, exists: Callable[[str], bool]) -> None:
        """The runs of configurations whose rows are gone (sweeper resume reruns them under new ids), ended as removed."""
        unreadable = []
        for config_id in self.records.open_ones():
            if exists(config_id):
                continue
            try:
                logged = self.known.get(config_id) or self.records.load(config_id)
            except results.SweeperError as e:  # said once the others are ended
                unreadable.append((config_id, e))
                continue
            for seed in logged.seeds.values():
                if seed.ended is None:
                    self.tracker.end(seed.run, {}, "removed", "KILLED")
                    seed.ended = "removed"
            self.tracker.end_group(logged.group, {}, "removed", "KILLED")
            logged.ended = "removed"
            self.records.save(config_id, logged)
        if len(unreadable) == 1:
            raise unreadable[0][1]
        if unreadable:  # all of them in the one line, the folder named once, so that one look mends them all
            names = [f"{config_id}.json" for config_id, _ in unreadable]
            shown = ", ".join(names[:MAX_NAMED]) + (f" and {len(names) - MAX_NAMED} more" if len(names) > MAX_NAMED else "")
            raise results.SweeperError(f"{len(names)} files in {self.records.directory} are not records of logged runs "
                                       f"sweeper writes; remove them: {shown}")

    def close(self) -> None:
        self.tracker.close()

    def _logged(self, config_id: str, row: dict) -> Logged:
        """The configuration's runs: known here, recorded by an earlier process (then the tracker's own record of
        its open seeds counts too), or a new group."""
        if config_id in self.known:
            return self.known[config_id]
        logged = self.records.load(config_id)
        if logged is None:
            logged = Logged(self.tracker.group(config_id, parameters(row, self.spec), tags(row)))
        for seed in logged.seeds.values():
            if seed.ended is None:
                seed.epoch = max(seed.epoch, self.tracker.logged(seed.run) or 0)
        self.known[config_id] = logged
        self.records.save(config_id, logged)
        return logged

    def _seed(self, logged: Logged, config_id: str, row: dict) -> Seed:
        if row["trial_id"] not in logged.seeds:
            params = {**parameters(row, self.spec), "seed": row["seed"]}
            logged.seeds[row["trial_id"]] = Seed(self.tracker.run(logged.group, row["trial_id"], params, tags(row)))
            self.records.save(config_id, logged)
        return logged.seeds[row["trial_id"]]

    def _log(self, config_id: str, logged: Logged, seed: Seed, rows: list[dict]) -> None:
        new = following(rows, seed.epoch)
        if new:
            self.tracker.log(seed.run, [(row["epoch"], metrics(row)) for row in new])
            seed.epoch = new[-1]["epoch"]
            self.records.save(config_id, logged)

    def _end(self, config_id: str, logged: Logged, seed: Seed, row: dict, tune_done: bool) -> None:
        """A seed whose rows say it ended, every epoch logged: its final metrics and status (again if they changed:
        a failed seed that sweeper resume went on with)."""
        status = row["status"]
        ended = status in ENDED or (tune_done and status == "failed")
        if not ended or seed.epoch < int(row["epochs"] or 0) or seed.ended == status:
            return
        final = {f"final/{key}": float(row[key]) for key in FINAL if _finite(row.get(key))}
        shown = f"stopped ({row['stopped_by']})" if status == "stopped" and row.get("stopped_by") else status
        good = status == "completed" or (status == "stopped" and row.get("stopped_by") == "patience")
        self.tracker.end(seed.run, final, shown, "FINISHED" if good else "KILLED" if status == "stopped" else "FAILED")
        seed.ended = status
        self.records.save(config_id, logged)

    def _end_configuration(self, config_id: str, logged: Logged, trials: list[dict]) -> None:
        summary = study.summarise(self.spec, trials, tune_finished=True)
        if summary is None or logged.ended == summary.state.name:
            return
        final = {f"final/{key}": float(value) for key, value in summary.user_attrs.items() if key != "seeds" and _finite(value)}
        if summary.values is not None and "val_acc" in self.spec.objectives:  # the mean best val_acc, as the sampler is told
            final["final/best_val_acc"] = summary.values[self.spec.objectives.index("val_acc")]
        status, state = OUTCOMES[summary.state.name]
        self.tracker.end_group(logged.group, final, status, state)
        logged.ended = summary.state.name
        self.records.save(config_id, logged)


def following(rows: list[dict], after: int) -> list[dict]:
    """Of one seed's epoch rows, those of the epochs right after `after`, in order, up to the first one missing."""
    by_epoch = {row["epoch"]: row for row in rows}
    new: list[dict] = []
    while after + len(new) + 1 in by_epoch:
        new.append(by_epoch[after + len(new) + 1])
    return new


def metrics(row: dict) -> dict[str, float]:
    """An epoch row's metrics; a loss part its model lacks (NaN) and a diverged loss are left out."""
    return {key: float(row[key]) for key in EPOCH_METRICS if _finite(row.get(key))}


def parameters(row: dict, spec: Spec) -> dict:
    """A configuration's parameters, as its trial row has them: its settings and the hyperparameters it takes."""
    return {key: row[key] for key in (*SETTINGS, *spec.hyperparameter_columns()) if row.get(key) is not None}


def tags(row: dict) -> dict[str, str]:
    return {"sweeper.config_id": row["config_id"], "sweeper.point": row.get("point") or "", "sweeper.model": row["model"]}


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ---------------------------------------------------------------------------- the libraries


def _library(kind: str):
    """The tracker's library, imported; or one line that says which extra installs it."""
    try:
        return importlib.import_module(kind)
    except ImportError:
        raise SweeperError(f"tracking: {kind} is not installed; install it with pip install -e '.[{kind}]'") from None


def check(spec: Spec, reach: bool = True) -> None:
    """Before a sweep starts: the library its `tracking:` names is there, and (`reach`) it can log without
    stopping the sweep: an MLflow server answers (MLflow's own retries would hold the driver for minutes at
    every epoch), and W&B online has a key (else it would stop the sweep to ask for one on the terminal).
    A resume does not reach: training goes on while a tracker is away, and its records catch up later."""
    if spec.tracking is None:
        return
    try:
        _library(spec.tracking.kind)
        if reach:
            {"mlflow": _mlflow_answers, "wandb": _wandb_logged_in}[spec.tracking.kind](spec.tracking)
    except SweeperError as e:
        raise SweeperError(f"{spec.source}: {e}") from None


ANSWER_S = 10  # seconds an MLflow server has to answer the check, without retries


def _mlflow_answers(tracking: Tracking) -> None:
    if not (tracking.uri or "").lower().startswith(("http://", "https://")):
        return  # a store on this machine (sqlite, a folder): it answers, or fails at once
    import mlflow

    names = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")  # MLflow's documented settings
    before = {name: os.environ.get(name) for name in names}
    os.environ.update({names[0]: "0", names[1]: str(ANSWER_S)})
    try:
        mlflow.MlflowClient(tracking_uri=tracking.uri).search_experiments(max_results=1)
    except Exception as e:  # noqa: BLE001 - refused, unreachable, not an MLflow server, no permission
        raise SweeperError(redact.message(f"tracking: mlflow: {tracking.uri} does not answer, or refuses this client "
                                          f"({first_line(e)}); start the server, or fix tracking.uri and its credentials "
                                          "($MLFLOW_TRACKING_USERNAME, ...)", tracking.uri)) from None
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _wandb_logged_in(tracking: Tracking) -> None:
    mode = tracking.mode or os.environ.get("WANDB_MODE") or "online"
    disabled = os.environ.get("WANDB_DISABLED", "").lower() in ("true", "1", "yes")
    if mode != "online" or (disabled and not tracking.mode):
        return
    import contextlib
    import io

    wandb = _library("wandb")
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # its line saying where it found the key
            logged_in = wandb.login(prompt=False, verify=False)
    except Exception as e:  # noqa: BLE001 - wandb's AuthenticationError and UsageError: a key it cannot take
        raise SweeperError(f"tracking: wandb cannot log in ({type(e).__name__}: {redact.message(first_line(e))[:120]}); run "
                           "'wandb login' again (or fix WANDB_API_KEY), or set tracking: {kind: wandb, mode: offline}") from None
    finally:
        # login starts wandb's service process; left running, it holds this process at its exit for minutes where
        # W&B's server cannot be reached. The trackers start it again when they log.
        wandb.teardown()
    if not logged_in:
        raise SweeperError("tracking: wandb runs online but finds no API key here, and would stop the sweep to ask for one; "
                           "run 'wandb login' (or set WANDB_API_KEY), or set tracking: {kind: wandb, mode: offline}")


def _chunks(items: list, size: int) -> list[list]:
    return [items[i: i + size] for i in range(0, len(items), size)]


class MLflowTracker:
    """MLflow through its client: a parent run per configuration, a child run per seed, in one experiment.
    Without a URI, a SQLite store in the results directory (MLflow's local store; its file store is retired)."""

    MAX_METRICS, MAX_PARAMS = 1000, 100  # what one log_batch takes

    def __init__(self, tracking: Tracking, name: str, out: Path):
        import logging

        mlflow = _library("mlflow")
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.exceptions import MlflowException

        logging.getLogger("mlflow").setLevel(logging.WARNING)  # not a line per table it creates in a new store
        self.Metric, self.Param, self.RunTag = Metric, Param, RunTag
        # the path quoted: SQLAlchemy decodes %41 and cuts at "?", which would put the store outside the results directory
        self.uri = tracking.uri or f"sqlite:///{quote(str(out / 'mlflow.db'))}"
        self.client = mlflow.MlflowClient(tracking_uri=self.uri)
        experiment = tracking.experiment or name
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            try:
                self.experiment = self.client.create_experiment(experiment, artifact_location=None if tracking.uri else (out / "mlruns").as_uri())
            except MlflowException:  # another driver made it meanwhile
                self.experiment = self.client.get_experiment_by_name(experiment).experiment_id
        else:
            self.experiment = found.experiment_id

    def group(self, config_id: str, params: dict, tags: dict) -> str:
        return self._run(config_id, params, tags)

    def run(self, group: str, trial_id: str, params: dict, tags: dict) -> str:
        return self._run(trial_id, params, {**tags, "mlflow.parentRunId": group})

    def _run(self, name: str, params: dict, tags: dict) -> str:
        run = self.client.create_run(self.experiment, run_name=name, tags=tags).info.run_id
        for chunk in _chunks([self.Param(key, str(value)) for key, value in params.items()], self.MAX_PARAMS):
            self.client.log_batch(run, params=chunk)
        return run

    def log(self, run: str, epochs: list[tuple[int, dict[str, float]]]) -> None:
        now = int(time.time() * 1000)
        for chunk in _chunks(epochs, self.MAX_METRICS // len(EPOCH_METRICS)):
            self.client.log_batch(run, metrics=[self.Metric(key, value, now, epoch) for epoch, row in chunk for key, value in row.items()])

    def logged(self, run: str) -> int | None:
        return max((m.step for m in self.client.get_metric_history(run, EVERY_EPOCH)), default=0)

    def end(self, run: str, final: dict, status: str, state: str) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(run, metrics=[self.Metric(key, value, now, 0) for key, value in final.items()],
                              tags=[self.RunTag("status", status)])
        self.client.set_terminated(run, status=state)

    def end_group(self, group: str, final: dict, status: str, state: str) -> None:
        self.end(group, final, status, state)

    def close(self) -> None:
        pass


class WandbTracker:
    """W&B: a run per seed, its group the configuration's id. Its files go to $WANDB_DIR, else the results directory."""

    def __init__(self, tracking: Tracking, name: str, out: Path):
        self.wandb = _library("wandb")
        self.options = dict(project=tracking.project or name, entity=tracking.entity, mode=tracking.mode,
                            dir=None if os.environ.get("WANDB_DIR") else str(out),
                            settings=self.wandb.Settings(console="off", silent=True))  # runs side by side: no console of their own
        self.live: dict[str, object] = {}  # run id -> the open run

    def group(self, config_id: str, params: dict, tags: dict) -> str:
        return config_id

    def run(self, group: str, trial_id: str, params: dict, tags: dict) -> str:
        run = self.wandb.init(group=group, name=trial_id, config=params, tags=[tags["sweeper.model"]], reinit="create_new", **self.options)
        self.live[run.id] = run
        return run.id

    def _open(self, run: str):
        """The run, open: after a restart (or its end, for a seed that goes on after a resume), resumed by its id."""
        if run not in self.live:
            self.live[run] = self.wandb.init(id=run, resume="allow", reinit="create_new", **self.options)
        return self.live[run]

    def log(self, run: str, epochs: list[tuple[int, dict[str, float]]]) -> None:
        opened = self._open(run)
        for epoch, row in epochs:
            opened.log(row, step=epoch)

    def logged(self, run: str) -> int | None:
        return None  # an offline run cannot be asked: the records say

    def end(self, run: str, final: dict, status: str, state: str) -> None:
        opened = self._open(run)
        opened.summary.update({**final, "status": status})
        opened.finish(exit_code=0 if state == "FINISHED" else 1)
        del self.live[run]

    def end_group(self, group: str, final: dict, status: str, state: str) -> None:
        pass  # a W&B group is no run of its own

    def close(self) -> None:
        """Runs still open (their trials did not end: the sweep stopped) are finished unfinished; a resume reopens them."""
        for run in list(self.live):
            self.live.pop(run).finish(exit_code=1)


TRACKER_TYPES = {"mlflow": MLflowTracker, "wandb": WandbTracker}
OPEN_AGAIN_S = 300.0  # after a tracker failed to open, the next try; what was not logged is logged then


# ---------------------------------------------------------------------------- Ray Tune's side


def callbacks(spec: Spec, location: str, out: Path) -> list:
    """The Tune callbacks that track the sweep: none without `tracking:`."""
    return [TrackSeeds(spec, location, str(out))] if spec.tracking is not None else []


class TrackSeeds(tune.Callback):
    """After each result of a Tune trial (and as it ends), each of its configurations' new rows, to the tracker (TrackerLog).
    Opens the tracker at its first use, in the driver; a tracker that fails is one line on stderr, never the sweep's end.

    Holds no open tracker: Tune pickles its callbacks with the experiment state."""

    def __init__(self, spec: Spec, location: str, out: str):
        self.spec, self.location, self.out = spec, location, out
        self._follow: TrackerLog | None = None
        self._said: set[str] = set()  # lines printed: each once
        self._open_again_at = 0.0  # after a tracker failed to open: not before then (monotonic seconds)
        self._missed = False  # whether something was not handed to the tracker

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_follow": None, "_said": set(), "_open_again_at": 0.0}

    def setup(self, **info):
        self._safely(TrackerLog.end_removed, lambda config_id: bool(results.configuration_rows(self.location, config_id)))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self._update(trial, tune_done=False)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._update(trial, tune_done=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._update(trial, tune_done=True)

    def on_experiment_end(self, trials, **info):
        self._open_again_at = 0.0  # the last chance in this driver: tried whatever the back-off says
        left = set(Records(Path(self.out) / RECORDS).open_ones())  # what a failing tracker left: once more
        if self._missed:  # and configurations that ended while it could not be opened, which no record names
            left |= set(self._safely(lambda follow: results.configurations(self.location)) or ())
        for config_id in sorted(left):
            self._safely(self._update_configuration, config_id, True)
        if self._follow is not None:
            self._safely(TrackerLog.close)
            self._follow = None

    def _update(self, trial, tune_done: bool) -> None:
        for config_id in trial_config_ids(trial.config, trial.trial_id):
            self._safely(self._update_configuration, config_id, tune_done)

    def _update_configuration(self, follow: TrackerLog, config_id: str, tune_done: bool) -> None:
        trials = results.configuration_rows(self.location, config_id)
        follow.update(config_id, trials, partial(results.configuration_epoch_rows, self.location, config_id), tune_done)

    def _safely(self, act, *args):
        """act(follow, *args), the tracker opened first; a failure is said once, and the sweep goes on."""
        try:
            if self._follow is None:
                if time.monotonic() < self._open_again_at:  # a server that went away: not at every result, which waits each time
                    self._missed = True
                    return None
                self._open_again_at = time.monotonic() + OPEN_AGAIN_S
                opened = TRACKER_TYPES[self.spec.tracking.kind](self.spec.tracking, self.spec.name, Path(self.out))
                self._follow = TrackerLog(opened, Records(Path(self.out) / RECORDS), self.spec)
            return act(self._follow, *args)
        except Exception as e:  # noqa: BLE001 - a listener's failure must not end hours of training
            self._missed = True
            line = redact.message(f"tracking: {self.spec.tracking.kind}: {first_line(e)}; the sweep goes on, and what was "
                                  "not logged is logged at a later epoch", self.spec.tracking.uri or "")
            if line not in self._said:
                self._said.add(line)
                print(line, file=sys.stderr, flush=True)

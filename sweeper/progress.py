"""How far a sweep is: configurations done, running and failed of the total, epochs trained of all it
will train, the best mean validation accuracy so far, and the time left at the pace of the latest epochs.

The same numbers come from Tune's reports during `sweeper run` (sweep.Progress) and from a results
directory (`sweeper status DIR`): no Ray here.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from . import provenance, redact, results, space
from . import spec as spec_module
from .errors import NoResultsYet


@dataclass(frozen=True)
class State:
    unit: str  # what is counted: configurations, or packs of them
    done: int
    running: int
    failed: int
    total: int
    epochs_done: int  # member-epochs: a configuration's seed trained for one epoch
    epochs_total: int
    elapsed_s: float
    left_s: float | None = None  # time_left(): None before any epoch was timed
    best: float | None = None  # best mean validation accuracy over a configuration's seeds
    best_settings: str = ""
    stopped: str = ""  # from a results directory whose driver has ended: why nothing runs, and how to go on


def time_left(started: list[tuple[int, float]], not_started: int, epochs: int, slots: int) -> float | None:
    """The time left from measured epoch times: `started` holds, per Tune trial that has run, its epochs to go
    and its seconds per epoch; a trial not started yet takes the mean of those. The work is shared by
    `slots` trials at a time, but no trial finishes before its own epochs are done."""
    if not started:
        return None
    mean_epoch = sum(seconds for _, seconds in started) / len(started)
    each = [left * seconds for left, seconds in started] + [epochs * mean_epoch] * not_started
    return max(sum(each) / max(slots, 1), max(each))


RECENT_EPOCHS = 20  # the pace is measured over each configuration's last this many epochs (at least)


def recent_epoch_s(epoch_rows, eval_every: int = 1) -> dict[str, float]:
    """Each configuration's seconds per seed-epoch over its last RECENT_EPOCHS epochs (epoch rows' wall_s, a
    seed's share of its trial's epoch): the pace now, which a resumed run or a machine that got busier or
    quieter has changed from the run's mean. The window is a whole number of eval_every periods, so that it
    holds its share of the dearer evaluated epochs."""
    window = -(-RECENT_EPOCHS // eval_every) * eval_every
    timed = epoch_rows.dropna(subset=["wall_s"])
    last = timed.groupby("config_id")["epoch"].transform("max")
    return timed[timed["epoch"] > last - window].groupby("config_id")["wall_s"].mean().to_dict()


def duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds) or seconds < 0:  # a clock set back, or a provenance edited
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def line(state: State) -> str:
    share = 100 * state.epochs_done / state.epochs_total if state.epochs_total else 0.0
    text = (f"[{duration(state.elapsed_s)}] {state.unit}: {state.done}/{state.total} done, {state.running} running, "
            f"{state.failed} failed; epochs {state.epochs_done}/{state.epochs_total} ({share:.0f}%), "
            + (state.stopped if state.stopped else f"about {duration(state.left_s)} left"))
    if state.best is not None:
        text += f"; best mean val_acc {state.best:.4f}" + (f": {state.best_settings}" if state.best_settings else "")
    return text


def bar(state: State, width: int = 30) -> str:
    """The line with a bar in front, for a terminal."""
    filled = int(width * state.epochs_done / state.epochs_total) if state.epochs_total else 0
    return "[" + "#" * filled + "." * (width - filled) + "] " + line(state)


def from_results(location: str | Path) -> State:
    """A sweep's progress from its results directory alone (any sweep, shared study or not)."""
    spec = spec_module.load_ran(location)
    total = space.configuration_count(spec)
    try:
        trials = results.read(location, "trials")
        epoch_rows = results.read(location, "epochs", columns=["config_id", "epoch", "wall_s"])
        epochs = len(epoch_rows)
    except NoResultsYet:
        trials, epochs = None, 0
    runs = provenance.read(location)
    start = datetime.fromisoformat(runs[0]["start"]) if runs else None
    end = datetime.fromisoformat(runs[-1]["end"]) if runs and runs[-1].get("end") else datetime.now(timezone.utc)
    elapsed = (end - start).total_seconds() if start else 0.0
    done = running = failed = 0
    best, settings = None, ""
    if trials is not None:
        by_configuration = trials.groupby("config_id")
        statuses = by_configuration["status"].agg(set)
        running = sum("running" in s for s in statuses)
        failed = sum("failed" in s and "running" not in s for s in statuses)
        done = len(statuses) - running - failed
        means = by_configuration["best_val_acc"].mean().dropna()
        if len(means):
            best_id = means.idxmax()
            best = float(means[best_id])
            point = trials.loc[trials["config_id"] == best_id, "point"].iloc[0] if "point" in trials else None
            settings = " ".join(f"{k}={v}" for k, v in _point(location, point).items()) if isinstance(point, str) else ""
        per_config = by_configuration.agg(wall=("wall_s", "max"), epochs=("epochs", "max"), status=("status", lambda s: set(s)))
        timed = per_config[(per_config["epochs"] > 0) & per_config["wall"].notna()]
        seeds = len(spec.seeds)
        recent = recent_epoch_s(epoch_rows, spec.eval_every)
        started = [(0 if "running" not in row.status else max(0, spec.epochs - int(row.epochs)),
                    seeds * recent.get(row.Index, row.wall / row.epochs))  # wall_s is a seed's share of its trial's time
                   for row in timed.itertuples()]
        left = time_left(started, max((total or 0) - len(per_config), 0), spec.epochs, max(running, 1))
    else:
        left = None
    if runs and runs[-1].get("end"):
        left = 0.0 if done == total else left
    stopped = ""
    if running:
        why = _not_trained(location, runs)
        if why:  # its rows still say running, but no driver trains them
            stopped, running = f"{running} stopped part-way: {why}; {_how_to_go_on(location)}", 0
    return State("configurations", done, running, failed, total or 0, epochs, (total or 0) * len(spec.seeds) * spec.epochs,
                 elapsed, left, best, settings, stopped)


def _not_trained(location: str | Path, runs: list[dict]) -> str:
    """Why no driver trains a sweep whose rows say running, or "" where one may: its last run recorded its end
    (stopped by a signal or an error) and nothing holds its lock now (a resume starting holds it before it records
    its start), or the process its lock names on this machine is gone (killed: no end recorded)."""
    local = results.local_path(location)
    if local is not None and results.lock_is_held(local):
        return ""
    if runs and runs[-1].get("end"):
        return "its last driver stopped before the sweep was done"
    ended = results.ended_driver(location)
    return f"its driver ({ended}) is gone" if ended else ""


def _how_to_go_on(location: str | Path) -> str:
    local = results.local_path(location)
    if local is None:  # a --storage location: the driver's own results directory holds the study
        return f"continue with: sweeper resume OUT --storage {redact.url(str(location))}, OUT the run's --out"
    if (local / results.SHARED_STUDY_FILE).is_file():
        return "its configurations go back to the shared study: run the same 'sweeper run ... --study URL' again"
    return f"continue with: sweeper resume {location}"


def _point(location: str | Path, text: str) -> dict:
    """A trials row's search point (space.point_key wrote it as a JSON object), or one line where it is not one."""
    try:
        point = json.loads(text)
    except ValueError:
        point = None
    if not isinstance(point, dict):
        raise results.SweeperError(f"{location}/trials: a row's point is not the JSON object sweeper writes "
                                   f"({text[:60]!r}); was it written by sweeper?")
    return point

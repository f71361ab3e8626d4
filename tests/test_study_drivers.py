"""Drivers in separate processes, each with its own local Ray, sharing one study: PostgreSQL, SQLite
and a journal file. Together they run a grid exactly once, also when one of them is SIGKILLed."""
import os
import signal
import subprocess
import sys
import time

import optuna
import pandas as pd
import pytest

from helpers import tiny_spec
from sweeper import study

pytestmark = pytest.mark.ray

ALPHAS = [0.1, 1.0, 10.0, 100.0, 1000.0]


def spec_file(write_spec, epochs: int, reclaim_after_s: int = 4):
    # one configuration at a time per driver, each a few seconds long, so both drivers get some. Where no driver
    # dies, a long reclaim_after_s: on a loaded machine (SQLite's lock, CI) a live driver's heartbeat can be late
    # by more than 4 s, and a configuration taken over from a live driver runs twice
    return write_spec(tiny_spec(models=["m2"], seeds=[0, 1], epochs=epochs, max_concurrent=1, search={"alpha": ALPHAS},
                                batch={"labelled": 25, "unlabelled": 100}, fixed={"hidden": 64, "latent": 4},
                                study={"heartbeat_s": 1, "reclaim_after_s": reclaim_after_s}))


def start(spec, url, driver, out):
    return subprocess.Popen([sys.executable, "-m", "sweeper", "run", str(spec), "--study", url, "--driver", driver,
                             "--out", str(out), "--quiet"],
                            start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(driver, timeout=400) -> None:
    stdout, stderr = driver.communicate(timeout=timeout)
    assert driver.returncode == 0, stderr[-2000:]


def completed(*outs) -> pd.DataFrame:
    """The completed rows of every driver's results, side by side."""
    frames = [pd.read_parquet(out / "trials") for out in outs if (out / "trials").is_dir()]
    trials = pd.concat(frames, ignore_index=True)
    return trials[trials["status"] == "completed"]


def assert_every_configuration_once(trials: pd.DataFrame, epochs: int) -> None:
    assert sorted(zip(trials["alpha"], trials["seed"])) == [(a, s) for a in ALPHAS for s in (0, 1)]
    assert trials["trial_id"].is_unique and trials["epochs"].eq(epochs).all()


def test_two_drivers_share_one_study_and_run_every_configuration_once(write_spec, tmp_path, study_url):
    spec = spec_file(write_spec, epochs=6, reclaim_after_s=60)
    a, b = tmp_path / "a", tmp_path / "b"
    drivers = [start(spec, study_url, "a", a), start(spec, study_url, "b", b)]
    for driver in drivers:
        finish(driver)
    trials = completed(a, b)
    assert_every_configuration_once(trials, epochs=6)
    assert set(trials["trial_id"].str.split("-").str[0]) == {"a", "b"}  # both took work
    shared = optuna.load_study(study_name="tiny", storage=study.storage(study_url))
    census = study.census(shared)
    assert census.done == census.total == len(ALPHAS) and census.reclaimed == 0
    done = [t for t in shared.get_trials() if t.state.name == "COMPLETE"]  # with what the dashboard shows of each
    assert len(done) == len(ALPHAS) and all(t.user_attrs["seeds"] == 2 and 0 <= t.user_attrs["test_acc"] <= 1 for t in done)
    for out in (a, b):  # each driver's own study: its configurations, once each
        own = optuna.load_study(study_name="tiny", storage=study.storage(str(out / "optuna.journal"))).get_trials()
        assert sorted(t.params["alpha"] for t in own) == sorted(completed(out)["alpha"].unique())
        assert all(t.state.name == "COMPLETE" for t in own)
    report = subprocess.run([sys.executable, "-m", "sweeper", "report", str(a), str(b), "--format", "csv"],
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    lines = [line for line in report.stdout.strip().splitlines() if not line.startswith("# ")]  # past the provenance lines
    assert len(lines) == 1 + len(ALPHAS)  # header, then one row per alpha


def test_a_killed_drivers_configurations_are_taken_over_and_none_runs_twice(write_spec, tmp_path, study_url):
    spec = spec_file(write_spec, epochs=12)
    doomed_out, survivor_out = tmp_path / "doomed", tmp_path / "survivor"
    doomed = start(spec, study_url, "doomed", doomed_out)
    survivor = start(spec, study_url, "survivor", survivor_out)
    deadline, interrupted = time.monotonic() + 240, None
    while time.monotonic() < deadline and interrupted is None:  # wait for the doomed driver to be mid-configuration
        if (doomed_out / "trials").is_dir():
            for f in (doomed_out / "trials").glob("*.parquet"):
                rows = pd.read_parquet(f)
                if rows["status"].eq("running").all() and rows["epochs"].ge(2).all():
                    interrupted = float(rows["alpha"].iloc[0])
        if doomed.poll() is not None:
            break
        time.sleep(0.2)
    if interrupted is None:
        doomed.kill()
        survivor.kill()
        pytest.fail(f"the doomed driver never got under way: exit {doomed.poll()}, {doomed.communicate()[1][-1500:]}")
    os.killpg(doomed.pid, signal.SIGKILL)  # the driver and the Ray it started, at once
    doomed.wait()
    finish(survivor)

    trials = completed(doomed_out, survivor_out)
    assert_every_configuration_once(trials, epochs=12)
    taken_over = trials[trials["alpha"] == interrupted]
    assert taken_over["trial_id"].str.startswith("survivor-").all()  # finished by the survivor, not twice
    census = study.census(optuna.load_study(study_name="tiny", storage=study.storage(study_url)))
    assert census.done == census.total == len(ALPHAS)
    assert census.reclaimed >= 1 and census.by_driver["doomed"]["reclaimed"] >= 1
    epochs = pd.concat([pd.read_parquet(out / "epochs") for out in (doomed_out, survivor_out) if (out / "epochs").is_dir()])
    finished = epochs[epochs["trial_id"].isin(trials["trial_id"])]
    assert len(finished) == len(ALPHAS) * 2 * 12 and not finished.duplicated(["trial_id", "epoch"]).any()

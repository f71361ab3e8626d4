"""Progress: from Tune's reports during a run and from a results directory, the same numbers."""
import fcntl
import json
import os
import pickle

import pytest

from sweeper import progress, results
from sweeper.cli import main
from helpers import HYPER, epoch_rows, tiny_spec, trial_row


def test_time_left_comes_from_measured_epoch_times():
    # two trials running, 10 epochs to go at 3 s and 1 at 5 s; two not started, 10 epochs each at the mean 4 s
    assert progress.time_left([(10, 3.0), (1, 5.0)], not_started=2, epochs=10, slots=2) == pytest.approx((30 + 5 + 40 + 40) / 2)
    assert progress.time_left([(100, 2.0)], not_started=0, epochs=100, slots=4) == 200.0  # one trial: its own epochs, not shared
    assert progress.time_left([], not_started=3, epochs=5, slots=1) is None


def test_status_of_a_results_directory(tmp_path, capsys):
    (tmp_path / "spec.yaml").write_text("name: t\ndataset: digits\nmodels: [m2]\nseeds: [0, 1]\nepochs: 4\nsearch: {alpha: [1, 10, 100]}\n")
    for config, status, epochs, val in (("a", "completed", 4, 0.7), ("b", "running", 2, 0.9)):
        rows = [{**trial_row(config, "m2", s, status=status, alpha=1.0), "epochs": epochs, "wall_s": 2.0 * epochs,
                 "best_val_acc": val, "point": json.dumps({"alpha": 1.0 if config == "a" else 10.0, "model": "m2"})} for s in range(2)]
        history = [{**r, "wall_s": 2.0} for s in range(2) for r in epoch_rows(config, "m2", s, epochs=epochs)]
        results.write_configuration(tmp_path, config, history, rows, HYPER)
    (tmp_path / "provenance.json").write_text(json.dumps([{"start": "2026-01-01T00:00:00+00:00", "end": None}]))
    state = progress.from_results(tmp_path)
    assert (state.done, state.running, state.failed, state.total) == (1, 1, 0, 3)
    assert (state.epochs_done, state.epochs_total) == (12, 24) and state.best == 0.9 and state.best_settings == "alpha=10.0 model=m2"
    # b: 2 epochs to go at 2 seeds x 2 s; c (not started): 4 epochs at the mean of a's and b's 4 s; one slot running
    assert state.left_s == pytest.approx(2 * 4.0 + 0 + 4 * 4.0)
    assert main(["status", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "configurations: 1/3 done, 1 running, 0 failed; epochs 12/24 (50%), about 0m24s left; best mean val_acc 0.9000: alpha=10.0 model=m2" in out


def test_status_says_when_the_rows_say_running_but_no_driver_trains_them(tmp_path, capsys):
    """A sweep stopped by SIGTERM (its run's end recorded) or killed (its lock names a process of this machine
    that is gone) is not running: status says so and how to go on, not a time left."""
    import socket
    import subprocess
    import sys

    (tmp_path / "spec.yaml").write_text("name: t\ndataset: digits\nmodels: [m2]\nseeds: [0]\nepochs: 4\nsearch: {alpha: [1, 10]}\n")
    for config, status in (("a", "completed"), ("b", "running")):
        rows = [{**trial_row(config, "m2", 0, status=status, alpha=1.0), "epochs": 2, "wall_s": 4.0}]
        results.write_configuration(tmp_path, config, epoch_rows(config, "m2", 0, epochs=2), rows, HYPER)
    provenance = tmp_path / "provenance.json"
    provenance.write_text(json.dumps([{"start": "2026-01-01T00:00:00+00:00", "end": None}]))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    (tmp_path / results.LOCK_FILE).write_text(f"pid {os.getpid()} on {socket.gethostname()}\n")
    assert progress.from_results(tmp_path).running == 1  # this process holds it: running

    (tmp_path / results.LOCK_FILE).write_text(f"pid {gone} on {socket.gethostname()}\n")
    state = progress.from_results(tmp_path)
    assert (state.done, state.running) == (1, 0)
    assert f"1 stopped part-way: its driver (pid {gone} on {socket.gethostname()}) is gone; continue with: sweeper resume {tmp_path}" \
        in progress.line(state) and "left" not in progress.line(state)
    with open(tmp_path / results.LOCK_FILE, "r+") as held:  # its process id is another container's: the lock says it runs
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert progress.from_results(tmp_path).running == 1
    (tmp_path / results.LOCK_FILE).write_text(f"pid {gone} on another-machine\n")
    assert progress.from_results(tmp_path).running == 1  # another machine's process: not ours to judge

    provenance.write_text(json.dumps([{"start": "2026-01-01T00:00:00+00:00", "end": "2026-01-01T00:01:00+00:00"}]))
    assert main(["status", str(tmp_path)]) == 0
    assert "1/2 done, 0 running, 0 failed; epochs 4/8 (50%), 1 stopped part-way: its last driver stopped before the sweep " \
        f"was done; continue with: sweeper resume {tmp_path}" in capsys.readouterr().out
    with open(tmp_path / results.LOCK_FILE, "r+") as held:  # a resume that holds the lock, its start not yet recorded
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert progress.from_results(tmp_path).running == 1
    (tmp_path / results.SHARED_STUDY_FILE).write_text("journal\n")  # a shared study's driver: not resumed, run again
    assert "go back to the shared study: run the same 'sweeper run ... --study URL' again" in progress.line(progress.from_results(tmp_path))


def test_status_needs_a_directory_or_a_study(tmp_path, capsys):
    assert main(["status"]) == 2
    assert "give a results directory (sweeper status DIR) or a shared study (--study URL)" in capsys.readouterr().err
    assert main(["status", str(tmp_path)]) == 2
    assert "not a sweep's results directory (no spec.yaml)" in capsys.readouterr().err


def test_a_resumed_sweeps_progress_counts_the_epochs_trained_before_the_resume(capsys):
    from types import SimpleNamespace

    from sweeper import sweep
    from sweeper.spec import parse

    spec = parse(tiny_spec(epochs=10, seeds=[0, 1]))
    progress = sweep.Progress(spec, every_s=0.0, trials=2)
    done = SimpleNamespace(trial_id="a", status="TERMINATED", config={"pack": [{}, {}]}, last_result={"epoch": 10},
                           has_reported_at_least_once=True)
    running = SimpleNamespace(trial_id="b", status="RUNNING", config={"pack": [{}]}, last_result={"epoch": 4},
                              has_reported_at_least_once=True)

    class Waiting(SimpleNamespace):  # Tune's Trial.last_result asks a started actor that has not reported, and waits
        last_result = property(lambda self: pytest.fail("a trial that never reported is not asked for its result"))

    waiting = Waiting(trial_id="c", status="PENDING", config={"pack": [{}]}, has_reported_at_least_once=False)
    progress = pickle.loads(pickle.dumps(progress))  # as `sweeper resume` gets it, from Tune's pickle
    progress.on_trial_start(0, [done, running, waiting], running)  # Tune restored both: 2x2x10 + 1x2x4 member-epochs
    line = capsys.readouterr().out
    assert "epochs 48/" in line and line.startswith("[0m0")  # elapsed: this driver's time
    progress.on_trial_result(1, [done, running, waiting], running, {"epoch": 5})  # a new result replaces the restored one
    assert "epochs 50/" in capsys.readouterr().out


def test_time_left_follows_the_latest_epochs_pace(tmp_path):
    """A run that was slow for its first epochs (a busy machine, a resume) and is fast now: sweeper status and the
    driver's line say the time left at today's pace, not at the run's mean."""
    from types import SimpleNamespace

    from sweeper import sweep
    from sweeper.spec import parse

    (tmp_path / "spec.yaml").write_text("name: t\ndataset: digits\nmodels: [m2]\nseeds: [0]\nepochs: 100\nsearch: {alpha: [1]}\n")
    history = [{**r, "wall_s": 10.0 if r["epoch"] <= 30 else 1.0} for r in epoch_rows("a", "m2", 0, epochs=50)]
    rows = [{**trial_row("a", "m2", 0, status="running", alpha=1.0), "epochs": 50, "wall_s": 320.0}]
    results.write_configuration(tmp_path, "a", history, rows, HYPER)
    assert progress.from_results(tmp_path).left_s == pytest.approx(50 * 1.0)  # the last 20 epochs' 1 s, not 320/50

    driver = sweep.Progress(parse(tiny_spec(epochs=100, seeds=[0])), every_s=1e9, trials=1)
    trial = SimpleNamespace(trial_id="a", status="RUNNING", config={}, has_reported_at_least_once=True, last_result={})
    for epoch, wall in ((30, 300.0), (40, 310.0), (50, 320.0)):  # first heard of at epoch 30, as after a resume
        driver.on_trial_result(epoch, [trial], trial, {"epoch": epoch, "wall_s": wall})
    assert driver.timed["a"] == (50, pytest.approx(1.0))  # (320 - 300) / 20, not 320 / 50


def test_the_recent_pace_holds_a_whole_number_of_evaluation_periods_and_a_restart_is_measured_anew():
    from types import SimpleNamespace

    import pandas as pd

    from sweeper import sweep
    from sweeper.spec import parse

    # eval_every 15: every 15th epoch costs 16 s, the others 1 s; the window is the last 30 epochs (two periods)
    rows = pd.DataFrame({"config_id": "a", "epoch": range(1, 61), "wall_s": [16.0 if e % 15 == 0 else 1.0 for e in range(1, 61)]})
    assert progress.recent_epoch_s(rows, eval_every=15) == {"a": pytest.approx((28 * 1.0 + 2 * 16.0) / 30)}
    driver = sweep.Progress(parse(tiny_spec(epochs=100, seeds=[0])), every_s=1e9, trials=1)
    trial = SimpleNamespace(trial_id="a", status="RUNNING", config={}, has_reported_at_least_once=True, last_result={})
    for epoch, wall in ((10, 100.0), (2, 4.0), (4, 8.0)):  # a retry from scratch after epoch 10: its clock starts again
        driver.on_trial_result(epoch, [trial], trial, {"epoch": epoch, "wall_s": wall})
    assert driver.timed["a"][1] == pytest.approx(2.0) and driver.timed["a"][1] > 0


def test_a_duration_below_zero_or_not_finite_is_unknown_not_a_negative_clock():
    assert [progress.duration(s) for s in (-4193428360 * 60.0, float("nan"), None, 0, 61, 3661)] == \
        ["?", "?", "?", "0m00s", "1m01s", "1h01m"]

"""Faults of the driver's process, and results directories that were copied, edited or crafted.

The driver: a signal stops it with the rows resumable and the exit status of a signal; one driver per
results directory; a trial no node can hold is refused, not waited for; a Ray that cannot start is one
line. A results directory read by report, status, inspect and resume: nothing hangs on a FIFO, nothing
is read or written outside it, no sweep file is replaced by a report, every malformed file is one line,
nothing is unpickled but by resume (and only the user's own files), and no secret is written into it.
"""
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from helpers import HYPER, epoch_rows, tiny_spec, trial_row
from sweeper import files, kept, models, provenance, results, sweep
from sweeper.cli import main


def refused(argv, capsys) -> str:
    """The command exits 2 with one line on stderr, no traceback, no internal error; returns the line."""
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sweeper: error: ") and "internal error" not in err, err
    return err.removeprefix("sweeper: error: ").rstrip("\n")


def strings(*argv) -> list[str]:
    return [str(a) for a in argv]


def sweeper(*argv, env=None) -> subprocess.Popen:
    """`sweeper ARGV` as its own process, in a session of its own (so a signal to its group reaches it alone)."""
    return subprocess.Popen([sys.executable, "-m", "sweeper", *map(str, argv)], start_new_session=True, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})


def in_session(sid: int) -> list[str]:
    """The processes left in a session: Ray's own start in the driver's session."""
    listed = subprocess.run(["ps", "-eo", "sid=,stat=,args="], capture_output=True, text=True).stdout.splitlines()
    return [line for line in listed if line.split()[0] == str(sid) and not line.split()[1].startswith("Z")]


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(0.2)


def long_spec(write_spec):
    # epochs of a fraction of a second each: still training when the signal comes
    return write_spec(tiny_spec(models=["m2"], epochs=400, seeds=[0], search={"alpha": [0.5, 5.0]}))


def running_rows(out) -> bool:
    try:
        return (results.read(out)["status"] == "running").any()
    except results.SweeperError:
        return False


# ------------------------------------------------------------------ signals


@pytest.mark.ray
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_sweep_resumably_with_the_signals_exit_status(write_spec, tmp_path, signum, code):
    out = tmp_path / "r"
    driver = sweeper("run", long_spec(write_spec), "--out", out, "--quiet")
    wait_for(lambda: running_rows(out), 50, "a trial to train")
    # Ctrl-C reaches the terminal's foreground process group; a scheduler's SIGTERM here reaches the driver alone
    (os.killpg if signum == signal.SIGINT else os.kill)(driver.pid, signum)
    stdout, stderr = driver.communicate(timeout=50)
    assert driver.returncode == code, stderr
    assert stderr.strip().splitlines() == [f"sweeper: {signal.Signals(signum).name}: stopped; the rows so far are kept; "
                                           f"continue with: sweeper resume {out}"]
    assert "results:" not in stdout  # no summary of a sweep as if it had ended
    assert (results.read(out)["status"] == "running").any()  # resumable: resume takes them up
    wait_for(lambda: not in_session(driver.pid), 20, "Ray's processes to end")


# ------------------------------------------------------------------ one driver per directory


def test_a_second_driver_is_refused_while_the_first_holds_the_directory(tmp_path, write_spec, capsys):
    out = tmp_path / "r"
    with results.one_driver(out, "run"):
        line = refused(["run", write_spec(tiny_spec()), "--out", out], capsys)
        assert line.startswith(f"{out}: another sweeper driver (pid {os.getpid()} on ") and line.endswith("into another directory")
        (out / "spec.yaml").write_text("name: x\n")
        assert refused(["resume", out], capsys).startswith(f"{out}: another sweeper driver (pid {os.getpid()}")
    assert not (out / "trials").exists()


def test_a_killed_drivers_lock_does_not_block_the_next(tmp_path):
    out = tmp_path / "r"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; from sweeper import results\n"
                               "with results.one_driver(Path(sys.argv[1]), 'run'):\n    print('held', flush=True); time.sleep(60)",
                               str(out)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    with pytest.raises(results.SweeperError, match="another sweeper driver"):
        with results.one_driver(out, "resume"):
            pass
    holder.kill()
    holder.wait()
    with results.one_driver(out, "resume"):  # the OS dropped the lock with the process
        assert (out / ".lock").read_text().startswith(f"pid {os.getpid()} ")


def test_a_lock_file_that_is_a_link_or_a_pipe_is_refused_and_nothing_is_written_through_it(tmp_path):
    victim = tmp_path / "notes.txt"
    victim.write_text("the user's own notes\n")
    linked, piped = tmp_path / "linked", tmp_path / "piped"
    linked.mkdir()
    (linked / results.LOCK_FILE).symlink_to(victim)
    piped.mkdir()
    os.mkfifo(piped / results.LOCK_FILE)
    for out, kind in ((linked, "a link or a pipe"), (piped, "not a regular file")):
        with pytest.raises(results.SweeperError, match=f"the lock file is {kind}"):
            with results.one_driver(out, "run"):
                pass
    assert victim.read_text() == "the user's own notes\n"


def test_a_local_storage_location_is_held_by_one_driver_as_the_results_directory_is(tmp_path, write_spec, capsys):
    storage = tmp_path / "shared"
    with results.one_driver(storage / "tiny", "run"):  # another driver's sweep of this name, before its first row
        line = refused(["run", write_spec(tiny_spec()), "--out", tmp_path / "mine", "--storage", storage], capsys)
    assert line.startswith(f"{storage / 'tiny'}: another sweeper driver (pid {os.getpid()} on ")
    assert not (tmp_path / "mine").exists()


def test_storage_naming_the_results_directory_however_spelt_is_held_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "runs" / "tiny"
    out.mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "runs")
    with results.one_driver(out, "run"):
        for storage in ("runs", "./runs/", str(tmp_path / "link"), f"file://{tmp_path}/runs"):
            with sweep._held(sweep._location(out, storage, "tiny"), out, "resume"):
                pass  # not refused by its own lock


def test_a_file_uri_storage_is_held_as_a_local_one(tmp_path):
    with results.one_driver(tmp_path / "shared" / "tiny", "run"):
        with pytest.raises(results.SweeperError, match="another sweeper driver"):
            with sweep._held(f"file://{tmp_path}/shared/tiny", tmp_path / "mine", "run"):
                pass
    (tmp_path / "shared" / "tiny" / "tune").mkdir()
    (tmp_path / "shared" / "tiny" / "tune" / "tuner.pkl").symlink_to(tmp_path / "elsewhere.pkl")
    with pytest.raises(results.SweeperError, match="is a link in Ray Tune's saved state"):
        sweep._trusted_state(f"file://{tmp_path}/shared/tiny")


def test_resume_refuses_links_in_the_state_it_would_read_and_rewrite(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "tune").mkdir(parents=True)
    (elsewhere / "trials").mkdir()
    (elsewhere / "models").mkdir()
    for linked, message in (("tune", "is a link in Ray Tune's saved state"), ("trials", "is a link; resume writes only"),
                            ("models", "is a link; resume writes only")):
        location = tmp_path / f"results-{linked}"
        location.mkdir()
        (location / linked).symlink_to(elsewhere / linked)
        with pytest.raises(results.SweeperError, match=message):
            sweep._trusted_state(str(location))
    inner = tmp_path / "results-inner"
    (inner / "tune").mkdir(parents=True)
    (inner / "tune" / "tuner.pkl").symlink_to(elsewhere / "tune")
    with pytest.raises(results.SweeperError, match="is a link in Ray Tune's saved state"):
        sweep._trusted_state(str(inner))


def test_resume_into_a_storage_that_cannot_be_opened_is_one_line(tmp_path, write_spec, capsys):
    out = tmp_path / "r"
    out.mkdir()
    (out / "spec.yaml").write_text(Path(write_spec(tiny_spec())).read_text())
    line = refused(["resume", out, "--storage", "foo://u:hunter2@x/y"], capsys)
    assert "not a location pyarrow can open" in line and "hunter2" not in line


def test_a_run_refused_before_it_wrote_anything_leaves_no_directory(tmp_path, write_spec, capsys):
    out = tmp_path / "new" / "r"
    refused(["run", write_spec(tiny_spec()), "fixed.depth=64", "fixed.hidden=60000", "--out", out], capsys)
    assert not out.exists()


@pytest.mark.ray
def test_two_drivers_started_together_one_runs_and_the_other_is_refused(tmp_path, write_spec):
    spec, out = write_spec(tiny_spec(models=["m2"], epochs=30, seeds=[0])), tmp_path / "r"
    first = sweeper("run", spec, "--out", out, "--quiet")
    wait_for(lambda: (out / ".lock").exists() and (out / ".lock").read_text(), 30, "the first driver's lock")
    second = sweeper("run", spec, "--out", out, "--quiet")
    _, err = second.communicate(timeout=50)
    assert second.returncode == 2 and err.count("\n") == 1 and "another sweeper driver" in err, err
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    trials = results.read(out)
    assert len(trials) == 2 and trials["trial_id"].is_unique  # each configuration once
    assert [e["end"] is not None for e in provenance.read(out)] == [True]


# ------------------------------------------------------------------ nothing waits for ever


@pytest.mark.ray
@pytest.mark.parametrize("override, key", [("resources.gpu=1", "resources.gpu"), ("resources.cpu=1.0e3", "resources.cpu")])
def test_a_trial_no_node_can_hold_is_refused_before_anything_runs(tmp_path, write_spec, override, key):
    out = tmp_path / "r"
    started = time.monotonic()
    driver = sweeper("run", write_spec(tiny_spec()), override, "--out", out, "--quiet")
    _, err = driver.communicate(timeout=60)
    assert driver.returncode == 2 and err.count("\n") == 1, err
    assert f"{key}: each trial asks for" in err and "no node of this Ray has as much (its nodes have: " in err
    assert time.monotonic() - started < 60 and not out.exists()


@pytest.mark.parametrize("variable", ["TMPDIR", "HOME"])
def test_a_ray_that_cannot_start_is_one_line_naming_the_cause(tmp_path, write_spec, variable):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    env = {variable: str(blocked / "below")}  # a folder under a file: not writable, even by root
    if variable == "HOME":
        env["RAY_TMPDIR"] = str(tmp_path / "ray")  # Ray's session elsewhere: only its state under HOME fails
    driver = sweeper("run", write_spec(tiny_spec()), "--out", tmp_path / "r", "--quiet", env=env)
    _, err = driver.communicate(timeout=120)
    assert driver.returncode == 2 and err.count("\n") == 1, err
    assert "cannot start a local Ray: Not a directory" in err and "--address" not in err and "internal error" not in err


# ------------------------------------------------------------------ a results directory to read


@pytest.fixture
def swept(tmp_path):
    """A results directory as a sweep leaves it: spec, rows, a kept model, provenance."""
    from sweeper.spec import parse, to_yaml

    out = tmp_path / "swept"
    spec = parse(tiny_spec(models=["baseline"], search={}, fixed={"hidden": 16}))
    (out / "models").mkdir(parents=True)
    (out / "spec.yaml").write_text(to_yaml(spec))
    for config_id, hidden in (("c0", 16.0), ("c1", 32.0)):
        results.write_configuration(out, config_id, epoch_rows(config_id, "baseline", 0), [trial_row(config_id, "baseline", 0, hidden=hidden)],
                                    HYPER)
    kept_file(out)
    provenance.start(out, "run", False)
    provenance.finish(out)
    return out


def within(seconds: float, call):
    """call() or a failure after `seconds`: a read that blocks on a FIFO fails the test instead of hanging it."""
    def alarm(*_):
        raise TimeoutError(f"still waiting after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(int(seconds))
    try:
        return call()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("fifo, command", [
    ("spec.yaml", "report"), ("spec.yaml", "status"), ("spec.yaml", "inspect"), ("spec.yaml", "resume"),
    ("provenance.json", "report"), ("provenance.json", "status"),
    ("trials/c9.parquet", "report"), ("epochs/c9.parquet", "status"), ("models/c0-seed0.pt", "inspect"),
    ("inspect/c0-seed0/samples.png", "html"),
])
def test_a_fifo_anywhere_sweeper_reads_is_refused_not_waited_on(swept, capsys, fifo, command):
    (swept / fifo).parent.mkdir(parents=True, exist_ok=True)
    (swept / fifo).unlink(missing_ok=True)
    os.mkfifo(swept / fifo)
    argv = {"report": ["report", swept], "status": ["status", swept], "inspect": ["inspect", swept, "--trial", "c0-seed0"],
            "resume": ["resume", swept], "html": ["report", swept, "--format", "html"]}[command]
    line = within(30, lambda: refused(argv, capsys))
    assert fifo.split("/")[-1] in line and "a pipe, socket or device" in line


@pytest.mark.parametrize("argv_tail", [["--trial", "../../x"], ["--trial", "c0-seed0/../../../x"], ["--trial", ".."]])
def test_inspect_takes_only_trial_ids_never_paths(swept, capsys, argv_tail):
    line = refused(["inspect", swept, *argv_tail, "--out", swept / "inspect"], capsys)
    assert "is not an id sweeper writes" in line
    assert not (swept / "inspect").exists()


@pytest.mark.parametrize("where, says", [
    ("a file", "is a file, not a folder"),
    ("/proc/sweeper-figures", "cannot write the figures there"),
    ("models", "would write over the results of"),
    ("s3://u:hunter2@bucket/figures", "writes the figures to a local path only"),
])
def test_inspect_out_that_cannot_take_figures_is_one_line(swept, capsys, tmp_path, monkeypatch, where, says):
    monkeypatch.chdir(tmp_path)
    out = {"a file": tmp_path / "notes.txt", "models": swept / "models"}.get(where, where)
    if where == "a file":
        out.write_text("the user's notes\n")
    line = refused(["inspect", swept, "--trial", "c0-seed0", "--out", out], capsys)
    assert says in line and "hunter2" not in line
    assert not Path("s3:").exists() and not (swept / "inspect").exists()
    assert where != "a file" or out.read_text() == "the user's notes\n"


def test_report_out_names_a_local_file_and_a_pipe_nobody_reads_is_not_waited_on(swept, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = refused(["report", swept, "--out", "s3://u:hunter2@bucket/r.md"], capsys)
    assert "writes the report to a local path only" in line and "hunter2" not in line and not Path("s3:").exists()
    os.mkfifo(tmp_path / "pipe")
    monkeypatch.setattr(files, "READER_WAIT_S", 0.5)
    line = within(30, lambda: refused(["report", swept, "--out", tmp_path / "pipe"], capsys))
    assert "a pipe that no process read within 0.5 s" in line
    # a reader that comes a moment later gets the report
    read = []
    reader = threading.Thread(target=lambda: (time.sleep(0.2), read.append(open(tmp_path / "pipe").read())))
    reader.start()
    monkeypatch.setattr(files, "READER_WAIT_S", 10.0)
    assert main(["report", str(swept), "--out", str(tmp_path / "pipe")]) == 0
    reader.join(10)
    assert read and read[0] == capsys.readouterr().out


def test_inspect_out_never_writes_through_a_link_in_its_folder(swept, capsys, tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "c0-seed0").symlink_to(swept / "models")
    line = refused(["inspect", swept, "--trial", "c0-seed0", "--out", tmp_path / "figures"], capsys)
    assert "c0-seed0 is a link" in line and sorted(p.name for p in (swept / "models").iterdir()) == ["c0-seed0.json", "c0-seed0.pt"]


def test_a_trials_row_whose_trial_id_is_a_path_is_refused(swept, capsys, tmp_path):
    row = trial_row("c0", "baseline", 0, test_acc=0.99)
    row["trial_id"] = "../../escaped"
    results.write_configuration(swept, "c0", [], [row], HYPER)
    line = refused(["inspect", swept], capsys)
    assert "trial_id '../../escaped' is not an id sweeper writes" in line
    assert not (tmp_path / "escaped").exists() and not (swept.parent / "escaped").exists()


def test_a_symlink_out_of_the_directory_is_not_followed_into_a_report(swept, capsys, tmp_path):
    outside = tmp_path / "private.png"
    outside.write_bytes(b"\x89PNG secret bytes")
    (swept / "inspect" / "c0-seed0").mkdir(parents=True)
    (swept / "inspect" / "c0-seed0" / "samples.png").symlink_to(outside)
    line = refused(["report", swept, "--format", "html", "--out", tmp_path / "r.html"], capsys)
    assert "leads out of the results directory" in line and not (tmp_path / "r.html").exists()
    (swept / "inspect" / "c0-seed0" / "samples.png").unlink()
    (swept / "trials" / "c7.parquet").symlink_to(outside)
    assert "leads out of the results directory" in refused(["status", swept], capsys)


def test_a_symlink_inside_the_directory_is_read(swept, capsys):
    (swept / "trials" / "c0.parquet").rename(swept / "c0-copy.parquet")
    (swept / "trials" / "c0.parquet").symlink_to(swept / "c0-copy.parquet")
    assert main(strings("report", swept)) == 0
    assert sorted(results.read(swept)["config_id"]) == ["c0", "c1"]


# ------------------------------------------------------------------ a report never costs the sweep


@pytest.mark.parametrize("target", ["trials/c0.parquet", "epochs/new.md", "models/x.md", "tune/x.md", "tune-rerun-1/x.md",
                                    "spec.yaml", "optuna.journal", "provenance.json"])
def test_a_report_is_never_written_over_the_sweeps_own_files(swept, capsys, target):
    (swept / target).parent.mkdir(parents=True, exist_ok=True)
    before = (swept / target).read_bytes() if (swept / target).exists() else None
    line = refused(["report", swept, "--out", swept / target], capsys)
    assert "would write over the results of" in line
    assert ((swept / target).read_bytes() if (swept / target).exists() else None) == before


def test_a_report_replaces_an_earlier_report_but_another_file_only_with_force(swept, capsys, tmp_path):
    mine = tmp_path / "notes.md"
    mine.write_text("my notes\n")
    assert "is a file that is not a report of sweeper's" in refused(["report", swept, "--out", mine], capsys)
    assert mine.read_text() == "my notes\n"
    assert main(strings("report", swept, "--out", mine, "--force")) == 0 and "provenance of" in mine.read_text()
    assert main(strings("report", swept, "--out", mine)) == 0  # now an earlier report: replaced without --force


def test_a_report_to_a_symlink_or_fifo_is_written_into_it(swept, tmp_path):
    target, link = tmp_path / "target.md", tmp_path / "link.md"
    target.write_text("")
    link.symlink_to(target)
    assert main(strings("report", swept, "--out", link, "--force")) == 0
    assert link.is_symlink() and "provenance of" in target.read_text()
    fifo, got = tmp_path / "fifo", []
    os.mkfifo(fifo)
    reader = threading.Thread(target=lambda: got.append(open(fifo).read()))
    reader.start()
    assert within(30, lambda: main(strings("report", swept, "--out", fifo))) == 0
    reader.join(10)
    assert fifo.is_fifo() and "provenance of" in got[0]


# ------------------------------------------------------------------ malformed files: one line each


@pytest.mark.parametrize("content", ['{"command": "run"}', '[1, 2]', '[{"start": "yesterday"}]', '[{"start": {"x": 1}}]', "not json"])
@pytest.mark.parametrize("command", ["report", "status"])
def test_a_malformed_provenance_is_one_line(swept, capsys, content, command):
    (swept / "provenance.json").write_text(content)
    assert "provenance.json: not the provenance sweeper writes" in refused([command, swept], capsys)


def test_a_point_that_is_not_json_is_one_line(swept, capsys):
    results.write_configuration(swept, "c0", epoch_rows("c0", "baseline", 0), [trial_row("c0", "baseline", 0, point="{alpha: ")], HYPER)
    assert "a row's point is not the JSON object sweeper writes" in refused(["status", swept], capsys)


@pytest.mark.parametrize("column", ["epochs", "wall_s", "dataset"])
def test_a_trials_file_missing_a_column_is_one_line(swept, capsys, column):
    table = pd.read_parquet(swept / "trials" / "c1.parquet").drop(columns=[column])
    table.to_parquet(swept / "trials" / "c1.parquet")
    for command in ("report", "status"):
        assert f"c1.parquet: has no {column} column" in refused([command, swept], capsys)


def kept_file(swept, weights=None, **about):
    """A kept model of c0's seed 0 as kept.save writes it; `weights` and `about` replace what it would hold."""
    description = {"trial_id": "c0-seed0", "model": "baseline", "input_shape": [64], "n_classes": 10, "hyper": {"hidden": 16.0},
                   "dataset": "digits", "epoch": 2, "val_acc": 0.9, "test_acc": 0.9, **about}
    module = models.build("baseline", (64,), 10, {"hidden": 16})
    kept.save(swept, "c0-seed0", dict(module.named_parameters()) if weights is None else weights, description)


@pytest.mark.parametrize("damage, says", [
    (lambda s: (s / "models" / "c0-seed0.pt").write_bytes((s / "models" / "c0-seed0.pt").read_bytes()[:100]), "not a kept model sweeper wrote"),
    (lambda s: (s / "models" / "c0-seed0.pt").write_bytes(pickle.dumps(print)), "not a kept model sweeper wrote"),
    (lambda s: torch.save([1, 2], s / "models" / "c0-seed0.pt"), "not the {weights, about} sweeper keeps"),
    (lambda s: kept_file(s, model="os.system"), "names no model sweeper has"),
    (lambda s: kept_file(s, input_shape=[2**40, 2**40]), "is not an input sweeper trains on"),
    (lambda s: kept_file(s, hyper={"hidden": 2**40}), "hyper.hidden: must be <= 65536"),
    (lambda s: kept_file(s, dataset="/etc/passwd"), "is not one of the sweep's"),
    (lambda s: kept_file(s, weights={"w": torch.zeros(2)}), "its weights do not fit its model"),
    # sizes that would take terabytes to build are refused against the file's own tensors first
    (lambda s: kept_file(s, input_shape=[4096, 4096], hyper={"hidden": 10000.0}), "its weights do not fit its model"),
    (lambda s: kept_file(s, trial_id="c1-seed0"), "holds the model of trial c1-seed0, not of c0-seed0"),
    (lambda s: kept_file(s, hyper={"hidden": 16.0, "network": "cnn"}), "its description builds no model"),
    (lambda s: kept_file(s, input_shape=[10], weights=dict(models.build("baseline", (10,), 10, {"hidden": 16}).named_parameters())),
     "a model of 10 input values and 10 classes, but digits has 64 and 10"),
    (lambda s: kept_file(s, n_classes=3, weights=dict(models.build("baseline", (64,), 3, {"hidden": 16}).named_parameters())),
     "a model of 64 input values and 3 classes"),
])
def test_a_damaged_kept_model_is_one_line(swept, capsys, damage, says):
    damage(swept)
    line = refused(["inspect", swept, "--trial", "c0-seed0"], capsys)
    assert says in line and "weights_only" not in line
    assert not (swept / "inspect").exists()  # refused before any folder was made


# ------------------------------------------------------------------ resume runs code: only the user's own


@pytest.mark.parametrize("change", ["others may write", "another owner"])
def test_resume_refuses_saved_state_someone_else_could_have_written(swept, capsys, change):
    state = swept / "tune" / "tuner.pkl"
    state.parent.mkdir()
    state.write_bytes(pickle.dumps({"any": "thing"}))
    if change == "others may write":
        state.chmod(0o666)
    elif os.geteuid() == 0:
        os.chown(state, 12345, -1)
    else:
        pytest.skip("changing a file's owner needs root")
    line = refused(["resume", swept], capsys)
    assert line.startswith(f"{state}: Ray Tune's saved state here is") and "resuming runs code from these files" in line


def test_report_status_and_inspect_never_unpickle(swept, capsys, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("unpickled")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    (swept / "tune").mkdir()
    (swept / "tune" / "tuner.pkl").write_bytes(b"not to be read")
    for argv in (["report", swept], ["report", swept, "--format", "html", "--out", swept / "r.html"], ["status", swept]):
        assert main([str(a) for a in argv]) == 0
    assert main(["inspect", str(swept), "--trial", "c0-seed0"]) == 0


def test_resume_says_it_runs_code_from_the_directory(capsys):
    with pytest.raises(SystemExit):
        main(["resume", "--help"])
    assert "runs code" in " ".join(capsys.readouterr().out.split())


# ------------------------------------------------------------------ secrets and the terminal


@pytest.mark.ray
def test_no_study_password_reaches_any_file_of_the_results_directory(postgres_url, tmp_path, write_spec):
    secret = "S3cretPa55word"
    url = postgres_url.replace("postgres@", f"postgres:{secret}@")  # the test server trusts any password
    out = tmp_path / "r"
    assert main(["run", str(write_spec(tiny_spec(models=["baseline"], search={}, fixed={"hidden": 16}))), "--study", url, "--out", str(out), "--quiet"]) == 0
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".pkl") for p in files)  # Tune's saved state is among what was searched
    assert [p for p in files if secret.encode() in p.read_bytes()] == []


def test_control_characters_in_what_a_message_quotes_are_escaped(write_spec, capsys):
    spec = tiny_spec()
    spec["\x1b]0;owned\x07\x1b[2J"] = 1
    line = refused(["validate", write_spec(spec)], capsys)
    assert "\x1b" not in line and "\x07" not in line and "\\x1b" in line
    name = write_spec(tiny_spec(), name="odd\x1b[2J.yaml")
    assert main(["validate", str(name)]) == 0
    assert "\x1b" not in capsys.readouterr().out


# ------------------------------------------------------------------ specs that validate also run


@pytest.mark.parametrize("override, says", [
    ("batch.labelled=1000000000000000000000000000000", "batch.labelled: must be <= 1048576"),
    ("fixed.hidden=2147483648", "fixed.hidden: must be <= 65536"),
    ("batch.labelled=100000", "batch.labelled: 100000 is more than the"),
    ("fixed.depth=64", "needs about"),
])
def test_sizes_past_what_a_machine_holds_are_refused_alike_by_validate_estimate_and_run(write_spec, capsys, tmp_path, override, says):
    spec = write_spec(tiny_spec(fixed={"hidden": 60000, "latent": 4}) if override == "fixed.depth=64" else tiny_spec())
    lines = {command: refused([command, spec, override] + (["--out", tmp_path / "r"] if command == "run" else []), capsys)
             for command in ("validate", "estimate", "run")}
    assert len(set(lines.values())) == 1 and says in lines["validate"], lines


def test_numbers_in_exponent_form_are_numbers(write_spec, capsys):
    assert main(["validate", str(write_spec(tiny_spec())), "resources.cpu=1.0e3", "fixed.lr=1e-3"]) == 0


def test_figures_never_land_outside_the_directory_through_a_link(swept, capsys, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (swept / "figures").symlink_to(elsewhere)
    assert main(strings("report", swept, "--figures")) == 2  # the table is printed; the figures are refused
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "leads out of the results directory" in err and list(elsewhere.iterdir()) == []
    (swept / "inspect").mkdir()
    (swept / "inspect" / "c0-seed0").symlink_to(elsewhere)
    assert "leads out of the results directory" in refused(["inspect", swept, "--trial", "c0-seed0"], capsys)
    assert list(elsewhere.iterdir()) == []


def test_a_joined_cluster_that_cannot_fit_a_trial_yet_says_what_the_sweep_waits_for(monkeypatch, capsys):
    from types import SimpleNamespace

    from sweeper import sweep
    from sweeper.spec import parse

    spec = parse(tiny_spec(resources={"cpu": 1, "gpu": 1}))
    monkeypatch.setattr(sweep.ray, "nodes", lambda: [{"Alive": True, "Resources": {"CPU": 8.0}}])
    progress = sweep.Progress(spec, every_s=0.0)
    progress.on_step_end(1, [SimpleNamespace(status="PENDING")])
    assert capsys.readouterr().out == ("waiting for a node that fits a trial (resources.gpu); its nodes have: 8 CPU, 0 GPU; "
                                       "an autoscaler may add one\n")
    progress.on_step_end(2, [SimpleNamespace(status="RUNNING")])  # something runs: nothing to say
    monkeypatch.setattr(sweep.ray, "nodes", lambda: [{"Alive": True, "Resources": {"CPU": 8.0, "GPU": 1.0}}])
    progress.on_step_end(3, [SimpleNamespace(status="PENDING")])  # a node that fits: Tune is only starting it
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("fmt", ["markdown", "latex", "csv", "html"])
def test_an_earlier_report_of_any_format_is_replaced_without_force(swept, tmp_path, fmt):
    out = tmp_path / f"report.{fmt}"
    assert main(strings("report", swept, "--format", fmt, "--out", out)) == 0
    first = out.read_text()
    assert main(strings("report", swept, "--format", fmt, "--out", out)) == 0 and out.read_text() != "" and len(first) > 0


def test_a_fifo_among_the_published_figures_is_refused(swept, capsys, tmp_path):
    published = tmp_path / "published"
    published.mkdir()
    os.mkfifo(published / "kingma.csv")
    line = within(30, lambda: refused(["report", swept, "--compare", "--published", published], capsys))
    assert "kingma.csv: is a pipe, socket or device" in line


def test_a_study_journal_that_is_a_fifo_is_refused(tmp_path, write_spec, capsys):
    journal = tmp_path / "study.journal"
    os.mkfifo(journal)
    line = within(30, lambda: refused(["run", write_spec(tiny_spec()), "--study", journal, "--out", tmp_path / "r"], capsys))
    assert "is not a regular file" in line and not (tmp_path / "r").exists()


@pytest.mark.parametrize("query", ["", "?connect_timeout=1"])
def test_a_study_database_that_takes_the_connection_and_never_answers_is_given_up_on(monkeypatch, query):
    """A server (or a proxy) that accepts the TCP connection and then says nothing: the database driver would wait as
    long as the socket stays open. The URL's own connect_timeout wins over sweeper's."""
    import socket

    from sweeper import study

    monkeypatch.setattr(study, "CONNECT_TIMEOUT_S", 2 if not query else 600)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    held = []
    threading.Thread(target=lambda: [held.append(silent.accept()) for _ in range(8)], daemon=True).start()
    url = f"postgresql+psycopg://me:s3cret-word@127.0.0.1:{silent.getsockname()[1]}/sweeps{query}"
    try:
        with pytest.raises(results.SweeperError, match=r"cannot open the study database \(OperationalError: .*timeout") as caught:
            within(30, lambda: study.storage(url))
    finally:
        silent.close()
    assert "s3cret-word" not in str(caught.value) and held  # it did connect, and the password stays out of the line


@pytest.mark.parametrize("given", [None, "30"])
def test_joining_a_cluster_that_never_answers_gives_up_in_a_few_tries_and_says_so(monkeypatch, given):
    """Ray tries a silent GCS 20 times, about 30 s each; sweeper asks for JOIN_ATTEMPTS tries through Ray's own
    budget, unless the user set one, and says in one line that the cluster did not answer (Ray raises a
    ConnectionError, an OSError: not a local Ray's unwritable folder)."""
    from sweeper import sweep

    budget = "RAY_gcs_server_port_wait_time_s"
    if given is None:
        monkeypatch.delenv(budget, raising=False)
    else:
        monkeypatch.setenv(budget, given)
    seen = []

    def silent(**options):
        seen.append(os.environ.get(budget))
        raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.9:6379")

    monkeypatch.setattr(sweep.ray, "init", silent)
    with pytest.raises(results.SweeperError) as caught:
        sweep._start_ray("10.0.0.9:6379", None)
    assert str(caught.value) == ("cannot start or join the Ray cluster at 10.0.0.9:6379 (Failed to connect to Ray cluster at "
                                 "10.0.0.9:6379); check --address and that the cluster is up")
    assert seen == [given or str(sweep.JOIN_ATTEMPTS)] and os.environ.get(budget) == given  # the user's stays, ours goes


@pytest.mark.parametrize("when", ["before ray.init's handler", "after ray.init's handler", "while Ray stops"])
def test_a_sigterm_while_ray_starts_or_stops_is_a_stop_in_one_line_not_a_quiet_exit_15(monkeypatch, when):
    from sweeper.errors import Interrupted

    def rays_handler(signum, frame):  # what ray.init sets on SIGTERM first thing
        sys.exit(signum)

    def starting(address, num_cpus):
        if when == "after ray.init's handler":
            signal.signal(signal.SIGTERM, rays_handler)
        if when != "while Ray stops":
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler runs before this ends
        else:
            signal.signal(signal.SIGTERM, rays_handler)

    def stopping():
        if when == "while Ray stops":
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)

    monkeypatch.setattr(sweep.ray, "is_initialized", lambda: False)
    monkeypatch.setattr(sweep, "_start_ray", starting)
    monkeypatch.setattr(sweep.ray, "shutdown", stopping)
    before = signal.getsignal(signal.SIGTERM)
    ran = []
    with pytest.raises(Interrupted) as caught:
        with sweep._ray(None, None, "continue with: sweeper resume r"):
            ran.append(True)
    assert caught.value.exit_code == 143 and signal.getsignal(signal.SIGTERM) is before
    expected = "continue with: sweeper resume r" if when == "while Ray stops" else "Ray was still starting, nothing had run"
    assert expected in str(caught.value) and ran == ([True] if when == "while Ray stops" else [])


@pytest.mark.parametrize("address", ["local", "ray://head:10001"])
def test_starting_a_head_here_or_joining_through_ray_client_leaves_rays_retry_budget_alone(monkeypatch, address):
    from sweeper import sweep

    budget = "RAY_gcs_server_port_wait_time_s"
    monkeypatch.delenv(budget, raising=False)
    seen = []
    monkeypatch.setattr(sweep.ray, "init", lambda **options: seen.append(os.environ.get(budget)))
    sweep._start_ray(address, None)
    assert seen == [None]  # "local"'s own GCS, raylet and workers would inherit it; Ray Client ignores it


def test_joining_a_cluster_whose_gcs_keeps_its_state_in_rocksdb_leaves_rays_longer_budget_alone(monkeypatch):
    """A head restarting over RocksDB replays its store for a while; Ray allows it 120 tries where
    RAY_gcs_storage=rocksdb is set, and a budget of sweeper's would cut that to JOIN_ATTEMPTS."""
    from sweeper import sweep

    budget = "RAY_gcs_server_port_wait_time_s"
    monkeypatch.delenv(budget, raising=False)
    monkeypatch.setenv("RAY_gcs_storage", "rocksdb")
    seen = []
    monkeypatch.setattr(sweep.ray, "init", lambda **options: seen.append(os.environ.get(budget)))
    sweep._start_ray("10.0.0.9:6379", None)
    assert seen == [None]


@pytest.mark.parametrize("url, connect_args", [
    ("postgresql+psycopg://me@db/sweeps", {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
                                          "keepalives_count": 3, "connect_timeout": 30}),
    ("postgresql+psycopg://me@db/sweeps?connect_timeout=5&keepalives=0", {"keepalives_idle": 30, "keepalives_interval": 10,
                                                                          "keepalives_count": 3}),
    ("postgresql+pg8000://me@db/sweeps", {}),  # pg8000's timeout would also bound every later query
    ("mysql+mysqlconnector://me@db/sweeps", {}),  # so would mysql-connector's connect_timeout
    ("mysql+pymysql://me@db/sweeps", {"connect_timeout": 30}),  # PyMySQL's bounds the connecting alone
    ("mssql+pyodbc://me@db/sweeps", {}),  # a driver sweeper does not know: its own defaults
])
def test_a_study_databases_connect_timeout_is_said_in_its_drivers_words(url, connect_args):
    from sweeper import study

    assert study._engine_options(url) == {"pool_pre_ping": True, "connect_args": connect_args}


def test_pgconnect_timeout_in_the_environment_is_libpqs_to_apply(monkeypatch):
    from sweeper import study

    monkeypatch.setenv("PGCONNECT_TIMEOUT", "7")
    assert "connect_timeout" not in study._engine_options("postgresql+psycopg://me@db/sweeps")["connect_args"]

"""A study shared by several drivers (study.py), on PostgreSQL, SQLite and a journal file: claims,
heartbeats, taking over from a silent driver, the spec's fingerprint, and `sweeper status`."""
import time

import optuna
import pytest

from helpers import tiny_spec
from sweeper import searchers, study
from sweeper.cli import main
from sweeper.errors import SweeperError
from sweeper.spec import parse

GRID = [0.1, 1.0, 10.0]


def grid_spec(**overrides):
    return parse(tiny_spec(models=["m2"], search={"alpha": GRID}, **overrides))


def searcher(spec, url, driver, location="no-rows-here"):
    """A driver's searcher; its trials write no rows, so it tells the study what Tune reports."""
    board = study.SharedStudyDriver(url, spec, driver)
    return searchers.SharedSearch(board, study.open_shared(spec, url), location,
                                  space=searchers.ClaimingDefineByRun(spec, driver), metric="objective", mode="max")


def test_two_drivers_take_every_grid_point_once_and_end_when_all_are_done(study_url):
    spec = grid_spec()
    a, b = searcher(spec, study_url, "a"), searcher(spec, study_url, "b")  # b joins: nothing enqueued twice
    assert study.census(a.board.study).states["WAITING"] == len(GRID)
    taken = {}
    for n, driver in enumerate([a, b, a]):
        config = driver.suggest(f"t{n}")
        taken[f"t{n}"] = (driver, config)
    assert sorted(config["alpha"] for _, config in taken.values()) == GRID
    assert [config["driver"] for _, config in taken.values()] == ["a", "b", "a"]
    b.checked_at = a.checked_at = 0.0
    assert b.suggest("t9") is None  # nothing left to take, but a still runs two: b waits for them
    for trial_id, (driver, _) in taken.items():
        driver.on_trial_complete(trial_id, {"objective": 0.5})
    b.checked_at = 0.0
    assert b.suggest("t10") == "FINISHED"
    census = study.census(a.board.study)
    assert census.done == census.total == len(GRID)
    assert {d: c["done"] for d, c in census.by_driver.items()} == {"a": 2, "b": 1}


def test_a_driver_that_asks_after_the_queue_ran_dry_gives_the_new_trial_back(study_url):
    spec = grid_spec()
    a, b = searcher(spec, study_url, "a"), searcher(spec, study_url, "b")
    assert b._census().states["WAITING"] == len(GRID)  # b's view, stale by the time it asks
    for n in range(len(GRID)):
        assert a.suggest(f"a{n}") is not None
    b.checked_at = time.monotonic()  # b keeps its stale view however long a's asks took (a slow database)
    assert b.suggest("b0") is None  # its ask made a fresh trial, not a grid point: handed back unrun
    trials = a.board.study.get_trials()
    assert len(trials) == len(GRID) + 1
    stray = [t for t in trials if t.user_attrs.get(study.UNCLAIMED)]
    assert len(stray) == 1 and stray[0].state == optuna.trial.TrialState.FAIL
    census = study.census(a.board.study)
    assert census.states == {"RUNNING": len(GRID)} and census.states["FAIL"] == 0


def test_a_silent_drivers_configuration_goes_back_to_the_queue_after_the_grace_period(study_url):
    spec = grid_spec(study={"heartbeat_s": 1, "reclaim_after_s": 2})
    silent, alive = searcher(spec, study_url, "silent"), searcher(spec, study_url, "alive")
    claimed = silent.suggest("s0")
    alive.board.reclaim()
    assert study.census(alive.board.study).reclaimed == 0  # within the grace period: still the silent driver's
    time.sleep(3.5)
    alive.board.reclaim()
    census = study.census(alive.board.study)
    assert census.reclaimed == 1 and census.states["WAITING"] == len(GRID)
    assert census.by_driver["silent"]["reclaimed"] == 1
    taken = [alive.suggest(f"a{n}") for n in range(len(GRID))]
    assert sorted(c["alpha"] for c in taken) == GRID and claimed["alpha"] in [c["alpha"] for c in taken]


def test_heartbeats_keep_a_slow_configuration_with_its_driver(study_url):
    spec = grid_spec(study={"heartbeat_s": 1, "reclaim_after_s": 2})
    busy, other = searcher(spec, study_url, "busy"), searcher(spec, study_url, "other")
    busy.suggest("b0")
    heartbeats = study.Heartbeats(busy.board)
    heartbeats.start()
    try:
        time.sleep(4.0)
        other.board.reclaim()
    finally:
        heartbeats.stop()
    census = study.census(other.board.study)
    assert census.reclaimed == 0 and census.by_driver["busy"]["running"] == 1


def test_a_sampled_search_shares_its_budget_and_its_sampler_across_drivers(study_url):
    spec = parse(tiny_spec(models=["m2"], sampler="tpe", trials=4, search={"alpha": {"low": 0.1, "high": 10.0, "log": True}}))
    a, b = searcher(spec, study_url, "a"), searcher(spec, study_url, "b")
    for n, driver in enumerate([a, b, a, b]):
        config = driver.suggest(f"t{n}")
        driver.on_trial_complete(f"t{n}", {"objective": config["alpha"] / 10})
        driver.checked_at = 0.0
    assert a.suggest("t9") == "FINISHED" and b.suggest("t9") == "FINISHED"
    trials = a.board.study.get_trials()
    assert len(trials) == 4 and a.board.study.best_value == max(t.params["alpha"] for t in trials) / 10


def test_a_study_created_from_another_spec_is_refused(study_url):
    study.open_shared(grid_spec(), study_url)
    with pytest.raises(SweeperError, match=r"study 'tiny' was created from a different spec .*run the same spec file"):
        study.open_shared(grid_spec(epochs=3), study_url)


def test_a_driver_that_loses_the_race_to_create_the_sqlite_tables_tries_again(tmp_path):
    """Two drivers starting together: both find no tables, one creates them, the other's CREATE then
    fails ("table studies already exists"). Replayed here through the storage's maker."""
    import sqlite3

    import sqlalchemy.exc
    from optuna.storages import RDBStorage

    url = f"sqlite:///{tmp_path}/study.db"
    study.storage(url)  # the winner made the tables
    calls = []

    def as_if_the_tables_were_made_meanwhile(url, **options):
        calls.append(url)
        if len(calls) == 1:  # the loser's CREATE TABLE, a moment too late
            raise sqlalchemy.exc.OperationalError("CREATE TABLE studies", {}, sqlite3.OperationalError("table studies already exists"))
        return RDBStorage(url, **options)

    loser = study._rdb_storage(url, {}, connect=as_if_the_tables_were_made_meanwhile)
    assert len(calls) == 2
    assert optuna.create_study(storage=loser, study_name="joined").study_name == "joined"


def test_a_driver_whose_heartbeats_fail_says_so_before_its_work_is_taken_over():
    """The database refuses: every beat says which study (its password masked), for how long no
    heartbeat got through, and how long before other drivers may take this driver's configurations."""
    spec = grid_spec(study={"heartbeat_s": 1, "reclaim_after_s": 60})
    board = study.SharedStudyDriver("postgresql://nobody:hunter2@127.0.0.1:1/none", spec, "east")
    ticks = iter(range(0, 1000, 30))  # a clock that moves 30 s a beat
    lines = []
    heartbeats = study.Heartbeats(board, say=lines.append, clock=lambda: next(ticks))
    heartbeats.start()
    try:
        _wait_for(lambda: len(lines) >= 2)
    finally:
        heartbeats.stop()
    assert not any("hunter2" in line for line in lines)
    first, second = lines[:2]
    assert first.startswith("sweeper: driver east: heartbeat to study tiny at postgresql://nobody:***@127.0.0.1:1/none failed (SweeperError: ")
    assert first.endswith("no heartbeat for 30 s: other drivers may take over this driver's configurations in 30 s unless a heartbeat gets through")
    assert second.endswith("no heartbeat for 60 s: other drivers may take over this driver's configurations now (reclaim_after_s, 60 s, has passed)")


def test_a_driver_whose_heartbeats_get_through_again_says_so(tmp_path):
    url = str(tmp_path / "not-yet" / "study.journal")  # no folder for the journal yet: every beat fails
    spec = grid_spec(study={"heartbeat_s": 1, "reclaim_after_s": 2})
    lines = []
    heartbeats = study.Heartbeats(study.SharedStudyDriver(url, spec, "east"), say=lines.append)
    heartbeats.start()
    try:
        _wait_for(lambda: lines)
        assert f"heartbeat to study tiny at {url} failed (SweeperError: --study {url}: no directory" in lines[0]
        (tmp_path / "not-yet").mkdir()
        study.open_shared(spec, url)
        _wait_for(lambda: lines[-1].endswith("again"))
    finally:
        heartbeats.stop()
    assert lines[-1] == f"sweeper: driver east: heartbeats reach study tiny at {url} again"


def _wait_for(condition, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "waited in vain"
        time.sleep(0.05)


@pytest.mark.parametrize("url, message", [
    ("postgresql://nobody:secret@127.0.0.1:1/none", r"--study postgresql://nobody:\*\*\*@127.0.0.1:1/none: cannot open the study database \(OperationalError"),
    ("postgresql+nosuchdriver://u@host/db", r"cannot open the study database \(NoSuchModuleError"),
    ("mysql+pymysql://u@host/db", r"the driver for this database is not installed; pip install"),
    ("nosuchdb://host/db", r"cannot open the study database \(NoSuchModuleError"),
    ("/no/such/dir/study.journal", r"no directory /no/such/dir for the journal file"),
])
def test_a_bad_or_unreachable_study_url_is_one_line_and_leaves_nothing(write_spec, tmp_path, capsys, url, message):
    out = tmp_path / "out"
    code = main(["run", str(write_spec(tiny_spec())), "--study", url, "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "secret" not in err
    import re

    assert re.search(message, err), err
    assert not out.exists()


def test_status_counts_per_driver_and_overall(study_url, capsys):
    spec = grid_spec()
    a, b = searcher(spec, study_url, "a"), searcher(spec, study_url, "b")
    a.suggest("a0")
    a.on_trial_complete("a0", {"objective": 0.5})
    b.suggest("b0")
    assert main(["status", "--study", study_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("study tiny at ") and "1/3 configurations done (33%), 1 running, 0 failed, 1 left" in lines[0]
    assert lines[2].split() == ["a", "1", "0", "0", "0"] and lines[3].split() == ["b", "0", "1", "0", "0"]
    assert main(["status", "--study", study_url, "--name", "other"]) == 2
    assert "no study 'other' (it holds: tiny); check --name" in capsys.readouterr().err


def test_the_study_and_sweeper_status_need_only_optuna():
    """`sweeper status --study` runs where only the study is reachable: no Ray (searchers.py has it), no torch."""
    import subprocess
    import sys

    code = "import sys, sweeper.cli, sweeper.study; print(sorted(m for m in ('ray', 'torch') if m in sys.modules))"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert shown.stdout.strip() == "[]"


def test_a_relative_journal_path_takes_a_lock_it_can_break(tmp_path, monkeypatch):
    """Optuna's lock is a symlink to the journal; given a relative path, the link's target dangled, and a stale
    lock left by a killed driver was neither taken nor broken: a busy loop for ever."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shared").mkdir()
    store = study.storage("shared/j.journal")
    assert store._backend._file_path == str(tmp_path / "shared" / "j.journal")  # noqa: SLF001 - where Optuna writes


def journal_with(tmp_path, tail: bytes):
    url = str(tmp_path / "j.journal")
    spec = grid_spec()
    study.open_shared(spec, url)
    with open(url, "ab") as f:
        f.write(tail)
    return url


@pytest.mark.parametrize("tail", [b"\0" * 4096 + b"\n", b"\xff\xfe\n", b'{"op_code": 99}\n'], ids=["nul", "not-utf-8", "unknown-op"])
def test_a_damaged_journal_is_one_line_for_status_and_for_a_driver(tmp_path, capsys, tail):
    url = journal_with(tmp_path, tail)
    assert main(["status", "--study", url]) == 2
    err = capsys.readouterr().err
    assert "holds entries Optuna cannot read" in err and err.count("\n") == 1
    with pytest.raises(SweeperError, match="holds entries Optuna cannot read"):
        study.storage(url)


def test_status_never_writes_into_a_database_that_is_not_optunas(tmp_path, capsys):
    import sqlite3

    mine = tmp_path / "app.db"
    with sqlite3.connect(mine) as connection:
        connection.execute("CREATE TABLE mine (x)")
    before = mine.read_bytes()
    empty = tmp_path / "empty.db"
    empty.touch()
    for path in (mine, empty):
        assert main(["status", "--study", f"sqlite:///{path}"]) == 2
        assert "is not an Optuna study database" in capsys.readouterr().err
    assert mine.read_bytes() == before and empty.stat().st_size == 0


def test_a_study_not_made_by_run_study_is_refused_at_once(tmp_path):
    url = str(tmp_path / "own.journal")
    spec = grid_spec()
    own = optuna.create_study(storage=study.storage(url), study_name=spec.name, direction="maximize")
    own.enqueue_trial({"alpha": 1.0})
    started = time.monotonic()
    with pytest.raises(SweeperError, match="holds trials but was not made by 'sweeper run --study'"):
        study.open_shared(spec, url)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("driver", ["a/../../x", "d" * 65])
def test_a_bad_driver_name_is_refused_before_any_folder_is_made(write_spec, tmp_path, capsys, monkeypatch, driver):
    monkeypatch.chdir(tmp_path)
    spec = write_spec(tiny_spec())
    assert main(["run", str(spec), "--study", str(tmp_path / "j.journal"), "--driver", driver, "--quiet"]) == 2
    assert "use letters, digits, '.', '_' and '-' only, at most 64" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [spec.name]


def test_default_driver_names_fit_and_stay_apart_for_long_hostnames_that_differ_at_their_ends(monkeypatch):
    from sweeper import sweep

    names = []
    for host in ("sweeper-driver-" + "x" * 40 + "-7f9c2", "sweeper-driver-" + "x" * 40 + "-8d1e4"):
        monkeypatch.setattr(sweep.socket, "gethostname", lambda host=host: host)
        names.append(sweep.default_driver())
    assert names[0] != names[1] and all(study.DRIVER_NAME.match(n) for n in names)


def test_status_of_a_study_whose_attributes_sweeper_did_not_write_is_one_line(tmp_path, capsys):
    url = str(tmp_path / "j.journal")
    spec = grid_spec()
    study.open_shared(spec, url)
    loaded = optuna.load_study(storage=study.storage(url), study_name=spec.name)
    for driver in ("east", 5, {"a": 1}):  # drivers' names of types sweeper never writes: counted, under no driver
        trial = loaded.ask()
        trial.set_user_attr(study.DRIVER, driver)
    assert main(["status", "--study", url]) == 0
    printed = capsys.readouterr().out
    assert "3 running" in printed and "\neast " in printed
    loaded.set_user_attr(study.CONFIGURATIONS, "many")
    assert main(["status", "--study", url]) == 2
    assert "its sweeper_configurations is 'many', not the count of configurations" in capsys.readouterr().err

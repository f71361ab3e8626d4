"""One Optuna study shared by several drivers, each on its own Ray cluster (`sweeper run --study URL`).

The study lives where every driver reaches it: PostgreSQL or MySQL (Optuna's RDBStorage), SQLite on
one machine, or a journal file on a shared filesystem. It holds the work, and the claims on it:

- A grid is enqueued once, by the driver that creates the study; a driver takes a point with
  `study.ask()`, which moves one WAITING trial to RUNNING in one transaction (RDB) or one journal
  entry, so two drivers never take the same point.
- A sampled search (tpe, cmaes, ...) asks the study's sampler, which sees every driver's results.
- A driver records a heartbeat for each configuration it runs. One whose driver went silent for
  `reclaim_after_s` is failed, and Optuna's RetryHeartbeatStaleTrialCallback enqueues it again with
  the same parameters, so another driver takes it over. RDB storages keep Optuna's own heartbeats;
  a journal has none in Optuna, so there the heartbeat is a trial attribute and the failing is the
  journal's own compare-and-set (set_trial_state_values), as Optuna does it for RDB.
- The spec's fingerprint is stored with the study: a driver with another spec is turned away.

Every configuration also ends as one finished trial of a study, for optuna-dashboard: the searcher's
own trial (`finish`), or one added for a configuration no searcher handed out, a pack's member (`add`),
each once (`RecordedConfigurations`). Its value is the mean over seeds of the best validation accuracy, its attributes
the test accuracy and the spreads over seeds (`summarise`, from the configuration's rows).

Only Optuna here: the Ray side (the searchers Tune drives) is searchers.py.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from . import files, redact, space
from .errors import SweeperError, first_line
from .ids import CLAIM_KEYS, DRIVER, STUDY_TRIAL  # noqa: F401 - study.DRIVER etc. name a claimed trial's keys
from .spec import Spec, to_yaml

FINGERPRINT = "sweeper_spec_sha256"  # study attributes
CONFIGURATIONS = "sweeper_configurations"
READY = "sweeper_ready"  # set once the grid is enqueued
HEARTBEAT = "heartbeat"  # journal only: the claiming driver's last word (seconds since the epoch)
UNCLAIMED = "unclaimed"  # asked when the grid's queue had just run dry: no point, never run
DRIVER_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")  # it names a results folder and every trial id: kept short
READY_WAIT_S = 120  # how long a driver waits, without progress, for another to finish enqueuing the grid


def checked_driver(driver: str) -> str:
    """A driver's name as --driver gives it, or one line: it becomes part of a folder's name and of every trial id."""
    if not DRIVER_NAME.match(driver):
        raise SweeperError(f"--driver {redact.printable(repr(driver[:80]))}: use letters, digits, '.', '_' and '-' only, "
                           "at most 64 of them")
    return driver


def fingerprint(spec: Spec) -> str:
    return hashlib.sha256(to_yaml(spec).encode()).hexdigest()


def describe(url: str) -> str:
    """The URL without its password or secret parameters, for messages and files."""
    return redact.url(url)


def storage(url: str, spec: Spec | None = None) -> optuna.storages.BaseStorage:
    """The storage a URL names: an RDB URL (postgresql://, mysql://, sqlite:///), else a journal file
    (file:///path or a path). With `spec`, heartbeats and reclaiming are on, as the spec sets them."""
    _not_mistyped(url)
    if "://" not in url or url.startswith("file://"):
        path = Path(url.removeprefix("file://")).expanduser()
        if not path.parent.is_dir():
            raise SweeperError(f"--study {url}: no directory {path.parent} for the journal file; create it, "
                               "or give a database URL such as postgresql://user@host/db")
        _journal_or_empty(path, url)  # a FIFO or a device would block every driver for ever: refused there
        # absolute: Optuna's lock is a symlink to the journal, and a relative target would dangle beside it, which
        # Optuna then neither takes nor breaks (a busy loop for ever)
        try:
            return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path.resolve())))
        except UNREADABLE_JOURNAL as e:
            raise _damaged(url, e) from None
    if url.startswith("sqlite:"):
        _shareable_sqlite(url)
    beats = {} if spec is None else dict(heartbeat_interval=spec.study.heartbeat_s, grace_period=spec.study.reclaim_after_s,
                                         heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=spec.retries))
    try:
        return _rdb_storage(redact.quoted(url), beats)
    except ImportError:  # Optuna's words for a database driver that is not installed
        raise SweeperError(f"--study {describe(url)}: the driver for this database is not installed; "
                           "pip install -e '.[postgres]' for PostgreSQL (psycopg), or the driver SQLAlchemy names for yours") from None
    except Exception as e:  # noqa: BLE001 - sqlalchemy's errors: bad URL, server down, refused login
        first = redact.message(first_line(e), url)
        where = "that the file's folder can be written" if url.startswith("sqlite:") else \
            "that the server is up and that this machine reaches it"
        raise SweeperError(f"--study {describe(url)}: cannot open the study database ({type(e).__name__}: {first}); "
                           f"check the URL, {where}") from None


def _shareable_sqlite(url: str) -> None:
    """An SQLite study the drivers can share, and one Optuna may add its tables to: a file (an in-memory database is
    a new, empty one on each connection, so a driver would not find the study it made), new, empty or Optuna's."""
    database = url.split("?", 1)[0].removeprefix("sqlite:").removeprefix("///")
    if database in ("", ":memory:") or database.startswith("file::memory:") or "mode=memory" in url:
        raise SweeperError(f"--study {describe(url)}: an in-memory SQLite database is a new one on each connection, so no "
                           "driver finds the study another made; give a file, e.g. sqlite:///sweeps.db")
    path = Path(database)
    if path.is_file() and path.stat().st_size and not _optuna_sqlite(path) and _has_tables(path):
        raise SweeperError(f"--study {describe(url)}: holds tables that are not Optuna's; give the study a database "
                           "of its own (a new file), not one another program uses")


def _has_tables(path: Path) -> bool:
    """Whether an SQLite file holds any table, read without writing; a file that is no SQLite database counts as one
    (Optuna would fail on it, or write into it)."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as connection:
            return connection.execute("SELECT 1 FROM sqlite_master WHERE type='table'").fetchone() is not None
    except sqlite3.Error:
        return True


# what Optuna raises replaying a journal a crash or a hand left damaged, or entries it did not write (bytes that are no
# UTF-8, an op_code it does not know, attributes of types it never writes)
UNREADABLE_JOURNAL = (UnicodeDecodeError, ValueError, TypeError, KeyError, AssertionError, AttributeError, IndexError)


def _damaged(url: str, e: Exception) -> SweeperError:
    return SweeperError(f"--study {describe(url)}: holds entries Optuna cannot read ({type(e).__name__}: "
                        f"{redact.message(first_line(e), url)[:120]}); it was damaged or written by something else: "
                        "give the drivers a new journal, and keep this one to look at")


JOURNAL_LINE_LIMIT = 2**20  # bytes of a journal's first line read to tell a journal from another file


JOURNAL_START = b'{"op_code":'  # how Optuna's journal writes every entry (json.dumps with compact separators)


def _journal_or_empty(path: Path, url: str) -> None:
    """One line unless `path` is missing, empty, or begins with an Optuna journal entry (a JSON object with an
    op_code): Optuna would read any other file as an empty study, or fail on one that is not UTF-8, and a driver
    would append its study to someone's file. A first entry still being written (no newline yet) is let be."""
    try:
        handle, _ = files.open_regular(path)
    except FileNotFoundError:
        return
    except files.NotRegular:
        raise SweeperError(f"--study {url}: is not a regular file (a directory, a pipe or a device); give a journal file's path") from None
    with handle:
        first = handle.readline(JOURNAL_LINE_LIMIT)
    if not first.endswith(b"\n"):
        entry = {"op_code": None} if JOURNAL_START.startswith(first[:len(JOURNAL_START)]) else None
    else:
        try:
            entry = json.loads(first.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            entry = None
    if not isinstance(entry, dict) or "op_code" not in entry:
        raise SweeperError(f"--study {url}: is not an Optuna journal file (its first line is no journal entry); "
                           "give the journal the drivers run with, or a new file's path")


class ReferencedRDBStorage(RDBStorage):
    """Optuna's RDBStorage that pickles without its URL: it keeps the name of an environment variable of the
    driver's process instead (redact.by_reference), and reconnects through it when unpickled. Ray Tune
    pickles the searcher, and with it this storage, into the results directory: a password in the URL
    stays out of those files."""

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["url"] = None
        state["url_name"] = redact.by_reference(self.url)
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        state["url"] = redact.dereference(state.pop("url_name"))
        super().__setstate__(state)


def _rdb_storage(url: str, beats: dict, attempts: int = 5,
                 connect: Callable[..., RDBStorage] = ReferencedRDBStorage) -> RDBStorage:
    """RDBStorage creates its tables if missing; two drivers starting together race to create them
    (PostgreSQL: a unique violation on the catalog; SQLite: "table ... already exists"). The loser
    tries again and finds them made. `connect` makes the storage (tests replay the race through it)."""
    import sqlalchemy.exc

    for attempt in range(1, attempts):
        try:
            return connect(url, engine_kwargs=_engine_options(url), **beats)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            pass
        except sqlalchemy.exc.OperationalError as e:  # also a server that is down: that one is not retried
            if "already exists" not in str(e.orig):
                raise
        time.sleep(0.5 * attempt)
    return connect(url, engine_kwargs=_engine_options(url), **beats)  # the last try: its error is the caller's


CONNECT_TIMEOUT_S = 30  # a database server that takes a connection and never answers: given up on after this


def _engine_options(url: str) -> dict:
    """SQLite lets one writer in at a time: wait for the lock (60 s) rather than fail at once (5 s),
    since every driver and its heartbeat thread write. Servers: check a pooled connection before use, and give up
    connecting after CONNECT_TIMEOUT_S, in the words of the URL's driver (libpq's, psycopg's and psycopg2's, wait
    as long as the server keeps the socket open); for libpq, TCP keepalives too, so that a server gone silent while
    a connection idles or waits for a reply is noticed in about a minute instead of the system's two hours. What the
    URL's query or PGCONNECT_TIMEOUT sets stays as it says; a driver not named below gets its own defaults. pg8000's
    `timeout` and mysql-connector's `connect_timeout` are not set: each stays the socket's timeout for every later
    read, so a query or a lock wait longer than it would break the connection mid-sweep."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 60}}
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    driver = parsed.get_dialect().driver
    if driver in ("psycopg", "psycopg2"):
        wanted = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
        wanted |= {} if "PGCONNECT_TIMEOUT" in os.environ else {"connect_timeout": CONNECT_TIMEOUT_S}
    elif driver in ("mysqldb", "pymysql", "mariadbconnector"):
        wanted = {"connect_timeout": CONNECT_TIMEOUT_S}
    else:
        wanted = {}
    return {"pool_pre_ping": True, "connect_args": {k: v for k, v in wanted.items() if k not in parsed.query}}


def open_shared(spec: Spec, url: str) -> optuna.storages.BaseStorage:
    """Create the spec's study at `url` (and enqueue its grid), or join it after checking it is the same spec."""
    where = storage(url, spec)
    mine = fingerprint(spec)
    try:
        study = optuna.create_study(storage=where, study_name=spec.name, directions=space.directions(spec))
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(storage=where, study_name=spec.name)
        if FINGERPRINT not in study.user_attrs and study.get_trials(deepcopy=False):
            raise SweeperError(f"--study {describe(url)}: study '{spec.name}' holds trials but was not made by 'sweeper run --study'; "
                               "give the drivers a study of their own (another --study, or rename the sweep)") from None
        _wait_until_ready(study, url)
        theirs = study.user_attrs.get(FINGERPRINT)
        if theirs != mine:
            raise SweeperError(f"--study {describe(url)}: study '{spec.name}' was created from a different spec "
                               f"(fingerprint {str(theirs)[:12]}, this spec {mine[:12]}); run the same spec file "
                               "and --scale as the other drivers, or rename the sweep") from None
        return where
    study.set_user_attr(FINGERPRINT, mine)
    study.set_user_attr(CONFIGURATIONS, space.configuration_count(spec))
    if spec.sampler == "grid":
        space.enqueue_grid(study, spec)
    study.set_user_attr(READY, True)
    return where


def _wait_until_ready(study: optuna.Study, url: str) -> None:
    """Until the driver that made the study has enqueued its grid: READY_WAIT_S without progress (a big grid
    takes minutes to enqueue, and the wait goes on while its trials grow)."""
    deadline, seen = time.monotonic() + READY_WAIT_S, 0
    while not study.user_attrs.get(READY):
        enqueued = len(study.get_trials(deepcopy=False))
        if enqueued > seen:
            deadline, seen = time.monotonic() + READY_WAIT_S, enqueued
        if time.monotonic() > deadline:
            raise SweeperError(f"--study {describe(url)}: study '{study.study_name}' exists but its creator stopped enqueuing "
                               f"the grid; delete it (optuna delete-study --storage URL --study-name {study.study_name}) and start again")
        time.sleep(1.0)


class SharedStudyDriver:
    """What one driver does in the shared study: claim, keep alive, take over from the silent.
    Picklable (Tune saves its searcher): it keeps the URL, and opens the storage where it is used."""

    def __init__(self, url: str, spec: Spec, driver: str):
        self.url_name = redact.by_reference(url)  # the URL may hold a password: a pickle of the board keeps this name only
        self.spec, self.driver = spec, driver
        self._opened: tuple | None = None

    @property
    def url(self) -> str:
        return redact.dereference(self.url_name)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_opened": None}

    def _open(self) -> tuple:
        """(storage, study, study id), opened once per process."""
        if self._opened is None:
            store = storage(self.url, self.spec)
            study = optuna.load_study(storage=store, study_name=self.spec.name)
            self._opened = store, study, store.get_study_id_from_name(self.spec.name)
        return self._opened

    @property
    def study(self) -> optuna.Study:
        return self._open()[1]

    def _trial_id(self, number: int) -> int:
        store, _, study_id = self._open()
        return store.get_trial_id_from_study_id_trial_number(study_id, number)

    def beat(self, numbers: list[int]) -> None:
        """A heartbeat for each of these trials (by number)."""
        store = self._open()[0]
        for number in numbers:
            try:
                if isinstance(store, RDBStorage):
                    store.record_heartbeat(self._trial_id(number))
                else:
                    store.set_trial_user_attr(self._trial_id(number), HEARTBEAT, time.time())
            except UpdateFinishedTrialError:  # finished meanwhile: nothing to keep alive
                pass

    def mine(self) -> list[int]:
        """The numbers of the trials this driver runs now."""
        return [t.number for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                if t.user_attrs.get(DRIVER) == self.driver]

    def give_back(self, number: int) -> None:
        """A trial asked for but not run (the grid's queue ran dry): finished as failed, never counted."""
        self.study.tell(number, state=TrialState.FAIL)

    def reclaim(self) -> None:
        """Fail the trials whose driver went silent; the retry callback enqueues each again."""
        store, study, _ = self._open()
        if isinstance(store, RDBStorage):
            optuna.storages.fail_stale_trials(study)
            return
        now = time.time()
        retry = RetryHeartbeatStaleTrialCallback(max_retry=self.spec.retries)
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            # a retried trial inherits its predecessor's heartbeat: count from its own start too
            last = max(t.user_attrs.get(HEARTBEAT, 0.0), t.datetime_start.timestamp() if t.datetime_start else 0.0)
            if now - last <= self.spec.study.reclaim_after_s:
                continue
            trial_id = self._trial_id(t.number)
            try:
                failed = store.set_trial_state_values(trial_id, state=TrialState.FAIL)
            except UpdateFinishedTrialError:  # another driver failed it first, or it finished
                continue
            if failed:
                retry(study, store.get_trial(trial_id))


@dataclass(frozen=True)
class StudyCounts:
    """The shared sweep's trials by state, over the configurations it counts."""

    total: int  # configurations the sweep has (grid points, or the trials a sampler may make)
    states: Counter  # TrialState name → trials, the reclaimed ones and the unclaimed excluded
    by_driver: dict[str, Counter]  # driver → done, running, failed, reclaimed
    reclaimed: int

    @property
    def done(self) -> int:
        return self.states["COMPLETE"] + self.states["PRUNED"]

    @property
    def used(self) -> int:
        """Trials that count against a sampled search's budget: every state, taken over ones once."""
        return sum(self.states.values())


def census(study: optuna.Study) -> StudyCounts:
    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get(UNCLAIMED)]
    retried = {n for t in trials for n in RetryHeartbeatStaleTrialCallback.retry_history(t)}
    states: Counter = Counter()
    by_driver: dict[str, Counter] = {}
    for t in trials:
        driver = t.user_attrs.get(DRIVER)
        driver = driver if isinstance(driver, str) else None  # a trial's attribute sweeper did not write: counted, no driver's
        counts = by_driver.setdefault(driver, Counter()) if driver and t.state != TrialState.WAITING else Counter()
        if t.number in retried:
            counts["reclaimed"] += 1
            continue
        states[t.state.name] += 1
        counts[{"COMPLETE": "done", "PRUNED": "done", "RUNNING": "running", "FAIL": "failed"}.get(t.state.name, "other")] += 1
    total = study.user_attrs.get(CONFIGURATIONS, 0)
    if type(total) is not int or total < 0:
        raise SweeperError(f"study '{study.study_name}': its {CONFIGURATIONS} is {str(total)[:40]!r}, not the count of configurations "
                           "sweeper writes; was the study made by 'sweeper run --study'?")
    return StudyCounts(total, states, by_driver, len(retried))


class Heartbeats(threading.Thread):
    """In the driver, beside Tune's loop: every heartbeat_s, keep this driver's configurations alive and
    hand the silent drivers' configurations back to the queue.

    A heartbeat that does not get through (the database is down, the network lost) is tried again at
    the next beat; meanwhile each failed beat says so on stderr (`say`), with how long is left before
    other drivers may take this driver's configurations (reclaim_after_s after the last one heard)."""

    def __init__(self, board: SharedStudyDriver, say: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic):
        super().__init__(name="sweeper-heartbeats", daemon=True)
        self.board = SharedStudyDriver(board.url, board.spec, board.driver)  # its own connection, beside the searcher's
        self.stopped = threading.Event()
        self.say = say or _to_stderr
        self.clock = clock

    def run(self) -> None:
        heard = self.clock()  # the searcher beat each configuration as it claimed it
        unheard = reclaiming_failed = False
        while not self.stopped.wait(self.board.spec.study.heartbeat_s):
            try:
                self.board.beat(self.board.mine())
            except Exception as e:  # noqa: BLE001 - a lost connection: said, then tried again next beat
                self.say(self._unheard(e, self.clock() - heard))
                unheard = True
                continue
            heard = self.clock()
            if unheard:
                self.say(f"sweeper: driver {self.board.driver}: heartbeats reach {self._where()} again")
                unheard = False
            try:
                self.board.reclaim()
                reclaiming_failed = False
            except Exception as e:  # noqa: BLE001 - taking over silent drivers' work can wait for a later beat
                if not reclaiming_failed:
                    self.say(f"sweeper: driver {self.board.driver}: cannot check {self._where()} for silent drivers' "
                             f"configurations ({self._error(e)}); trying again every {self.board.spec.study.heartbeat_s} s")
                reclaiming_failed = True

    def _unheard(self, error: Exception, silent_s: float) -> str:
        left = self.board.spec.study.reclaim_after_s - silent_s
        when = (f"in {left:.0f} s unless a heartbeat gets through" if left > 0
                else f"now (reclaim_after_s, {self.board.spec.study.reclaim_after_s} s, has passed)")
        return (f"sweeper: driver {self.board.driver}: heartbeat to {self._where()} failed ({self._error(error)}); "
                f"no heartbeat for {silent_s:.0f} s: other drivers may take over this driver's configurations {when}")

    def _where(self) -> str:
        return f"study {self.board.spec.name} at {describe(self.board.url)}"

    def _error(self, error: Exception) -> str:
        return redact.message(f"{type(error).__name__}: {str(error).strip()}", self.board.url)

    def stop(self) -> None:
        self.stopped.set()
        self.join()


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ each configuration, one finished trial

RECORDED = "sweeper_configuration"  # trial attribute: which configuration a finished trial records (record_key)


@dataclass(frozen=True)
class Summary:
    """A configuration's outcome as an Optuna trial: its state, its values (one per objective) and its attributes."""

    state: TrialState
    values: list[float] | None
    user_attrs: dict[str, Any]
    epochs: int | None = None  # the most epochs a seed trained: a pruned trial's last step
    curve: dict[int, float] | None = None  # intermediate values by epoch (objective_curve), for a trial no searcher reported to


def summarise(spec: Spec, rows: list[dict], tune_finished: bool) -> Summary | None:
    """One configuration's outcome from its trial rows (one per seed), or None while a seed still runs.

    `tune_finished`: Tune ended the trial without an error, so a seed still running was stopped by
    the scheduler. Any failed seed fails the configuration, and so do diverged seeds, when all of them
    are; else it is COMPLETE (PRUNED if stopped early), its value the mean over seeds of the best
    validation accuracy with a diverged seed counting 0, as the sampler is told (trainable's objective).
    """
    statuses = ["stopped" if r["status"] == "running" and tune_finished else r["status"] for r in rows]
    if not rows or "running" in statuses:
        return None
    attrs: dict[str, Any] = {"seeds": len(rows)}
    errors = [r.get("error") for r in rows if r["status"] == "failed"]
    if errors:
        return Summary(TrialState.FAIL, None, {**attrs, "error": errors[0] or "failed"})
    if all(s == "diverged" for s in statuses):
        return Summary(TrialState.FAIL, None, {**attrs, "error": "diverged: a non-finite loss in every seed"})

    def counted(r: dict, key: str) -> float:
        value = r.get(key)
        return 0.0 if r["status"] == "diverged" or value is None or not math.isfinite(value) else float(value)

    val = [counted(r, "best_val_acc") for r in rows]
    test = [counted(r, "test_acc") for r in rows]
    attrs.update(test_acc=statistics.fmean(test), test_acc_std=_std(test), val_acc_std=_std(val),
                 diverged=statuses.count("diverged"))
    measured = {"val_acc": statistics.fmean(val), "wall_s": float(sum(r.get("wall_s") or 0.0 for r in rows))}
    cut_short = [s == "stopped" and r.get("stopped_by") != "patience" for s, r in zip(statuses, rows)]  # patience: a final result
    state = TrialState.PRUNED if any(cut_short) else TrialState.COMPLETE
    return Summary(state, [measured[o] for o in spec.objectives], attrs, max(int(r.get("epochs") or 0) for r in rows))


def objective_curve(spec: Spec, epoch_rows: list[dict]) -> dict[int, float] | None:
    """A configuration's objective after each epoch, from its epoch rows: the mean over its seeds of the best
    validation accuracy so far, a seed counting 0 from the epoch it diverged and keeping its last once it ended.
    It is what a trial trained alone reports to Tune each epoch and OptunaSearch records as its intermediate
    values, so a pack's member gets the same curve in optuna-dashboard. None with two objectives (Optuna
    keeps intermediate values for one only) or no rows."""
    if list(spec.objectives) != ["val_acc"] or not epoch_rows:
        return None
    at = {(r["seed"], r["epoch"]): r for r in epoch_rows}
    best = dict.fromkeys(sorted({r["seed"] for r in epoch_rows}), 0.0)
    diverged: set[int] = set()
    curve = {}
    for epoch in range(1, max(r["epoch"] for r in epoch_rows) + 1):
        for seed in best:
            row = at.get((seed, epoch))
            if row is None or seed in diverged:
                continue
            if row["loss"] is None or not math.isfinite(row["loss"]):
                diverged.add(seed)
                best[seed] = 0.0
            elif row["val_acc"] > best[seed]:
                best[seed] = row["val_acc"]
        curve[epoch] = statistics.fmean(best.values())
    return curve


def _std(values: list[float]) -> float | None:
    """The sample standard deviation (ddof 1, as reports use); None for one seed (JSON has no NaN)."""
    return statistics.stdev(values) if len(values) > 1 else None


def record_key(spec: Spec, point: dict, config_id: str) -> str:
    """What makes a configuration one: a grid's point (one configuration however often it is rerun,
    under whatever id); a sampled configuration's rows (a sampler may draw one point twice)."""
    return space.point_key(point) if spec.sampler == "grid" else config_id


def finish(study: optuna.Study, storage: optuna.storages.BaseStorage, number: int, summary: Summary, key: str) -> None:
    """Finish the running trial `number` with a configuration's outcome; its attributes first (a finished
    trial takes none). Optuna gives a pruned trial its last intermediate value as its value: the
    outcome's is reported at its last epoch first (Tune does not pass on the result it stopped at)."""
    trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study.study_name), number)
    try:
        for name, value in {**summary.user_attrs, RECORDED: key}.items():
            storage.set_trial_user_attr(trial_id, name, value)
        for epoch, value in (summary.curve or {}).items():
            storage.set_trial_intermediate_value(trial_id, epoch, value)
        if summary.state == TrialState.PRUNED and summary.values and len(summary.values) == 1 and summary.epochs:
            storage.set_trial_intermediate_value(trial_id, summary.epochs, summary.values[0])
    except UpdateFinishedTrialError:  # finished meanwhile (another driver took it over): its outcome stands
        return
    values = summary.values if summary.state == TrialState.COMPLETE else None
    study.tell(number, values, state=summary.state, skip_if_finished=True)


def add(study: optuna.Study, spec: Spec, point: dict, summary: Summary, key: str) -> None:
    """A finished trial for a configuration that no trial of the study ran (a pack's member)."""
    study.add_trial(optuna.trial.create_trial(
        state=summary.state, values=summary.values if summary.state != TrialState.FAIL else None,
        params=point, distributions=distributions(spec, point), user_attrs={**summary.user_attrs, RECORDED: key},
        intermediate_values=summary.curve))


def distributions(spec: Spec, point: dict) -> dict[str, optuna.distributions.BaseDistribution]:
    """The distributions the spec's search space gives a point's parameters, as its own trials have them."""
    trial = optuna.trial.FixedTrial(point)
    trial.set_user_attr(space.POINT, None)  # a given point: the space refuses a grid trial not from the queue
    space.DefineByRun(spec)(trial)
    return trial.distributions


class RecordedConfigurations:
    """The configurations a study has recorded, read once, so that each is recorded exactly once, also
    after a retry or a resume: a configuration already recorded is left as it is; a grid point whose
    trial a killed driver left running is finished, rather than joined by a second trial."""

    def __init__(self, study: optuna.Study, storage: optuna.storages.BaseStorage, spec: Spec):
        self.study, self.storage, self.spec = study, storage, spec
        trials = study.get_trials(deepcopy=False)
        self.recorded = {t.user_attrs[RECORDED] for t in trials if t.state.is_finished() and RECORDED in t.user_attrs}
        self.running: dict[str, list[int]] = {}  # point → numbers of the trials left running
        grid = space.grid_points(spec) if spec.sampler == "grid" else []
        for t in trials:
            if t.state == TrialState.RUNNING:
                params = t.params or (grid[t.user_attrs[space.POINT]] if t.user_attrs.get(space.POINT) is not None else {})
                self.running.setdefault(space.point_key(params), []).append(t.number)

    def record(self, point: dict, summary: Summary, config_id: str) -> bool:
        """Record one configuration unless it is already; True if this call recorded it."""
        key = record_key(self.spec, point, config_id)
        if key in self.recorded:
            return False
        left_running = self.running.get(space.point_key(point))
        if left_running:
            finish(self.study, self.storage, left_running.pop(0), summary, key)
        else:
            add(self.study, self.spec, point, summary, key)
        self.recorded.add(key)
        return True


def point_of(row: dict) -> dict:
    """A configuration's search point, as its rows keep it (space.point_key)."""
    return json.loads(row["point"])


def _not_mistyped(url: str) -> None:
    """One line for a database URL typed without its "://", which would otherwise be taken for a journal's path."""
    if redact.mistyped_url(url) and not Path(url).exists():  # a journal file may be named anything
        raise SweeperError(f"--study {describe(url)}: reads as a database URL without its '://'; write it as "
                           "postgresql://user@host/db (or give a journal file's path)")


def _must_exist(url: str) -> None:
    """A file-backed study (a journal, SQLite) must be there already: reading never makes one."""
    _not_mistyped(url)
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
    elif "://" not in url or url.startswith("file://"):
        path = Path(url.removeprefix("file://")).expanduser()
    else:
        return
    if path.is_dir():
        raise SweeperError(f"--study {describe(url)}: is a directory; give the study's journal or SQLite file")
    if not path.is_file():
        raise SweeperError(f"--study {describe(url)}: no study file at {path}; give the --study the drivers run with")
    if url.startswith("sqlite:///") and not _optuna_sqlite(path):  # Optuna would add its tables to someone's database
        raise SweeperError(f"--study {describe(url)}: is not an Optuna study database (it has no 'studies' table); "
                           "give the --study the drivers run with")


def _optuna_sqlite(path: Path) -> bool:
    """Whether an SQLite file holds Optuna's tables, read without writing (read-only, never creating)."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as connection:
            return connection.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='studies'").fetchone() is not None
    except sqlite3.Error:  # not an SQLite file at all
        return False


def status(url: str, name: str | None = None) -> str:
    """Per driver: configurations done, running, failed, taken over by another; and the sweep overall.
    Reads only: a journal or SQLite file that does not exist is not created."""
    _must_exist(url)
    where = storage(url)
    try:  # a journal is replayed as it is first read
        names = [s.study_name for s in optuna.get_all_study_summaries(where, include_best_trial=False)]
    except UNREADABLE_JOURNAL as e:
        if "://" in url and not url.startswith("file://"):  # a database's: not a journal's damage
            raise
        raise _damaged(url, e) from None
    if name is None:
        if len(names) != 1:
            listed = ", ".join(names) if names else "none"
            raise SweeperError(f"--study {describe(url)}: holds {len(names)} studies ({listed}); choose one with --name")
        name = names[0]
    if name not in names:
        raise SweeperError(f"--study {describe(url)}: no study '{name}' (it holds: {', '.join(names) or 'none'}); check --name")
    loaded = optuna.load_study(storage=where, study_name=name)
    if CONFIGURATIONS not in loaded.user_attrs:
        raise SweeperError(f"--study {describe(url)}: study '{name}' is not shared by drivers (it was not made by "
                           "'sweeper run --study'), so it holds no count of its configurations; report its results directory instead")
    c = census(loaded)
    left = max(0, c.total - c.done - c.states["RUNNING"] - c.states["FAIL"])
    lines = [f"study {name} at {describe(url)}: {c.done}/{c.total} configurations done ({100 * c.done / max(c.total, 1):.0f}%), "
             f"{c.states['RUNNING']} running, {c.states['FAIL']} failed, {left} left; {c.reclaimed} taken over from silent drivers"]
    lines.append(f"{'driver':<32} {'done':>6} {'running':>8} {'failed':>7} {'taken over':>11}")
    for driver, counts in sorted(c.by_driver.items()):
        lines.append(f"{driver:<32} {counts['done']:>6} {counts['running']:>8} {counts['failed']:>7} {counts['reclaimed']:>11}")
    return "\n".join(lines) + "\n"

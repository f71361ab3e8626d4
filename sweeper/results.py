"""The results store: Parquet datasets under a results directory, readable without sweeper.

    DIR/trials/<config_id>.parquet                 one row per trial (a configuration × seed)
    DIR/epochs/<config_id>.parquet                 one row per trial and epoch, once the configuration has ended
    DIR/epochs/<config_id>~<first>-<last>.parquet  while it runs: the rows of epochs first..last (a part)

Files are named by the configuration's Ray Tune trial id. A configuration's trials file (a row
per seed) is written whole each time. Its epoch rows are not: rewriting them whole after every
epoch would write bytes that grow with the square of the epochs, and upload the whole file to an
object store each time. So each write adds only the epoch just trained, as a part of one epoch;
every ROLLUP_EPOCHS epochs those parts become one part (so a long run has few files to list); and
when the configuration ends its rows become one file and its parts are removed. A part's name
is fixed by its epochs, so a retried or resumed configuration, which trains the epochs after its
last checkpoint again, overwrites its parts rather than adding rows. read() takes each trial's
epoch once, from the latest of its configuration's files: a reader may meet the whole file and
parts together for a moment, and a retry that ends sooner than an earlier attempt leaves that
attempt's last parts until the configuration ends.

Each file is written under a hidden temporary name and moved into place (a rename; on an object
store the object appears whole); readers (pyarrow, pandas, DuckDB) skip names starting with '.',
so they never see half a file. Every file of a sweep has the same columns; hyperparameters a
model lacks are null. Directories written before parts existed (one epochs file per
configuration, rewritten whole) read as before.

No torch and no Ray here.
"""
from __future__ import annotations

import errno
import os
import re
import stat
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from . import files, redact
from .errors import NoAnswer, NoResultsYet, SweeperError, first_line

TABLES = ("epochs", "trials")
LOCK_FILE = ".lock"
STATUSES = ("running", "completed", "stopped", "diverged", "failed")

_ID = [("trial_id", pa.string()), ("config_id", pa.string()), ("model", pa.string()), ("seed", pa.int64())]
EPOCH_FIELDS = _ID + [
    ("epoch", pa.int64()),
    ("loss", pa.float64()),
    ("recon", pa.float64()),
    ("kl", pa.float64()),
    ("ce", pa.float64()),
    ("adversary", pa.float64()),  # the loss parts of every model (Model.loss_parts); NaN where a model has none
    ("val_acc", pa.float64()),
    ("test_acc", pa.float64()),
    ("entropy_unlabelled", pa.float64()),
    ("mi_unlabelled", pa.float64()),
    ("wall_s", pa.float64()),
]
TRIAL_FIELDS_BEFORE = _ID + [("dataset", pa.string()), ("label_count", pa.int64()),
                              ("batch_labelled", pa.int64()), ("batch_unlabelled", pa.int64()),
                              ("point", pa.string())]  # the search point, as text (space.point_key)
TRIAL_FIELDS_AFTER = [
    ("status", pa.string()),
    ("stopped_by", pa.string()),  # with status stopped: patience (a final result, at its best epoch) or scheduler
    ("stopped_at_rung", pa.int64()),  # stopped by the scheduler: the epoch (ASHA: the rung) it was judged at
    ("error", pa.string()),
    ("precision", pa.string()),  # the step's matmuls: float32 or bfloat16
    ("compiled", pa.bool_()),  # whether the step ran through torch.compile (for its later steps, under compile: auto)
    ("best_val_acc", pa.float64()),
    ("test_acc", pa.float64()),
    ("best_epoch", pa.int64()),
    ("epochs", pa.int64()),
    ("wall_s", pa.float64()),
    ("restarts", pa.int64()),
]


def finished(trials: pd.DataFrame) -> pd.Series:
    """The trials whose result is final: completed, or stopped by patience (their test accuracy is the one at
    their best validation epoch, as a completed trial's is); not a scheduler's stop, a failure or a divergence."""
    stopped_by = trials["stopped_by"] if "stopped_by" in trials else pd.Series(None, index=trials.index, dtype=object)
    return (trials["status"] == "completed") | ((trials["status"] == "stopped") & (stopped_by == "patience"))


def epoch_schema() -> pa.Schema:
    return pa.schema(EPOCH_FIELDS)


def trial_schema(hyperparameters: dict[str, str]) -> pa.Schema:
    """Trial columns, with a column per hyperparameter of the sweep: "number" (float64) or "text" (string)."""
    types = {"number": pa.float64(), "text": pa.string()}
    return pa.schema(TRIAL_FIELDS_BEFORE + [(h, types[kind]) for h, kind in hyperparameters.items()] + TRIAL_FIELDS_AFTER)


def filesystem(location: str | Path) -> tuple[pafs.FileSystem, str]:
    """A results location (a path, or a URI pyarrow knows: file://, s3://, gs://, hdfs://) as (filesystem, path)."""
    location = str(location)
    if "://" in location:
        try:
            return answered_in_time(lambda: pafs.FileSystem.from_uri(location), location)
        except (pa.ArrowException, ValueError, OSError) as e:  # a scheme pyarrow has no filesystem for, a parameter it does
            # not take, a store it cannot reach (an S3 bucket's region asked of a host that does not answer)
            raise SweeperError(f"{redact.url(location)}: not a location pyarrow can open ({redact.message(first_line(e), location)}); "
                               "check the URI (file://, s3://, gs://, hdfs://)") from None
    return pafs.LocalFileSystem(), os.path.abspath(location)


def holds_any(location: str | Path, names: tuple[str, ...]) -> bool:
    """Whether any of `names` is in the results location (a local folder or a URI), asked once."""
    fs, root = filesystem(location)

    def look() -> bool:
        return any(info.type != pafs.FileType.NotFound for info in fs.get_file_info([f"{root}/{name}" for name in names]))

    try:
        return answered_in_time(look, str(location)) if "://" in str(location) else look()
    except (OSError, pa.ArrowException) as e:
        raise SweeperError(f"{redact.url(str(location))}: cannot be read ({redact.message(first_line(e), str(location))}); "
                           "check the location and its credentials") from None


def remote_timeout_s() -> float:
    """How long a remote location may take to answer: $SWEEPER_REMOTE_TIMEOUT_S (0 to 3600 s), else 30 s."""
    try:
        seconds = float(os.environ.get("SWEEPER_REMOTE_TIMEOUT_S", 30))
    except ValueError:
        return 30.0
    return seconds if 0 < seconds <= 3600 else 30.0


def answered_in_time(call, location: str):
    """call() for a remote location, or one clear error once remote_timeout_s() has passed without an
    answer (no network, a host that never replies), instead of a silent wait. The call runs in a daemon
    thread, which is left behind if it never returns."""
    import threading

    outcome: dict = {}

    def run():
        try:
            outcome["value"] = call()
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            outcome["error"] = e

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(remote_timeout_s())
    if worker.is_alive():
        shown = redact.url(location).split("?", 1)[0]
        raise NoAnswer(f"{shown}: no answer within {remote_timeout_s():g} s; check the network and the URI "
                           "($SWEEPER_REMOTE_TIMEOUT_S sets how long to wait)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


ROLLUP_EPOCHS = 100  # a running configuration's one-epoch parts become one part per this many epochs
_PART = re.compile(r"(?P<config_id>.+)~(?P<first>\d+)-(?P<last>\d+)\.parquet")  # '~' is in no configuration id


def whole_name(config_id: str) -> str:
    return f"{config_id}.parquet"


def part_name(config_id: str, first: int, last: int) -> str:
    return f"{config_id}~{first:06d}-{last:06d}.parquet"  # zero-padded: listings sort by epoch


def write_configuration(
    out_dir: str | Path, config_id: str, epochs: list[dict], trials: list[dict], hyperparameters: dict[str, str],
    epoch: int | None = None,
) -> None:
    """Write (or replace) one configuration's rows: its epochs, then its trials.

    `epochs` holds every epoch row of the configuration so far. With `epoch`, the epoch just trained,
    only what is new is written while a seed is running: that epoch's rows as a part (every
    ROLLUP_EPOCHS epochs, the rows of the last ROLLUP_EPOCHS epochs as one part, in place of theirs).
    When the configuration ends (no seed running: it trained its last seed's last epoch, or seeds
    failed), and always without `epoch`, every epoch row is written as one file and the parts removed.
    """
    fs, root = filesystem(out_dir)
    _write_epochs(fs, f"{root}/epochs", config_id, epochs, trials, epoch)
    _write(fs, f"{root}/trials/{config_id}.parquet", trials, trial_schema(hyperparameters))


def _write_epochs(fs: pafs.FileSystem, directory: str, config_id: str, epochs: list[dict], trials: list[dict],
                  epoch: int | None) -> None:
    running = any(t.get("status") == "running" for t in trials)
    if epoch is None or (not running and _ended_at(epoch, epochs, trials)):
        _write(fs, f"{directory}/{whole_name(config_id)}", epochs, epoch_schema())
        for part in _parts(fs, directory, config_id):  # all of them, an earlier attempt's too
            _delete_if_present(fs, part.path)
    elif running:
        first = epoch - ROLLUP_EPOCHS + 1 if epoch % ROLLUP_EPOCHS == 0 else epoch
        new = [row for row in epochs if first <= row["epoch"] <= epoch]
        if new:
            _write(fs, f"{directory}/{part_name(config_id, first, epoch)}", new, epoch_schema())
        for rolled_up in sorted({row["epoch"] for row in new} - {epoch}):  # only epochs the new part holds
            _delete_if_present(fs, f"{directory}/{part_name(config_id, rolled_up, rolled_up)}")
    # else: it ended at an earlier epoch (a pack's member that diverged), when its file was written


def _ended_at(epoch: int, epochs: list[dict], trials: list[dict]) -> bool:
    """Whether a configuration with no seed running ended at `epoch`: a seed trained it (a seed has no rows
    after it ends), or seeds failed (a failure is written once, as it happens)."""
    return any(row["epoch"] == epoch for row in epochs) or any(t.get("status") == "failed" for t in trials)


def _parts(fs: pafs.FileSystem, directory: str, config_id: str) -> list[pafs.FileInfo]:
    listed = fs.get_file_info(pafs.FileSelector(directory, allow_not_found=True))
    return [f for f in listed if _config_of(f.base_name) == config_id and _PART.fullmatch(f.base_name)]


def _config_of(name: str) -> str:
    """The configuration id a results file's name carries (a whole file's or a part's)."""
    part = _PART.fullmatch(name)
    return part["config_id"] if part else name.removesuffix(".parquet")


def _delete_if_present(fs: pafs.FileSystem, path: str) -> None:
    try:
        fs.delete_file(path)
    except FileNotFoundError:
        pass


def _write(fs: pafs.FileSystem, path: str, rows: list[dict], schema: pa.Schema) -> None:
    unknown = set().union(*rows) - set(schema.names) if rows else set()
    if unknown:
        raise ValueError(f"columns not in the results schema: {sorted(unknown)}")
    status = {r.get("status") for r in rows} - {None}
    if not status <= set(STATUSES):
        raise ValueError(f"unknown status {sorted(status - set(STATUSES))}")
    _put(fs, path, pa.Table.from_pylist(rows, schema=schema))


def _put(fs: pafs.FileSystem, path: str, table: pa.Table) -> None:
    """`table` as the file `path`, whole or not at all."""
    _whole(fs, path, lambda temporary: pq.write_table(table, temporary, filesystem=fs))


def _whole(fs: pafs.FileSystem, path: str, fill) -> None:
    """The file `path`, whole or not at all: `fill(temporary)` writes a hidden temporary beside it, which
    is then moved onto it (a rename locally; on object stores the final object appears whole)."""
    directory, name = path.rsplit("/", 1)
    fs.create_dir(directory, recursive=True)
    temporary = f"{directory}/.{name}.{uuid.uuid4().hex}.tmp"
    try:
        fill(temporary)
        fs.move(temporary, path)
    finally:
        if fs.get_file_info(temporary).type != pafs.FileType.NotFound:
            fs.delete_file(temporary)


@contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """A hidden temporary path beside `path`, renamed onto it if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)  # atomic on POSIX: readers see the old file or the new one
    finally:
        temporary.unlink(missing_ok=True)


# ---------------------------------------------------------------- reading what a results directory holds
# A results directory may have been copied, edited or crafted: every path read from it stays inside it,
# every file read is a regular file (a FIFO or a device would block the reader for ever), and every id
# taken from a file or the command line is one sweeper could have written.

_ID_TEXT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")  # trial and configuration ids: names of files, never paths
MAX_SMALL_FILE = 10 * 2**20  # bytes of a spec, provenance or description sweeper writes: far less


def checked_id(value, what: str, where: str) -> str:
    """`value` if it is an id sweeper writes (letters, digits, '.', '_', '-'; no '..', no '/'), else one line."""
    if not isinstance(value, str) or not _ID_TEXT.fullmatch(value) or ".." in value:
        from .redact import printable

        raise SweeperError(f"{where}: {what} {printable(repr(value))[:80]} is not an id sweeper writes (letters, digits, "
                           "'.', '_', '-'); give one from the trials table")
    return value


def inside(location: str | Path, relative: str) -> str:
    """The path of `relative` under the local results directory `location`, if it is a regular file there:
    else one line (FileNotFoundError where nothing is there). A symlink may point elsewhere inside the
    directory, never out of it (so no file outside ends up in a report), and a FIFO or a device is refused."""
    root = os.path.realpath(location)
    path = os.path.join(root, relative)
    real = os.path.realpath(path)
    if os.path.commonpath([root, real]) != root:
        raise SweeperError(f"{path}: leads out of the results directory {location} (a symlink to {real}); sweeper reads only "
                           "what is inside it: copy the file in instead")
    _regular(real, path)
    return real


def _regular(real: str, named: str | None = None) -> None:
    """One line unless the local path `real` (as `named`) is a regular file (FileNotFoundError where nothing is there)."""
    import stat

    mode = os.stat(real).st_mode
    if not stat.S_ISREG(mode):
        raise _not_written_here(named or real, "a directory" if stat.S_ISDIR(mode) else "a pipe, socket or device")


def _not_written_here(named: str, kind: str) -> SweeperError:
    return SweeperError(f"{named}: is {kind}, not a file sweeper wrote; remove it from the results directory")


@contextmanager
def _opened_regular(path: str, named: str | None = None) -> Iterator[tuple[BinaryIO, os.stat_result]]:
    """A local results file opened only if it is a regular file (files.open_regular), else one line."""
    try:
        handle, info = files.open_regular(path)
    except files.NotRegular as e:
        raise _not_written_here(named or path, e.kind) from None
    with handle:
        yield handle, info


def folder_inside(location: str | Path, relative: str) -> Path:
    """The folder `relative` of a local results directory, made if missing, for figures to be written into:
    one line if it (a symlink) leads out of the directory, where they would land on someone else's files."""
    root = os.path.realpath(location)
    folder = Path(root) / relative
    if os.path.commonpath([root, os.path.realpath(folder)]) != root:  # checked first: making it would follow the link
        raise SweeperError(f"{folder}: leads out of the results directory {location} (a symlink to {os.path.realpath(folder)}); "
                           "remove the link, or give --out a folder of your own")
    folder.mkdir(parents=True, exist_ok=True)  # an OSError (a read-only copy) is the caller's to report
    return folder


def read_bytes(location: str | Path, relative: str, limit: int = MAX_SMALL_FILE) -> bytes:
    """A small file of a results location, whole (FileNotFoundError where it is missing): a local one only
    if inside() allows it, and none larger than `limit`."""
    fs, root = filesystem(location)
    if isinstance(fs, pafs.LocalFileSystem):
        path = inside(root, relative)
        with _opened_regular(path) as (f, info):
            if info.st_size > limit:
                raise SweeperError(f"{path}: {info.st_size:,} bytes is more than sweeper writes here (at most {limit:,}); "
                                   "was it written by sweeper?")
            return f.read(limit + 1)
    with fs.open_input_stream(f"{root}/{relative}") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise SweeperError(f"{location}/{relative}: more than {limit:,} bytes, more than sweeper writes here; was it written by sweeper?")
    return data


SHARED_STUDY_FILE = "study.txt"  # a driver of a shared study (--study) names it here
RESULTS_PARTS = ("trials", "epochs", "models", "tune", "spec.yaml", "optuna.journal", "provenance.json", SHARED_STUDY_FILE, LOCK_FILE)


def local_out(out: str | Path, what: str) -> Path:
    """An --out that names a local path: a URI (s3://...) would be made as folders named after it here, its
    credentials included, while the user thinks it went to the store."""
    if "://" in str(out) or redact.mistyped_url(str(out)):
        raise SweeperError(f"--out {redact.url(str(out))}: writes {what} to a local path only; write it here and copy it "
                           "to the store, or give a path")
    return Path(out)


def results_folder(out_dir: str | Path, flag: str = "--out") -> Path:
    """The results directory `sweeper run` or `resume` is given: a folder on this machine, which holds the sweep's
    lock and its Optuna study (a URI would be made here as folders named after it, credentials and all), and not
    inside another sweep's own files and folders."""
    text = str(out_dir)
    if not text.strip():
        raise SweeperError(f"{flag}: empty or blank; give a folder for the results, e.g. {flag} results/my-sweep")
    if "://" in text or redact.mistyped_url(text):
        raise SweeperError(f"{flag} {redact.url(text)}: the results directory is a folder on this machine (it holds the sweep's "
                           "lock and its Optuna study); give a path, and --storage URI to keep the results in a store")
    inside = inside_results(Path(text))
    if inside:
        raise SweeperError(f"{flag} {text}: is inside the results of {inside[0]} ({inside[1]}); give a folder of your own")
    return Path(text)


def inside_results(path: Path) -> tuple[Path, Path] | None:
    """The results directory above `path` (or above where its link leads) and where in it `path` is, where that is
    among the directory's own files and folders (trials/, epochs/, models/, tune*/, its spec, study and lock)."""
    target = Path(os.path.realpath(path))
    for folder in target.parents:
        if is_results_directory(folder):
            inner = target.relative_to(folder)
            if own_part(inner.parts[0]):
                return folder, inner
    return None


def own_part(name: str) -> bool:
    """Whether `name`, directly in a results directory, is one of its own files or folders (Ray Tune's are tune and
    tune-rerun-<time>)."""
    return name in RESULTS_PARTS or name == "tune" or name.startswith("tune-")


def is_results_directory(folder: Path) -> bool:
    """Whether `folder` is a sweep's results directory: its lock names a driver as one_driver writes it, or it holds
    the spec as run beside the provenance. Never raises (an unreadable folder is not one)."""
    return bool(lock_holder(folder)) or (os.path.isfile(folder / "spec.yaml") and os.path.isfile(folder / "provenance.json"))


def lock_holder(folder: Path) -> str | None:
    """Who a results directory's lock names ("pid N on HOST", as one_driver writes it); None where there is no such
    lock (a lock that is a link, a pipe or unreadable is none). Never raises."""
    if not os.path.isfile(folder / LOCK_FILE):
        return None
    try:  # never through a link, nor waiting on a pipe
        descriptor = os.open(folder / LOCK_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        holder = os.read(descriptor, 200).decode(errors="replace").strip() if stat.S_ISREG(os.fstat(descriptor).st_mode) else ""
    except OSError:
        return None
    finally:
        os.close(descriptor)
    return holder if re.fullmatch(r"pid \d+ on \S+", holder) else None


def lock_is_held(folder: Path) -> bool | None:
    """Whether some process of this machine's kernel holds a results directory's lock, read from /proc/locks without
    touching the lock (taking it, even for a moment, could turn away a driver starting then); None where that cannot
    be told (no /proc/locks: not Linux)."""
    try:
        lock = os.stat(folder / LOCK_FILE, follow_symlinks=False)
        with open("/proc/locks") as f:
            table = f.read()
    except OSError:
        return None
    for line in table.splitlines():  # "1: FLOCK  ADVISORY  WRITE 2254 fd:01:1234567 0 EOF"; a waiter's has "->"
        fields = line.replace("->", "").split()
        if len(fields) > 5 and fields[5].count(":") == 2:
            major, minor, inode = fields[5].split(":")
            try:
                if (int(major, 16), int(minor, 16), int(inode)) == (os.major(lock.st_dev), os.minor(lock.st_dev), lock.st_ino):
                    return True
            except ValueError:
                continue
    return False


def not_over_results(path: Path, dirs: list[str | Path], advice: str) -> None:
    """Refuse `path` (or where its link leads) among a results directory's own files and folders (tune* too): the
    directories read for this command, and any results directory above it."""
    target = Path(os.path.realpath(path))
    for d in dirs:
        root = Path(os.path.realpath(d))
        if "://" in str(d) or target == root or not target.is_relative_to(root):
            continue
        if own_part(target.relative_to(root).parts[0]):
            raise SweeperError(f"--out {path}: would write over the results of {d} ({target.relative_to(root)}); {advice}")
    inside = inside_results(path)
    if inside:
        raise SweeperError(f"--out {path}: would write over the results of {inside[0]} ({inside[1]}); {advice}")


def local_path(location: str | Path) -> Path | None:
    """A results location on this machine's filesystem (a path, or a file:// URI) as an absolute path with its
    links resolved; None for an object store."""
    text = str(location)
    if text.startswith("file://"):
        text = text.removeprefix("file://")
    elif "://" in text:
        return None
    return Path(os.path.realpath(text))


def no_dangling_link(out_dir: str | Path, flag: str = "--out") -> None:
    """One line where `out_dir` or a folder above it is a symlink to a folder whose own parent is missing: making
    the results directory would make a chain of folders where the link points, wherever that is. A link to a new
    folder in a folder that exists (results/run7 -> /scratch/me/run7) is made, as the user meant."""
    for path in [Path(out_dir).absolute(), *Path(out_dir).absolute().parents]:
        if path.is_symlink() and not path.exists():
            target = Path(os.readlink(path))
            target = target if target.is_absolute() else path.parent / target
            if not target.parent.is_dir():
                raise SweeperError(f"{flag} {out_dir}: {path} is a symlink to {target}, whose folder {target.parent} does not "
                                   f"exist; make it first, or give {flag} a folder of your own")


@contextmanager
def one_driver(out_dir: Path, command: str) -> Iterator[None]:
    """The results directory `out_dir` (made if missing) held by this process alone for the block: an
    exclusive lock (flock) on DIR/.lock, which the OS drops when the process ends however it ends, so a
    killed driver leaves nothing that blocks `sweeper resume`. A second driver is refused with one line.
    The lock file is never removed while a sweep may use the directory (removing it would let two
    drivers lock two files); where the block fails with nothing written, the lock file this call made goes, and so
    do the folders it made."""
    import fcntl
    import socket

    created = []  # the folders this call makes, innermost first
    for folder in (out_dir, *out_dir.parents):
        if folder.exists():
            break
        created.append(folder)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        # never through a link, nor waiting on a pipe: the lock file is this directory's own regular file
        flags = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK
        lock_path = out_dir / LOCK_FILE
        try:  # made here (O_EXCL), or opened as another driver, or an earlier run, left it
            descriptor, made_lock = os.open(lock_path, flags | os.O_CREAT | os.O_EXCL, 0o644), True
        except FileExistsError:
            try:
                descriptor, made_lock = os.open(lock_path, flags), False
            except OSError as e:
                if e.errno not in (errno.ELOOP, errno.ENXIO):
                    raise
                raise SweeperError(f"{lock_path}: the lock file is a link or a pipe, not a file this directory made; "
                                   "remove it, or give another directory") from None
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise SweeperError(f"{lock_path}: the lock file is not a regular file; remove it, or give another directory")
            handle = os.fdopen(descriptor, "r+")  # held for the block
        except BaseException:
            os.close(descriptor)
            raise
    except OSError as e:
        raise SweeperError(f"{out_dir}: cannot make or open this results directory ({e.strerror or type(e).__name__}); "
                           "give a folder you can write to") from None
    locked = False
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):  # no lock to be had here at all (NFS without lockd)
                raise SweeperError(f"{out_dir}: cannot lock this results directory ({e.strerror}); its filesystem takes no "
                                   "locks (NFS without a lock daemon?): give a folder on one that does") from None
            handle.seek(0)
            holder = handle.read(200).strip() or "another process"
            raise SweeperError(f"{out_dir}: another sweeper driver ({holder}) is using this results directory; "
                               f"wait for it to end, or {command} into another directory") from None
        locked = True
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        yield
    except BaseException:
        # nothing written by the driver that held the lock: leave nothing behind (a driver refused by the lock
        # leaves the holder's directory as it is)
        if locked and made_lock and [p.name for p in out_dir.iterdir()] == [LOCK_FILE]:
            (out_dir / LOCK_FILE).unlink()
            for folder in created:  # results/ too, where results/<name> was the first of it
                try:
                    folder.rmdir()
                except OSError:  # another process wrote there meanwhile
                    break
        raise
    finally:
        handle.close()  # closing drops the lock


def ended_driver(location: str | Path) -> str | None:
    """The driver a local results directory's lock names ("pid N on HOST") where it is a process of this machine that
    no longer runs (stopped by kill -9, a crash, the machine's restart) and nothing holds the lock; None where it may
    run (its process is alive, or the lock is held: another container on this host, with its own process ids), ran
    elsewhere, or there is no such lock to read."""
    import socket

    path = local_path(location)
    holder = lock_holder(path) if path else None
    if holder is None or lock_is_held(path) is not False:
        return None
    pid, _, host = holder.removeprefix("pid ").partition(" on ")
    if host != socket.gethostname():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return holder
    except (PermissionError, OverflowError):  # another user's process: running
        return None
    return None


def write_text(location: str | Path, name: str, text: str) -> None:
    """A small text file (a spec, a report) into a results location, whole or not at all."""
    fs, root = filesystem(location)

    def fill(temporary: str) -> None:
        with fs.open_output_stream(temporary) as f:
            f.write(text.encode())

    _whole(fs, f"{root}/{name}", fill)


def remove_configuration(out_dir: str | Path, config_id: str) -> None:
    """Delete one configuration's rows (before it runs again under another id)."""
    fs, root = filesystem(out_dir)
    for table in TABLES:
        _delete_if_present(fs, f"{root}/{table}/{whole_name(config_id)}")
    for part in _parts(fs, f"{root}/epochs", config_id):
        fs.delete_file(part.path)
    for kept in fs.get_file_info(pafs.FileSelector(f"{root}/models", allow_not_found=True)):  # its seeds' kept models
        if kept.base_name.startswith(f"{config_id}-seed"):
            fs.delete_file(kept.path)


def configurations(out_dir: str | Path) -> dict[str, tuple[str | None, bool]]:
    """Each configuration's search point (space.point_key; None in files from before the column) and
    whether it finished: no seed still 'running'."""
    fs, root = filesystem(out_dir)
    found = {}
    for info in fs.get_file_info(pafs.FileSelector(f"{root}/trials", allow_not_found=True)):
        if info.base_name.startswith(".") or not info.base_name.endswith(".parquet"):
            continue
        if isinstance(fs, pafs.LocalFileSystem):  # a symlink out of the directory, a FIFO or a device: one line
            inside(root, f"trials/{info.base_name}")
        table = _read_file(fs, info.path)
        point = table.column("point")[0].as_py() if "point" in table.column_names and table.num_rows else None
        found[info.base_name.removesuffix(".parquet")] = (point, "running" not in table.column("status").to_pylist())
    return found


def configuration_rows(location: str | Path, config_id: str) -> list[dict]:
    """The trial rows (one per seed) one configuration wrote under a results location; none if it wrote
    none, or if they cannot be read now (a remote location that does not answer): a sweep goes on."""
    try:
        fs, root = filesystem(location)
        path = f"{root}/trials/{whole_name(config_id)}"
        if fs.get_file_info(path).type == pafs.FileType.NotFound:
            return []
        return _read_file(fs, path).to_pylist()
    except (pa.ArrowException, OSError, ValueError, SweeperError):
        return []


def configuration_epoch_rows(location: str | Path, config_id: str, wanted: range) -> list[dict]:
    """One configuration's epoch rows of the epochs `wanted`, from the files it keeps them in (an epoch's
    part, the part of ROLLUP_EPOCHS it rolls up into, its whole file), found by name without listing the
    directory. An epoch in several of them: the latest file's copy, as read() takes it (_recency). A file
    replaced between looking and reading is skipped: the next call finds its rows where they went."""
    fs, root = filesystem(location)
    names = {whole_name(config_id)}
    for epoch in wanted:
        last = -(-epoch // ROLLUP_EPOCHS) * ROLLUP_EPOCHS
        names |= {part_name(config_id, epoch, epoch), part_name(config_id, last - ROLLUP_EPOCHS + 1, last)}
    found = [f for f in fs.get_file_info([f"{root}/epochs/{name}" for name in sorted(names)]) if f.type == pafs.FileType.File]
    rows = {}
    for info in sorted(found, key=_recency):  # later copies win
        try:
            table = _read_file(fs, info.path)
        except (OSError, pa.ArrowException, SweeperError):
            continue
        for row in table.to_pylist():
            if row["epoch"] in wanted:
                rows[(row["trial_id"], row["epoch"])] = row
    return list(rows.values())


def mark_stopped(out_dir: str | Path, config_id: str) -> None:
    """A configuration ended early by a scheduler: its running trials become "stopped", and its epoch rows,
    which it had no chance to write whole, one file."""
    fs, root = filesystem(out_dir)
    path = f"{root}/trials/{config_id}.parquet"
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return
    _compact(fs, f"{root}/epochs", config_id)
    table = _read_file(fs, path)
    rows = [{**row, **_stopped(row, table.schema)} if row["status"] == "running" else row for row in table.to_pylist()]
    _write(fs, path, rows, table.schema)


def _stopped(row: dict, schema: pa.Schema) -> dict:
    """A running trial's columns once Tune's scheduler stopped it, at the result it judged (its last epoch); a
    file from before a column was added keeps its columns."""
    stopped = {"status": "stopped", "stopped_by": "scheduler", "stopped_at_rung": row["epochs"]}
    return {k: v for k, v in stopped.items() if k in schema.names}


def _compact(fs: pafs.FileSystem, directory: str, config_id: str) -> None:
    """One configuration's epoch files as its one whole file, each row once (the latest copy, as read()
    takes it); then the parts read are removed (a part written meanwhile stays, and read() still takes it)."""
    parts = _parts(fs, directory, config_id)
    if not parts:
        return
    whole = fs.get_file_info(f"{directory}/{whole_name(config_id)}")
    files = parts + ([whole] if whole.type == pafs.FileType.File else [])
    tables = [_read_file(fs, f.path, epoch_schema()) for f in files]
    rows = pa.concat_tables(tables)
    kept = _latest_rows(files, [t.num_rows for t in tables], rows.column("trial_id").to_numpy(zero_copy_only=False),
                        rows.column("epoch").to_numpy())
    _put(fs, whole.path, rows.take(pa.array(kept)))
    for part in parts:
        _delete_if_present(fs, part.path)


KEYS = {"trials": ["trial_id"], "epochs": ["trial_id", "epoch"]}  # what names a row, across every file
NEEDED = {"trials": {"trial_id": "text", "config_id": "text", "model": "text", "seed": "number", "status": "text",
                     "best_val_acc": "number", "test_acc": "number", "dataset": "text", "label_count": "number",
                     "best_epoch": "number", "epochs": "number", "wall_s": "number"},
          "epochs": {"trial_id": "text", "config_id": "text", "epoch": "number", "val_acc": "number"}}
NEVER_EMPTY = {"trials": ("trial_id", "config_id", "model", "seed"), "epochs": ("trial_id", "config_id", "epoch")}  # a row's identity


def read(dirs: str | Path | list[str | Path], table: str = "trials", columns: list[str] | None = None) -> pd.DataFrame:
    """One table ("trials" or "epochs") of one or several results directories, as a DataFrame.

    Only the files sweeper writes are read: DIR/<table>/<name>.parquet, no subfolder, no hidden file.
    A trial's epoch in several files of its configuration (its whole file and parts) is taken once, from
    the latest file, in the order its configuration's whole file has the rows.
    Each row counts once however the directories are given: a row seen twice with the same values
    (the same directory twice, a copy) is taken once; two different rows for the same trial (and
    epoch) are refused, naming both files.
    """
    if table not in TABLES:
        raise ValueError(f"table must be one of {TABLES}")
    dirs = [dirs] if isinstance(dirs, (str, Path)) else list(dirs)
    wanted = None if columns is None else list(dict.fromkeys([*KEYS[table], *columns]))  # the keys too: they name a row
    frames, origins = [], []  # origins: the file each row came from
    for d in dirs:
        frame, origin = _directory(d, table, wanted)
        frames.append(frame)
        origins.append(origin)
    rows = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    sources = np.concatenate(origins)
    keys = [k for k in KEYS[table] if k in rows.columns]
    repeated = rows.duplicated(subset=keys, keep=False)
    if repeated.any():  # only there: the whole row decides whether it is the same trial seen twice
        copies = rows[repeated].duplicated(keep="first")
        rows = rows.drop(index=copies[copies].index)
        clash = rows[rows.duplicated(subset=keys, keep=False)]
        if len(clash):
            first = clash[clash[keys].eq(clash[keys].iloc[0]).all(axis=1)]
            files = [sources[i] for i in first.index[:2]]
            named = " ".join(f"{k} {first[k].iloc[0]}" for k in keys)
            if files[0] == files[1]:
                raise SweeperError(f"{named} has two different rows in {files[0]}, where sweeper writes one; the file was "
                                   "changed since sweeper wrote it: restore it from a copy, or run that configuration again")
            raise SweeperError(f"{named} has different rows in {files[0]} and {files[1]}; "
                               "report one of the two (they are not the same results)")
    rows = rows.reset_index(drop=True)
    return rows[[c for c in columns if c in rows.columns]] if columns is not None else rows


LISTINGS = 20  # a running sweep replaces files as it goes: a file listed and gone before it is read is listed again
# (waits doubling from 0.05 s to 1 s between listings: a pack writing its stopped configurations whole takes a while)


class _Vanished(Exception):
    """A file listed in a results location was gone when read: a running sweep replaced it (its parts rolled up,
    or a configuration that ended written whole)."""


def _directory(d: str | Path, table: str, wanted: list[str] | None) -> tuple[pd.DataFrame, np.ndarray]:
    """One table of one results location, its files read one by one (each file's schema checked first) and put
    together, each configuration's rows once (_latest_rows); and the file each row came from. Read again from
    a new listing where a listed file vanished (a sweep writing there): every row is in the files that replace it."""
    for attempt in range(LISTINGS):
        try:
            return _directory_listed(d, table, wanted)
        except _Vanished as e:
            if attempt == LISTINGS - 1:
                raise SweeperError(f"{d}/{table}: files vanished as they were read, {LISTINGS} times (last: {e}); is a "
                                   "sweep writing there? try again, or once it has ended") from None
            time.sleep(min(0.05 * 2 ** attempt, 1.0))


def _directory_listed(d: str | Path, table: str, wanted: list[str] | None) -> tuple[pd.DataFrame, np.ndarray]:
    try:
        fs, root = filesystem(d)

        def listing():
            return (fs.get_file_info(root).type == pafs.FileType.Directory,
                    fs.get_file_info(pafs.FileSelector(f"{root}/{table}", allow_not_found=True)))

        found, listed = answered_in_time(listing, str(d)) if "://" in str(d) else listing()
        named = [f for f in listed if f.base_name.endswith(".parquet") and not f.base_name.startswith(".")]
        if isinstance(fs, pafs.LocalFileSystem):  # a symlink out of the directory, a FIFO or a device: refused
            for f in named:
                inside(root, f"{table}/{f.base_name}")
        files = sorted((f for f in named if f.type == pafs.FileType.File), key=lambda f: f.base_name)
    except FileNotFoundError as e:  # a listed file gone before it was checked: replaced by a running sweep
        raise _Vanished(first_line(e)) from None
    except (pa.ArrowException, OSError, ValueError) as e:
        raise SweeperError(f"{d}: cannot open this results location ({first_line(e)}); check the path or URI") from None
    if not found:
        raise SweeperError(f"{d}: no such results directory; give the --out directory of a sweep (default results/<name>)")
    if not files:
        raise NoResultsYet(f"{d}: no {table} results yet; run a sweep into it with 'sweeper run SPEC --out {d}'")
    read = [_file(fs, f.path, f"{d}/{table}/{f.base_name}", table, wanted) for f in files]
    try:
        frame = pa.concat_tables(read, promote_options="default").to_pandas()
    except (pa.ArrowException, ValueError) as e:
        raise SweeperError(f"{d}/{table}: cannot read these results together ({first_line(e)}); were they written by one sweep?") from None
    sizes = [(f"{d}/{table}/{f.base_name}", t.num_rows) for f, t in zip(files, read)]
    origin = np.repeat(np.array([where for where, _ in sizes], dtype=object), [rows for _, rows in sizes])
    if table != "epochs" or not any(_PART.fullmatch(f.base_name) for f in files):  # one file per configuration
        return frame, origin
    kept = _latest_rows(files, [rows for _, rows in sizes], frame["trial_id"].to_numpy(), frame["epoch"].to_numpy())
    return frame.iloc[kept].reset_index(drop=True), origin[kept]


@contextmanager
def _one_version(fs: pafs.FileSystem, path: str) -> Iterator[pq.ParquetFile]:
    """A results file, footer and rows from one version of it whatever a running sweep replaces meanwhile: locally
    through one open handle (a rename leaves an open file as it was), elsewhere from one request for the whole
    object (an object store's ranged reads would each fetch whichever object is there then). pq.read_table
    opens a file twice, and can meet one version's footer with the next one's rows. A local path is opened without
    waiting (a FIFO's plain open would wait for a writer for ever) and refused unless what was opened is a regular
    file: checked on the open descriptor, so nothing can be swapped in between the check and the read."""
    if isinstance(fs, pafs.LocalFileSystem):
        with _opened_regular(path) as (handle, _):
            yield pq.ParquetFile(pa.PythonFile(handle, mode="r"))
        return
    yield pq.ParquetFile(pa.BufferReader(_whole_object(fs, path)))


OBJECT_READS = 5  # an object replaced while it was read (a store reads its size and its bytes in two requests): read again


def _whole_object(fs: pafs.FileSystem, path: str) -> pa.Buffer:
    """The bytes of one version of a remote object. An object store's open learns the size in one request and
    the read fetches that many bytes in another, so an object a sweep replaced in between comes back cut short or
    as the new one's first bytes, without Parquet's closing magic: read again (up to OBJECT_READS times; then what
    came is returned, and fails to parse as any unreadable file does)."""
    for attempt in range(OBJECT_READS):
        with fs.open_input_file(path) as handle:
            size = handle.size()
            data = handle.read()
        if len(data) == size and data[-4:] == b"PAR1":
            break
        if attempt < OBJECT_READS - 1:
            time.sleep(0.05 * 2 ** attempt)
    return data


def _read_file(fs: pafs.FileSystem, path: str, schema: pa.Schema | None = None) -> pa.Table:
    """A results file's rows, from one version of it (_one_version); with `schema`, in its columns (a column the
    file lacks, written before the column existed, null)."""
    with _one_version(fs, path) as parquet:
        table = parquet.read()
    if schema is None:
        return table
    return pa.Table.from_arrays([table.column(f.name).cast(f.type) if f.name in table.column_names
                                 else pa.nulls(table.num_rows, f.type) for f in schema], schema=schema)


def _file(fs: pafs.FileSystem, path: str, where: str, table: str, wanted: list[str] | None) -> pa.Table:
    """One results file's `wanted` columns (all without), from one version of it (_one_version), its schema checked
    first."""
    try:
        with _one_version(fs, path) as parquet:
            schema = parquet.schema_arrow
            for column, kind in NEEDED[table].items():
                if column not in schema.names:
                    raise SweeperError(f"{where}: has no {column} column; was it written by sweeper?")
                written = schema.field(column).type
                numeric = pa.types.is_integer(written) or pa.types.is_floating(written)
                text = pa.types.is_string(written) or pa.types.is_large_string(written)
                if (numeric if kind == "number" else text) is False and parquet.metadata.num_rows:
                    holds = "numbers" if numeric else "text" if text else f"{written} values"
                    raise SweeperError(f"{where}: column {column} holds {holds}, not {kind}; was it written by sweeper?")
            nested = [f for f in schema if pa.types.is_nested(f.type)]
            if nested:  # sweeper writes numbers, text and flags; a table cannot group or show a struct or a list
                raise SweeperError(f"{where}: column {nested[0].name} holds nested values ({nested[0].type}); was it written by sweeper?")
            read = parquet.read(columns=[c for c in wanted if c in schema.names] if wanted else None)
            # text as sweeper writes it: a file rewritten by pandas or another tool holds large_string, which would
            # not meet sweeper's own files' string
            if any(pa.types.is_large_string(f.type) for f in read.schema):
                read = read.cast(pa.schema([f.with_type(pa.string()) if pa.types.is_large_string(f.type) else f for f in read.schema],
                                           metadata=read.schema.metadata))
    except FileNotFoundError:
        raise _Vanished(where) from None
    except (pa.ArrowException, OSError, ValueError) as e:
        raise SweeperError(f"{where}: cannot read these results ({first_line(e)}); was it written by sweeper?") from None
    empty = [c for c in NEVER_EMPTY[table] if c in read.column_names and read.column(c).null_count]
    if empty:
        raise SweeperError(f"{where}: column {empty[0]} has empty values, which no row sweeper writes has; was it written by sweeper?")
    for column in (c for c in read.column_names if c.endswith("_acc") and (pa.types.is_floating(read.schema.field(c).type)
                                                                             or pa.types.is_integer(read.schema.field(c).type))):
        values = read.column(column).to_numpy(zero_copy_only=False).astype(float)  # nulls as NaN: not measured
        outside = values[~np.isnan(values) & ((values < 0) | (values > 1))]
        if len(outside):  # a table would print it as a percentage, and could select it
            raise SweeperError(f"{where}: column {column} holds {outside[0]:g}, not an accuracy from 0 to 1; was it written by sweeper?")
    return read


def _latest_rows(files: list[pafs.FileInfo], counts: list[int], trial_ids: np.ndarray, epochs: np.ndarray) -> np.ndarray:
    """Of rows read file after file (counts[i] rows from files[i]), the positions to keep: of each trial's
    epoch among its configuration's files, the copy in the latest file (the one modified last; at the same
    time, the whole file, then the longer part, which are written after the parts they hold); in the order
    of one whole file per configuration (configurations by file name, seeds as written, epochs ascending)."""
    configs = [_config_of(f.base_name) for f in files]
    by_name = {c: i for i, c in enumerate(sorted(set(configs), key=whole_name))}
    row_config = np.repeat([by_name[c] for c in configs], counts)
    row_recency = np.repeat(_ranks([_recency(f) for f in files]), counts)
    trial = pd.factorize(trial_ids)[0]
    oldest_first = np.argsort(row_recency, kind="stable")
    copies = pd.DataFrame({"config": row_config[oldest_first], "trial": trial[oldest_first], "epoch": epochs[oldest_first]})
    kept = oldest_first[~copies.duplicated(keep="last").to_numpy()]
    config, trial, epoch = row_config[kept], trial[kept], epochs[kept]
    written = np.lexsort((kept, epoch, config))  # a configuration's seeds, in the order its first epoch has them
    seed_order = np.empty(len(kept), dtype=np.int64)
    seed_order[written] = pd.factorize(trial[written])[0]
    return kept[np.lexsort((epoch, seed_order, config))]


def _recency(f: pafs.FileInfo) -> tuple:
    part = _PART.fullmatch(f.base_name)
    span = int(part["last"]) - int(part["first"]) if part else float("inf")
    return (f.mtime_ns or 0, span, f.base_name)


def _ranks(keys: list) -> list[int]:
    order = sorted(range(len(keys)), key=keys.__getitem__)
    ranks = [0] * len(keys)
    for rank, i in enumerate(order):
        ranks[i] = rank
    return ranks



"""The results store: Parquet datasets under a results directory, readable without sweeper.

    DIR/epochs/<config_id>.parquet   one row per trial (a configuration × seed) and epoch
    DIR/trials/<config_id>.parquet   one row per trial

One file per configuration, named by its Ray Tune trial id, written whole each time: a
retried or resumed configuration replaces its file, so its rows never appear twice.
Each file is written under a hidden temporary name and renamed into place; readers
(pyarrow, pandas, DuckDB) skip names starting with '.', so they never see half a file.
Every file of a sweep has the same columns; hyperparameters a model lacks are null.

No torch and no Ray here.
"""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from .errors import NoAnswer, SweeperError

TABLES = ("epochs", "trials")
STATUSES = ("running", "completed", "stopped", "diverged", "failed")

_ID = [("trial_id", pa.string()), ("config_id", pa.string()), ("model", pa.string()), ("seed", pa.int64())]
EPOCH_FIELDS = _ID + [
    ("epoch", pa.int64()),
    ("loss", pa.float64()),
    ("recon", pa.float64()),
    ("kl", pa.float64()),
    ("ce", pa.float64()),
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
    ("error", pa.string()),
    ("best_val_acc", pa.float64()),
    ("test_acc", pa.float64()),
    ("best_epoch", pa.int64()),
    ("epochs", pa.int64()),
    ("wall_s", pa.float64()),
    ("restarts", pa.int64()),
]


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
        return answered_in_time(lambda: pafs.FileSystem.from_uri(location), location)
    return pafs.LocalFileSystem(), os.path.abspath(location)


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
        shown = location.split("?", 1)[0]
        raise NoAnswer(f"{shown}: no answer within {remote_timeout_s():g} s; check the network and the URI "
                           "($SWEEPER_REMOTE_TIMEOUT_S sets how long to wait)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def write_configuration(
    out_dir: str | Path, config_id: str, epochs: list[dict], trials: list[dict], hyperparameters: dict[str, str]
) -> None:
    """Write (or replace) every row of one configuration: its epochs, then its trials."""
    fs, root = filesystem(out_dir)
    _write(fs, f"{root}/epochs/{config_id}.parquet", epochs, epoch_schema())
    _write(fs, f"{root}/trials/{config_id}.parquet", trials, trial_schema(hyperparameters))


def _write(fs: pafs.FileSystem, path: str, rows: list[dict], schema: pa.Schema) -> None:
    unknown = set().union(*rows) - set(schema.names) if rows else set()
    if unknown:
        raise ValueError(f"columns not in the results schema: {sorted(unknown)}")
    status = {r.get("status") for r in rows} - {None}
    if not status <= set(STATUSES):
        raise ValueError(f"unknown status {sorted(status - set(STATUSES))}")
    table = pa.Table.from_pylist(rows, schema=schema)
    directory, name = path.rsplit("/", 1)
    fs.create_dir(directory, recursive=True)
    temporary = f"{directory}/.{name}.{uuid.uuid4().hex}.tmp"
    try:
        pq.write_table(table, temporary, filesystem=fs)
        fs.move(temporary, path)  # a rename locally; on object stores the final object appears whole
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


def write_text(location: str | Path, name: str, text: str) -> None:
    """A small text file (a spec, a report) into a results location, whole or not at all."""
    fs, root = filesystem(location)
    fs.create_dir(root, recursive=True)
    temporary = f"{root}/.{name}.{uuid.uuid4().hex}.tmp"
    with fs.open_output_stream(temporary) as f:
        f.write(text.encode())
    fs.move(temporary, f"{root}/{name}")


def remove_configuration(out_dir: str | Path, config_id: str) -> None:
    """Delete one configuration's rows (before it runs again under another id)."""
    fs, root = filesystem(out_dir)
    for table in TABLES:
        path = f"{root}/{table}/{config_id}.parquet"
        if fs.get_file_info(path).type != pafs.FileType.NotFound:
            fs.delete_file(path)
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
        table = pq.read_table(info.path, filesystem=fs)
        point = table.column("point")[0].as_py() if "point" in table.column_names and table.num_rows else None
        found[info.base_name.removesuffix(".parquet")] = (point, "running" not in table.column("status").to_pylist())
    return found


def mark_stopped(out_dir: str | Path, config_id: str) -> None:
    """A configuration ended early by a scheduler: its running trials become "stopped"."""
    fs, root = filesystem(out_dir)
    path = f"{root}/trials/{config_id}.parquet"
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return
    table = pq.read_table(path, filesystem=fs)
    status = [("stopped" if s == "running" else s) for s in table.column("status").to_pylist()]
    _write(fs, path, table.set_column(table.schema.get_field_index("status"), "status", pa.array(status, pa.string())).to_pylist(),
           table.schema)


KEYS = {"trials": ["trial_id"], "epochs": ["trial_id", "epoch"]}  # what names a row, across every file
NEEDED = {"trials": {"trial_id": "text", "config_id": "text", "model": "text", "seed": "number", "status": "text",
                     "best_val_acc": "number", "test_acc": "number"},
          "epochs": {"trial_id": "text", "config_id": "text", "epoch": "number", "val_acc": "number"}}


def read(dirs: str | Path | list[str | Path], table: str = "trials", columns: list[str] | None = None) -> pd.DataFrame:
    """One table ("trials" or "epochs") of one or several results directories, as a DataFrame.

    Only the files sweeper writes are read: DIR/<table>/<name>.parquet, no subfolder, no hidden file.
    Each row counts once however the directories are given: a row seen twice with the same values
    (the same directory twice, a copy) is taken once; two different rows for the same trial (and
    epoch) are refused, naming both files.
    """
    if table not in TABLES:
        raise ValueError(f"table must be one of {TABLES}")
    dirs = [dirs] if isinstance(dirs, (str, Path)) else list(dirs)
    wanted = None if columns is None else list(dict.fromkeys([*KEYS[table], *columns]))  # the keys too: they name a row
    frames, sources = [], []  # sources: (file, rows) in the order the rows are
    for d in dirs:
        frame, files = _directory(d, table, wanted)
        frames.append(frame)
        sources += files
    rows = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    keys = [k for k in KEYS[table] if k in rows.columns]
    repeated = rows.duplicated(subset=keys, keep=False)
    if repeated.any():  # only there: the whole row decides whether it is the same trial seen twice
        copies = rows[repeated].duplicated(keep="first")
        rows = rows.drop(index=copies[copies].index)
        clash = rows[rows.duplicated(subset=keys, keep=False)]
        if len(clash):
            first = clash[clash[keys].eq(clash[keys].iloc[0]).all(axis=1)]
            files = [_source(sources, i) for i in first.index[:2]]
            named = " ".join(f"{k} {first[k].iloc[0]}" for k in keys)
            raise SweeperError(f"{named} has different rows in {files[0]} and {files[1]}; "
                               "report one of the two (they are not the same results)")
    rows = rows.reset_index(drop=True)
    return rows[[c for c in columns if c in rows.columns]] if columns is not None else rows


def _source(sources: list[tuple[str, int]], index: int) -> str:
    """The file that row `index` of the concatenated rows came from."""
    for where, count in sources:
        if index < count:
            return where
        index -= count
    raise IndexError(index)


def _directory(d: str | Path, table: str, wanted: list[str] | None) -> tuple[pd.DataFrame, list[tuple[str, int]]]:
    """One table of one results location, read as one dataset after each file's schema is checked from its
    metadata; and (file, rows) for each file, in the order of the rows."""
    try:
        fs, root = filesystem(d)

        def listing():
            return (fs.get_file_info(root).type == pafs.FileType.Directory,
                    fs.get_file_info(pafs.FileSelector(f"{root}/{table}", allow_not_found=True)))

        found, listed = answered_in_time(listing, str(d)) if "://" in str(d) else listing()
        files = sorted((f for f in listed if f.type == pafs.FileType.File and f.base_name.endswith(".parquet")
                        and not f.base_name.startswith(".")), key=lambda f: f.base_name)
    except (pa.ArrowException, OSError, ValueError) as e:
        raise SweeperError(f"{d}: cannot open this results location ({first_line(e)}); check the path or URI") from None
    if not found:
        raise SweeperError(f"{d}: no such results directory; give the --out directory of a sweep (default results/<name>)")
    if not files:
        raise SweeperError(f"{d}: no {table} results yet; run a sweep into it with 'sweeper run SPEC --out {d}'")
    sizes = []
    for f in files:
        where = f"{d}/{table}/{f.base_name}"
        try:
            metadata = pq.read_metadata(f.path, filesystem=fs)
        except (pa.ArrowException, OSError, ValueError) as e:
            raise SweeperError(f"{where}: cannot read these results ({first_line(e)}); was it written by sweeper?") from None
        schema = metadata.schema.to_arrow_schema()
        for column, kind in NEEDED[table].items():
            if column not in schema.names:
                raise SweeperError(f"{where}: has no {column} column; was it written by sweeper?")
            numeric = pa.types.is_integer(schema.field(column).type) or pa.types.is_floating(schema.field(column).type)
            if (kind == "number") != numeric and metadata.num_rows:
                holds = "numbers" if kind == "text" else "text"
                raise SweeperError(f"{where}: column {column} holds {holds}, not {kind}; was it written by sweeper?")
        sizes.append((where, metadata.num_rows))
    try:
        dataset = pds.dataset([f.path for f in files], filesystem=fs, format="parquet",
                              schema=pa.unify_schemas([pq.read_schema(f.path, filesystem=fs) for f in files]))
        frame = dataset.to_table(columns=[c for c in wanted if c in dataset.schema.names] if wanted else None).to_pandas()
    except (pa.ArrowException, OSError, ValueError) as e:
        raise SweeperError(f"{d}/{table}: cannot read these results together ({first_line(e)}); were they written by one sweep?") from None
    return frame, sizes


def first_line(e: BaseException) -> str:
    """An exception's first line, or its type where it has no message."""
    text = str(e).strip()
    return text.splitlines()[0][:200] if text else type(e).__name__

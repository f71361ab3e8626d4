"""The papers' published figures, from CSV files (one per paper, its citation in # lines)."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .. import results
from ..errors import SweeperError, first_line

COLUMNS = ("table", "row", "column", "value", "std")
DEFAULT_DIRS = (Path("results/published"), Path(__file__).resolve().parents[2] / "results" / "published")


def load(directory: str | Path | None = None) -> pd.DataFrame:
    """Every published figure: table, row, column, value, std (value in the paper's unit)."""
    candidates = [Path(directory)] if directory else [d for d in DEFAULT_DIRS if d.is_dir()]
    if not candidates or not candidates[0].is_dir():
        raise SweeperError(f"{directory or DEFAULT_DIRS[0]}: no directory of published figures; give --published DIR")
    files = sorted(candidates[0].glob("*.csv"))
    if not files:
        raise SweeperError(f"{candidates[0]}: holds no .csv of published figures")
    frames = []
    for f in files:
        results.inside(candidates[0], f.name)  # a regular file: a FIFO would block the report for ever
        try:
            frame = pd.read_csv(f, comment="#", dtype={"row": str, "column": str, "table": str})
        except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as e:
            raise SweeperError(f"{f}: not a CSV of published figures ({first_line(e, 120)}); "
                               f"it needs the columns {', '.join(COLUMNS)}") from None
        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            raise SweeperError(f"{f}: has no {', '.join(missing)} column; a CSV of published figures has {', '.join(COLUMNS)}")
        for column in ("value", "std"):
            if not pd.api.types.is_numeric_dtype(frame[column]) and frame[column].notna().any():
                raise SweeperError(f"{f}: column {column} holds text, not numbers; give figures such as 93.7")
        _check_figures(f, frame)
        frames.append(frame.assign(source=f.name))
    figures = pd.concat(frames, ignore_index=True)
    twice = figures[figures.duplicated(["table", "row", "column"], keep=False)]
    if len(twice):
        first = twice.iloc[0]
        where = twice[(twice["table"] == first["table"]) & (twice["row"] == first["row"]) & (twice["column"] == first["column"])]
        raise SweeperError(f"{candidates[0]}: table {first['table']} row {first['row']} column {first['column']} has more than one "
                           f"published figure (in {', '.join(dict.fromkeys(where['source']))}); keep one")
    return figures.drop(columns="source")


def _check_figures(path: Path, frame: pd.DataFrame) -> None:
    """A figure is a finite number (a value the paper printed; a std of at least 0 where it printed one)."""
    bad_value = frame[~frame["value"].map(lambda v: pd.notna(v) and math.isfinite(v))]
    bad_std = frame[frame["std"].notna() & ~frame["std"].map(lambda v: pd.notna(v) and math.isfinite(v) and v >= 0)]
    for column, bad, wanted in (("value", bad_value, "a finite number"), ("std", bad_std, "a finite number >= 0, or empty")):
        if len(bad):
            row = bad.iloc[0]
            given = "is empty" if pd.isna(row[column]) else f"{float(row[column]):g} is not {wanted}"
            raise SweeperError(f"{path}: table {row['table']} row {row['row']} column {row['column']}: {column} {given}; "
                               "give the paper's figure")


def lookup(published: pd.DataFrame, table: str):
    """(row, column) -> the paper's figure and its ± (None where the paper gives none)."""
    from .table import Published

    rows = published[published["table"] == table]
    return {(str(r.row), str(r.column)): Published(float(r.value), None if pd.isna(r.std) else float(r.std))
            for r in rows.itertuples()}

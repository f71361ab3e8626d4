"""Reports from results directories alone (Parquet): no torch, no Ray."""
from __future__ import annotations

from pathlib import Path

from .. import results
from .table import FORMATS, default_rows, render, summarise

EXTENSIONS = {"markdown": "md", "latex": "tex", "csv": "csv"}


def table(dirs: list[str | Path], fmt: str = "markdown", rows: str | None = None, cols: str = "model") -> str:
    """The table as text; also written as DIR/report.<ext> into the first directory."""
    trials = results.read(dirs, "trials")
    rows = rows or default_rows(trials)
    text = render(summarise(trials, rows, cols), rows, cols, fmt)
    with results.atomic(Path(dirs[0]) / f"report.{EXTENSIONS[fmt]}") as temporary:
        temporary.write_text(text)
    return text


__all__ = ["FORMATS", "table"]

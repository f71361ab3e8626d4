"""Table 1-style tables from a trials table: rows × columns, cells mean ± std (n) over seeds."""
from __future__ import annotations

import math

import pandas as pd

from ..errors import SweeperError
from ..results import TRIAL_FIELDS_AFTER, TRIAL_FIELDS_BEFORE

FORMATS = ("markdown", "latex", "csv")
NOT_TAKEN = "n/a"  # row label for models that do not take the row's hyperparameter
MISSING = "–"
_NOT_AXES = {name for name, _ in TRIAL_FIELDS_AFTER} | {"trial_id", "config_id", "seed"}


def default_rows(trials: pd.DataFrame) -> str:
    """The swept hyperparameter with the most distinct values; swept hyperparameters of disjoint
    models (alpha for M2, lam for Jurasiński's) share the rows, as "alpha,lam". Else label_count,
    else dataset."""
    fixed_columns = {name for name, _ in TRIAL_FIELDS_BEFORE + TRIAL_FIELDS_AFTER}
    counts = {c: trials[c].nunique() for c in trials.columns if c not in fixed_columns}
    swept = [c for c in counts if counts[c] > 1]
    if len(swept) > 1 and (trials[swept].notna().sum(axis=1) <= 1).all():
        return ",".join(swept)
    if swept:
        return max(swept, key=lambda c: counts[c])  # ties: the first hyperparameter column
    return "label_count" if trials["label_count"].nunique() > 1 else "dataset"


def summarise(trials: pd.DataFrame, rows: str, cols: str, value: str = "test_acc") -> pd.DataFrame:
    """mean, std (ddof=1) and n of `value` over the completed trials in each (rows, cols) cell.

    `rows` may name several columns ("alpha,lam"): each row takes the first that is set.
    """
    for axis, names in (("--rows", rows), ("--cols", cols)):
        for name in names.split(","):
            if name not in trials.columns or name in _NOT_AXES:
                allowed = sorted(c for c in trials.columns if c not in _NOT_AXES)
                raise SweeperError(f"{axis} {name}: not a column of these results; choose one of: {', '.join(allowed)}")
    done = trials[trials["status"] == "completed"].copy()
    if "," in rows:
        done[rows] = done[rows.split(",")].bfill(axis=1).iloc[:, 0]
    grouped = done.groupby([rows, cols], dropna=False, sort=True)[value]
    summary = grouped.agg(mean="mean", std="std", n="count").reset_index()
    return summary.sort_values([rows, cols], na_position="last", kind="stable").reset_index(drop=True)


def _label(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return NOT_TAKEN
    return f"{v:g}" if isinstance(v, float) else str(v)


def _cell(mean: float, std: float, n: int) -> str:
    spread = MISSING if math.isnan(std) else f"{100 * std:.2f}"
    return f"{100 * mean:.2f} ± {spread} ({n})"


def render(summary: pd.DataFrame, rows: str, cols: str, fmt: str = "markdown") -> str:
    if fmt == "csv":
        return summary.rename(columns={"mean": "test_acc_mean", "std": "test_acc_std"}).to_csv(index=False)
    row_labels = list(dict.fromkeys(_label(v) for v in summary[rows]))  # by label: NaN is not equal to itself
    col_labels = sorted(dict.fromkeys(_label(v) for v in summary[cols]))
    cells = {(_label(r[rows]), _label(r[cols])): _cell(r["mean"], r["std"], int(r["n"])) for _, r in summary.iterrows()}
    header = [rows.replace(",", " or ")] + col_labels
    body = [[r] + [cells.get((r, c), MISSING) for c in col_labels] for r in row_labels]
    caption = "test accuracy % at the epoch of best validation accuracy: mean ± std over seeds (n)"
    if fmt == "markdown":
        lines = [caption, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(line) + " |" for line in body]
        return "\n".join(lines) + "\n"
    if fmt == "latex":
        escape = lambda s: s.replace("_", r"\_").replace("±", r"$\pm$").replace("–", "--")  # noqa: E731
        lines = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{l" + "r" * len(col_labels) + "}", r"\toprule"]
        lines.append(" & ".join(escape(h) for h in header) + r" \\")
        lines.append(r"\midrule")
        lines += [" & ".join(escape(c) for c in line) + r" \\" for line in body]
        lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{escape(caption)}}}", r"\end{table}"]
        return "\n".join(lines) + "\n"
    raise SweeperError(f"--format {fmt}: unknown format; choose one of: {', '.join(FORMATS)}")

"""Tables from a trials table: rows × columns, each cell mean ± std (n) over seeds.

Cells aggregate the completed trials of a configuration over its seeds: mean, sample std
(ddof=1), n, and optionally a 95 % t-interval. The best cell of each column is marked, a cell
with fewer seeds than the sweep asked for is flagged, a missing cell shows "–", and with
published figures each cell shows the paper's value and the difference.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from ..errors import SweeperError
from ..results import TRIAL_FIELDS_AFTER, TRIAL_FIELDS_BEFORE
from .layouts import Layout

FORMATS = ("markdown", "latex", "csv")
NOT_TAKEN = "n/a"  # row label for models that do not take the row's hyperparameter
MISSING = "–"
FEWER = "*"  # marks a cell with fewer seeds than the sweep asked for
_NOT_AXES = {name for name, _ in TRIAL_FIELDS_AFTER} | {"trial_id", "config_id", "seed"}


@dataclass
class Cell:
    mean: float  # in % (accuracy or error)
    std: float
    n: int
    ci: tuple[float, float] | None = None
    published: float | None = None
    best: bool = False
    fewer: bool = False


@dataclass
class Table:
    rows: str
    cols: str
    row_labels: list[str]
    col_labels: list[str]
    cells: dict[tuple[str, str], Cell]
    caption: str
    expected_n: int
    footnotes: list[str] = field(default_factory=list)


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


def label(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return NOT_TAKEN
    return f"{v:g}" if isinstance(v, float) else str(v)


def build(trials: pd.DataFrame, layout: Layout, rows: str | None = None, cols: str | None = None, ci: bool = False,
          published: dict[tuple[str, str], float] | None = None, expected_n: int | None = None) -> Table:
    rows = rows or layout.rows or default_rows(trials)
    cols = cols or layout.cols
    summary = summarise(trials, rows, cols)
    expected_n = expected_n or (int(summary["n"].max()) if len(summary) else 0)
    cells = {}
    for r in summary.itertuples(index=False):
        mean, std = 100 * (1 - r.mean if layout.error else r.mean), 100 * r.std
        cell = Cell(mean, std, int(r.n), fewer=r.n < expected_n)
        if ci and r.n > 1:
            from scipy import stats

            half = stats.t.ppf(0.975, r.n - 1) * std / math.sqrt(r.n)
            cell.ci = (mean - half, mean + half)
        key = (label(r[0]), label(r[1]))
        if published and key in published:
            cell.published = published[key]
        cells[key] = cell
    row_labels = list(dict.fromkeys(label(v) for v in summary[rows]))  # by label: NaN is not equal to itself
    present = sorted(dict.fromkeys(label(v) for v in summary[cols]))
    col_labels = [c for c in layout.columns if c in present] + [c for c in present if c not in layout.columns] if layout.columns else present
    for c in col_labels:  # mark the best of each column
        column = [cells[(r, c)] for r in row_labels if (r, c) in cells]
        if len(column) > 1:
            pick = min if layout.error else max
            pick(column, key=lambda cell: cell.mean).best = True
    what = "test error %" if layout.error else "test accuracy %"
    caption = (layout.caption or what) + " at the epoch of best validation accuracy: mean ± std over seeds (n); best of each column in bold"
    table = Table(rows, cols, row_labels, col_labels, cells, caption, expected_n)
    if any(cell.fewer for cell in cells.values()):
        table.footnotes.append(f"{FEWER} fewer seeds than the sweep asked for ({expected_n})")
    if published:
        table.footnotes.append("paper: the published figure; Δ: this sweep minus the paper")
    return table


def _cell_text(cell: Cell | None, bold) -> str:
    if cell is None:
        return MISSING
    spread = MISSING if math.isnan(cell.std) else f"{cell.std:.2f}"
    text = f"{cell.mean:.2f} ± {spread} ({cell.n}){FEWER if cell.fewer else ''}"
    if cell.best:
        text = bold(text)
    if cell.ci:
        text += f" [{cell.ci[0]:.2f}, {cell.ci[1]:.2f}]"
    if cell.published is not None:
        text += f"; paper {cell.published:.2f}, Δ {cell.mean - cell.published:+.2f}"
    return text


def render(table: Table, fmt: str = "markdown") -> str:
    if fmt == "csv":
        records = [dict(row=r, column=c, mean=cell.mean, std=cell.std, n=cell.n,
                        ci_low=cell.ci[0] if cell.ci else None, ci_high=cell.ci[1] if cell.ci else None,
                        best=cell.best, fewer_seeds=cell.fewer, published=cell.published,
                        delta=None if cell.published is None else cell.mean - cell.published)
                   for (r, c), cell in table.cells.items()]
        frame = pd.DataFrame(records).rename(columns={"row": table.rows.replace(",", " or "), "column": table.cols})
        return frame.to_csv(index=False)
    header = [table.rows.replace(",", " or ")] + table.col_labels
    if fmt == "markdown":
        body = [[r] + [_cell_text(table.cells.get((r, c)), lambda t: f"**{t}**") for c in table.col_labels] for r in table.row_labels]
        lines = [table.caption, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(line) + " |" for line in body]
        lines += [""] + table.footnotes if table.footnotes else []
        return "\n".join(lines) + "\n"
    if fmt == "latex":
        escape = lambda s: s.replace("_", r"\_").replace("±", r"$\pm$").replace("–", "--").replace("Δ", r"$\Delta$")  # noqa: E731
        body = [[r] + [_cell_text(table.cells.get((r, c)), lambda t: rf"\textbf{{{t}}}") for c in table.col_labels] for r in table.row_labels]
        lines = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{l" + "r" * len(table.col_labels) + "}", r"\toprule"]
        lines.append(" & ".join(escape(h) for h in header) + r" \\")
        lines.append(r"\midrule")
        lines += [" & ".join(escape(c) for c in line) + r" \\" for line in body]
        caption = " ".join([table.caption] + table.footnotes)
        lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{escape(caption)}}}", r"\end{table}"]
        return "\n".join(lines) + "\n"
    raise SweeperError(f"--format {fmt}: unknown format; choose one of: {', '.join(FORMATS)}, html")


def paired(trials: pd.DataFrame, rows: str, first: str, second: str) -> pd.DataFrame:
    """Per row: the two models over the seeds both completed, their mean difference (points of
    accuracy), and the p-values of a paired t-test and a Wilcoxon signed-rank test."""
    from scipy import stats

    done = trials[trials["status"] == "completed"].copy()
    if "," in rows:
        done[rows] = done[rows.split(",")].bfill(axis=1).iloc[:, 0]
    done["row"] = done[rows].map(label)
    records = []
    order = {r: i for i, r in enumerate(dict.fromkeys(done.sort_values(rows.split(",")[0])["row"]))}
    for row, group in sorted(done.groupby("row", sort=False), key=lambda item: order[item[0]]):
        a = group[group["model"] == first].set_index("seed")["test_acc"]
        b = group[group["model"] == second].set_index("seed")["test_acc"]
        common = a.index.intersection(b.index)
        if len(common) < 2:
            continue
        diff = 100 * (a[common] - b[common])
        t = stats.ttest_rel(a[common], b[common]).pvalue
        w = stats.wilcoxon(a[common], b[common]).pvalue if (diff != 0).any() else 1.0
        records.append({"row": row, "seeds": len(common), "difference": diff.mean(), "t_test_p": t, "wilcoxon_p": w})
    return pd.DataFrame(records, columns=["row", "seeds", "difference", "t_test_p", "wilcoxon_p"])

"""Tables from a trials table: rows × columns, each cell one configuration's seeds, mean ± std (n).

A configuration is a model with every hyperparameter and data setting; a cell never mixes two.
Where configurations other than the axes vary (an alpha × lr grid reported by alpha), each cell
shows the one with the best mean validation accuracy over its seeds and says which; test accuracy
is only read, at that choice. Per column, the configuration selected by validation is in bold and
stated beneath the table, the way a paper states its headline number. A cell with fewer seeds than
the sweep asked for is flagged, a missing cell shows "–", and with published figures each cell
shows the paper's value, the difference, and whether the two are consistent.
"""
from __future__ import annotations

import html as html_escape

import json
import math
import string
from dataclasses import dataclass, field, replace

import pandas as pd

from ..errors import SweeperError
from .. import redact, results
from ..results import TRIAL_FIELDS_AFTER, TRIAL_FIELDS_BEFORE
from .layouts import Layout

FORMATS = ("markdown", "latex", "csv")
NOT_TAKEN = "n/a"  # row label for models that do not take the row's hyperparameter
MISSING = "–"
FEWER = "*"  # marks a cell with fewer seeds than the sweep asked for
_NOT_AXES = {name for name, _ in TRIAL_FIELDS_AFTER} | {"trial_id", "config_id", "seed", "point"}
_NOT_IDENTITY = _NOT_AXES  # what is not part of a configuration's identity


@dataclass
class Published:
    value: float
    std: float | None = None


@dataclass
class Cell:
    mean: float  # in % (accuracy or error)
    std: float
    n: int
    val_mean: float  # mean best validation accuracy over the seeds, the selection criterion
    configuration: str  # which configuration (a key over its identity columns)
    chosen: dict[str, str] = field(default_factory=dict)  # its values of the hyperparameters that vary within cells
    mark: str = ""  # the footnote that names `chosen`
    ci: tuple[float, float] | None = None
    published: Published | None = None
    consistent: bool | None = None  # with the paper's figure; None: cannot say
    other_method: str | None = None  # the paper's figure is of another method (Layout.other_methods)
    best: bool = False  # the column's configuration selected by validation
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
    selected: list[str] = field(default_factory=list)  # "m2: 93.70 ± 2.50 (5) with alpha=10000", per column


def default_rows(trials: pd.DataFrame, exclude: str | None = None) -> str:
    """The swept hyperparameter with the most distinct values; swept hyperparameters of disjoint
    models (alpha for M2, lam for Jurasiński's) share the rows, as "alpha,lam". Else label_count,
    else dataset."""
    fixed_columns = {name for name, _ in TRIAL_FIELDS_BEFORE + TRIAL_FIELDS_AFTER}
    counts = {c: trials[c].nunique() for c in trials.columns if c not in fixed_columns and c != exclude}
    swept = [c for c in counts if counts[c] > 1]
    if len(swept) > 1 and (trials[swept].notna().sum(axis=1) <= 1).all():
        return ",".join(swept)
    if swept:
        return max(swept, key=lambda c: counts[c])  # ties: the first hyperparameter column
    return "label_count" if trials["label_count"].nunique() > 1 and exclude != "label_count" else "dataset"


def check_axes(trials: pd.DataFrame, rows: str | None, cols: str | None) -> None:
    """--rows and --cols as the user gave them: columns of these results that can be axes."""
    allowed = sorted(c for c in trials.columns if c not in _NOT_AXES)
    if cols is not None and "," in cols:
        raise SweeperError(f"--cols {cols[:60]}: takes one column; share rows with --rows a,b instead")
    for axis, names in (("--rows", rows), ("--cols", cols)):
        for name in axis_names(names) if names else []:
            if name == "seed":
                raise SweeperError(f"{axis} seed: a cell is the mean over seeds, so seeds cannot be an axis; "
                                   f"choose one of: {', '.join(allowed)}")
            if name not in trials.columns or name in _NOT_AXES:
                raise SweeperError(f"{axis} {name[:60]}: not a column of these results; choose one of: {', '.join(allowed)}")
    if rows and len(set(axis_names(rows))) < len(axis_names(rows)):
        raise SweeperError(f"--rows {rows[:60]}: names a column twice; give each column once")
    if rows and cols and cols in axis_names(rows):
        raise SweeperError(f"--rows {rows[:60]} --cols {cols[:60]}: the same column on both axes; give two different columns")


def axis_names(names: str) -> list[str]:
    """The columns an axis shares ("alpha,lam": swept hyperparameters of disjoint models)."""
    return names.split(",")


def axis_title(names: str) -> str:
    """An axis's title: "alpha or lam"."""
    return " or ".join(axis_names(names))


def axis_values(frame: pd.DataFrame, names: str) -> pd.Series:
    """The axis value of each trial: the first of `names` ("alpha,lam") that is set and present."""
    present = [n for n in axis_names(names) if n in frame.columns]
    if not present:
        return pd.Series([None] * len(frame), index=frame.index, dtype=object)
    return frame[present].bfill(axis=1).iloc[:, 0] if len(present) > 1 else frame[present[0]]


def label(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return NOT_TAKEN
    if isinstance(v, float):
        short = f"{v:g}"
        return short if float(short) == v else repr(v)  # never two values under one label
    return str(v)


def identities(frame: pd.DataFrame) -> pd.Series:
    """Each trial's configuration as a key: its model, data settings and every hyperparameter, exactly
    (1.0000001e-3 and 1.0000004e-3 are two configurations, though both print as 0.001)."""
    identity = [c for c in frame.columns if c not in _NOT_IDENTITY]
    exact = lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else v.item() if hasattr(v, "item") else v  # noqa: E731
    return pd.Series([json.dumps([exact(v) for v in values]) for values in frame[identity].itertuples(index=False)],
                     index=frame.index, dtype=object)


def configurations(done: pd.DataFrame, rows: str, cols: str) -> pd.DataFrame:
    """One row per configuration of the completed trials: its axis labels, identity, and mean
    validation and test accuracy, test std and n over its seeds. A configuration's seed that two
    trials ran (the same grid run into two directories) is refused: its numbers would count twice."""
    identity = [c for c in done.columns if c not in _NOT_IDENTITY]
    frame = done.assign(row=axis_values(done, rows), col=axis_values(done, cols), configuration=identities(done))
    twice = frame[frame.duplicated(["configuration", "seed"], keep=False)]
    if len(twice):
        first = twice[(twice["configuration"] == twice["configuration"].iloc[0]) & (twice["seed"] == twice["seed"].iloc[0])]
        raise SweeperError(f"seed {first['seed'].iloc[0]} of one configuration ran in two trials ({first['trial_id'].iloc[0]} and "
                           f"{first['trial_id'].iloc[1]}); report the directories apart, or remove one copy")
    grouped = frame.groupby("configuration", sort=True)
    summary = grouped.agg(row=("row", "first"), col=("col", "first"), val_mean=("best_val_acc", "mean"),
                          mean=("test_acc", "mean"), std=("test_acc", "std"), n=("test_acc", "count"),
                          trial_ids=("trial_id", list))
    labels = grouped[identity].first().map(label)
    return summary.join(labels.add_prefix("hp:")).reset_index()


def best_by_validation(done: pd.DataFrame, rows: str, cols: str) -> pd.DataFrame:
    """For each (rows, cols) value, the configuration with the best mean validation accuracy over its
    seeds (ties: the first by identity): a configurations() frame with row_label and col_label."""
    configs = configurations(done, rows, cols)
    configs["row_label"], configs["col_label"] = configs["row"].map(label), configs["col"].map(label)
    ranked = configs.sort_values(["val_mean", "configuration"], ascending=[False, True], kind="stable")
    return ranked.drop_duplicates(["row_label", "col_label"])


AT = {"best": "the epoch of best validation accuracy", "final": "the final epoch"}  # where each seed's accuracy is read


def build(trials: pd.DataFrame, layout: Layout, rows: str | None = None, cols: str | None = None, ci: bool = False,
          published: dict[tuple[str, str], Published] | None = None, expected_n: int | None = None, at: str = "best") -> Table:
    """The table of `trials`, each seed's accuracy read `at` its best validation epoch (as the trials rows say) or at
    its final epoch (at_final_epoch put those in the rows)."""
    check_axes(trials, rows, cols)
    own_rows, own_cols = rows in (None, layout.rows), cols in (None, layout.cols)  # else the paper's rows/columns do not apply
    layout = replace(layout, row_values=layout.row_values if own_rows else None, columns=layout.columns if own_cols else None)
    if layout.name != "generic" and not (own_rows and own_cols):
        published = None  # a paper's figures sit in its own rows and columns, not on other axes
    if rows and not cols and layout.cols in axis_names(rows):
        raise SweeperError(f"--rows {rows[:60]}: holds {layout.cols}, the columns' axis by default; give --cols another column, "
                           f"or leave {layout.cols} out of --rows")
    cols = cols or layout.cols
    rows = rows or layout.rows or default_rows(trials, exclude=cols)
    done = trials[results.finished(trials)]
    configs = configurations(done, rows, cols)
    configs["row_label"], configs["col_label"] = configs["row"].map(label), configs["col"].map(label)
    expected_n = expected_n or (int(configs["n"].max()) if len(configs) else 0)

    # each cell: the configuration with the best mean validation accuracy (ties: the first by identity)
    ranked = configs.sort_values(["val_mean", "configuration"], ascending=[False, True], kind="stable")
    picked = ranked.drop_duplicates(["row_label", "col_label"])
    axes = set(axis_names(rows)) | {cols}
    varying = [c for c in configs.columns if c.startswith("hp:") and c[3:] not in axes
               and (configs.groupby(["row_label", "col_label"])[c].nunique() > 1).any()]
    cells = {}
    for r in picked.to_dict("records"):
        mean, std = 100 * (1 - r["mean"] if layout.error else r["mean"]), 100 * r["std"]
        chosen = {c[3:]: r[c] for c in varying if r[c] != NOT_TAKEN}
        cell = Cell(mean, std, int(r["n"]), r["val_mean"], r["configuration"], chosen, fewer=r["n"] < expected_n)
        if r["n"] > 1 and (ci or published):  # the interval shows with --ci and judges consistency with --compare
            from scipy import stats

            half = stats.t.ppf(0.975, r["n"] - 1) * std / math.sqrt(r["n"])
            cell.ci = (mean - half, mean + half)
        key = (r["row_label"], r["col_label"])
        if published and key in published:
            cell.published = published[key]
            cell.other_method = layout.other_methods.get(r["col_label"])
            if cell.other_method is None:
                cell.consistent = _consistent(cell)
        cells[key] = cell
    table = Table(rows, cols, _row_labels(configs, layout), _col_labels(configs, layout), cells,
                  _caption(layout, at), expected_n)
    _select(table, ranked, varying, layout)
    _notes(table, ci, published, layout)
    if not ci:
        for cell in cells.values():
            cell.ci = None
    return table


def _consistent(cell: Cell) -> bool | None:
    """The paper's figure inside this sweep's 95 % t-interval, or this sweep's mean within the paper's ±."""
    paper = cell.published
    inside = cell.ci is not None and cell.ci[0] <= paper.value <= cell.ci[1]
    within = paper.std is not None and abs(cell.mean - paper.value) <= paper.std
    if cell.ci is None and paper.std is None:
        return None
    return inside or within


def _row_labels(configs: pd.DataFrame, layout: Layout) -> list[str]:
    """The paper's rows first (a layout's), then the others: numbers ascending, then text, then n/a."""
    def order(v):
        if label(v) == NOT_TAKEN:
            return (2, 0.0, "")
        return (0, float(v), "") if isinstance(v, (int, float)) else (1, 0.0, str(v))

    present = list(dict.fromkeys(label(v) for v in sorted(configs["row"], key=order)))
    paper = list(layout.row_values or ())
    return paper + [r for r in present if r not in paper]


def _col_labels(configs: pd.DataFrame, layout: Layout) -> list[str]:
    present = sorted(dict.fromkeys(configs["col_label"]))
    paper = list(layout.columns or ())
    return paper + [c for c in present if c not in paper]


def _caption(layout: Layout, at: str = "best") -> str:
    what = "test error %" if layout.error else "test accuracy %"
    chosen = "validation accuracy" if at == "best" else "final-epoch validation accuracy"
    return ((layout.caption or what) + f" at {AT[at]}: mean ± std over seeds (n) of one configuration per cell, chosen by "
            f"{chosen}; bold: each column's configuration selected by validation")


def at_final_epoch(trials: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """The trials with each seed's accuracies as its last trained epoch left them (Jurasiński's classifier "drawn
    away" over training, which reading at the best validation epoch hides): test_acc and best_val_acc are then the
    final epoch's, and best_epoch that epoch. A trial with no epoch rows keeps no accuracy."""
    last = epochs.sort_values("epoch").drop_duplicates("trial_id", keep="last").set_index("trial_id")[["epoch", "val_acc", "test_acc"]]
    final = trials.drop(columns=["test_acc", "best_val_acc", "best_epoch"], errors="ignore").join(
        last.rename(columns={"epoch": "best_epoch", "val_acc": "best_val_acc"}), on="trial_id")
    return final[trials.columns]


def _select(table: Table, ranked: pd.DataFrame, varying: list[str], layout: Layout) -> None:
    """Bold each column's best configuration by validation, and say what it is."""
    for c in table.col_labels:
        column = ranked[ranked["col_label"] == c]
        if column.empty:
            continue
        best = column.iloc[0]
        cell = table.cells[(best["row_label"], c)]
        cell.best = True
        axis = next((name for name in axis_names(table.rows) if best.get(f"hp:{name}", NOT_TAKEN) != NOT_TAKEN), table.rows)
        settings = [f"{axis}={best['row_label']}"] if best["row_label"] != NOT_TAKEN and column["row_label"].nunique() > 1 else []
        settings += [f"{k}={v}" for k, v in cell.chosen.items()]
        text = f"{c}: {cell.mean:.2f} ± {_spread(cell)} ({cell.n})"
        table.selected.append(text + (f" with {', '.join(settings)}" if settings else ""))


def _notes(table: Table, ci: bool, published, layout: Layout) -> None:
    settings = {}
    for cell in table.cells.values():
        if cell.chosen:
            text = ", ".join(f"{k}={v}" for k, v in cell.chosen.items())
            cell.mark = settings.setdefault(text, _mark(len(settings)))
    if settings:
        table.footnotes.append("each cell is the configuration best by validation among those that differ in "
                               + ", ".join(sorted({k for cell in table.cells.values() for k in cell.chosen})) + ": "
                               + "; ".join(f"[{mark}] {text}" for text, mark in settings.items()))
    if any(cell.fewer for cell in table.cells.values()):
        table.footnotes.append(f"{FEWER} fewer seeds than the sweep asked for ({table.expected_n})")
    if published:
        table.footnotes.append("paper: the published figure; Δ: this sweep minus the paper")
        judged = [cell for cell in table.cells.values() if cell.published is not None and cell.other_method is None]
        agreeing = sum(bool(cell.consistent) for cell in judged)
        table.footnotes.append(f"{agreeing} of {len(judged)} cells consistent with the paper (its figure inside this sweep's "
                               "95 % t-interval over seeds, or this sweep's mean within the paper's ±)")
        for column, why in layout.other_methods.items():
            if column in table.col_labels:
                table.footnotes.append(f"{column}: {why}; not compared")


def _mark(number: int) -> str:
    """a, b, ..., z, then a2, b2, ...: a footnote mark for the number-th setting."""
    return string.ascii_lowercase[number % 26] + (str(number // 26 + 1) if number >= 26 else "")


def _spread(cell: Cell) -> str:
    return MISSING if math.isnan(cell.std) else f"{cell.std:.2f}"


def _cell_text(cell: Cell | None, bold) -> str:
    if cell is None:
        return MISSING
    text = f"{cell.mean:.2f} ± {_spread(cell)} ({cell.n}){FEWER if cell.fewer else ''}"
    if cell.best:
        text = bold(text)
    if cell.mark:
        text += f" [{cell.mark}]"
    if cell.ci:
        text += f" [{cell.ci[0]:.2f}, {cell.ci[1]:.2f}]"
    if cell.published is not None:
        text += f"; paper {cell.published.value:.2f}"
        if cell.other_method is not None:
            text += " (another method)"
        else:
            text += f", Δ {cell.mean - cell.published.value:+.2f}"
            text += {True: ", consistent", False: ", not consistent", None: ""}[cell.consistent]
    return text


_LATEX = {"\\": r"\textbackslash{}", "%": r"\%", "&": r"\&", "#": r"\#", "$": r"\$", "_": r"\_", "{": r"\{", "}": r"\}",
          "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "–": "--", "Δ": r"$\Delta$", "α": r"$\alpha$",
          "λ": r"$\lambda$", "σ": r"$\sigma$", "β": r"$\beta$", "γ": r"$\gamma$", "ε": r"$\epsilon$", "×": r"$\times$",
          "ś": r"\'s", "ń": r"\'n", "ó": r"\'o", "é": r"\'e", "ł": r"{\l}", "ø": r"{\o}", "ü": r'\"u', "≥": r"$\geq$",
          "≤": r"$\leq$", "²": r"$^2$"}


def latex_escape(text: str) -> str:
    """Text as LaTeX that pdflatex compiles: its special characters escaped, the few non-ASCII ones sweeper
    writes spelled in LaTeX, any other non-ASCII character shown as "?"."""
    return "".join(_LATEX.get(ch, ch if ch.isascii() else "?") for ch in text)


def _one_line(text) -> str:
    """A label or note as one line of a report file, its control characters shown as escapes: the rows it comes
    from may hold anything (a model's name with a newline or an escape sequence)."""
    return " ".join(redact.printable(str(text)).split())


def render(table: Table, fmt: str = "markdown") -> str:
    if fmt == "csv":
        records = [dict(row=r, column=c, mean=cell.mean, std=cell.std, n=cell.n,
                        ci_low=cell.ci[0] if cell.ci else None, ci_high=cell.ci[1] if cell.ci else None,
                        val_acc=100 * cell.val_mean, configuration="; ".join(f"{k}={v}" for k, v in cell.chosen.items()),
                        selected_by_validation=cell.best, fewer_seeds=cell.fewer,
                        published=None if cell.published is None else cell.published.value,
                        delta=None if cell.published is None else cell.mean - cell.published.value,
                        consistent=cell.consistent)
                   for r in table.row_labels for c in table.col_labels if (cell := table.cells.get((r, c))) is not None]
        frame = pd.DataFrame(records).rename(columns={"row": axis_title(table.rows), "column": table.cols})
        return frame.to_csv(index=False)
    header = [axis_title(table.rows)] + [_one_line(c) for c in table.col_labels]
    notes = ([f"selected by validation: {'; '.join(table.selected)}"] if table.selected else []) + table.footnotes
    if fmt == "markdown":  # labels and notes hold what the rows hold: one line each, and no "|" that ends a cell
        cell = lambda text: text.replace("|", "\\|")  # noqa: E731
        body = [[_one_line(r)] + [_cell_text(table.cells.get((r, c)), lambda t: f"**{t}**") for c in table.col_labels]
                for r in table.row_labels]
        lines = [table.caption, "", "| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(map(cell, line)) + " |" for line in body]
        lines += [""] + [_one_line(n) for n in notes] if notes else []
        return "\n".join(lines) + "\n"
    if fmt == "latex":
        bold = lambda t: "\x00" + t + "\x01"  # noqa: E731  (escaped first, then made \textbf)
        body = [[_one_line(r)] + [_cell_text(table.cells.get((r, c)), bold) for c in table.col_labels] for r in table.row_labels]
        tex = lambda s: latex_escape(s).replace("\x00", r"\textbf{").replace("\x01", "}")  # noqa: E731
        lines = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{l" + "r" * len(table.col_labels) + "}", r"\toprule"]
        lines.append(" & ".join(tex(h) for h in header) + r" \\")
        lines.append(r"\midrule")
        lines += [" & ".join(tex(c) for c in line) + r" \\" for line in body]
        caption = " ".join([table.caption + "."] + [_one_line(n if n.endswith(".") else n + ".") for n in notes])
        lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{tex(caption)}}}", r"\end{table}"]
        return "\n".join(lines) + "\n"
    if fmt == "html":  # a fragment: the table and its notes, for report.page
        bold = lambda t: "\x00" + t + "\x01"  # noqa: E731  (escaped first, then made <b>)
        html = lambda s: html_escape.escape(s).replace("\x00", "<b>").replace("\x01", "</b>")  # noqa: E731
        lines = [f"<table class='results'><caption>{html(table.caption)}</caption><tr>" + "".join(f"<th>{html(h)}</th>" for h in header) + "</tr>"]
        lines += [f"<tr><th>{html(_one_line(r))}</th>"
                  + "".join(f"<td>{html(_cell_text(table.cells.get((r, c)), bold))}</td>" for c in table.col_labels)
                  + "</tr>" for r in table.row_labels]
        lines += ["</table>"] + [f"<p>{html(_one_line(n))}</p>" for n in notes]
        return "\n".join(lines) + "\n"
    raise SweeperError(f"--format {fmt}: unknown format; choose one of: {', '.join(FORMATS)}, html")


def paired(trials: pd.DataFrame, table: Table, first: str, second: str) -> pd.DataFrame:
    """Per row: the two models' chosen configurations (the table's cells) over the seeds both completed,
    their mean difference (points of accuracy), and the p-values of a paired t-test and a Wilcoxon test."""
    from scipy import stats

    done = trials[results.finished(trials)]
    keys = identities(done)
    records = []
    for row in table.row_labels:
        a_cell, b_cell = table.cells.get((row, first)), table.cells.get((row, second))
        if a_cell is None or b_cell is None:
            continue
        a = done[keys == a_cell.configuration].set_index("seed")["test_acc"]
        b = done[keys == b_cell.configuration].set_index("seed")["test_acc"]
        common = a.index.intersection(b.index)
        if len(common) < 2:
            continue
        diff = 100 * (a[common] - b[common])
        t = stats.ttest_rel(a[common], b[common]).pvalue
        w = stats.wilcoxon(a[common], b[common]).pvalue if (diff != 0).any() else 1.0
        records.append({"row": row, "seeds": len(common), "difference": diff.mean(), "t_test_p": t, "wilcoxon_p": w})
    return pd.DataFrame(records, columns=["row", "seeds", "difference", "t_test_p", "wilcoxon_p"])

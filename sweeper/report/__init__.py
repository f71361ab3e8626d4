"""Reports from results directories alone (Parquet, and spec.yaml for the seeds asked for):
no torch, no Ray. Several directories (e.g. from two clusters) are reported as one."""
from __future__ import annotations

import base64
import html as html_escape
import os
import tempfile
from pathlib import Path

import yaml

from .. import results
from ..errors import SweeperError
from .. import provenance, redact
from . import figures, published
from .layouts import LAYOUTS
from .table import FORMATS, build, latex_escape, paired, render

EXTENSIONS = {"markdown": "md", "latex": "tex", "csv": "csv", "html": "html"}
EPOCH_COLUMNS = ["trial_id", "config_id", "epoch", "loss", "val_acc", "test_acc", "recon", "entropy_unlabelled", "mi_unlabelled"]


def expected_seeds(dirs: list[str | Path]) -> int | None:
    """How many seeds the sweep asked for, from the spec saved in its results location."""
    try:
        return len(yaml.safe_load(results.read_bytes(dirs[0], "spec.yaml").decode())["seeds"])
    except (OSError, ValueError, yaml.YAMLError, KeyError, TypeError):  # ValueError: not UTF-8
        return None


def table(dirs: list[str | Path], fmt: str = "markdown", rows: str | None = None, cols: str | None = None,
          layout: str = "generic", ci: bool = False, compare: bool = False, published_dir: str | None = None,
          pair: tuple[str, str] | None = None) -> str:
    """The table as text, with the provenance of every directory (nothing is written: see write())."""
    chosen = LAYOUTS[layout]
    trials = results.read(dirs, "trials")
    figures_published = published.lookup(published.load(published_dir), chosen.name) if compare else None
    built = build(trials, chosen, rows, cols, ci=ci, published=figures_published, expected_n=expected_seeds(dirs))
    where = provenance_lines(dirs) + precision_lines(trials)
    built.footnotes += where
    if fmt == "html":
        return page(dirs, [built])
    text = render(built, fmt)
    if fmt == "csv":  # comment lines, which pandas reads past with comment="#"
        text = "".join(f"# {line}\n" for line in where) + text
    if pair:
        text += _paired_text(paired(trials, built, *pair), pair, fmt)
    return text


def provenance_lines(dirs: list[str | Path]) -> list[str]:
    """Where each directory's numbers came from: one line per run or resume, or that nothing says."""
    lines = []
    for d in dirs:
        entries = provenance.read(d)
        shown = redact.url(str(d))
        lines += [f"provenance of {shown}: {provenance.describe(e)}" for e in entries] or [f"provenance of {shown}: not recorded"]
    return lines


def precision_lines(trials) -> list[str]:
    """What precision the trials' steps ran in (step: {bf16: auto} decides per machine), with counts;
    nothing for results written before rows recorded it."""
    if "precision" not in trials.columns or trials["precision"].isna().all():
        return []
    counts = trials["precision"].fillna("not recorded").value_counts()
    return ["precision of the training step: " + ", ".join(f"{name} ({n} trial{'' if n == 1 else 's'})" for name, n in counts.items())]


def write(text: str, dirs: list[str | Path], fmt: str, out: str | Path | None = None, force: bool = False) -> str:
    """Write the report to `out`, or as DIR/report.<ext> into the first directory; returns where.
    Raises OSError where it cannot write (a read-only copy of results).

    A report never costs a sweep its results: nothing is written inside a results directory's trials/,
    epochs/, models/ or tune*/, and an existing file is replaced only if it is an earlier report (it holds
    a provenance line) or `force` is given. A symlink, FIFO or device given as `out` is written into,
    never replaced by a file."""
    if out is None:
        results.write_text(dirs[0], f"report.{EXTENSIONS[fmt]}", text)
        return f"{dirs[0]}/report.{EXTENSIONS[fmt]}"
    path = Path(out)
    if path.is_dir():
        raise SweeperError(f"--out {out}: is a directory; give a file name, e.g. {Path(out) / ('report.' + EXTENSIONS[fmt])}")
    _not_results(path, dirs)
    if path.is_symlink() or (path.exists() and not path.is_file()):  # a link, a FIFO, a device: written into
        with open(path, "w") as f:
            f.write(text)
        return str(path)
    if path.exists() and not force and not _is_report(path):
        raise SweeperError(f"--out {out}: is a file that is not a report of sweeper's; give another name, or --force to replace it")
    with results.atomic(path) as temporary:
        temporary.write_text(text)
    return str(path)


SWEEP_PARTS = ("trials", "epochs", "models", "tune", "spec.yaml", "optuna.journal", "provenance.json", "study.txt", ".lock")


def _not_results(path: Path, dirs: list[str | Path]) -> None:
    """Refuse `path` (or where its link leads) among a results directory's own files and folders (tune* too)."""
    target = Path(os.path.realpath(path))
    for d in dirs:
        root = Path(os.path.realpath(d))
        if "://" in str(d) or target == root or not target.is_relative_to(root):
            continue
        first = target.relative_to(root).parts[0]
        if first in SWEEP_PARTS or first.startswith("tune"):
            raise SweeperError(f"--out {path}: would write over the results of {d} ({target.relative_to(root)}); "
                               "write the report elsewhere, e.g. --out report.md")


def _is_report(path: Path) -> bool:
    """Whether an existing file is a report sweeper wrote: each holds its provenance lines."""
    try:
        with open(path, "rb") as f:
            return b"provenance of " in f.read(4 * 2**20)
    except OSError:
        return False


def _paired_text(frame, pair, fmt) -> str:
    if fmt == "csv":
        return "\n" + frame.to_csv(index=False)
    title = f"paired over seeds, {pair[0]} minus {pair[1]} (accuracy points): t-test and Wilcoxon p-values"
    cells = [[str(v) if isinstance(v, (str, int)) else f"{v:.4g}" for v in row] for row in frame.itertuples(index=False)]
    if fmt == "latex":
        cells = [[latex_escape(c) for c in row] for row in cells]
    if fmt == "markdown":
        lines = ["", title, "", "| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
    else:
        lines = ["", f"% {title}", r"\begin{tabular}{l" + "r" * (len(frame.columns) - 1) + "}", r"\toprule",
                 " & ".join(frame.columns).replace("_", r"\_") + r" \\", r"\midrule"]
        lines += [" & ".join(row) + r" \\" for row in cells] + [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_figures(dirs: list[str | Path], out: str | Path | None = None) -> list[Path]:
    """Every figure the results support, under `out` (default: DIR/figures/ of the first directory)."""
    trials = results.read(dirs, "trials")
    epochs = results.read(dirs, "epochs", columns=EPOCH_COLUMNS)
    return figures.write_all(trials, epochs, Path(out) if out else results.folder_inside(dirs[0], "figures"))


def page(dirs: list[str | Path], tables) -> str:
    """One self-contained HTML page: the tables, what was selected, the notes and every figure, inlined."""
    parts = ["<!doctype html><meta charset='utf-8'><title>sweeper report</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style>",
             f"<h1>sweeper report: {html_escape.escape(', '.join(redact.url(str(d)) for d in dirs))}</h1>"]
    parts += [render(t, "html") for t in tables]
    for png in sorted(Path(dirs[0]).glob("inspect/*/*.png")):  # what `sweeper inspect` drew, when it has
        encoded = base64.b64encode(results.read_bytes(dirs[0], str(png.relative_to(dirs[0])))).decode()
        name = f"{png.parent.name}: {png.stem}"
        parts.append(f"<figure><img alt='{html_escape.escape(name)}' src='data:image/png;base64,{encoded}'>"
                     f"<figcaption>{html_escape.escape(name)}</figcaption></figure>")
    with tempfile.TemporaryDirectory() as drawn:  # inlined: the results directory may be read-only
        for png in write_figures(dirs, drawn):
            encoded = base64.b64encode(png.read_bytes()).decode()
            parts.append(f"<figure><img alt='{png.stem}' src='data:image/png;base64,{encoded}'><figcaption>{png.stem}</figcaption></figure>")
    return "\n".join(parts) + "\n"


__all__ = ["FORMATS", "LAYOUTS", "SweeperError", "provenance_lines", "table", "write", "write_figures"]

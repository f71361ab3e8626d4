"""Reports from results directories alone (Parquet, and spec.yaml for the seeds asked for):
no torch, no Ray. Several directories (e.g. from two clusters) are reported as one."""
from __future__ import annotations

import base64
import html as html_escape
import io
import os
from dataclasses import replace
from pathlib import Path

from .. import results
from ..errors import SpecError, SweeperError
from ..spec import read_ran
from .. import files, provenance, redact
from . import figures, published
from .layouts import LAYOUTS
from .table import FORMATS, at_final_epoch, build, latex_escape, paired, render

EXTENSIONS = {"markdown": "md", "latex": "tex", "csv": "csv", "html": "html"}
EPOCH_COLUMNS = ["trial_id", "config_id", "epoch", "loss", "val_acc", "test_acc", "recon", "entropy_unlabelled", "mi_unlabelled"]


def expected_seeds(dirs: list[str | Path]) -> int | None:
    """How many seeds the sweep asked for, from the spec saved in its results location."""
    try:
        return len(read_ran(dirs[0])["seeds"])
    except (SpecError, KeyError, TypeError):  # no spec, or one without seeds: the table does not mark cells
        return None


def built(dirs: list[str | Path], rows: str | None = None, cols: str | None = None, layout: str = "generic", ci: bool = False,
          compare: bool = False, published_dir: str | None = None, at: str = "best", trials=None):
    """The table of one or more results directories (table.Table), with its notes and the provenance of every directory;
    each seed's accuracy read `at` its best validation epoch or its final epoch. `trials`: the directories' trials
    table read `at` that epoch (trials_at), where the caller has read it already."""
    chosen = LAYOUTS[layout]
    trials = trials_at(dirs, at) if trials is None else trials
    figures_published = published.lookup(published.load(published_dir), chosen.name) if compare else None
    made = build(trials, chosen, rows, cols, ci=ci, published=figures_published, expected_n=expected_seeds(dirs), at=at)
    made.footnotes += provenance_lines(dirs) + precision_lines(trials)
    return made


def table(dirs: list[str | Path], fmt: str = "markdown", rows: str | None = None, cols: str | None = None,
          layout: str = "generic", ci: bool = False, compare: bool = False, published_dir: str | None = None,
          pair: tuple[str, str] | None = None, at: str = "best") -> str:
    """The table as text, with the provenance of every directory (nothing is written: see write())."""
    trials = trials_at(dirs, at)  # the paired tests read the seeds where the table does
    made = built(dirs, rows, cols, layout, ci, compare, published_dir, at, trials)
    if fmt == "html":
        return page(dirs, [made])
    text = render(made, fmt)
    if fmt == "csv":  # comment lines, which pandas reads past with comment="#"
        text = "".join(f"# {line}\n" for line in made.footnotes if line.startswith(("provenance of", "precision of"))) + text
    if pair:
        unknown = [name for name in pair if name not in made.col_labels]
        if unknown or pair[0] == pair[1]:
            problem = f"no column {unknown[0]!r} in this table" if unknown else "the same column twice"
            raise SweeperError(f"--paired {','.join(pair)}: {problem}; give two of its columns ({made.cols}): "
                               + ", ".join(made.col_labels))
        text += _paired_text(paired(trials, made, *pair), pair, fmt)
    return text


def trials_at(dirs: list[str | Path], at: str):
    """The trials table with each seed's accuracies at its best validation epoch (as written) or its final epoch."""
    trials = results.read(dirs, "trials")
    if at == "final":
        trials = at_final_epoch(trials, results.read(dirs, "epochs", columns=["trial_id", "epoch", "val_acc", "test_acc"]))
    return trials


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
    line = "precision of the training step: " + ", ".join(f"{name} ({n} trial{'' if n == 1 else 's'})" for name, n in counts.items())
    compiled = int(trials["compiled"].fillna(False).astype(bool).sum()) if "compiled" in trials.columns else 0
    return [line + (f"; compiled in {compiled} of {len(trials)} trials" if compiled else "")]


def write(text: str, dirs: list[str | Path], fmt: str, out: str | Path | None = None, force: bool = False) -> str:
    """Write the report to `out`, or as DIR/report.<ext> into the first directory; returns where.
    Raises OSError where it cannot write (a read-only copy of results).

    A report never costs a sweep its results: nothing is written inside a results directory's trials/,
    epochs/, models/ or tune*/, and an existing file is replaced only if it is an earlier report (it holds
    a provenance line) or `force` is given, also where `out` is a symlink to it. A symlink, FIFO or device given
    as `out` is written into, never replaced by a file."""
    if out is None:
        results.write_text(dirs[0], f"report.{EXTENSIONS[fmt]}", text)
        return f"{dirs[0]}/report.{EXTENSIONS[fmt]}"
    path = checked_out(out, dirs, fmt, force)
    if path.is_symlink() or (path.exists() and not path.is_file()):  # a link, a FIFO, a device: written into
        with files.open_for_writing(path) as f:
            f.write(text.encode())
        return str(path)
    with results.atomic(path) as temporary:
        temporary.write_text(text)
    return str(path)


def checked_out(out: str | Path, dirs: list[str | Path], fmt: str, force: bool = False) -> Path:
    """`out` as a place `write` may put the report (see there), or one SweeperError: checked before the report
    is made, so a refused --out prints nothing."""
    path = results.local_out(out, "the report")
    if path.is_dir() or str(out).endswith(("/", os.sep)):  # a trailing slash names a folder, made or not
        what = "is a directory" if path.is_dir() else "names a folder (it ends in /)"
        raise SweeperError(f"--out {out}: {what}; give a file name, e.g. {Path(out) / ('report.' + EXTENSIONS[fmt])}")
    results.not_over_results(path, dirs, "write the report elsewhere, e.g. --out report.md")
    if path.is_file() and not force and not _is_report(path):  # through a symlink too: the file it leads to
        raise SweeperError(f"--out {out}: is a file that is not a report of sweeper's{_leading_to(path)}; give another name, "
                           "or --force to replace it")
    return path


def _leading_to(path: Path) -> str:
    return f" (the symlink leads to {os.path.realpath(path)})" if path.is_symlink() else ""


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


def figures_of(dirs: list[str | Path]) -> dict:
    """Every figure the results support, as matplotlib figures by name (figures.CAPTIONS says what each shows)."""
    drawn = figures.draw_all(results.read(dirs, "trials"), results.read(dirs, "epochs", columns=EPOCH_COLUMNS))
    return figures.detached(drawn)


PROVENANCE_COLUMNS = ("command", "sweeper", "git_commit", "python", "torch", "ray", "optuna", "host", "device", "start", "end")


def page(dirs: list[str | Path], tables) -> str:
    """One self-contained HTML page: the sweep's name and description, the tables with what was selected and
    their notes, the provenance as a table, and every figure inlined with a caption that says what it shows."""
    esc = html_escape.escape
    names, descriptions = _titles(dirs)
    parts = [f"<!doctype html><html lang='en'><meta charset='utf-8'><title>{esc(names)}: sweeper report</title>",
             "<style>body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}table.provenance{font-size:80%}table.provenance td{text-align:left}"
             "figure{margin:1.5em 0}img{max-width:100%}figcaption{color:#333;max-width:50em}</style>",
             f"<h1>{esc(names)}</h1>", f"<p class='description'>{esc(descriptions)}</p>",
             f"<p class='where'>results: {esc(', '.join(redact.url(str(d)) for d in dirs))}</p>"]
    for made in tables:  # the provenance goes into its own table below
        notes = [n for n in made.footnotes if not n.startswith("provenance of")]
        parts.append(render(replace(made, footnotes=notes), "html"))
    parts.append(_provenance_table(dirs))
    for png in sorted(Path(dirs[0]).glob("inspect/*/*.png")):  # what `sweeper inspect` drew, when it has
        data = results.read_bytes(dirs[0], str(png.relative_to(dirs[0])))
        caption = f"Trial {png.parent.name}: {figures.CAPTIONS.get(png.stem, png.stem)}"
        parts.append(_figure(data, caption))
    for name, drawn in figures_of(dirs).items():  # drawn here, not written: the results directory may be read-only
        buffer = io.BytesIO()
        drawn.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        parts.append(_figure(buffer.getvalue(), figures.CAPTIONS[name]))
    return "\n".join(parts) + "\n</html>\n"


def _figure(png: bytes, caption: str) -> str:
    encoded = base64.b64encode(png).decode()
    return (f"<figure><img alt='{html_escape.escape(caption)}' src='data:image/png;base64,{encoded}'>"
            f"<figcaption>{html_escape.escape(caption)}</figcaption></figure>")


def _titles(dirs: list[str | Path]) -> tuple[str, str]:
    """The sweeps' names and descriptions, from the spec each directory ran (its path where it has none)."""
    names, descriptions = [], []
    for d in dirs:
        try:
            ran = read_ran(d)
        except SpecError:
            ran = {}
        names.append(str(ran.get("name") or redact.url(str(d))))
        descriptions.append(str(ran.get("description") or ""))
    return ", ".join(dict.fromkeys(names)), " ".join(dict.fromkeys(d for d in descriptions if d))


def _provenance_table(dirs: list[str | Path]) -> str:
    """Each run and resume of each directory as a row: code, libraries, machine and time."""
    esc = html_escape.escape
    rows = ["<tr>" + "".join(f"<th>{esc(c)}</th>" for c in ("results",) + PROVENANCE_COLUMNS) + "</tr>"]
    for d in dirs:
        for entry in provenance.read(d):
            cells = [redact.url(str(d))] + [str(entry.get(c) or "")[: 12 if c == "git_commit" else None] for c in PROVENANCE_COLUMNS]
            rows.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
    return "<table class='provenance'><caption>provenance of these results: each run and resume</caption>" + "".join(rows) + "</table>"


__all__ = ["FORMATS", "LAYOUTS", "SweeperError", "provenance_lines", "table", "write", "write_figures"]

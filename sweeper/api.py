"""sweeper from Python (a notebook, a script): the public names `sweeper` exports, each doing what its
command does, with the same checks, the same messages (as SweeperError) and the same results directory.

    sweep = sweeper.run("search_spaces/quickstart.yaml", "epochs=20", out="results/quick")
    sweep.table(layout="jurasinski")      # shows as HTML in a notebook; str() is the markdown
    sweep.trials(), sweep.epochs()        # DataFrames
    sweeper.open("results/quick")         # a results directory, later or elsewhere
"""
from __future__ import annotations

import functools
import html
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from . import redact, results
from .errors import SpecError, SweeperError
from .schema import shown


def _told(function):
    """A public function's errors with no secret of its arguments, or of any URL in the message, in them (the command
    line masks them where it prints; here the message is the caller's to print). An error with nothing to mask is
    raised as it was; one with a secret, as a copy of its type (a SpecError keeps its key and file), masked, with
    no link back to the unmasked one."""
    @functools.wraps(function)
    def checked(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except SweeperError as e:
            error = e
        sources = [s for s in (_as_text(a) for a in (*args, *kwargs.values())) if s]
        if redact.masked(str(error), *sources) == str(error):
            raise error
        raise _masked(error, sources).with_traceback(error.__traceback__)
    return checked


def _as_text(value) -> str | None:
    text = os.fspath(value) if isinstance(value, (str, os.PathLike)) else None
    return text if isinstance(text, str) else None


def _masked(error: SweeperError, sources: list[str]) -> SweeperError:
    mask = lambda part: None if part is None else redact.masked(str(part), *sources)  # noqa: E731
    if isinstance(error, SpecError):
        return SpecError(mask(error.problem), mask(error.key), mask(error.source))
    try:
        return type(error)(mask(str(error)))
    except TypeError:  # a subclass with other arguments: its message all the same
        return SweeperError(mask(str(error)))


def _location(value, what: str) -> str:
    """A path or URI given to the API, as text; one line for anything else (bytes, a number, a list, "")."""
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if isinstance(text, str) and text:
            return text
    raise SweeperError(f"{what}: expected a path or URI as text, got {shown(value)}")


def _text(value, what: str) -> str | None:
    """Text or None ("" is None, as an unset environment variable gives it)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    raise SweeperError(f"{what}: expected text or None, got {shown(value)}")


MAX_SPEC_DEPTH = 32  # nested mappings and lists in a spec: a real one has a handful


def _plain(value, depth: int = 0):
    """A spec mapping's numpy numbers as Python's (np.float64(0.1) -> 0.1), which the spec's checks and YAML take.
    A mapping that holds itself (d["fixed"] = d) is one line, not a RecursionError."""
    import numpy as np

    if depth > MAX_SPEC_DEPTH:
        raise SweeperError(f"spec: nested more than {MAX_SPEC_DEPTH} deep (a mapping or list that holds itself?); "
                           "give the spec as plain mappings, lists and values")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):  # a grid written as np.logspace(-2, 2, 5)
        return value.tolist()
    if isinstance(value, Mapping):
        return {k: _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    return value


def _flag(value, what: str) -> bool:
    """True or False (numpy's too); one line for "yes", 1.5 or None, which would read as either."""
    import numpy as np

    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise SweeperError(f"{what}: expected True or False, got {shown(value)}")


class Table:
    """A report's table: `str()` is its markdown, a notebook shows its HTML, `.text(fmt)` any format."""

    def __init__(self, built, dirs: list[str]):
        self._built, self._dirs = built, dirs

    def text(self, fmt: str = "markdown") -> str:
        """The table as `sweeper report --format fmt` prints it: markdown, latex, csv or html."""
        from . import report

        return report.page(self._dirs, [self._built]) if fmt == "html" else report.render(self._built, fmt)

    def __str__(self) -> str:
        return self.text("markdown")

    def _repr_html_(self) -> str:
        from . import report

        return report.render(self._built, "html")


class Sweep:
    """A sweep's results directory: its rows as DataFrames, its table, its figures."""

    @_told
    def __init__(self, results_dir: str | os.PathLike):
        location = _location(results_dir, "results_dir")
        self.path = location if "://" in location else Path(location)  # a URI keeps its "//"
        self.outcome = None  # what run() saw of the sweep it ran: configurations, failures, time
        from . import spec as spec_module

        self.spec = spec_module.load_ran(self.path)

    @_told
    def trials(self) -> pd.DataFrame:
        """One row per trial (a configuration's seed): its hyperparameters, status and accuracies."""
        return results.read(self.path, "trials")

    @_told
    def epochs(self) -> pd.DataFrame:
        """One row per trial and epoch: losses and accuracies."""
        return results.read(self.path, "epochs")

    @_told
    def table(self, layout: str = "generic", rows: str | None = None, cols: str | None = None, ci: bool = False,
              compare: bool = False, published: str | None = None, at: str = "best") -> Table:
        """The report's table (`sweeper report DIR --table layout`): mean ± std over seeds of the test accuracy
        at each seed's best validation epoch (`at="final"`: its final epoch), configurations chosen by validation."""
        from . import report

        if not isinstance(layout, str) or layout not in report.LAYOUTS:
            raise SweeperError(f"layout {shown(layout)}: choose one of {', '.join(report.LAYOUTS)}")
        if not isinstance(at, str) or at not in ("best", "final"):
            raise SweeperError(f"at {shown(at)}: choose best (each seed's best validation epoch) or final")
        for key, value in (("rows", rows), ("cols", cols)):
            _text(value, key)
        ci, compare = _flag(ci, "ci"), _flag(compare, "compare")
        if published is not None:
            published = _location(published, "published")
        dirs = [str(self.path)]
        return Table(report.built(dirs, rows=rows, cols=cols, layout=layout, ci=ci, compare=compare, published_dir=published, at=at),
                     dirs)

    @_told
    def figures(self) -> dict[str, Any]:
        """Every figure the results support, as matplotlib figures by name (`report --figures` writes the same)."""
        from . import report

        return report.figures_of([str(self.path)])

    @_told
    def status(self) -> str:
        """How far the sweep is, as `sweeper status DIR` says it."""
        from . import progress

        return progress.line(progress.from_results(self.path))

    def __repr__(self) -> str:
        return f"Sweep({redact.url(str(self.path))!r}: {self.spec.name})"

    def _repr_html_(self) -> str:
        def shown_or_said(part) -> str:  # a notebook shows what could not be read, in place of it
            try:
                return part()
            except SweeperError as e:  # no finished trial yet, a damaged file
                return f"<p>{html.escape(str(e))}</p>"

        table = shown_or_said(lambda: self.table()._repr_html_())
        status = shown_or_said(lambda: f"<p>{html.escape(self.status())}</p>")
        return f"<h3>{html.escape(self.spec.name)}</h3><p>{html.escape(self.spec.description or '')}</p>{status}{table}"


@_told
def run(spec: str | os.PathLike | Mapping, *overrides: str, out: str | os.PathLike | None = None, scale: str = "full",
        address: str | None = None, pack: int | None = None, study: str | None = None, driver: str | None = None,
        storage: str | None = None, data_dir: str | os.PathLike | None = None, progress: bool = True) -> Sweep:
    """Run a sweep, as `sweeper run SPEC KEY=VALUE... --out OUT` does, and return it.

    `spec`: a spec file, or its mapping (the YAML as Python). `overrides`: "epochs=20", "search.alpha=[1, 10]".
    `out`: the results directory (default results/<name>). `scale="smoke"`: the same sweep in seconds.
    `address`, `pack`, `study`, `driver`, `storage`, `data_dir`: as the command's options.
    `progress`: a progress bar (tqdm.auto: a widget in a notebook, a line on a terminal).
    Raises SweeperError with the command's message for what the command refuses; a failed configuration
    is not an error (its rows say `failed`: `Sweep.outcome.errored` counts them)."""
    if not isinstance(spec, Mapping):
        spec = _location(spec, "spec")
    out = None if out is None else _location(out, "out")
    data_dir = None if data_dir is None else _location(data_dir, "data_dir")
    study = None if study in (None, "") else _location(study, "study")  # a journal's path, or a database URL
    storage = None if storage in (None, "") else _location(storage, "storage")  # a shared path, or a URI
    address, driver = _text(address, "address"), _text(driver, "driver")
    progress = _flag(progress, "progress")
    where, _, outcome = start(spec, list(overrides), out=out, scale=scale, address=address, pack=pack, study=study, driver=driver,
                              storage=storage, data_dir=data_dir, quiet=not progress, bar=progress)
    finished = Sweep(where if outcome.location == str(outcome.out_dir) else outcome.location)  # with storage: <storage>/<name>
    finished.outcome = outcome
    return finished


def start(spec: str | os.PathLike | Mapping, overrides: list[str], *, out: str | os.PathLike | None, scale: str, address: str | None,
          pack: int | None, study: str | None, driver: str | None, storage: str | None, data_dir: str | os.PathLike | None,
          quiet: bool, bar: bool) -> tuple[str, Any, Any]:
    """What `sweeper run` and run() share: the spec read, scaled and packed, the sweep run into its directory;
    returns (the directory as given or made, the spec, sweep.Outcome)."""
    from . import spec as spec_module
    from . import study as study_module
    from . import sweep

    if scale not in ("full", "smoke"):
        raise SweeperError(f"--scale {scale}: choose full or smoke")
    loaded, note = spec_module.scaled(_spec(spec, overrides), scale, list(overrides))
    if note:  # the command line's and a notebook's alike: beside the progress, not a warning's file and line
        print(f"sweeper: note: {note}", file=sys.stderr)
    if pack is not None:
        loaded = spec_module.with_pack(loaded, _plain(pack))  # np.int64(8) as 8, as a spec mapping's numbers are
    if driver and not study:
        raise SweeperError("--driver names a driver of a shared study: give --study URL too")
    driver = (driver or sweep.default_driver()) if study else None
    if driver is not None:  # it names the results folder: checked before that is made
        study_module.checked_driver(driver)
    name = loaded.name + ("" if scale == "full" else f"-{scale}") + (f"-{driver}" if driver else "")
    where = str(out) if out is not None else os.path.join("results", name)
    outcome = sweep.run(loaded, where, address=address, quiet=quiet, data_dir=data_dir, storage=storage, study_url=study,
                        driver=driver, bar=bar)
    return where, loaded, outcome


def _spec(spec: str | os.PathLike | Mapping, overrides: list[str]) -> Any:
    from . import spec as spec_module

    if isinstance(spec, Mapping):
        raw = spec_module.override(_plain(spec), overrides)
        return spec_module.parse(raw, source="<spec mapping>" + (f" (with {', '.join(o.split('=', 1)[0] for o in overrides)} overridden)"
                                                                 if overrides else ""))
    return spec_module.load(spec, overrides)


@_told
def open(results_dir: str | os.PathLike) -> Sweep:  # noqa: A001 - sweeper.open, as the issue and the docs name it
    """A sweep's results directory, as `sweeper report` and `sweeper status` read it."""
    return Sweep(results_dir)


@_told
def load(results_dir: str | os.PathLike, trial_id: str, device: str = "cpu"):
    """The trained model of one trial (a configuration's seed) as a torch module in eval mode: `classify(x)`,
    and `.about` with its epoch, accuracies and hyperparameters."""
    import torch

    from .kept import load as load_kept

    location = _location(results_dir, "results_dir")
    if "://" not in location and not Path(location).is_dir():
        raise SweeperError(f"{location}: not a results directory (no such folder); give the --out of a 'sweeper run'")
    try:  # a name or a torch.device; a number (torch would read it as a CUDA index) is no device here
        where = torch.device(device) if isinstance(device, (str, torch.device)) else None
    except (TypeError, RuntimeError):
        where = None
    cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if where is None or where.type not in ("cpu", "cuda") or (where.type == "cuda" and (where.index or 0) >= cuda):
        usable = f"cpu, or cuda:0 to cuda:{cuda - 1}" if cuda else "cpu: this torch has no CUDA device"
        raise SweeperError(f"device {shown(device)}: give a torch device this machine has ({usable})")
    return load_kept(location, trial_id, where)

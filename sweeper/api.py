"""sweeper from Python (a notebook, a script): the public names `sweeper` exports, each doing what its
command does, with the same checks, the same messages (as SweeperError) and the same results directory.

    sweep = sweeper.run("search_spaces/quickstart.yaml", "epochs=20", out="results/quick")
    sweep.table(layout="jurasinski")      # shows as HTML in a notebook; str() is the markdown
    sweep.trials(), sweep.epochs()        # DataFrames
    sweeper.open("results/quick")         # a results directory, later or elsewhere
"""
from __future__ import annotations

import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from . import results
from .errors import SweeperError


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

    def __init__(self, results_dir: str | os.PathLike):
        self.path = Path(results_dir)
        self.outcome = None  # what run() saw of the sweep it ran: configurations, failures, time
        from . import spec as spec_module

        self.spec = spec_module.load_ran(self.path)

    def trials(self) -> pd.DataFrame:
        """One row per trial (a configuration's seed): its hyperparameters, status and accuracies."""
        return results.read(self.path, "trials")

    def epochs(self) -> pd.DataFrame:
        """One row per trial and epoch: losses and accuracies."""
        return results.read(self.path, "epochs")

    def table(self, layout: str = "generic", rows: str | None = None, cols: str | None = None, ci: bool = False,
              compare: bool = False, published: str | None = None, at: str = "best") -> Table:
        """The report's table (`sweeper report DIR --table layout`): mean ± std over seeds of the test accuracy
        at each seed's best validation epoch (`at="final"`: its final epoch), configurations chosen by validation."""
        from . import report

        dirs = [str(self.path)]
        return Table(report.built(dirs, rows=rows, cols=cols, layout=layout, ci=ci, compare=compare, published_dir=published, at=at),
                     dirs)

    def figures(self) -> dict[str, Any]:
        """Every figure the results support, as matplotlib figures by name (`report --figures` writes the same)."""
        from . import report

        return report.figures_of([str(self.path)])

    def status(self) -> str:
        """How far the sweep is, as `sweeper status DIR` says it."""
        from . import progress

        return progress.line(progress.from_results(self.path))

    def __repr__(self) -> str:
        return f"Sweep({str(self.path)!r}: {self.spec.name})"

    def _repr_html_(self) -> str:
        try:
            table = self.table()._repr_html_()
        except SweeperError as e:  # no finished trial yet
            table = f"<p>{html.escape(str(e))}</p>"
        return (f"<h3>{html.escape(self.spec.name)}</h3><p>{html.escape(self.spec.description or '')}</p>"
                f"<p>{html.escape(self.status())}</p>{table}")


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
    where, _, outcome = start(spec, list(overrides), out=out, scale=scale, address=address, pack=pack, study=study, driver=driver,
                              storage=storage, data_dir=data_dir, quiet=not progress, bar=progress)
    finished = Sweep(where)
    finished.outcome = outcome
    return finished


def start(spec: str | os.PathLike | Mapping, overrides: list[str], *, out: str | os.PathLike | None, scale: str, address: str | None,
          pack: int | None, study: str | None, driver: str | None, storage: str | None, data_dir: str | os.PathLike | None,
          quiet: bool, bar: bool) -> tuple[str, Any, Any]:
    """What `sweeper run` and run() share: the spec read, scaled and packed, the sweep run into its directory;
    returns (the directory as given or made, the spec, sweep.Outcome)."""
    from . import spec as spec_module
    from . import sweep

    if scale not in ("full", "smoke"):
        raise SweeperError(f"--scale {scale}: choose full or smoke")
    loaded = spec_module.at_scale(_spec(spec, overrides), scale)
    if pack is not None:
        loaded = spec_module.with_pack(loaded, pack)
    if driver and not study:
        raise SweeperError("--driver names a driver of a shared study: give --study URL too")
    driver = (driver or sweep.default_driver()) if study else None
    name = loaded.name + ("" if scale == "full" else f"-{scale}") + (f"-{driver}" if driver else "")
    where = str(out) if out is not None else os.path.join("results", name)
    outcome = sweep.run(loaded, where, address=address, quiet=quiet, data_dir=data_dir, storage=storage, study_url=study,
                        driver=driver, bar=bar)
    return where, loaded, outcome


def _spec(spec: str | os.PathLike | Mapping, overrides: list[str]) -> Any:
    from . import spec as spec_module

    if isinstance(spec, Mapping):
        raw = spec_module.override(dict(spec), overrides)
        return spec_module.parse(raw, source="<spec mapping>" + (f" (with {', '.join(o.split('=', 1)[0] for o in overrides)} overridden)"
                                                                 if overrides else ""))
    return spec_module.load(spec, overrides)


def open(results_dir: str | os.PathLike) -> Sweep:  # noqa: A001 - sweeper.open, as the issue and the docs name it
    """A sweep's results directory, as `sweeper report` and `sweeper status` read it."""
    return Sweep(results_dir)


def load(results_dir: str | os.PathLike, trial_id: str, device: str = "cpu"):
    """The trained model of one trial (a configuration's seed) as a torch module in eval mode: `classify(x)`,
    and `.about` with its epoch, accuracies and hyperparameters."""
    from .kept import load as load_kept

    return load_kept(results_dir, trial_id, device)

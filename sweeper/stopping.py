"""Early stopping inside a pack: the spec's scheduler (ASHA, median stopping) applied to each configuration of
a pack on its own validation curve. No torch, no Ray.

Why not Ray Tune's scheduler: it sees one Tune trial, the pack, and would stop every member of it at once on
their mean. Why not Optuna's pruners (SuccessiveHalvingPruner, MedianPruner) on each member's Optuna trial: a
grid's pack members have no Optuna trial while they train (the driver adds one as each ends, study.add), and
the study is a journal on the driver's disk that trials on other nodes do not reach (a sampled search's members
are RUNNING trials there, but only the driver writes them). What every trial reaches is
the results location, where each configuration writes its epoch rows as it trains (results.py). So the rule
is written here once, and compares a configuration with the values every configuration of the sweep has
recorded at the same epoch: its pack-mates' and other packs' alike.

A configuration's value at an epoch is the mean over its seeds of that epoch's validation accuracy (seeds with
a finite loss): what an unpacked trial reports to Tune as val_acc, and Ray's scheduler judges it on. Its curve
is its values by epoch so far. Each rule reads the curves as Ray Tune's scheduler does, so a grid point is
judged alike packed or alone: ASHA the values at the rung; median stopping a configuration's best value so far
against the median of the running means (over epochs grace_period..t) of the others that have reached epoch t.
"""
from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import results
from .errors import NoResultsYet, SweeperError, first_line
from .spec import Spec

MIN_OTHERS = 2  # median stopping: other configurations' values needed before one is stopped (sweep._scheduler's min_samples_required)


@dataclass(frozen=True)
class Rule:
    """When a configuration stops, given the values the others recorded at the same epoch. Deterministic: the
    same value and the same recorded values give the same answer, whatever their order."""

    kind: str  # asha or median
    grace_period: int
    reduction_factor: int
    max_t: int  # the spec's epochs

    @classmethod
    def of(cls, spec: Spec) -> Rule | None:
        s = spec.scheduler
        return None if s is None else cls(s.kind, s.grace_period, s.reduction_factor, spec.epochs)

    def rungs(self) -> list[int]:
        """ASHA's rungs: grace_period · η^k, as Ray Tune's ASHAScheduler (one bracket) has them, below max_t (a
        configuration at its last epoch has ended: there is nothing left to save)."""
        rungs, rung = [], self.grace_period
        while rung < self.max_t:
            rungs.append(rung)
            rung *= self.reduction_factor
        return rungs

    def judges(self, epoch: int) -> bool:
        """Whether the rule looks at a configuration after this epoch: ASHA at its rungs, median stopping at every
        epoch from grace_period on (before the last)."""
        if self.kind == "asha":
            return epoch in self.rungs()
        return self.grace_period <= epoch < self.max_t

    def stops(self, own: Curve, others: Iterable[Curve], epoch: int) -> bool:
        """ASHA: the value at the rung below the (1 - 1/η) quantile of the others' values there (linear
        interpolation, as Ray's np.nanpercentile), so about the top 1/η go on; none recorded yet: it goes on.
        Median (Ray's MedianStoppingRule): the best value so far below the median of the running means (over
        epochs grace_period..`epoch`, as Ray's) of at least MIN_OTHERS others that have reached `epoch`. A diverged value (NaN) is no value."""
        reached = [o for o in others if epoch in o]
        if self.kind == "asha":
            seen = _finite(o[epoch] for o in reached)
            return bool(seen) and own[epoch] < float(np.percentile(seen, 100 * (1 - 1 / self.reduction_factor)))
        means = _finite(statistics.fmean(_finite(o[e] for e in o if self.grace_period <= e <= epoch) or [math.nan]) for o in reached)
        best = max(_finite(own[e] for e in own if e <= epoch), default=math.nan)
        return len(means) >= MIN_OTHERS and best < statistics.median(means)


Curve = dict  # a configuration's values by epoch: {epoch: value}


def _finite(values: Iterable[float]) -> list[float]:
    return [v for v in values if v is not None and math.isfinite(v)]


def values_at(rows: Iterable[dict], epoch: int) -> dict[str, float]:
    """Each configuration's value at `epoch`, from epoch rows (config_id, epoch, loss, val_acc): the mean over its
    seeds of the validation accuracy, seeds whose loss is finite only; NaN where none is."""
    accuracies: dict[str, list[float]] = {}
    for row in rows:
        if row["epoch"] == epoch:
            live = row["loss"] is not None and math.isfinite(row["loss"])
            accuracies.setdefault(row["config_id"], []).extend([row["val_acc"]] if live else [])
    return {c: statistics.fmean(v) if v else float("nan") for c, v in accuracies.items()}


def curves(rows: Iterable[dict], upto: int) -> dict[str, Curve]:
    """Each configuration's curve through epoch `upto` from its epoch rows (values_at, epoch by epoch)."""
    by_epoch: dict[int, list[dict]] = {}
    for row in rows:
        if row["epoch"] <= upto:
            by_epoch.setdefault(int(row["epoch"]), []).append(row)
    found: dict[str, Curve] = {}
    for epoch, at in sorted(by_epoch.items()):
        for config, value in values_at(at, epoch).items():
            found.setdefault(config, {})[epoch] = value
    return found


def recorded(location: str | Path) -> Callable[[int], dict[str, Curve] | None]:
    """The curves every configuration wrote to the results location through an epoch; {} where none are written
    yet. None where the rows cannot be read now (a remote location that does not answer, files that kept
    vanishing as another pack replaced them: results.LISTINGS): then nobody is judged at that epoch, rather than
    a pack against itself alone, and a warning says so."""

    def upto(epoch: int) -> dict[str, Curve] | None:
        try:
            frame = results.read(location, "epochs", columns=["config_id", "epoch", "loss", "val_acc"])
        except NoResultsYet:  # no rows yet anywhere: nothing recorded
            return {}
        except (SweeperError, OSError) as e:
            warnings.warn(f"epoch {epoch}: the scheduler judges no configuration of this pack now: {first_line(e)}", stacklevel=2)
            return None
        return curves(frame[frame["epoch"] <= epoch].to_dict("records"), epoch)

    return upto


class PackStopping:
    """The rule, told a pack's values epoch by epoch: report(epoch, values) says which configurations stop.

    A pack's configurations reach each epoch together, so they are judged together, each against every other
    curve recorded through that epoch: its pack-mates' (as they are now) and the other configurations' (as their
    rows say). One by one, the first would be judged on fewer values than the last, and a pack-mate's value
    would count otherwise than another pack's. A pack's own curves are its rows' (a resumed pack's earlier
    epochs) with the values it reports on top."""

    def __init__(self, rule: Rule, others: Callable[[int], dict[str, Curve] | None]):
        self.rule, self.others = rule, others
        self.own: dict[str, Curve] = {}

    def report(self, epoch: int, values: dict[str, float]) -> list[str]:
        """The configurations (keys of `values`: the pack's, at `epoch`) the rule stops now."""
        for config, value in values.items():
            self.own.setdefault(config, {})[epoch] = value
        if not self.rule.judges(epoch):
            return []
        seen = self.others(epoch)
        if seen is None:
            return []
        everyone = {**seen, **{c: {**seen.get(c, {}), **self.own[c]} for c in values}}
        return [c for c in values if self.rule.stops(everyone[c], (curve for o, curve in everyone.items() if o != c), epoch)]

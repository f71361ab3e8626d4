"""The Ray Tune trainable: one configuration (all its seeds) → tune.report each epoch.

After every epoch it writes the configuration's new rows (results.py), then reports the
metrics with a checkpoint. A retried trial starts from that checkpoint and rewrites the
rows of the epochs after it under the same names, so rows are neither lost nor doubled.
"""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from collections.abc import Callable
from pathlib import Path

import torch
from ray import tune

from . import kept, models, results, space, stopping
from .data import Dataset
from .spec import Spec
from .ids import CLAIM_KEYS, config_ids
from .packing import plan_of
from .train import Member, Training

CHECKPOINT_FILE = "trial.pt"


@dataclass(frozen=True)
class Setup:
    """What every trial of a sweep shares."""

    spec: Spec
    out_dir: str


def train_configuration(config: dict, setup: Setup, data: dict[str, Dataset],
                        trained_epoch: Callable[[int], None] | None = None) -> None:
    """One configuration, or a pack of them (config["pack"]: a list of configurations that share
    packing.pack_key), trained together; each writes its own rows.

    `data` (by dataset name) arrives through Ray's object store: read by the driver, fetched once per node.
    `trained_epoch(epoch)` is called after each epoch's training, before its rows are written: the seam
    through which tests make a trial fail at a chosen epoch.
    """
    spec = setup.spec
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, math.floor(spec.resources.cpu)))  # no more threads than the trial's CPU share
    try:
        _train(config, setup, data, trained_epoch)
    finally:  # the worker process may run another trial next (Ray reuses workers)
        torch.set_num_threads(threads)


def _train(config: dict, setup: Setup, data: dict[str, Dataset], trained_epoch: Callable[[int], None] | None) -> None:
    spec = setup.spec
    ids = config_ids(config, tune.get_context().get_trial_id())
    points = [{k: v for k, v in c.items() if k not in CLAIM_KEYS} for c in config.get("pack", [config])]
    chosen = [space.configuration(spec, p) for p in points]
    device = "cuda" if spec.resources.gpu > 0 and torch.cuda.is_available() else "cpu"
    training = Training([plan_of(spec, c, device) for c in chosen], data[chosen[0].dataset])

    rule = stopping.Rule.of(spec) if "pack" in config else None  # a trial alone is Ray Tune's scheduler's (sweep._scheduler)
    early = rule and stopping.PackStopping(rule, stopping.recorded(setup.out_dir))
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            training.load_state_dict(torch.load(Path(d) / CHECKPOINT_FILE, weights_only=False))

    try:
        for epoch in training.epochs():
            if trained_epoch is not None:
                trained_epoch(epoch)
            if early:  # before the rows are written: a configuration it stops is written as stopped, with this epoch's rows
                stop_early(early, training, ids)
            _write(setup, ids, training, points, dataset=data[chosen[0].dataset])
            with tempfile.TemporaryDirectory() as d:
                torch.save(training.state_dict(), Path(d) / CHECKPOINT_FILE)
                tune.report(_metrics(training, epoch), checkpoint=tune.Checkpoint.from_directory(d))
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
        try:  # an epoch that improved before the failure: its weights kept, so the failed rows' best epoch has them
            _write(setup, ids, training, points, error=error, dataset=data[chosen[0].dataset])
        except Exception:  # noqa: BLE001 - keeping failed as well (a full disk): the rows still say what failed
            _write(setup, ids, training, points, error=error)
        raise


def stop_early(early: stopping.PackStopping, training: Training, ids: list[str]) -> None:
    """The scheduler's rule on each configuration of the pack (named by `ids`, in plan order) still running after
    the epoch just trained; the ones it stops leave the stack. Every configuration with rows at the epoch counts
    as a value, running or not."""
    rows = [{**m.history[-1], "config_id": ids[m.plan_index]} for m in training.members if _ran(m, training.epoch)]
    running = {ids[m.plan_index] for m in training.members if m.status == "running"}
    stopped = [c for c in early.report(training.epoch, stopping.values_at(rows, training.epoch)) if c in running]
    training.stop(ids.index(c) for c in stopped)


def _metrics(training: Training, epoch: int) -> dict:
    """What Tune hears each epoch: means over the members (a pack's are for progress lines only)."""
    ran = [m for m in training.members if _ran(m, epoch)]
    latest, trained = [m.history[-1] for m in ran], {m.plan_index for m in ran}
    live = [row for row in latest if math.isfinite(row["loss"])]
    mean = lambda key: sum(r[key] for r in live) / len(live) if live else float("nan")  # noqa: E731
    measured = {"val_acc": mean("val_acc"), "test_acc": mean("test_acc")} if training.evaluates(epoch) else {}
    return {
        "objective": max(training.objective(i) for i in range(len(training.plans))),
        "objectives": [training.objective(i) for i in range(len(training.plans))],  # each member's: its study trial's per epoch
        "training": [int(i in trained) for i in range(len(training.plans))],  # 0: stopped or diverged, its curve ends
        **measured,  # none at the epochs eval_every skips
        "loss": mean("loss"),
        "epoch": epoch,
        "diverged": sum(m.status == "diverged" for m in training.members),
        "stopped": sum(m.status == "stopped" for m in training.members),  # the driver records a member as it ends
        "wall_s": sum(m.wall_s for m in training.members),  # training time so far: nsga2's second objective
    }


def _write(setup: Setup, ids: list[str], training: Training, points: list[dict], error: str | None = None,
           dataset: Dataset | None = None) -> None:
    for plan, (config_id, point) in enumerate(zip(ids, points, strict=True)):
        if not _changed(training, plan, error):  # ended at an earlier epoch, its rows written then
            continue
        epochs, trials = epoch_and_trial_rows(config_id, training, setup.spec, point, error, plan)
        if dataset is not None:  # before the rows: a row never names a best epoch whose weights are not kept
            keep_improved(setup.out_dir, config_id, training, plan, dataset)
        results.write_configuration(setup.out_dir, config_id, epochs, trials, setup.spec.hyperparameter_columns(),
                                    epoch=training.epoch)  # only the rows of this epoch are new


def _changed(training: Training, plan: int, error: str | None) -> bool:
    """Whether plan `plan` has rows to write now: a seed trained this epoch (every seed that ends, by its last
    epoch, divergence or a stop, has a row at the epoch it ended), or `error` fails seeds still running."""
    members = [m for m in training.members if m.plan_index == plan]
    return any(_ran(m, training.epoch) for m in members) or bool(error and any(m.status == "running" for m in members))


def _ran(member: Member, epoch: int) -> bool:
    """Whether a member trained `epoch`: its last row is that epoch's."""
    return bool(member.history) and member.history[-1]["epoch"] == epoch


def keep_improved(location: str, config_id: str, training: Training, plan: int, dataset: Dataset) -> None:
    """Each seed of plan `plan` whose validation accuracy improved this epoch: its weights, kept (kept.py), and then
    dropped from memory, so that the checkpoints after carry no copy (a trial retried from an earlier checkpoint
    trains the epoch again, and keeps them again)."""
    for m in training.members:
        if m.plan_index == plan and m.best_weights is not None and m.best_epoch == training.epoch:
            trial_id = f"{config_id}-seed{m.seed}"
            kept.save(location, trial_id, m.best_weights,
                      kept.member_description(m, training.plans[plan], dataset.name, dataset.input_shape, dataset.n_classes, trial_id))
            m.best_weights = None


def epoch_and_trial_rows(config_id: str, training: Training, spec: Spec, point: dict, error: str | None = None,
         plan: int = 0) -> tuple[list[dict], list[dict]]:
    """One configuration's rows so far (the trial's plan `plan`, at search point `point`): (epochs, trials).
    With `error`, running seeds failed."""
    chosen = space.configuration(spec, point)
    ignored = models.MODELS[chosen.model].ignored(chosen.hyper)  # e.g. sigma2 with a Bernoulli likelihood: null, not its default
    members = [m for m in training.members if m.plan_index == plan]
    ids = {m.seed: {"trial_id": f"{config_id}-seed{m.seed}", "config_id": config_id, "model": training.plan.model} for m in members}
    epochs = [{**ids[row["seed"]], **row} for m in members for row in m.history]
    trials = [
        {
            **ids[m.seed],
            "seed": m.seed,
            "dataset": chosen.dataset,
            "label_count": chosen.label_count,
            "batch_labelled": chosen.batch_labelled,
            "batch_unlabelled": chosen.batch_unlabelled,
            "point": space.point_key(point),
            **{name: None if name in ignored else value if isinstance(value, str) else float(value)
               for name, value in chosen.hyper.items()},
            "status": "failed" if error and m.status == "running" else m.status,
            "stopped_by": m.stopped_by if m.status == "stopped" else None,
            "stopped_at_rung": len(m.history) if m.stopped_by == "scheduler" else None,  # the epoch it was judged at
            "error": error if error and m.status == "running" else None,
            "precision": training.fitter.precision,  # what ran: a plan's bfloat16 does not reach EM
            "compiled": m.compiled,  # what ran: compile: auto's choice, for any of its epochs
            "best_val_acc": m.best_val_acc if m.best_epoch else float("nan"),
            "test_acc": m.test_acc,
            "best_epoch": m.best_epoch,
            "epochs": len(m.history),
            "wall_s": m.wall_s,
            "restarts": training.restarts,
        }
        for m in members
    ]
    return epochs, trials

"""The Ray Tune trainable: one configuration (all its seeds) → tune.report each epoch.

After every epoch it writes the configuration's rows (results.py), then reports the
metrics with a checkpoint. A retried trial starts from that checkpoint and rewrites the
same file, so rows are neither lost nor doubled.
"""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from ray import tune

from . import kept, models, results, space
from .data import Dataset
from .spec import Spec
from .train import Plan, Trial, pack_key

CHECKPOINT_FILE = "trial.pt"
CLAIM_KEYS = ("study_trial", "driver")  # in a config from a shared study (study.ClaimingDefineByRun)


@dataclass(frozen=True)
class Setup:
    """What every trial of a sweep shares."""

    spec: Spec
    out_dir: str


def train_configuration(config: dict, setup: Setup, data: dict[str, Dataset]) -> None:
    """One configuration, or a pack of them (config["pack"]: a list of configurations that share
    train.pack_key), trained together; each writes its own rows.

    `data` (by dataset name) arrives through Ray's object store: read by the driver, fetched once per node.
    """
    spec = setup.spec
    torch.set_num_threads(max(1, math.floor(spec.cpu)))  # no more threads than the trial's CPU share
    ids = config_ids(config, tune.get_context().get_trial_id())
    points = [{k: v for k, v in c.items() if k not in CLAIM_KEYS} for c in config.get("pack", [config])]
    chosen = [space.configuration(spec, p) for p in points]
    device = "cuda" if spec.gpu > 0 and torch.cuda.is_available() else "cpu"
    trial = Trial([plan_of(spec, c, device) for c in chosen], data[chosen[0].dataset])

    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            trial.load_state_dict(torch.load(Path(d) / CHECKPOINT_FILE, weights_only=False))

    try:
        for epoch in trial.epochs():
            _write(setup, ids, trial, points, dataset=data[chosen[0].dataset])
            with tempfile.TemporaryDirectory() as d:
                torch.save(trial.state_dict(), Path(d) / CHECKPOINT_FILE)
                tune.report(_metrics(trial, epoch), checkpoint=tune.Checkpoint.from_directory(d))
    except Exception as e:
        _write(setup, ids, trial, points, error=f"{type(e).__name__}: {e}")
        raise


def config_ids(config: dict, tune_trial_id: str) -> list[str]:
    """What names each configuration's rows: Tune's trial id; in a pack, that and the position in the
    pack; from a shared study, the driver and the study's trial number, unique across drivers."""
    if "pack" in config:
        return [f"{tune_trial_id}-{i}" for i in range(len(config["pack"]))]
    if "study_trial" in config:
        return [f"{config['driver']}-{config['study_trial']}"]
    return [tune_trial_id]


def packs(spec: Spec, points: list[dict], size: int) -> list[list[dict]]:
    """Grid points in packs of at most `size` that can train as one model (train.pack_key), in grid order."""
    groups: dict[tuple, list[dict]] = {}
    for point in points:
        groups.setdefault(pack_key(plan_of(spec, space.configuration(spec, point))), []).append(point)
    return [group[i: i + size] for group in groups.values() for i in range(0, len(group), size)]


def plan_of(spec: Spec, chosen: space.Configuration, device: str = "cpu") -> Plan:
    return Plan(chosen.model, chosen.hyper, chosen.label_count, spec.seeds, spec.epochs, chosen.batch_labelled,
                chosen.batch_unlabelled, device, spec.data.labelled_in_unlabelled, spec.data.preprocess == "dynamic_binarize",
                spec.bf16, spec.compile)


def _metrics(trial: Trial, epoch: int) -> dict:
    """What Tune hears each epoch: means over the members (a pack's are for progress lines only)."""
    latest = [m.history[-1] for m in trial.members if m.history and m.history[-1]["epoch"] == epoch]
    live = [row for row in latest if math.isfinite(row["loss"])]
    mean = lambda key: sum(r[key] for r in live) / len(live) if live else float("nan")  # noqa: E731
    return {
        "objective": max(trial.objective(i) for i in range(len(trial.plans))),
        "val_acc": mean("val_acc"),
        "test_acc": mean("test_acc"),
        "loss": mean("loss"),
        "epoch": epoch,
        "diverged": sum(m.status == "diverged" for m in trial.members),
        "wall_s": sum(m.wall_s for m in trial.members),  # training time so far: nsga2's second objective
    }


def _write(setup: Setup, ids: list[str], trial: Trial, points: list[dict], error: str | None = None,
           dataset: Dataset | None = None) -> None:
    for plan, (config_id, point) in enumerate(zip(ids, points, strict=True)):
        epochs, trials = rows(config_id, trial, setup.spec, point, error, plan)
        if dataset is not None:  # before the rows: a row never names a best epoch whose weights are not kept
            keep_improved(setup.out_dir, config_id, trial, plan, dataset)
        results.write_configuration(setup.out_dir, config_id, epochs, trials, setup.spec.hyperparameter_columns())


def keep_improved(location: str, config_id: str, trial: Trial, plan: int, dataset: Dataset) -> None:
    """Each seed of plan `plan` whose validation accuracy improved this epoch: its weights, kept (kept.py)."""
    for m in trial.members:
        if m.plan == plan and m.best_weights is not None and m.best_epoch == trial.epoch:
            trial_id = f"{config_id}-seed{m.seed}"
            kept.save(location, trial_id, m.best_weights,
                      kept.about(m, trial.plans[plan], dataset.name, dataset.input_shape, dataset.n_classes, trial_id))


def rows(config_id: str, trial: Trial, spec: Spec, point: dict, error: str | None = None,
         plan: int = 0) -> tuple[list[dict], list[dict]]:
    """One configuration's rows so far (the trial's plan `plan`, at search point `point`): (epochs, trials).
    With `error`, running seeds failed."""
    chosen = space.configuration(spec, point)
    ignored = models.MODELS[chosen.model].ignored(chosen.hyper)  # e.g. sigma2 with a Bernoulli likelihood: null, not its default
    members = [m for m in trial.members if m.plan == plan]
    ids = {m.seed: {"trial_id": f"{config_id}-seed{m.seed}", "config_id": config_id, "model": trial.plan.model} for m in members}
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
            "error": error if error and m.status == "running" else None,
            "best_val_acc": m.best_val_acc if m.best_epoch else float("nan"),
            "test_acc": m.test_acc,
            "best_epoch": m.best_epoch,
            "epochs": len(m.history),
            "wall_s": m.wall_s,
            "restarts": trial.restarts,
        }
        for m in members
    ]
    return epochs, trials

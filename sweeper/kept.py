"""Trained models kept: each seed's weights at its epoch of best validation accuracy, and loading them.

    DIR/models/<trial_id>.pt    {"weights": {name: tensor}, "about": JSON text}, read with
                                torch.load(weights_only=True): no unpickling of code
    DIR/models/<trial_id>.json  the same "about", for people: model, shapes, hyperparameters, epoch,
                                validation and test accuracy

Each is written whole under a hidden name and renamed into place, after the epoch that improved the
seed's validation accuracy; a retried or resumed trial rewrites its own file, so one file per trial.
"""
from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import torch

from . import models, results
from .errors import SweeperError

FOLDER = "models"


def about(member, plan, dataset_name: str, input_shape, n_classes: int, trial_id: str) -> dict:
    """What rebuilding a member's module needs, and what its kept weights scored."""
    return {"trial_id": trial_id, "model": plan.model, "input_shape": list(input_shape), "n_classes": n_classes,
            "hyper": {k: v if isinstance(v, str) else float(v) for k, v in plan.hyper.items()},
            "seed": member.seed, "dataset": dataset_name, "label_count": plan.label_count, "epoch": member.best_epoch,
            "val_acc": member.best_val_acc, "test_acc": member.test_acc}


def save(location: str | Path, trial_id: str, weights: dict[str, torch.Tensor], description: dict) -> None:
    """One trial's kept weights and their description, each file whole or not at all."""
    text = json.dumps(description, indent=1)
    buffer = io.BytesIO()
    torch.save({"weights": {k: v.detach().cpu().contiguous() for k, v in weights.items()}, "about": text}, buffer)
    fs, root = results.filesystem(location)
    fs.create_dir(f"{root}/{FOLDER}", recursive=True)
    for name, data in ((f"{trial_id}.pt", buffer.getvalue()), (f"{trial_id}.json", (text + "\n").encode())):
        temporary = f"{root}/{FOLDER}/.{name}.{uuid.uuid4().hex}.tmp"
        with fs.open_output_stream(temporary) as f:
            f.write(data)
        fs.move(temporary, f"{root}/{FOLDER}/{name}")


def load(location: str | Path, trial_id: str, device: str | torch.device = "cpu") -> models.Model:
    """The trained model of one trial (a configuration's seed) as a torch module on `device`, in eval
    mode, with no Ray: `classify(x)` gives the test accuracy its row records, for x preprocessed as the
    sweep's spec says (sweeper.data.load). `.about` holds what was kept (epoch, accuracies, hyperparameters)."""
    fs, root = results.filesystem(location)
    path = f"{root}/{FOLDER}/{trial_id}.pt"
    try:
        with fs.open_input_stream(path) as f:
            kept = torch.load(io.BytesIO(f.read()), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SweeperError(f"{location}: no kept model for trial {trial_id} (no {FOLDER}/{trial_id}.pt); "
                                   "give a trial_id from the trials table of a sweep that finished an epoch") from None
    description = json.loads(kept["about"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the initial weights are all replaced; a fixed seed keeps building quiet and cheap
        module = models.build(description["model"], tuple(description["input_shape"]), description["n_classes"], description["hyper"])
    assign(module, kept["weights"])
    module.about = description
    return module.to(device).eval()


def assign(module: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Set a module's parameters and buffers from `weights` (named as named_parameters names them: a
    tensor tied to two names, such as the CNN's shared trunk, once). Every one must be given."""
    own = dict(module.named_parameters()) | dict(module.named_buffers())
    if set(own) != set(weights):
        raise ValueError(f"kept weights do not fit the model: missing {sorted(set(own) - set(weights))[:3]}, "
                         f"unexpected {sorted(set(weights) - set(own))[:3]}")
    with torch.no_grad():
        for name, tensor in weights.items():
            own[name].copy_(tensor)


def files(location: str | Path) -> list[str]:
    """The trial ids that have a kept model."""
    fs, root = results.filesystem(location)
    import pyarrow.fs as pafs

    listed = fs.get_file_info(pafs.FileSelector(f"{root}/{FOLDER}", allow_not_found=True))
    return sorted(f.base_name.removesuffix(".pt") for f in listed if f.base_name.endswith(".pt") and not f.base_name.startswith("."))

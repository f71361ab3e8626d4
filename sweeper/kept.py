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
import math
import uuid
from pathlib import Path

import torch

from . import models, results
from .errors import SweeperError, first_line

FOLDER = "models"


def member_description(member, plan, dataset_name: str, input_shape, n_classes: int, trial_id: str) -> dict:
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
    trial_id = results.checked_id(trial_id, "trial", str(location))
    where = f"{location}/{FOLDER}/{trial_id}.pt"
    try:
        data = results.read_bytes(location, f"{FOLDER}/{trial_id}.pt", limit=MAX_KEPT_BYTES)
    except FileNotFoundError:
        raise SweeperError(f"{location}: no kept model for trial {trial_id} (no {FOLDER}/{trial_id}.pt); "
                           "give a trial_id from the trials table of a sweep that finished an epoch") from None
    try:  # weights_only: tensors and plain containers, never code
        kept = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated, not torch's format, or objects weights_only refuses
        raise SweeperError(f"{where}: not a kept model sweeper wrote ({type(e).__name__}); remove it, or run the "
                           "configuration again") from None
    description = _description(kept, where)
    if description["trial_id"] != trial_id:  # a file copied over another trial's: its model is not this trial's
        raise SweeperError(f"{where}: holds the model of trial {description['trial_id'][:80]}, not of {trial_id}; remove it, "
                           "or run the configuration again")
    _fits(description, kept["weights"], where)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the initial weights are all replaced; a fixed seed keeps building quiet and cheap
        module = _built(description)
    try:
        assign(module, kept["weights"])
    except (ValueError, RuntimeError, TypeError, AttributeError) as e:
        raise SweeperError(f"{where}: its weights do not fit its model as this sweeper builds it ({first_line(e)}); a model "
                           "whose networks changed since it was kept (the ADGM's q(y|a,x) and p(a|.) took `depth` later) "
                           "loads with the sweeper that wrote it") from None
    module.about = description
    return module.to(device).eval()


MAX_KEPT_BYTES = 8 * 2**30
MAX_INPUT_VALUES = 2**24  # values of one input (a 4096 x 4096 image): more than any dataset sweeper reads


def _description(kept, where: str) -> dict:
    """A kept file's description, checked before anything is built from it: a model sweeper has, sizes a
    spec could ask for, an input of bounded size; else one line."""
    def wrong(what: str) -> SweeperError:
        return SweeperError(f"{where}: {what}; was it written by sweeper?")

    if not isinstance(kept, dict) or not isinstance(kept.get("weights"), dict) or not isinstance(kept.get("about"), str):
        raise wrong("not the {weights, about} sweeper keeps")
    try:
        about = json.loads(kept["about"])
    except ValueError:
        raise wrong("its description is not JSON") from None
    if not isinstance(about, dict) or about.get("model") not in models.MODELS:
        raise wrong(f"its description names no model sweeper has (one of {', '.join(sorted(models.MODELS))})")
    shape, classes, hyper = about.get("input_shape"), about.get("n_classes"), about.get("hyper")
    if not (isinstance(shape, list) and 1 <= len(shape) <= 3 and all(type(n) is int and n > 0 for n in shape)
            and math.prod(shape) <= MAX_INPUT_VALUES):
        raise wrong(f"its input_shape {str(shape)[:40]} is not an input sweeper trains on")
    if type(classes) is not int or not 2 <= classes <= 1000 or not isinstance(hyper, dict):
        raise wrong("its n_classes or hyper is not what sweeper writes")
    for name, h in models.hyperparameters(about["model"]).items():
        problem = h.check(hyper.get(name, h.default))
        if problem:
            raise wrong(f"hyper.{name}: {problem}")
    for key in ("trial_id", "dataset"):
        if not isinstance(about.get(key), str):
            raise wrong(f"its {key} is not text")
    return about


def _fits(description: dict, weights: dict, where: str) -> None:
    """The kept tensors against the shapes of the model the description builds, compared on the meta device
    (no memory): a description whose sizes differ from its weights (hidden: 65536 beside a 500-unit file)
    is refused before anything is allocated for it."""
    try:
        with torch.device("meta"):
            module = _built(description)
    except (ValueError, RuntimeError, TypeError) as e:  # a network its input cannot take (a CNN of a flat input)
        raise SweeperError(f"{where}: its description builds no model ({first_line(e)}); remove it, or run the "
                           "configuration again") from None
    shapes = {name: tuple(t.shape) for name, t in (dict(module.named_parameters()) | dict(module.named_buffers())).items()}
    kept = {name: tuple(t.shape) for name, t in weights.items() if isinstance(t, torch.Tensor)}
    differing = sorted(name for name in shapes if kept.get(name) != shapes[name])
    if differing or set(kept) != set(shapes) or len(kept) != len(weights):
        shown = differing[0] if differing else "their names"
        raise SweeperError(f"{where}: its weights do not fit its model as its description builds it ({shown[:80]} differs); remove it, "
                           "or run the configuration again; a model whose networks changed since it was kept loads with the "
                           "sweeper that wrote it")


def _built(description: dict) -> models.Model:
    return models.build(description["model"], tuple(description["input_shape"]), description["n_classes"], description["hyper"])


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

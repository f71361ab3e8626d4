"""Which configurations train together, and what each trial trains: no Ray, no torch.

A pack is several configurations trained as one vectorised model (train.Stack): they must agree on
everything that shapes the networks and the data (pack_key), and may differ in loss weights,
learning rate and seeds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from . import hyperparameters, space
from .spec import Spec


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What one configuration trains: a model with its hyperparameters, over every seed."""

    model: str
    hyper: dict[str, float | str]
    label_count: int
    seeds: tuple[int, ...]
    epochs: int
    batch_labelled: int
    batch_unlabelled: int
    device: str = "cpu"
    labelled_in_unlabelled: bool = False  # the unlabelled set is the whole training set
    dynamic_binarize: bool = False  # x ~ Bernoulli(grey level) afresh for every batch (Kingma)
    bf16: bool | str = False  # step options: matmuls under bfloat16 autocast (auto: decided beside the step, train.bfloat16), the loss compiled
    compile: bool | str = False  # true, false, or auto: decided on the trial's work (train.compile_pays)
    patience: int = 0  # stop a seed whose validation accuracy has not improved for this many epochs (0: never)
    eval_every: int = 1  # evaluate every this many epochs, and at the last


def pack_key(plan: Plan) -> tuple:
    """Plans with the same key train as one vectorised model: they may differ in their loss weights
    (alpha, lambda, beta, ...), learning rate and seeds, not in what builds the networks or the data."""
    options = hyperparameters.MODELS[plan.model].build_options
    return (plan.model, tuple(sorted((k, v) for k, v in plan.hyper.items() if k in options)), plan.label_count, plan.epochs,
            plan.batch_labelled, plan.batch_unlabelled, plan.device, plan.labelled_in_unlabelled, plan.dynamic_binarize,
            plan.bf16, plan.compile, plan.patience, plan.eval_every)


def plan_of(spec: Spec, chosen: space.Configuration, device: str = "cpu") -> Plan:
    """The plan of one configuration of `spec`, on `device` (where `step: {bf16: auto}` is decided)."""
    return Plan(model=chosen.model, hyper=chosen.hyper, label_count=chosen.label_count, seeds=spec.seeds,
                epochs=trial_epochs(spec, chosen), batch_labelled=chosen.batch_labelled, batch_unlabelled=chosen.batch_unlabelled,
                device=device, labelled_in_unlabelled=spec.data.labelled_in_unlabelled,
                dynamic_binarize=spec.data.preprocess == "dynamic_binarize", bf16=spec.step.bf16,
                compile=spec.step.compile, patience=spec.patience, eval_every=spec.eval_every)


def trial_epochs(spec: Spec, chosen: space.Configuration) -> int:
    """The epochs a configuration's trial trains: the spec's, and a stage before them where its model has one
    (M1's m1_epochs)."""
    return hyperparameters.MODELS[chosen.model].trial_epochs(chosen.hyper, spec.epochs)


def pack_limit(spec: Spec) -> int | None:
    """The most configurations a pack may hold: the spec's pack: K; None (auto) to pack as the machine allows.
    A scheduler judges each member of a pack on its own curve (stopping.py), grid point or sampled alike."""
    return None if spec.pack == "auto" else spec.pack


def sampled_pack_size(spec: Spec, slots: int) -> int:
    """How many configurations a sampled search asks for at once: pack: K, or (auto) its trials spread
    over `slots` as a grid's would be (pack_count), so that every slot trains a pack."""
    limit = pack_limit(spec)
    return limit if limit is not None else math.ceil(spec.trials / pack_count(spec.trials, slots))


def packs(spec: Spec, points: list[dict], size: int) -> list[list[dict]]:
    """Grid points in packs of at most `size` that can train as one model (pack_key), in grid order."""
    groups: dict[tuple, list[dict]] = {}
    for point in points:
        groups.setdefault(pack_key(plan_of(spec, space.configuration(spec, point))), []).append(point)
    return [group[i: i + size] for group in groups.values() for i in range(0, len(group), size)]


def pack_count(configurations: int, slots: int, at_most: int | None = None) -> int:
    """How many packs `configurations` (that can train as one) go into, with `slots` trials at a time:
    at least one pack per slot while there are configurations enough, whole waves of `slots` packs when
    there are more (so no slot idles while one runs a last pack), and no pack above `at_most`."""
    packs = max(math.ceil(configurations / at_most) if at_most else 1, min(configurations, slots))
    if packs > slots:
        packs = math.ceil(packs / slots) * slots
    return min(packs, configurations)


def equal_packs(points: list, count: int) -> list[list]:
    """`points` in `count` packs whose sizes differ by at most one, in order."""
    size, extra = divmod(len(points), count)
    bounds = [i * size + min(i, extra) for i in range(count + 1)]
    return [points[bounds[i]: bounds[i + 1]] for i in range(count)]


def auto_packs(spec: Spec, points: list[dict], slots: int, at_most: int | None = None) -> tuple[list[list[dict]], int]:
    """Grid points in packs sized to `slots` (the CPUs, or GPUs, Ray reports for this sweep), and the
    threads each trial gets: with fewer packs than slots, each pack gets the slots between them."""
    groups: dict[tuple, list[dict]] = {}
    for point in points:
        groups.setdefault(pack_key(plan_of(spec, space.configuration(spec, point))), []).append(point)
    share = max(1, slots // len(groups))  # groups train side by side: each its share of the slots
    chosen = [pack for group in groups.values() for pack in equal_packs(group, pack_count(len(group), share, at_most))]
    return chosen, max(1, slots // len(chosen))

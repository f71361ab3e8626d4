"""How much compute a spec asks for, measured here: each configuration's real training step
is timed at the spec's shapes on random data, then multiplied by steps, epochs and seeds.

Evaluation (once per epoch) and Ray's per-trial overhead are left out, so the figures are a
floor for the training alone, on this machine's CPU with one thread per trial.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from . import models, space
from .bench import costlier_stage, time_stack
from .data import DATASETS
from .errors import SweeperError
from .packing import bf16_on
from .spec import Spec
from .train import steps_per_epoch, unlabelled_count


@dataclass(frozen=True)
class Estimate:
    configuration: space.Configuration
    step_s: float  # one training step, measured
    train_s: float  # every epoch of every seed


def estimate(spec: Spec, steps: int = 3) -> list[Estimate]:
    check_memory(spec)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a trial of one CPU runs
    try:
        return _estimate(spec, steps)
    finally:
        torch.set_num_threads(threads)


def _estimate(spec: Spec, steps: int) -> list[Estimate]:
    if spec.sampler == "grid":
        points = space.grid_points(spec)
    else:  # a sampled sweep: time a few draws, count them `trials` times between them
        import optuna

        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=spec.sampler_seed))
        points = []
        for _ in range(min(3, spec.trials)):
            trial = study.ask()
            space.DefineByRun(spec)(trial)
            points.append(trial.params)
            study.tell(trial, 0.0)
    estimates = []
    for point in points:
        chosen = space.configuration(spec, point)
        step_s = _time_step(spec, chosen, steps)
        per_epoch = 1 if models.MODELS[chosen.model].fitted_by == "em" else steps_in_an_epoch(spec, chosen)
        estimates.append(Estimate(chosen, step_s, step_s * per_epoch * spec.epochs * len(spec.seeds)))
    if spec.sampler != "grid":  # scale the draws up to the sampled trial count
        estimates = [Estimate(e.configuration, e.step_s, e.train_s * spec.trials / len(estimates)) for e in estimates]
    return estimates


BYTES_PER_PARAMETER = 16  # float32 weights, their gradient and Adam's two moments
BYTES_PER_ACTIVATION = 12  # float32 values kept for the backward pass, with their gradients and a temporary


def memory_needed(chosen: space.Configuration, members: int = 1) -> int:
    """Bytes one configuration's training step needs at least: its parameters (built on PyTorch's meta
    device, so nothing is allocated) with their gradients and Adam's state, and each layer's activations
    for a batch whose unlabelled rows are enumerated over the classes."""
    info = DATASETS[chosen.dataset]
    with torch.device("meta"):
        module = models.build(chosen.model, info.input_shape, info.n_classes, chosen.hyper)
    parameters = sum(p.numel() for p in module.parameters())
    widths = sum(m.out_features for m in module.modules() if isinstance(m, torch.nn.Linear))
    rows = chosen.batch_labelled + chosen.batch_unlabelled * info.n_classes
    mc = int(chosen.hyper.get("mc_samples", 1))
    return members * (BYTES_PER_PARAMETER * parameters + BYTES_PER_ACTIVATION * rows * mc * max(widths, math.prod(info.input_shape)))


def check_memory(spec: Spec, available: int | None = None) -> None:
    """Refuse a configuration whose step cannot fit in this machine's memory (else torch fails to allocate
    mid-sweep, or the machine swaps): one line naming the sizes to lower. A sampled search is checked at
    its draws' bounds by the sizes it may draw, as a grid at each point."""
    import os

    available = available or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for point in _largest_points(spec):
        chosen = space.configuration(spec, point)
        if models.MODELS[chosen.model].fitted_by == "em":
            continue
        needed = memory_needed(chosen)
        if needed > available:
            sizes = ", ".join(f"{k}={v:g}" for k, v in chosen.hyper.items() if k in SIZES)
            raise SweeperError(f"{spec.source}: {chosen.model} on {chosen.dataset} with {sizes or 'its default sizes'}, batch "
                               f"{chosen.batch_labelled}:{chosen.batch_unlabelled} needs about {needed / 2**30:,.1f} GiB for one "
                               f"step, more than this machine's {available / 2**30:,.1f} GiB; lower the network's sizes or the batch")


SIZES = ("hidden", "latent", "depth", "auxiliary", "features", "mc_samples")


def _largest_points(spec: Spec) -> list[dict]:
    """The points whose memory decides: a grid's every point; a sampled search's bounds (each range at its high end)."""
    return space.grid_points(spec) if spec.sampler == "grid" else space.largest_points(spec)


def steps_in_an_epoch(spec: Spec, chosen: space.Configuration) -> int:
    """Training steps in one epoch of this configuration on its dataset's full training split."""
    info = DATASETS[chosen.dataset]
    return steps_per_epoch(unlabelled_count(info.n_train, chosen.label_count, spec.data.labelled_in_unlabelled),
                           chosen.batch_unlabelled)


def _time_step(spec: Spec, chosen: space.Configuration, steps: int) -> float:
    """Seconds of one training step of this configuration, one member, as a sweep steps it; for a model
    fitted by EM, one EM iteration over the whole training set."""
    info = DATASETS[chosen.dataset]
    if models.MODELS[chosen.model].fitted_by == "em":
        model = models.build(chosen.model, info.input_shape, info.n_classes, chosen.hyper)
        x = torch.rand(info.n_train, model.n_features)
        start = time.perf_counter()
        model.em_step(x[: chosen.label_count], torch.arange(chosen.label_count) % info.n_classes, x[chosen.label_count:])
        return time.perf_counter() - start
    hyper = {name: h.default for name, h in models.hyperparameters(chosen.model).items()} | chosen.hyper
    seconds, _ = time_stack(chosen.model, info.input_shape, info.n_classes, [hyper],
                            (chosen.batch_labelled, chosen.batch_unlabelled), torch.device("cpu"), steps, bf16_on(spec, "cpu"),
                            spec.step.compile, costlier_stage(info.n_train, chosen.label_count, spec.data.labelled_in_unlabelled),
                            count_flops=False)
    return seconds

"""What a configuration's training step needs of memory, known before anything is allocated, and the check
that validate, estimate and run make with it alike: what validates, runs or is refused with the same line.

Two measures: memory_bound, from the sizes alone (no torch, so `sweeper validate` imports none), and
memory_needed, exact, the model built on torch's meta device. The bound decides wherever it fits the machine
(every spec in search_spaces/ by far); only a configuration whose bound does not fit is measured exactly."""
from __future__ import annotations

import math
import os

from . import hyperparameters, space
from .data import DATASETS
from .errors import SweeperError
from .spec import Spec


BYTES_PER_PARAMETER = 16  # float32 weights, their gradient and Adam's two moments
BYTES_PER_ACTIVATION = 12  # float32 values kept for the backward pass, with their gradients and a temporary


def memory_needed(chosen: space.Configuration, members: int = 1) -> int:
    """Bytes one configuration's training step needs at least: its parameters (built on PyTorch's meta
    device, so nothing is allocated) with their gradients and Adam's state, and each layer's activations
    for a batch whose unlabelled rows are enumerated over the classes."""
    import torch

    from . import models

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
    available = available or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for point in _largest_points(spec):
        chosen = space.configuration(spec, point)
        if hyperparameters.MODELS[chosen.model].fitted_by == "em":  # no gradient step: its memory is its data's
            continue
        needed = memory_bound(chosen)
        if needed > available:
            needed = memory_needed(chosen)
        if needed > available:
            sizes = ", ".join(f"{k}={v:g}" for k, v in chosen.hyper.items() if k in SIZES)
            raise SweeperError(f"{spec.source}: {chosen.model} on {chosen.dataset} with {sizes or 'its default sizes'}, batch "
                               f"{chosen.batch_labelled}:{chosen.batch_unlabelled} needs about {needed / 2**30:,.1f} GiB for one "
                               f"step, more than this machine's {available / 2**30:,.1f} GiB; lower the network's sizes or the batch")


def configurations_that_fit(spec: Spec, budget: float) -> int | None:
    """How many configurations (each with all its seeds) one pack may hold in `budget` bytes, at the largest
    configuration's step; None where any number would (a model with no gradient step)."""
    per_configuration = 0
    for point in _largest_points(spec):
        chosen = space.configuration(spec, point)
        if hyperparameters.MODELS[chosen.model].fitted_by != "em":
            per_configuration = max(per_configuration, memory_needed(chosen, members=len(spec.seeds)))
    return max(1, int(budget // per_configuration)) if per_configuration else None


SIZES = ("hidden", "latent", "depth", "auxiliary", "features", "mc_samples")
NETWORKS_AT_MOST = 12  # networks in a model (M1+M2 and ADGM have the most: 7); tests/test_footprint.py checks every model
CONVOLUTIONS = 100_000  # parameters of Raj's convolutions, at most (3 x 32 x 9 + 32 x 64 x 9 and back: about 40,000)


def memory_bound(chosen: space.Configuration, members: int = 1) -> int:
    """An upper bound of memory_needed from the sizes alone. A network is at most `depth` + 3 linear layers: two
    may be wide (reading x, or writing it), at most (X + E + 1) x 2S one way or (S + E + 1) x 2X the other, the
    rest narrow, at most (S + E + 1) x 2(S + E). X: the input's size, or a CNN's flattened convolutions (4 x the
    pixels of one channel); S: the widest of the other sizes; E: what a layer may read beside (labels, latents)."""
    info = DATASETS[chosen.dataset]
    sizes = {k: int(chosen.hyper.get(k, 0)) for k in ("hidden", "latent", "auxiliary", "features")}
    wide = max(math.prod(info.input_shape), 4 * math.prod(info.input_shape[1:]) if chosen.hyper.get("network") == "cnn" else 0)
    narrow, extra = max(sizes.values()), info.n_classes + sizes["latent"] + sizes["auxiliary"] + sizes["features"]
    depth = int(chosen.hyper.get("depth", 1))
    per_network = 2 * (wide + extra + 1) * 2 * (narrow + extra) + 2 * (narrow + extra + 1) * 2 * wide \
        + (depth + 1) * (narrow + extra + 1) * 2 * (narrow + extra) + CONVOLUTIONS
    outputs = (depth + 1) * 2 * (narrow + extra) + 4 * wide  # a network's outputs of one row, convolutions' included
    rows = chosen.batch_labelled + chosen.batch_unlabelled * info.n_classes
    mc = int(chosen.hyper.get("mc_samples", 1))
    return members * NETWORKS_AT_MOST * (BYTES_PER_PARAMETER * per_network + BYTES_PER_ACTIVATION * rows * mc * outputs)


def _largest_points(spec: Spec) -> list[dict]:
    """The points whose memory decides: a grid's every point; a sampled search's bounds (each range at its high end)."""
    return space.grid_points(spec) if spec.sampler == "grid" else space.largest_points(spec)

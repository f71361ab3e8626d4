"""Benchmarks that print figures (one JSON line per case); no timing lives in the tests.

training: one model's training step at a data shape, K configurations packed, on a device:
samples/s, the step's FLOP/s (torch's FlopCounterMode, which counts every matmul and convolution
from its shapes, forward and backward, label enumeration included), the dense matmul FLOP/s of this
device measured in the same process (float32 1024³ on CPU; bf16 and tf32 4096³ on a GPU), their ratio,
and peak memory.

--spec: a grid spec's training time on this device, projected: the grid packed as a sweep packs it,
one Ray trial of each kind timed at the spec's shapes, its epochs/s extrapolated to every trial of
that kind, the trials one after another.

--report: a synthetic sweep of 400 configurations × 5 seeds × 500 epochs (one million
per-epoch rows, written as sweeper writes them), then the time to build the table and to
read the epochs table's needed columns and aggregate learning curves from it.
"""
from __future__ import annotations

import io
import json
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import allocator, report, results
from .errors import SweeperError

if TYPE_CHECKING:  # annotations only: bench imports the training side where a case needs it
    from .space import Configuration
    from .spec import Spec

HYPER = {"alpha": "number"}


def report_case(configurations: int = 400, seeds: int = 5, epochs: int = 500) -> dict:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        out = Path(d)
        start = time.perf_counter()
        for c in range(configurations):
            config_id = f"c{c:05d}"
            alpha = float(10.0 ** (-3 + 7 * c / configurations))  # a distinct configuration each (a repeat is refused)
            epoch_rows, trial_rows = [], []
            for seed in range(seeds):
                trial_id = f"{config_id}-seed{seed}"
                acc = rng.random(epochs)
                epoch_rows += [{"trial_id": trial_id, "config_id": config_id, "model": "m2", "seed": seed, "epoch": e + 1,
                                "loss": 1.0, "val_acc": float(acc[e]), "test_acc": float(acc[e]), "wall_s": 0.1,
                                "entropy_unlabelled": 0.5, "mi_unlabelled": 0.5} for e in range(epochs)]
                trial_rows.append({"trial_id": trial_id, "config_id": config_id, "model": "m2", "seed": seed, "dataset": "mnist",
                                   "label_count": 100, "batch_labelled": 100, "batch_unlabelled": 100, "alpha": alpha,
                                   "status": "completed", "best_val_acc": float(acc.max()), "test_acc": float(acc.max()),
                                   "best_epoch": int(acc.argmax()) + 1, "epochs": epochs, "wall_s": 50.0})
            results.write_configuration(out, config_id, epoch_rows, trial_rows, HYPER)
        written_s = time.perf_counter() - start

        start = time.perf_counter()
        report.table([out])
        table_s = time.perf_counter() - start
        rows = len(pd.read_csv(io.StringIO(report.table([out], fmt="csv")), comment="#"))  # counted apart from the timing

        start = time.perf_counter()
        curves = results.read([out], "epochs", columns=["config_id", "epoch", "val_acc"])
        curves.groupby(["config_id", "epoch"])["val_acc"].agg(["mean", "std"])
        curves_s = time.perf_counter() - start
    return {"case": "report", "epoch_rows": configurations * seeds * epochs, "trial_rows": configurations * seeds,
            "files": configurations, "table_rows": rows, "table_s": round(table_s, 3), "learning_curves_s": round(curves_s, 3),
            "write_s": round(written_s, 1)}


def overhead_case(configurations: int = 20) -> dict:
    """A grid of tiny configurations through a real local Ray with one CPU, so trials run one after
    another: (sweep wall time - the trials' own training time) / configurations."""
    from .spec import parse
    from .sweep import run

    spec = parse({"name": "overhead", "dataset": "digits", "label_count": 50, "models": ["baseline"], "seeds": [0],
                  "epochs": 2, "fixed": {"hidden": 16}, "search": {"lr": [round(1e-3 * (1 + i), 6) for i in range(configurations)]}})
    with tempfile.TemporaryDirectory() as d:
        outcome = run(spec, Path(d) / "out", quiet=True, num_cpus=1)
        training_s = float(results.read(Path(d) / "out", "trials")["wall_s"].sum())
    return {"case": "overhead", "configurations": configurations, "sweep_s": round(outcome.wall_s, 2),
            "training_s": round(training_s, 2), "overhead_per_trial_s": round((outcome.wall_s - training_s) / configurations, 3)}


SHAPES = {  # (input features, hidden, latent): MNIST as in Jurasiński's and Kingma's papers; digits as in quickstart
    "mnist": (784, 500, 50),
    "digits": (64, 128, 16),
}


def training_case(model: str = "m2", shape: str = "mnist", pack: int = 1, device: str = "cpu", steps: int = 20,
                  bf16: bool = False, compile: bool = False, batch: tuple[int, int] = (100, 100)) -> dict:
    """Steps of `pack` configurations of `model` stacked, on random binary data of the shape's size."""
    import torch

    from . import models
    from .train import schedule

    features, hidden, latent = SHAPES[shape]
    dev = _device(device)
    hyper = {k: h.default for k, h in models.hyperparameters(model).items()} | {"hidden": hidden, "latent": latent}
    seconds, flop_per_step = time_stack(model, (features,), 10, [hyper] * pack, batch, dev, steps, bf16, compile,
                                        schedule(0, 1, 50_000, 100, 49_900))
    peak = _peak_memory(dev)  # the step's, before the reference matmul allocates its own
    reference = _matmul_flops(dev)
    model_flops = flop_per_step / seconds
    return {
        "case": "training", "model": model, "shape": shape, "pack": pack, "device": device,
        "threads": torch.get_num_threads() if dev.type == "cpu" else None, "bf16": bf16, "compile": compile,
        "step_ms": round(1000 * seconds, 2), "samples_per_s": round(pack * sum(batch) / seconds, 1),
        "model_gflop_per_step": round(flop_per_step / 1e9, 3), "model_gflops": round(model_flops / 1e9, 1),
        **{f"matmul_gflops_{k}": round(v / 1e9, 1) for k, v in reference.items()},
        **{f"ratio_{k}": round(model_flops / v, 3) for k, v in reference.items()},
        "peak_memory_mb": round(peak / 2**20, 1),
    }


def projection_cases(spec_path: str, pack: int | None = None, device: str = "cpu", steps: int = 10,
                     bf16: bool = False, compile: bool = False) -> list[dict]:
    """A grid spec's Ray trials as the sweep would pack them, one of each kind timed at the spec's
    shapes on random data: epochs/s measured, extrapolated to every trial of that kind, then summed
    as if the trials ran one after another on this one device. Evaluation and Ray's per-trial
    overhead are not counted, and the step runs with the spec's `step` options unless told here."""
    from . import models, space, train
    from . import spec as spec_module
    from .data import DATASETS
    from .packing import pack_key, pack_limit, packs, plan_of, trial_epochs

    spec = spec_module.load(spec_path)
    if pack is not None:
        spec = spec_module.with_pack(spec, pack)
    spec = spec.replace(step=spec.step.model_copy(update={"bf16": True if bf16 else spec.step.bf16, "compile": spec.step.compile is True or compile}))
    if spec.sampler != "grid":
        raise SweeperError(f"bench --spec {spec_path}: projects grids only; this spec samples ({spec.sampler})")
    by_em = sorted({m for m in spec.models if models.MODELS[m].fitted_by == "em"})
    if by_em:
        raise SweeperError(f"bench --spec {spec_path}: {', '.join(by_em)} is fitted by EM and has no step to time; "
                           "`sweeper estimate` counts it")
    dev = _device(device)
    kinds: dict[tuple, list[list[dict]]] = {}
    points = space.grid_points(spec)
    for group in packs(spec, points, pack_limit(spec) or len(points)):  # auto on one device: one pack of each kind
        kinds.setdefault((pack_key(plan_of(spec, space.configuration(spec, group[0]))), len(group)), []).append(group)
    cases = []
    for groups in kinds.values():
        chosen = [space.configuration(spec, point) for point in groups[0]]
        first, info = chosen[0], DATASETS[chosen[0].dataset]
        hypers = [c.hyper for c in chosen for _ in spec.seeds]
        bf16 = train.bfloat16(spec.step.bf16, device)
        seconds, _ = time_stack(first.model, info.input_shape, info.n_classes, hypers,
                                (first.batch_labelled, first.batch_unlabelled), dev, steps, bf16, spec.step.compile,
                                costlier_stage(info.n_train, first.label_count, spec.data.labelled_in_unlabelled,
                                               trial_epochs(spec, first)),
                                count_flops=False)
        per_epoch = steps_in_an_epoch(spec, first)
        cases.append({
            "case": "projection", "spec": spec.name, "model": first.model, "dataset": first.dataset, "device": device,
            "bf16": bf16, "compile": spec.step.compile, "trials": len(groups), "configurations_per_trial": len(chosen),
            "members": len(hypers), "step_ms": round(1000 * seconds, 2), "steps_per_epoch": per_epoch,
            "epochs_per_s": float(f"{1 / (seconds * per_epoch):.4g}"),
            "projected_s": round(len(groups) * trial_epochs(spec, first) * per_epoch * seconds, 1),
        })
    cases.append({"case": "projection_total", "spec": spec.name, "device": device, "trials": sum(c["trials"] for c in cases),
                  "configurations": sum(c["trials"] * c["configurations_per_trial"] for c in cases), "epochs": spec.epochs,
                  "projected_s": round(sum(c["projected_s"] for c in cases), 1),
                  "projected_h": round(sum(c["projected_s"] for c in cases) / 3600, 2)})
    return cases


def costlier_stage(n_train: int, label_count: int, labelled_in_unlabelled: bool = False, epochs: int = 1):
    """A schedule near the end of a trial of `epochs`: of a model's two stages (M1's VAE, then its classifier), the
    costlier (M1's own m1_epochs come first, so the end is the next stage's whatever their number)."""
    from .train import schedule, unlabelled_count

    return schedule(0.99 * epochs, epochs, n_train, label_count, unlabelled_count(n_train, label_count, labelled_in_unlabelled))


def time_stack(model: str, input_shape: tuple[int, ...], n_classes: int, hypers: list[dict], batch: tuple[int, int],
               dev, steps: int, bf16: bool, compile: bool, schedule, count_flops: bool = True) -> tuple[float, float]:
    """Seconds per step of the sweep's step (train.Stack) with one member per hyperparameter set (member i
    seeded i), on random binary data; and one step's FLOPs, counted on an eager step (torch.compile refuses
    a dispatch mode). The caller's random state is left as it was."""
    import torch

    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        return _time_stack(model, input_shape, n_classes, hypers, batch, dev, steps, bf16, compile, schedule, count_flops)


def _time_stack(model, input_shape, n_classes, hypers, batch, dev, steps, bf16, compile, schedule, count_flops):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from . import models
    from .models.noise import fold_in, key
    from .train import Stack

    members = []
    for seed, hyper in enumerate(hypers):
        torch.manual_seed(seed)
        members.append(models.build(model, input_shape, n_classes, hyper).to(dev))
    stack = Stack(members, hypers, bf16=bf16, compile=compile)
    pack, (b_l, b_u), features = len(hypers), batch, members[0].n_features
    generator = torch.Generator(device="cpu").manual_seed(0)
    x = (torch.rand(pack, b_l + b_u, features, generator=generator) < 0.5).float().to(dev)
    y = torch.randint(0, n_classes, (pack, b_l), generator=generator).to(dev)
    inputs = (x[:, :b_l], y, x[:, b_l:])
    keys = torch.stack([key(seed, dev) for seed in range(pack)])

    def step(s: int):
        return stack.step(inputs, schedule, fold_in(keys, s), False)

    flops = 0.0
    if count_flops:
        with torch.compiler.set_stance("force_eager"), FlopCounterMode(display=False) as counter:
            step(0)
        flops = float(counter.get_total_flops())
    for s in range(1, 4):  # warm-up: allocator, autotuning, compilation
        step(s)
    _sync(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for s in range(steps):
        losses = step(4 + s)
    losses.sum().item()  # one sync, at the end
    return (time.perf_counter() - start) / steps, flops


def _device(device: str):
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise SweeperError("bench --device cuda: this machine has no CUDA device; use --device cpu")
    return torch.device(device)


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def _matmul_flops(device) -> dict[str, float]:
    """Dense matmul FLOP/s here: float32 on a CPU, and bf16 where it multiplies bfloat16 natively; bf16 and
    tf32 on a GPU. 1024³ on a CPU; 4096³ on a GPU, where a 1024³ product (microseconds) would time the launch."""
    import torch

    from .hardware import native_bf16

    if device.type == "cpu":
        kinds = {"fp32": (torch.float32, False), **({"bf16": (torch.bfloat16, False)} if native_bf16(device) else {})}
    else:
        kinds = {"bf16": (torch.bfloat16, False), "tf32": (torch.float32, True)}
    measured = {}
    for name, (dtype, tf32) in kinds.items():
        before = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        try:
            measured[name] = _dense_matmul_flops(device, dtype)
        finally:  # the process's setting, as it was
            torch.backends.cuda.matmul.allow_tf32 = before
    return measured


def _dense_matmul_flops(device, dtype) -> float:
    import torch

    n = 1024 if device.type == "cpu" else 4096
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    repeats, start = 0, time.perf_counter()
    while time.perf_counter() - start < 1.0:
        a @ b
        repeats += 1
        if repeats % 10 == 0:
            _sync(device)
    _sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def _peak_memory(device) -> float:
    """Bytes: the GPU's peak allocation, or this process's peak resident set on a CPU."""
    import resource

    import torch

    if device.type == "cuda":
        return float(torch.cuda.max_memory_allocated())
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)


STEP_CASES = ("training", "projection")  # the cases that time training steps


def main(cases: list[str], training: dict | None = None, projection: dict | None = None) -> None:
    keeps_freed = allocator.keep_freed_memory() if set(cases) & set(STEP_CASES) else False  # as a sweep's trials allocate
    for case in cases:
        if case == "projection":
            figures = projection_cases(**projection)
        elif case == "training":
            figures = [training_case(**training)]
        else:
            figures = [{"report": report_case, "overhead": overhead_case}[case]()]
        for line in figures:
            if case in STEP_CASES:
                line["malloc_keeps_freed"] = keeps_freed
            print(json.dumps(line), flush=True)


def steps_in_an_epoch(spec: Spec, chosen: Configuration) -> int:
    """Training steps in one epoch of this configuration on its dataset's full training split."""
    from .data import DATASETS
    from .train import steps_per_epoch, unlabelled_count

    info = DATASETS[chosen.dataset]
    return steps_per_epoch(unlabelled_count(info.n_train, chosen.label_count, spec.data.labelled_in_unlabelled),
                           chosen.batch_unlabelled)

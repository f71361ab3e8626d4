"""The training loop: one configuration, trained once per seed, the seeds side by side.

Runs without Ray. Each seed (a "member") has its own labelled subset, initial weights,
batch order and noise key, all derived from the seed, so the same seed gives the same
numbers. The step makes no host syncs: losses are summed on the device and read once
per epoch, when divergence (a non-finite loss) is checked.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field, replace
from typing import Iterator

import numpy as np
import torch

from . import models
from .data import Dataset, labelled_split
from .models import Batch
from .models.parts import entropy, fold_in, key, mutual_information, uniform

LOSS_PARTS = ("recon", "kl", "ce")  # the parts a model may report; the rest are NaN


@dataclass(frozen=True)
class Plan:
    """What one trial trains: a model with its hyperparameters, over every seed."""

    model: str
    hyper: dict[str, float]
    label_count: int
    seeds: tuple[int, ...]
    epochs: int
    batch_labelled: int
    batch_unlabelled: int
    device: str = "cpu"
    labelled_in_unlabelled: bool = False  # the unlabelled set is the whole training set
    dynamic_binarize: bool = False  # x ~ Bernoulli(grey level) afresh for every batch (Kingma)
    bf16: bool = False  # Stack options: matmuls under bfloat16 autocast, the loss compiled
    compile: bool = False


@dataclass
class Member:
    """One seed's run."""

    seed: int
    plan: int  # which of the trial's plans
    model: models.Model | None  # fitted by EM: the model, fitted in place; trained by gradient: None, its weights are in the Stack
    labelled: torch.Tensor  # indices into the training set
    unlabelled: torch.Tensor
    order: torch.Generator  # batch order
    key: torch.Tensor  # noise
    status: str = "running"  # running, completed, diverged
    best_val_acc: float = -1.0
    test_acc: float = float("nan")  # at the epoch of best validation accuracy
    best_epoch: int = 0
    wall_s: float = 0.0
    history: list[dict] = field(default_factory=list)
    best_weights: dict | None = None  # CPU copies of its parameters and buffers at best_epoch (kept.py writes them)


def steps_per_epoch(n_unlabelled: int, batch_unlabelled: int) -> int:
    """An epoch is one pass over the unlabelled set, for every model alike."""
    return max(1, n_unlabelled // batch_unlabelled)


def schedule(epoch: int, epochs: int, n_train: int, n_labelled: int, n_unlabelled: int) -> dict[str, float]:
    """What a loss reads of where training is (epoch from 0, progress) and of the data's sizes: Kingma's
    data_ratio N / N_labelled and the labelled share N_l / (N_l + N_u) of the data-set objective."""
    return {"epoch": epoch, "progress": epoch / epochs, "data_ratio": n_train / n_labelled,
            "labelled_share": n_labelled / (n_labelled + n_unlabelled)}


def batch_indices(n: int, steps: int, size: int, order: torch.Generator, device) -> torch.Tensor:
    """(steps, size) indices into n items: shuffled passes, as many as the epoch needs."""
    passes = math.ceil(steps * size / n)
    flat = torch.cat([torch.randperm(n, generator=order, device=device) for _ in range(passes)])
    return flat[: steps * size].view(steps, size)


def binarize(x: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """A Bernoulli draw per pixel with its grey level as probability."""
    return (uniform(key, x.shape) < x).to(x.dtype)


def pack_key(plan: Plan) -> tuple:
    """Plans with the same key train as one vectorised model: they may differ in their loss weights
    (alpha, lambda, beta, ...), learning rate and seeds, not in what shapes the networks and the data."""
    shape = models.MODELS[plan.model].shape
    return (plan.model, tuple(sorted((k, v) for k, v in plan.hyper.items() if k in shape)), plan.label_count, plan.epochs,
            plan.batch_labelled, plan.batch_unlabelled, plan.device, plan.labelled_in_unlabelled, plan.dynamic_binarize,
            plan.bf16, plan.compile)


class Trial:
    """One or more plans (a pack) sharing a pack_key, every seed of each: the members. Members of a
    model trained by gradient are stacked (torch.func.stack_module_state) and take each step together
    under vmap, each with its own weights, learning rate, data order and noise key."""

    def __init__(self, plans: Plan | list[Plan], data: Dataset):
        plans = [plans] if isinstance(plans, Plan) else list(plans)
        defaults = {name: h.default for name, h in models.hyperparameters(plans[0].model).items()}
        self.plans = [replace(p, hyper={**defaults, **p.hyper}) for p in plans]
        if len({pack_key(p) for p in self.plans}) != 1:
            raise ValueError("a pack's plans must share model, network shape, data and batch sizes (train.pack_key)")
        self.plan = plan = self.plans[0]
        self.epoch = 0
        self.restarts = 0  # times this trial continued from a checkpoint (a retry, a resume)
        device = torch.device(plan.device)
        as_tensor = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
        self.x_train, self.y_train = as_tensor(data.x_train), as_tensor(data.y_train)
        self.x_val, self.y_val = as_tensor(data.x_val), as_tensor(data.y_val)
        self.x_test, self.y_test = as_tensor(data.x_test), as_tensor(data.y_test)
        self.members = [self._member(i, seed, data) for i, p in enumerate(self.plans) for seed in p.seeds]
        self.by_em = hasattr(self.members[0].model, "em_step")
        self.step = 0  # steps taken by every member, in lockstep
        if not self.by_em:
            self.stack = Stack([m.model for m in self.members], [float(self.plans[m.plan].hyper["lr"]) for m in self.members],
                               bf16=plan.bf16, compile=plan.compile)
            for m in self.members:  # the stack holds a copy of each: no second set of weights on the device
                m.model = None
            names = models.MODELS[plan.model].weights
            self.weights = {name: torch.tensor([float(self.plans[m.plan].hyper[name]) for m in self.members], device=device)
                            for name in names}

    def _member(self, plan_index: int, seed: int, data: Dataset) -> Member:
        device = self.x_train.device
        labelled, unlabelled = labelled_split(data.y_train, self.plan.label_count, data.n_classes, seed)
        if self.plan.labelled_in_unlabelled:
            unlabelled = np.arange(len(data.y_train))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # initial weights, built on the CPU: the same on any device
            model = models.build(self.plan.model, data.input_shape, data.n_classes, self.plans[plan_index].hyper)
        order = torch.Generator(device=device)
        order.manual_seed(int(np.random.default_rng([seed, 0xBA7C]).integers(2**62)))
        return Member(
            seed=seed,
            plan=plan_index,
            model=model.to(device),
            labelled=torch.as_tensor(labelled, device=device),
            unlabelled=torch.as_tensor(unlabelled, device=device),
            order=order,
            key=key(seed, device),
        )

    def parameters_of(self, index: int) -> list[torch.Tensor]:
        """Member `index`'s parameters (views into the stack, for a model trained by gradient)."""
        if self.by_em:
            return list(self.members[index].model.parameters())
        return [p[index] for p in self.stack.params.values()]

    # ------------------------------------------------------------------ training

    def _train_epoch(self) -> torch.Tensor:
        """One pass for every member; returns each member's mean [loss, *LOSS_PARTS], (members, 4), on the device."""
        plan, device = self.plan, self.x_train.device
        if self.by_em:  # one EM iteration over the whole training set, member by member
            missing = torch.full((len(LOSS_PARTS),), float("nan"), device=device)
            return torch.stack([torch.cat([m.model.em_step(self.x_train[m.labelled], self.y_train[m.labelled],
                                                           self.x_train[m.unlabelled]).to(missing.dtype).view(1), missing])
                                for m in self.members])
        # schedules (KL warm-up, M1's stages) read how far training is; the same for every step of an epoch
        n_unlabelled = len(self.members[0].unlabelled)
        now = schedule(self.epoch - 1, plan.epochs, len(self.y_train), plan.label_count, n_unlabelled)
        steps = steps_per_epoch(n_unlabelled, plan.batch_unlabelled)
        labelled = torch.stack([m.labelled[batch_indices(len(m.labelled), steps, plan.batch_labelled, m.order, device)]
                                for m in self.members], dim=1)  # (steps, members, batch)
        unlabelled = torch.stack([m.unlabelled[batch_indices(len(m.unlabelled), steps, plan.batch_unlabelled, m.order, device)]
                                  for m in self.members], dim=1)
        keys = torch.stack([m.key for m in self.members])
        totals = torch.zeros(len(self.members), 1 + len(LOSS_PARTS), device=device)
        for s in range(steps):
            step_keys = fold_in(keys, self.step)
            batch = (self.x_train[labelled[s]], self.y_train[labelled[s]], self.x_train[unlabelled[s]])
            losses = self.stack.step(batch, self.weights, now, step_keys, plan.dynamic_binarize)
            self.step += 1
            totals += losses
        return totals / steps

    @torch.no_grad()
    def _evaluate(self) -> torch.Tensor:
        """Every member's [validation accuracy, test accuracy, mean entropy and mutual information of
        q(y|x) on its unlabelled set], (members, 4); members trained by gradient all at once."""
        if self.by_em:
            logits = lambda x: torch.stack([m.model.classify(x) for m in self.members])  # noqa: E731
        else:
            logits = self.stack.classify
        accuracy = lambda x, y: (logits(x).argmax(-1) == y).float().mean(-1)  # noqa: E731
        members = torch.arange(len(self.members), device=self.x_train.device)[:, None]
        logits_u = logits(self.x_train)[members, torch.stack([m.unlabelled for m in self.members])]
        return torch.stack([accuracy(self.x_val, self.y_val), accuracy(self.x_test, self.y_test),
                            entropy(logits_u).mean(-1), torch.func.vmap(mutual_information)(logits_u)], dim=1)

    def epochs(self) -> Iterator[int]:
        """Train epoch by epoch, yielding each epoch's number once every member has run it. A member
        that diverged stays in the stack (its numbers are ignored) so that the others keep their shapes."""
        while self.epoch < self.plan.epochs and any(m.status == "running" for m in self.members):
            self.epoch += 1
            start = time.perf_counter()
            trained = self._train_epoch()
            running = [(i, m) for i, m in enumerate(self.members) if m.status == "running"]
            evaluated = torch.cat([trained, self._evaluate()], dim=1)[[i for i, _ in running]]
            metrics = evaluated.tolist()  # the epoch's one sync
            seconds = (time.perf_counter() - start) / len(self.members)  # each member's share of the pack's time
            for (i, m), row in zip(running, metrics):
                if self._record(m, row, seconds):
                    m.best_weights = self.weights_of(i)
            yield self.epoch

    def weights_of(self, index: int) -> dict:
        """Member `index`'s parameters and buffers, copied to the CPU, named as its own module names them."""
        if self.by_em:
            return {k: v.detach().cpu().clone() for k, v in self.members[index].model.state_dict().items()}
        return {name: t[index].detach().cpu().clone() for group in (self.stack.params, self.stack.buffers) for name, t in group.items()}

    def _record(self, m: Member, metrics: list[float], seconds: float) -> bool:
        """Record one epoch of a member; True when its validation accuracy improved."""
        loss, *parts = metrics[: 1 + len(LOSS_PARTS)]
        val_acc, test_acc, ent, mi = metrics[1 + len(LOSS_PARTS) :]
        m.wall_s += seconds
        m.history.append(
            dict(seed=m.seed, epoch=self.epoch, loss=loss, **dict(zip(LOSS_PARTS, parts)),
                 val_acc=val_acc, test_acc=test_acc, entropy_unlabelled=ent, mi_unlabelled=mi, wall_s=seconds)
        )
        if not math.isfinite(loss):
            m.status = "diverged"
            return False
        improved = val_acc > m.best_val_acc
        if improved:
            m.best_val_acc, m.test_acc, m.best_epoch = val_acc, test_acc, self.epoch
        if self.epoch == self.plan.epochs:
            m.status = "completed"
        return improved

    def objective(self, plan: int = 0) -> float:
        """Mean over a plan's seeds of the best validation accuracy; a diverged seed counts 0."""
        return float(np.mean([0.0 if m.status == "diverged" else max(m.best_val_acc, 0.0) for m in self.members if m.plan == plan]))

    # ------------------------------------------------------------------ checkpoints

    _SCALARS = ("status", "best_val_acc", "test_acc", "best_epoch", "wall_s", "history", "best_weights")

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "restarts": self.restarts,
            "step": self.step,
            "stack": None if self.by_em else self.stack.state_dict(),
            "members": [
                {
                    "model": m.model.state_dict() if self.by_em else None,
                    "order": m.order.get_state(),
                    **{name: getattr(m, name) for name in self._SCALARS},
                }
                for m in self.members
            ],
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from `state`: counted as a restart."""
        self.epoch, self.step = state["epoch"], state["step"]
        self.restarts = state["restarts"] + 1
        if not self.by_em:
            self.stack.load_state_dict(state["stack"])
        for m, saved in zip(self.members, state["members"], strict=True):
            if self.by_em:
                m.model.load_state_dict(saved["model"])
            m.order.set_state(saved["order"])
            for name in self._SCALARS:
                setattr(m, name, saved[name])


class Stack:
    """Models of one architecture as one: each parameter stacked on a leading member dimension, the
    loss vmapped over members, one Adam over the stacks.

    Adam's update is elementwise, so one optimiser over the stacks is each member's own Adam. Its
    learning rate is one number: when the members' differ, Adam steps with 1 and each member's step
    is then scaled by its own rate (the update is lr times a direction that does not depend on lr).
    """

    def __init__(self, members: list[models.Model], lrs: list[float], bf16: bool = False, compile: bool = False):
        params, buffers = torch.func.stack_module_state(members)
        self.params = {name: p.detach().requires_grad_() for name, p in params.items()}
        self.buffers = buffers
        self.model = copy.deepcopy(members[0]).to("meta")  # the structure functional_call runs
        device = next(iter(self.params.values())).device
        same = len(set(lrs)) == 1
        self.lrs = None if same else torch.tensor(lrs, device=device)
        self.optimizer = torch.optim.Adam(self.params.values(), lr=lrs[0] if same else 1.0, **_fastest_adam(device))
        # optionally (meant for a GPU; they run on a CPU too, which is how the tests check them):
        # matmuls in bfloat16 (parameters and optimiser stay float32), and the vmapped loss compiled
        self.device_type, self.bf16 = device.type, bf16
        self.losses = torch.func.vmap(self._loss, in_dims=(0, 0, 0, 0, 0, 0, 0, None, None))
        if compile:  # whole or not at all: a graph break inside vmap would run the entire loss eagerly, silently
            # from a clean slate: dynamo would carry a worker's last trial into this one, making a size that
            # differs symbolic (vmap's linear refuses those) and counting its compilations against the limit
            torch.compiler.reset()
            self.losses = torch.compile(self.losses, fullgraph=True)

    def _loss(self, params, buffers, x_l, y_l, x_u, weights, key, schedule, dynamic_binarize):
        if dynamic_binarize:
            x_l, x_u = binarize(x_l, fold_in(key, -1)), binarize(x_u, fold_in(key, -2))
        loss, parts = torch.func.functional_call(self.model, (params, buffers), (Batch(x_l, y_l, x_u), {**weights, **schedule}, key))
        missing = torch.full_like(loss, float("nan"))
        return loss, torch.stack([loss, *(parts.get(p, missing) for p in LOSS_PARTS)])

    def step(self, batch, weights: dict, schedule: dict, keys: torch.Tensor, dynamic_binarize: bool) -> torch.Tensor:
        """One optimiser step for every member; returns (members, 1 + len(LOSS_PARTS)) detached."""
        with torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.bf16):
            losses, parts = self.losses(self.params, self.buffers, *batch, weights, keys, schedule, dynamic_binarize)
        self.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()  # members share no parameter: each gets the gradient of its own loss
        if self.lrs is None:
            self.optimizer.step()
        else:
            before = [p.detach().clone() for p in self.params.values()]
            self.optimizer.step()
            with torch.no_grad():
                for p, p0 in zip(self.params.values(), before):
                    p.copy_(torch.lerp(p0, p, self.lrs.view(-1, *[1] * (p.dim() - 1))))
        return parts.detach()

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Every member's class logits for the same x, (members, len(x), classes); in chunks of rows
        that keep every member's hidden activations together small (64k rows of one member)."""
        params = {name: p.detach() for name, p in self.params.items()}
        members = next(iter(params.values())).shape[0]
        logits = torch.func.vmap(self._classify, in_dims=(0, 0, None))
        return torch.cat([logits(params, self.buffers, chunk) for chunk in x.split(max(128, 65536 // members))], dim=1)

    def _classify(self, params, buffers, x):
        return torch.func.functional_call(_Classifier(self.model), _prefixed(params, buffers), (x,))

    def state_dict(self) -> dict:
        return {"params": {k: p.detach() for k, p in self.params.items()}, "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(state["params"][name])
        self.optimizer.load_state_dict(state["optimizer"])


class _Classifier(torch.nn.Module):
    """A model's classify as a module's forward, for functional_call."""

    def __init__(self, model: models.Model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.classify(x)


def _prefixed(*tensors: dict) -> dict:
    return {f"model.{name}": t for group in tensors for name, t in group.items()}


def _fastest_adam(device: torch.device) -> dict:
    """Fused Adam where this torch has it for the device (one kernel for every parameter), else foreach."""
    try:
        torch.optim.Adam([torch.zeros(1, device=device, requires_grad=True)], fused=True)
        return {"fused": True}
    except (RuntimeError, ValueError):
        return {"foreach": True}

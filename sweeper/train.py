"""The training loop: one configuration, trained once per seed, the seeds side by side.

Runs without Ray. Each seed (a "member") has its own labelled subset, initial weights,
batch order and noise key, all derived from the seed, so the same seed gives the same
numbers. The step makes no host syncs: losses are summed on the device and read once
per epoch, when divergence (a non-finite loss) is checked.
"""
from __future__ import annotations

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


@dataclass
class Member:
    """One seed's run."""

    seed: int
    model: models.Model
    optimizer: torch.optim.Optimizer | None  # None: the model is fitted by EM
    labelled: torch.Tensor  # indices into the training set
    unlabelled: torch.Tensor
    order: torch.Generator  # batch order
    key: torch.Tensor  # noise
    step: torch.Tensor  # steps taken, on the device so folding it in needs no copy
    status: str = "running"  # running, completed, diverged
    best_val_acc: float = -1.0
    test_acc: float = float("nan")  # at the epoch of best validation accuracy
    best_epoch: int = 0
    wall_s: float = 0.0
    history: list[dict] = field(default_factory=list)


def steps_per_epoch(n_unlabelled: int, batch_unlabelled: int) -> int:
    """An epoch is one pass over the unlabelled set, for every model alike."""
    return max(1, n_unlabelled // batch_unlabelled)


def batch_indices(n: int, steps: int, size: int, order: torch.Generator, device) -> torch.Tensor:
    """(steps, size) indices into n items: shuffled passes, as many as the epoch needs."""
    passes = math.ceil(steps * size / n)
    flat = torch.cat([torch.randperm(n, generator=order, device=device) for _ in range(passes)])
    return flat[: steps * size].view(steps, size)


def binarize(x: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """A Bernoulli draw per pixel with its grey level as probability."""
    return (uniform(key, x.shape) < x).to(x.dtype)


class Trial:
    def __init__(self, plan: Plan, data: Dataset):
        defaults = {name: h.default for name, h in models.hyperparameters(plan.model).items()}
        self.plan = plan = replace(plan, hyper={**defaults, **plan.hyper})
        self.epoch = 0
        self.restarts = 0  # times this trial continued from a checkpoint (a retry, a resume)
        device = torch.device(plan.device)
        as_tensor = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
        self.x_train, self.y_train = as_tensor(data.x_train), as_tensor(data.y_train)
        self.x_val, self.y_val = as_tensor(data.x_val), as_tensor(data.y_val)
        self.x_test, self.y_test = as_tensor(data.x_test), as_tensor(data.y_test)
        cls = models.MODELS[plan.model]
        self.weights = {name: torch.tensor(float(plan.hyper[name]), device=device) for name in cls.weights}
        self.weights["data_ratio"] = len(data.y_train) / plan.label_count  # for Kingma's alpha x N / N_labelled
        self.members = [self._member(seed, data) for seed in plan.seeds]

    def _member(self, seed: int, data: Dataset) -> Member:
        device = self.x_train.device
        labelled, unlabelled = labelled_split(data.y_train, self.plan.label_count, data.n_classes, seed)
        if self.plan.labelled_in_unlabelled:
            unlabelled = np.arange(len(data.y_train))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # initial weights, built on the CPU: the same on any device
            model = models.build(self.plan.model, data.input_shape, data.n_classes, self.plan.hyper)
        model.to(device)
        by_em = hasattr(model, "em_step")
        optimizer = None if by_em else torch.optim.Adam(model.parameters(), lr=float(self.plan.hyper["lr"]), foreach=True)
        order = torch.Generator(device=device)
        order.manual_seed(int(np.random.default_rng([seed, 0xBA7C]).integers(2**62)))
        return Member(
            seed=seed,
            model=model,
            optimizer=optimizer,
            labelled=torch.as_tensor(labelled, device=device),
            unlabelled=torch.as_tensor(unlabelled, device=device),
            order=order,
            key=key(seed, device),
            step=torch.zeros((), dtype=torch.int64, device=device),
        )

    # ------------------------------------------------------------------ training

    def _train_epoch(self, m: Member) -> torch.Tensor:
        """One pass; returns the mean [loss, *LOSS_PARTS] on the device."""
        plan, device = self.plan, self.x_train.device
        missing = torch.tensor(float("nan"), device=device)
        if m.optimizer is None:  # one EM iteration over the whole training set
            neg_log_likelihood = m.model.em_step(self.x_train[m.labelled], self.y_train[m.labelled], self.x_train[m.unlabelled])
            return torch.stack([neg_log_likelihood.to(missing.dtype), *(missing for _ in LOSS_PARTS)])
        # schedules (KL warm-up, M1's stages) read how far training is; the same for every step of an epoch
        weights = {**self.weights, "epoch": self.epoch - 1, "progress": (self.epoch - 1) / plan.epochs}
        steps = steps_per_epoch(len(m.unlabelled), plan.batch_unlabelled)
        labelled = m.labelled[batch_indices(len(m.labelled), steps, plan.batch_labelled, m.order, device)]
        unlabelled = m.unlabelled[batch_indices(len(m.unlabelled), steps, plan.batch_unlabelled, m.order, device)]
        totals = torch.zeros(1 + len(LOSS_PARTS), device=device)
        for s in range(steps):
            step_key = fold_in(m.key, m.step)
            x_l, x_u = self.x_train[labelled[s]], self.x_train[unlabelled[s]]
            if plan.dynamic_binarize:
                x_l, x_u = binarize(x_l, fold_in(step_key, -1)), binarize(x_u, fold_in(step_key, -2))
            loss, parts = m.model(Batch(x_l, self.y_train[labelled[s]], x_u), weights, step_key)
            m.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            m.optimizer.step()
            m.step += 1
            totals += torch.stack([loss.detach(), *(parts.get(p, missing).detach() for p in LOSS_PARTS)])
        return totals / steps

    @torch.no_grad()
    def _evaluate(self, m: Member) -> torch.Tensor:
        """[validation accuracy, test accuracy, mean entropy and mutual information of q(y|x) on the unlabelled set]."""
        accuracy = lambda x, y: (m.model.classify(x).argmax(-1) == y).float().mean()  # noqa: E731
        logits_u = m.model.classify(self.x_train[m.unlabelled])
        return torch.stack(
            [
                accuracy(self.x_val, self.y_val),
                accuracy(self.x_test, self.y_test),
                entropy(logits_u).mean(),
                mutual_information(logits_u),
            ]
        )

    def epochs(self) -> Iterator[int]:
        """Train epoch by epoch, yielding each epoch's number once every member has run it."""
        while self.epoch < self.plan.epochs and any(m.status == "running" for m in self.members):
            self.epoch += 1
            for m in self.members:
                if m.status != "running":
                    continue
                start = time.perf_counter()
                metrics = torch.cat([self._train_epoch(m), self._evaluate(m)]).tolist()  # the epoch's one sync
                seconds = time.perf_counter() - start
                self._record(m, metrics, seconds)
            yield self.epoch

    def _record(self, m: Member, metrics: list[float], seconds: float) -> None:
        loss, *parts = metrics[: 1 + len(LOSS_PARTS)]
        val_acc, test_acc, ent, mi = metrics[1 + len(LOSS_PARTS) :]
        m.wall_s += seconds
        m.history.append(
            dict(seed=m.seed, epoch=self.epoch, loss=loss, **dict(zip(LOSS_PARTS, parts)),
                 val_acc=val_acc, test_acc=test_acc, entropy_unlabelled=ent, mi_unlabelled=mi, wall_s=seconds)
        )
        if not math.isfinite(loss):
            m.status = "diverged"
            return
        if val_acc > m.best_val_acc:
            m.best_val_acc, m.test_acc, m.best_epoch = val_acc, test_acc, self.epoch
        if self.epoch == self.plan.epochs:
            m.status = "completed"

    def objective(self) -> float:
        """Mean over seeds of the best validation accuracy; a diverged seed counts 0."""
        return float(np.mean([0.0 if m.status == "diverged" else max(m.best_val_acc, 0.0) for m in self.members]))

    # ------------------------------------------------------------------ checkpoints

    _SCALARS = ("status", "best_val_acc", "test_acc", "best_epoch", "wall_s", "history")

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "restarts": self.restarts,
            "members": [
                {
                    "model": m.model.state_dict(),
                    "optimizer": m.optimizer.state_dict() if m.optimizer else None,
                    "order": m.order.get_state(),
                    "step": m.step.item(),
                    **{name: getattr(m, name) for name in self._SCALARS},
                }
                for m in self.members
            ],
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from `state`: counted as a restart."""
        self.epoch = state["epoch"]
        self.restarts = state["restarts"] + 1
        for m, saved in zip(self.members, state["members"], strict=True):
            m.model.load_state_dict(saved["model"])
            if m.optimizer:
                m.optimizer.load_state_dict(saved["optimizer"])
            m.order.set_state(saved["order"])
            m.step.fill_(saved["step"])
            for name in self._SCALARS:
                setattr(m, name, saved[name])

"""The training loop: one configuration, trained once per seed, the seeds side by side.

Runs without Ray. Each seed (a "member") has its own labelled subset, initial weights,
batch order and noise key, all derived from the seed, so the same seed gives the same
numbers. The step makes no host syncs: losses are summed on the device and read once
per epoch, when divergence (a non-finite loss) is checked.
"""
from __future__ import annotations

import copy
import functools
import math
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from . import models
from .hardware import native_bf16
from .data import Dataset, labelled_split
from .models import Batch, Schedule
from .models.bounds import entropy, mutual_information
from .models.networks import LOW_PRECISION_LAYERS, JointLinear
from .models.noise import fold_in, key, uniform
from .packing import Plan, pack_key


@dataclass
class Member:
    """One seed's run."""

    seed: int
    plan_index: int  # which of the training's plans
    labelled: torch.Tensor  # indices into the training set
    unlabelled: torch.Tensor
    order: torch.Generator  # batch order
    key: torch.Tensor  # noise
    status: str = "running"  # running, completed, diverged, stopped
    stopped_by: str | None = None  # with status stopped: patience, or scheduler (the spec's rule, inside a pack: stopping.py)
    best_val_acc: float = -1.0
    test_acc: float = float("nan")  # at the epoch of best validation accuracy
    best_epoch: int = 0
    wall_s: float = 0.0
    compiled: bool = False  # whether any of its epochs ran through torch.compile: the rows record it
    history: list[dict] = field(default_factory=list)
    best_weights: dict | None = None  # CPU copies of its parameters and buffers at best_epoch, until kept.py writes them


@dataclass(frozen=True)
class Split:
    """The data on the training device."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @classmethod
    def of(cls, data: Dataset, device: torch.device) -> Split:
        return cls(*(torch.as_tensor(getattr(data, name), device=device)
                     for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")))


def steps_per_epoch(n_unlabelled: int, batch_unlabelled: int) -> int:
    """An epoch is one pass over the unlabelled set, for every model alike."""
    return max(1, n_unlabelled // batch_unlabelled)


def unlabelled_count(n_train: int, label_count: int, labelled_in_unlabelled: bool) -> int:
    """Training points in the unlabelled set: the rest, or (Kingma) the whole training set."""
    return n_train if labelled_in_unlabelled else n_train - label_count


def schedule(epoch: float, epochs: int, n_train: int, n_labelled: int, n_unlabelled: int) -> Schedule:
    """What a loss reads of where training is (epoch from 0) and of the data's sizes: Kingma's
    data_ratio N / N_labelled and the labelled share N_l / (N_l + N_u) of the data-set objective."""
    return Schedule(epoch=epoch, epochs=epochs, data_ratio=n_train / n_labelled,
                    labelled_share=n_labelled / (n_labelled + n_unlabelled), unlabelled_count=n_unlabelled)


def batch_indices(n: int, steps: int, size: int, order: torch.Generator, device) -> torch.Tensor:
    """(steps, size) indices into n items: shuffled passes, as many as the epoch needs."""
    passes = math.ceil(steps * size / n)
    flat = torch.cat([torch.randperm(n, generator=order, device=device) for _ in range(passes)])
    return flat[: steps * size].view(steps, size)


def binarize(x: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """A Bernoulli draw per pixel with its grey level as probability."""
    return (uniform(key, x.shape) < x).to(x.dtype)


# ---------------------------------------------------------------------- ways of fitting


class Fitter(ABC):
    """How a training's members are fitted: the one interface between the loop and a way of fitting.
    Members are numbered 0..n-1 in the training's order."""

    parts: tuple[str, ...]  # the loss parts train_epoch reports, after the loss
    ran_compiled: bool = False  # whether the last epoch's steps ran through torch.compile (compile: true, or auto's choice)

    @abstractmethod
    def train_epoch(self, split: Split, members: list[Member], plan: Plan, now: Schedule) -> torch.Tensor:
        """One epoch for every member; each member's mean [loss, *parts], (members, 1 + len(parts)), on the device."""

    @property
    @abstractmethod
    def precision(self) -> str:
        """What the fitting arithmetic actually ran in, as the rows record it: float32 or bfloat16."""

    @abstractmethod
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Every member's class logits for x, (members, len(x), classes)."""

    @abstractmethod
    def parameters_of(self, index: int) -> list[torch.Tensor]:
        """Member `index`'s parameters."""

    @abstractmethod
    def weights_of(self, index: int) -> dict:
        """Member `index`'s parameters and buffers, copied to the CPU, named as its own module names them."""

    @abstractmethod
    def keep(self, positions: list[int]) -> None:
        """Keep only the members at these positions, in this order: the others cost nothing from now on."""

    @abstractmethod
    def state_dict(self) -> dict: ...

    @abstractmethod
    def load_state_dict(self, state: dict) -> None: ...


class GradientFitter(Fitter):
    """Members of a model trained by gradient, stacked (Stack): each step takes a batch of every
    member's own data at once, under vmap, each with its own weights, learning rate and noise."""

    def __init__(self, built: list[models.Model], hypers: list[dict], bf16: bool = False, compile: bool | str = False):
        self.stack = Stack(built, hypers, bf16=bf16, compile=compile is True)
        self.parts = self.stack.parts
        self.step = 0  # steps taken by every member, in lockstep
        self.compile_wanted = compile  # true, false, or auto: decided on the step's counted work (compile_pays)
        self.flops_per_step: float | None = None  # under auto, of the members held: counted on their first step

    @property
    def precision(self) -> str:
        return "bfloat16" if self.stack.bf16 else "float32"  # the step's matmuls under autocast, or not

    def train_epoch(self, split: Split, members: list[Member], plan: Plan, now: Schedule) -> torch.Tensor:
        device = split.x_train.device
        steps = steps_per_epoch(len(members[0].unlabelled), plan.batch_unlabelled)
        labelled = torch.stack([m.labelled[batch_indices(len(m.labelled), steps, plan.batch_labelled, m.order, device)]
                                for m in members], dim=1)  # (steps, members, batch)
        unlabelled = torch.stack([m.unlabelled[batch_indices(len(m.unlabelled), steps, plan.batch_unlabelled, m.order, device)]
                                  for m in members], dim=1)  # drawn whatever the model, so a seed's labelled order is the same
        if not self.stack.model.reads_unlabelled_at(now):  # gathered and binarised for nothing: 4/5 of the baseline's step
            unlabelled = unlabelled[:, :, :0]
        keys = torch.stack([m.key for m in members])
        if self.stack.model.refresh_due(now):
            self.stack.refresh(torch.stack([split.x_train[m.unlabelled] for m in members]))
        totals = torch.zeros(len(members), 1 + len(self.parts), device=device)
        self.ran_compiled = False
        for s in range(steps):
            batch = (split.x_train[labelled[s]], split.y_train[labelled[s]], split.x_train[unlabelled[s]])
            step = functools.partial(self.stack.step, batch, now, fold_in(keys, self.step), plan.dynamic_binarize)
            compiled = self.stack.compile  # this step's, unless it falls back to eager
            if self.compile_wanted == "auto" and self.flops_per_step is None:
                totals += self._choose_compile(step, steps_left(steps, s, now), device.type)
            elif self.compile_wanted == "auto" and self.stack.compile:
                totals += self._compiled_or_eager(step)
            else:
                totals += step()
            self.ran_compiled |= compiled and self.stack.compile
            self.step += 1
        return totals / steps

    def _compiled_or_eager(self, step) -> torch.Tensor:
        """A compiled step under compile: auto; where torch cannot compile it (a first compile, or a recompile for a
        changed schedule), it runs eagerly, and so does the rest of the trial, as compile: false would. A
        compile fails before the step changes anything."""
        try:
            return step()
        except Exception as error:  # noqa: BLE001 - torch's compile errors share no base class across its stages
            warnings.warn(f"compile: auto: the step did not compile ({type(error).__name__}); it runs eagerly", stacklevel=2)
            self.stack.set_compiled(False)
            return step()

    def _choose_compile(self, step, left: int, device: str) -> torch.Tensor:
        """compile: auto. Run one step eagerly, counting its FLOPs, and compile the `left` steps after it when that
        work pays for the compile (compile_pays)."""
        with FlopCounterMode(display=False) as counter:
            trained = step()
        self.flops_per_step = float(counter.get_total_flops())
        if compile_pays(self.flops_per_step * left, device):
            self.stack.set_compiled(True)
        return trained

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.stack.classify(x)

    def parameters_of(self, index: int) -> list[torch.Tensor]:
        return [p[index] for p in self.stack.params.values()]  # views into the stack

    def weights_of(self, index: int) -> dict:
        return {name: t[index].detach().cpu().clone() for group in (self.stack.params, self.stack.buffers) for name, t in group.items()}

    def keep(self, positions: list[int]) -> None:
        if self.compile_wanted == "auto":  # fewer members: a new shape to compile, chosen again on its own work left
            self.stack.set_compiled(False, rebuild=False)
            self.flops_per_step = None
        self.stack.keep(positions)

    def state_dict(self) -> dict:
        return {"step": self.step, "stack": self.stack.state_dict(), "compiling": self.stack.compile,
                "flops_per_step": self.flops_per_step}

    def load_state_dict(self, state: dict) -> None:
        """Continue as the saved run would have: with the choice compile: auto had made (the work left would
        choose otherwise), so a resumed trial compiles where the uninterrupted one did."""
        self.step = state["step"]
        self.stack.load_state_dict(state["stack"])
        if self.compile_wanted == "auto":
            self.flops_per_step = state.get("flops_per_step")
            self.stack.set_compiled(state.get("compiling", False))


class EMFitter(Fitter):
    """Members of a model fitted by EM: one EM iteration over the whole training set per epoch, member by member."""

    def __init__(self, built: list[models.Model]):
        self.models = built
        self.parts = type(built[0]).loss_parts  # none is measured by EM: recorded as NaN

    @property
    def precision(self) -> str:
        return "float32"  # EM's updates run in the data's dtype; a plan's bf16 applies to gradient steps only

    def train_epoch(self, split: Split, members: list[Member], plan: Plan, now: Schedule) -> torch.Tensor:
        x, y = split.x_train, split.y_train
        missing = torch.full((len(self.parts),), float("nan"), device=x.device)
        return torch.stack([torch.cat([model.em_step(x[m.labelled], y[m.labelled], x[m.unlabelled]).to(missing.dtype).view(1), missing])
                            for model, m in zip(self.models, members, strict=True)])

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([model.classify(x) for model in self.models])

    def parameters_of(self, index: int) -> list[torch.Tensor]:
        return list(self.models[index].parameters())

    def weights_of(self, index: int) -> dict:
        return {k: v.detach().cpu().clone() for k, v in self.models[index].state_dict().items()}

    def keep(self, positions: list[int]) -> None:
        self.models = [self.models[i] for i in positions]

    def state_dict(self) -> dict:
        return {"models": [model.state_dict() for model in self.models]}

    def load_state_dict(self, state: dict) -> None:
        for model, saved in zip(self.models, state["models"], strict=True):
            model.load_state_dict(saved)


def bfloat16(wanted: bool | str, device: str) -> bool:
    """Whether the step's matmuls run in bfloat16: as the spec's `step.bf16` says, or (auto) where the device
    multiplies bfloat16 natively. The one place precision is decided; the fitter reports what ran."""
    return wanted is True or (wanted == "auto" and native_bf16(device))


# step: {compile: auto} compiles a trial's step where the work left would take at least COMPILE_EARNS_BACK
# times the compile: the step's FLOPs (counted by torch on one eager step of the members held) times the steps
# left, at a nominal speed of the device kind, against COMPILE_S. The choice depends on shapes, members and
# epochs, never on a timing, so a spec chooses alike on every run of it; smoke runs and tests stay eager.
COMPILE_EARNS_BACK = 20
COMPILE_S = 60.0  # an upper estimate: M2's step at MNIST shapes, 8 members, compiled in 30-40 s on a 2-core CPU
# About one CPU thread's float32 matmul; what a data-centre GPU does eagerly on these small, launch-bound steps.
NOMINAL_FLOPS = {"cpu": 1e11, "cuda": 1e13}


def steps_left(steps: int, step: int, now: Schedule) -> int:
    """The steps a trial has left after step `step` (from 0) of an epoch of `steps`, at `now`."""
    return steps - step - 1 + steps * max(0, math.ceil(now.epochs - now.epoch) - 1)


def compile_pays(flops_left: float, device: str) -> bool:
    """Whether compiling the step earns its cost back over the work left (compile: auto)."""
    return flops_left / NOMINAL_FLOPS.get(device, NOMINAL_FLOPS["cpu"]) >= COMPILE_EARNS_BACK * COMPILE_S


def fitter(plans: list[Plan], built: list[models.Model], hypers: list[dict]) -> Fitter:
    """The fitter the model declares (Model.fitted_by), for its built members."""
    plan = plans[0]
    if models.MODELS[plan.model].fitted_by == "em":
        return EMFitter(built)
    return GradientFitter(built, hypers, bf16=bfloat16(plan.bf16, plan.device), compile=plan.compile)


# ---------------------------------------------------------------------- the loop


class Training:
    """One or more plans (a pack) sharing a pack_key, every seed of each: the members, trained
    together by the fitter their model declares."""

    def __init__(self, plans: Plan | list[Plan], data: Dataset):
        plans = [plans] if isinstance(plans, Plan) else list(plans)
        defaults = {name: h.default for name, h in models.hyperparameters(plans[0].model).items()}
        self.plans = [replace(p, hyper={**defaults, **p.hyper}) for p in plans]
        if len({pack_key(p) for p in self.plans}) != 1:
            raise ValueError("a pack's plans must share model, network shape, data and batch sizes (packing.pack_key)")
        self.plan = plan = self.plans[0]
        self.epoch = 0
        self.restarts = 0  # times this training continued from a checkpoint (a retry, a resume)
        self.split = Split.of(data, torch.device(plan.device))
        self.members, built = [], []
        for i, p in enumerate(self.plans):
            for seed in p.seeds:
                member, model = self._member(i, seed, data)
                self.members.append(member)
                built.append(model)
        self.fitter = fitter(self.plans, built, [self.plans[m.plan_index].hyper for m in self.members])
        self.parts = self.fitter.parts
        self.active = list(range(len(self.members)))  # the members the fitter holds, in its order: those still running

    def _member(self, plan_index: int, seed: int, data: Dataset) -> tuple[Member, models.Model]:
        device = self.split.x_train.device
        labelled, unlabelled = labelled_split(data.y_train, self.plan.label_count, data.n_classes, seed)
        if self.plan.labelled_in_unlabelled:
            unlabelled = np.arange(len(data.y_train))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # initial weights, built on the CPU: the same on any device
            model = models.build(self.plan.model, data.input_shape, data.n_classes, self.plans[plan_index].hyper)
        order = torch.Generator(device=device)
        order.manual_seed(int(np.random.default_rng([seed, 0xBA7C]).integers(2**62)))
        member = Member(seed=seed, plan_index=plan_index, labelled=torch.as_tensor(labelled, device=device),
                        unlabelled=torch.as_tensor(unlabelled, device=device), order=order, key=key(seed, device))
        return member, model.to(device)

    def parameters_of(self, index: int) -> list[torch.Tensor]:
        """Member `index`'s parameters (while it trains)."""
        return self.fitter.parameters_of(self.active.index(index))

    def weights_of(self, index: int) -> dict:
        """Member `index`'s parameters and buffers, copied to the CPU (while it trains)."""
        return self.fitter.weights_of(self.active.index(index))

    def _now(self) -> Schedule:
        """Where training is, for the schedules (KL warm-up, M1's stages): the same for every step of an epoch."""
        return schedule(self.epoch - 1, self.plan.epochs, len(self.split.y_train), self.plan.label_count,
                        len(self.members[0].unlabelled))

    @torch.no_grad()
    def _evaluate(self, members: list[Member]) -> torch.Tensor:
        """Every active member's [validation accuracy, test accuracy, mean entropy and mutual information of
        q(y|x) on its unlabelled set], (members, 4)."""
        split, logits = self.split, self.fitter.logits
        accuracy = lambda x, y: (logits(x).argmax(-1) == y).float().mean(-1)  # noqa: E731
        rows = torch.arange(len(members), device=split.x_train.device)[:, None]
        logits_u = logits(split.x_train)[rows, torch.stack([m.unlabelled for m in members])]
        return torch.stack([accuracy(split.x_val, split.y_val), accuracy(split.x_test, split.y_test),
                            entropy(logits_u).mean(-1), torch.func.vmap(mutual_information)(logits_u)], dim=1)

    def epochs(self) -> Iterator[int]:
        """Train epoch by epoch, yielding each epoch's number once every running member has run it. A
        member that diverged or was stopped leaves the fitter (the survivors are re-stacked), so it costs
        nothing from the next epoch on."""
        while self.epoch < self.plan.epochs and self.active:
            self.epoch += 1
            start = time.perf_counter()
            active = [self.members[i] for i in self.active]
            trained = self.fitter.train_epoch(self.split, active, self.plan, self._now())
            for m in active:
                m.compiled |= self.fitter.ran_compiled
            evaluated = self.evaluates(self.epoch)
            measured = self._evaluate(active) if evaluated else torch.full((len(active), 4), math.nan, device=trained.device)
            metrics = torch.cat([trained, measured], dim=1).tolist()  # the epoch's one sync
            seconds = (time.perf_counter() - start) / len(active)  # each member's share of the pack's time
            for i, m, row in zip(self.active, active, metrics):
                if self._record(m, row, seconds, evaluated):
                    m.best_weights = self.weights_of(i)
            self._keep_running()
            yield self.epoch

    def evaluates(self, epoch: int) -> bool:
        """Whether `epoch` is evaluated: every eval_every-th and the last; the others' rows hold NaN there."""
        return epoch % self.plan.eval_every == 0 or epoch == self.plan.epochs

    def _keep_running(self) -> None:
        """The fitter keeps only the members still running."""
        running = [position for position, i in enumerate(self.active) if self.members[i].status == "running"]
        if len(running) < len(self.active):
            if running:
                self.fitter.keep(running)
            self.active = [self.active[position] for position in running]

    def _record(self, m: Member, metrics: list[float], seconds: float, evaluated: bool = True) -> bool:
        """Record one epoch of a member; True when its validation accuracy improved. Patience is counted at
        evaluated epochs, so that a stopped seed's last row holds its accuracies."""
        loss, *parts = metrics[: 1 + len(self.parts)]
        val_acc, test_acc, ent, mi = metrics[1 + len(self.parts):]
        m.wall_s += seconds
        m.history.append(
            dict(seed=m.seed, epoch=self.epoch, loss=loss, **dict(zip(self.parts, parts)),
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
        elif evaluated and self.plan.patience and self.epoch - m.best_epoch >= self.plan.patience:
            m.status, m.stopped_by = "stopped", "patience"  # its test accuracy stays the one at its best validation epoch
        return improved

    def stop(self, plans: Iterable[int], by: str = "scheduler") -> None:
        """Stop the running seeds of these plans after the epoch just trained: they leave the fitter, as the
        seeds patience stops do, and the others go on as they would have."""
        chosen = set(plans)
        for m in self.members:
            if m.plan_index in chosen and m.status == "running":
                m.status, m.stopped_by = "stopped", by
        self._keep_running()

    def objective(self, plan_index: int = 0) -> float:
        """Mean over a plan's seeds of the best validation accuracy; a diverged seed counts 0."""
        return float(np.mean([0.0 if m.status == "diverged" else max(m.best_val_acc, 0.0)
                              for m in self.members if m.plan_index == plan_index]))

    # ------------------------------------------------------------------ checkpoints

    _KEPT = ("status", "stopped_by", "best_val_acc", "test_acc", "best_epoch", "wall_s", "compiled", "history", "best_weights")

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "restarts": self.restarts,
            "active": self.active,
            "fitter": self.fitter.state_dict(),
            "members": [{"order": m.order.get_state(), **{name: getattr(m, name) for name in self._KEPT}} for m in self.members],
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from `state`: counted as a restart."""
        self.epoch = state["epoch"]
        self.restarts = state["restarts"] + 1
        if not state["active"]:  # saved at its end: nothing left to fit, every member's record is in `members`
            self.active = []
        else:
            if state["active"] != self.active:  # the fitter held fewer members when it was saved
                self.fitter.keep([self.active.index(i) for i in state["active"]])
                self.active = list(state["active"])
            self.fitter.load_state_dict(state["fitter"])
        for m, saved in zip(self.members, state["members"], strict=True):
            m.order.set_state(saved["order"])
            for name in self._KEPT:
                setattr(m, name, saved[name] if name in saved else _saved_before(name, saved))


def _saved_before(name: str, saved: dict):
    """A member's field that a checkpoint written before the field existed lacks: what it was then. What stopped a
    seed: patience, the one rule that stopped a seed then; whether its step compiled: not recorded, so no."""
    if name == "stopped_by":
        return "patience" if saved["status"] == "stopped" else None
    return False


class Stack:
    """Models of one architecture as one: each parameter stacked on a leading member dimension, the
    loss vmapped over members, one Adam over the stacks.

    Adam's update is elementwise, so one optimiser over the stacks is each member's own Adam. Its
    learning rate is one number: when the members' differ, Adam steps with 1 and each member's step
    is then scaled by its own rate (the update is lr times a direction that does not depend on lr).
    Each member's learning-rate schedule and gradient clipping are its own (MemberOptimiser).
    """

    def __init__(self, members: list[models.Model], hypers: list[dict], bf16: bool = False, compile: bool = False):
        """`hypers`: each member's hyperparameters, from which its learning rate and loss weights are read."""
        params, buffers = torch.func.stack_module_state(members)
        self.params = {name: p.detach().requires_grad_() for name, p in params.items()}
        self.buffers = buffers
        self.model = copy.deepcopy(members[0]).to("meta")  # the structure functional_call runs
        device = next(iter(self.params.values())).device
        kind = type(members[0])
        self.parts = kind.loss_parts
        self.loss_weights = {name: torch.tensor([float(h.get(name, w.default)) for h in hypers], device=device)
                             for name, w in kind.loss_weights.items()}
        self.settings = MemberOptimiser.of(hypers, device)
        self.optimizer = torch.optim.Adam(self.params.values(), lr=1.0, **_fastest_adam(device))  # its rate is set every step
        self.rates_on_device: tuple[tuple[float, ...], torch.Tensor] | None = None  # the last differing rates, copied once
        # optionally (meant for a GPU; they run on a CPU too, which is how the tests check them):
        # matmuls in bfloat16 (parameters and optimiser stay float32), and the vmapped loss compiled
        self.device_type, self.bf16, self.compile = device.type, bf16, compile
        self.low_precision = low_precision_parameters(self.model) if bf16 else set()
        self.losses = self._vmapped_losses()

    def set_compiled(self, compiled: bool, rebuild: bool = True) -> None:
        """Compile the loss from the next step on, or go back to eager (rebuild=False: keep rebuilds it)."""
        if compiled != self.compile:
            self.compile = compiled
            if rebuild:
                self.losses = self._vmapped_losses()

    def _vmapped_losses(self, mode: str = "default"):
        """The members' losses, vmapped, and compiled (with torch.compile's `mode`) when the stack compiles."""
        vmapped = torch.func.vmap(self._loss, in_dims=(0, 0, 0, 0, 0, 0, 0, None, None))
        low_precision = frozenset(self.low_precision)

        def losses(params, *rest):
            # under bfloat16 the layers' parameters are cast once a step, not at every use, and a bias is added in
            # bfloat16; compiled, the casts (and their gradients' casts back) are part of the graph, fused with
            # their neighbours rather than a kernel each
            params = {name: p.to(torch.bfloat16) if name in low_precision else p for name, p in params.items()}
            return vmapped(params, *rest)

        if not self.compile:
            return losses
        # whole or not at all: a graph break inside vmap would run the entire loss eagerly, silently; and
        # from a clean slate: dynamo would carry a worker's last trial (or this stack before keep) into this
        # one, making a size that differs symbolic (vmap's linear refuses those) and counting its
        # compilations against the limit
        torch.compiler.reset()
        return torch.compile(losses, fullgraph=True, mode=mode)

    def keep(self, positions: list[int]) -> None:
        """Only the members at `positions` from now on: parameters, buffers, loss weights, learning rates and
        Adam's moments of the others are dropped; the survivors continue exactly as they would have."""
        device = next(iter(self.params.values())).device
        index = torch.tensor(positions, device=device)
        saved = self.optimizer.state_dict()
        saved["state"] = {k: {name: v[index] if v.dim() else v for name, v in moments.items()} for k, moments in saved["state"].items()}
        self.params = {name: p.detach()[index].clone().requires_grad_() for name, p in self.params.items()}
        self.buffers = {name: b[index] for name, b in self.buffers.items()}
        self.loss_weights = {name: w[index] for name, w in self.loss_weights.items()}
        self.settings = self.settings.keep(positions)
        self.optimizer = torch.optim.Adam(self.params.values(), lr=saved["param_groups"][0]["lr"], **_fastest_adam(device))
        self.optimizer.load_state_dict(saved)
        self.losses = self._vmapped_losses()

    def _loss(self, params, buffers, x_l, y_l, x_u, weights, key, schedule, dynamic_binarize):
        if dynamic_binarize:
            x_l, x_u = binarize(x_l, fold_in(key, -1)), binarize(x_u, fold_in(key, -2))
        loss, parts = torch.func.functional_call(self.model, (params, buffers), (Batch(x_l, y_l, x_u), weights, schedule, key))
        missing = torch.full_like(loss, float("nan"))
        return loss, torch.stack([loss, *(parts.get(p, missing) for p in self.parts)])

    def step(self, batch, schedule: Schedule, keys: torch.Tensor, dynamic_binarize: bool) -> torch.Tensor:
        """One optimiser step for every member; returns (members, 1 + len(parts)) detached."""
        # autocast casts what meets a matmul in bfloat16 besides the parameters (the data, a float32 draw of z)
        with torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.bf16):
            losses, parts = self.losses(self.params, self.buffers, *batch, self.loss_weights, keys, schedule, dynamic_binarize)
        self.optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()  # members share no parameter: each gets the gradient of its own loss
        self.settings.clip([p.grad for p in self.params.values() if p.grad is not None])
        self._adam_step(self.settings.rates(schedule.epoch))
        return parts.detach()

    def _adam_step(self, rates: list[float]) -> None:
        """Adam at each member's learning rate: at the common one when they agree, else at 1 with each
        member's step then scaled by its own rate (the update is lr times a direction that does not depend on lr)."""
        same = len(set(rates)) == 1
        for group in self.optimizer.param_groups:
            group["lr"] = rates[0] if same else 1.0
        if same:
            self.optimizer.step()
            return
        before = [p.detach().clone() for p in self.params.values()]
        self.optimizer.step()
        if self.rates_on_device is None or self.rates_on_device[0] != tuple(rates):  # once per change, not a copy per step
            self.rates_on_device = (tuple(rates), torch.tensor(rates, device=before[0].device))
        lrs = self.rates_on_device[1]
        with torch.no_grad():
            for p, p0 in zip(self.params.values(), before):
                p.copy_(torch.lerp(p0, p, lrs.view(-1, *[1] * (p.dim() - 1))))

    @torch.no_grad()
    def refresh(self, x: torch.Tensor) -> None:
        """Each member's buffers as its model's refresh sets them from that member's x, (members, points, D)."""
        params = {name: p.detach() for name, p in self.params.items()}
        refreshed = torch.func.vmap(self._refresh, in_dims=(0, 0, 0))(params, self.buffers, x)
        self.buffers = {**self.buffers, **refreshed}

    def _refresh(self, params, buffers, x):
        return torch.func.functional_call(_Method(self.model, "refresh"), _prefixed(params, buffers), (x,))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Every member's class logits for the same x, (members, len(x), classes); in chunks of rows
        that keep every member's hidden activations together small (64k rows of one member)."""
        params = {name: p.detach() for name, p in self.params.items()}
        members = next(iter(params.values())).shape[0]
        logits = torch.func.vmap(self._classify, in_dims=(0, 0, None))
        return torch.cat([logits(params, self.buffers, chunk) for chunk in x.split(max(128, 65536 // members))], dim=1)

    def _classify(self, params, buffers, x):
        return torch.func.functional_call(_Method(self.model, "classify"), _prefixed(params, buffers), (x,))

    def state_dict(self) -> dict:
        return {"params": {k: p.detach() for k, p in self.params.items()}, "buffers": dict(self.buffers),
                "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(state["params"][name])
        self.buffers = {**self.buffers, **state.get("buffers", {})}  # set by refresh (checkpoints before it hold none)
        self.optimizer.load_state_dict(state["optimizer"])


@dataclass(frozen=True)
class MemberOptimiser:
    """The optimiser hyperparameters (models.OPTIMISER) of each member of a stack, in its order.

    The learning rates are Python numbers, computed on the host from the epoch, so a schedule costs no
    device sync. The clipping bounds are tensors over the members, inf where a member's is off, or None
    when every member's is off (the step then does exactly what it did without clipping)."""

    lr: tuple[float, ...]
    decay: tuple[float, ...]
    every: tuple[int, ...]
    floor: tuple[float, ...]
    clip_norm: torch.Tensor | None
    clip_value: torch.Tensor | None

    @classmethod
    def of(cls, hypers: list[dict], device) -> MemberOptimiser:
        def values(name: str) -> list[float]:
            return [float(h.get(name, models.OPTIMISER[name].default)) for h in hypers]

        def bounds(name: str) -> torch.Tensor | None:
            limits = values(name)
            return torch.tensor([v if v > 0 else math.inf for v in limits], device=device) if any(limits) else None

        return cls(tuple(values("lr")), tuple(values("lr_decay")), tuple(int(v) for v in values("lr_decay_every")),
                   tuple(values("lr_min")), bounds("clip_norm"), bounds("clip_value"))

    def rates(self, epoch: float) -> list[float]:
        """Each member's learning rate during the epoch that starts `epoch` epochs in: lr x lr_decay ^ (whole
        lr_decay_every periods done), not below lr_min (nor raised by it above lr)."""
        return [max(lr * decay ** (int(epoch) // every), min(floor, lr))
                for lr, decay, every, floor in zip(self.lr, self.decay, self.every, self.floor, strict=True)]

    def keep(self, positions: list[int]) -> MemberOptimiser:
        """The settings of the members at `positions`, in that order."""
        pick = lambda values: tuple(values[i] for i in positions)  # noqa: E731
        cut = lambda bound: None if bound is None else bound[torch.tensor(positions, device=bound.device)]  # noqa: E731
        return MemberOptimiser(pick(self.lr), pick(self.decay), pick(self.every), pick(self.floor), cut(self.clip_norm),
                               cut(self.clip_value))

    def clip(self, grads: list[torch.Tensor]) -> None:
        """Clip stacked gradients (members first) in place: each member's scaled to at most its clip_norm over
        all its parameters, then each entry to [-clip_value, clip_value]. torch.nn.utils.clip_grad_norm_ and
        clip_grad_value_ would take one norm over the whole stack and one bound for every member, so one
        member's gradient would shrink the others'; these are the same formulas member by member."""
        if self.clip_norm is not None:
            norms = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.reshape(len(g), -1), dim=1) for g in grads]), dim=0)
            scale = (self.clip_norm / (norms + 1e-6)).clamp(max=1.0)  # clip_grad_norm_'s coefficient
            for g in grads:
                g.mul_(scale.view(-1, *[1] * (g.dim() - 1)))
        if self.clip_value is not None:
            for g in grads:
                bound = self.clip_value.view(-1, *[1] * (g.dim() - 1))
                g.clamp_(-bound, bound)


def low_precision_parameters(model: torch.nn.Module) -> set[str]:
    """The names of the parameters of the layers that multiply in bfloat16 (networks.LOW_PRECISION_LAYERS, and
    JointLinear): the other parameters (a learned prior's, say) stay float32 wherever they are used."""
    return {f"{owner}.{name}" if owner else name for owner, module in model.named_modules()
            if isinstance(module, (*LOW_PRECISION_LAYERS, JointLinear)) for name, _ in module.named_parameters()}


class _Method(torch.nn.Module):
    """A model's method (classify, refresh) as a module's forward, for functional_call."""

    def __init__(self, model: models.Model, method: str):
        super().__init__()
        self.model, self.method = model, method

    def forward(self, x):
        return getattr(self.model, self.method)(x)


def _prefixed(*tensors: dict) -> dict:
    return {f"model.{name}": t for group in tensors for name, t in group.items()}


def _fastest_adam(device: torch.device) -> dict:
    """Fused Adam where this torch has it for the device (one kernel for every parameter), else foreach."""
    try:
        torch.optim.Adam([torch.zeros(1, device=device, requires_grad=True)], fused=True)
        return {"fused": True}
    except (RuntimeError, ValueError):
        return {"foreach": True}

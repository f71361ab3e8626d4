"""M2 in Pyro at sweeper bench's MNIST shapes, timed as `sweeper bench --model m2 --shape mnist` times sweeper's.

    pip install pyro-ppl            # not a dependency of sweeper
    OMP_NUM_THREADS=1 python benchmarks/pyro_m2.py [--steps 20]

The model and guide of Kingma et al.'s M2 written for Pyro: p(y) p(z) p(x|y,z) with a Bernoulli p(x|y,z),
q(z|x,y) and q(y|x), networks 784-500-50 with softplus hidden layers (sweeper's defaults). The guide's y is
enumerated in parallel over the ten labels (`config_enumerate`, TraceEnum_ELBO), as Pyro's own SS-VAE example
does. One step, as in sweeper, is one Adam step on a batch of 100 labelled and 100 unlabelled points of random
binary data: the labelled ELBO (Trace_ELBO: y is observed), the unlabelled one with y summed out, and alpha times the classifier's
cross-entropy on the labelled batch. float32, one configuration: compare with `sweeper bench --model m2
--shape mnist` (pack 1, float32) and with sweeper's packed and bfloat16 steps. Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import time

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.infer import Trace_ELBO, TraceEnum_ELBO, config_enumerate
from torch import nn

FEATURES, HIDDEN, LATENT, CLASSES, BATCH = 784, 500, 50, 10, 100


def network(n_in: int, n_out: int) -> nn.Module:
    return nn.Sequential(nn.Linear(n_in, HIDDEN), nn.Softplus(), nn.Linear(HIDDEN, n_out))


class M2(nn.Module):
    def __init__(self):
        super().__init__()
        self.decoder = network(LATENT + CLASSES, FEATURES)  # p(x | y, z): logits
        self.encoder = network(FEATURES + CLASSES, 2 * LATENT)  # q(z | x, y): mean and log-variance
        self.classifier = network(FEATURES, CLASSES)  # q(y | x): logits

    def model(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        pyro.module("m2", self)
        with pyro.plate("points", x.shape[0]):
            z = pyro.sample("z", dist.Normal(x.new_zeros(LATENT), 1.0).to_event(1))
            y = pyro.sample("y", dist.OneHotCategorical(logits=x.new_zeros(CLASSES)), obs=y)
            pyro.sample("x", dist.Bernoulli(logits=self.decoder(torch.cat([z, y], -1))).to_event(1), obs=x)

    def guide(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        with pyro.plate("points", x.shape[0]):
            if y is None:
                y = pyro.sample("y", dist.OneHotCategorical(logits=self.classifier(x)))
            # y is enumerated: (10, B, 10) against x's (B, 784)
            mean, log_var = self.encoder(torch.cat([x.expand(*y.shape[:-1], -1), y], -1)).chunk(2, -1)
            pyro.sample("z", dist.Normal(mean, (0.5 * log_var).exp()).to_event(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--alpha", type=float, default=1.0)
    args = parser.parse_args()
    pyro.set_rng_seed(0)
    m2 = M2()
    elbo, labelled_elbo = TraceEnum_ELBO(max_plate_nesting=1), Trace_ELBO()  # y observed: nothing to enumerate
    unlabelled_guide = config_enumerate(m2.guide, "parallel", expand=True)
    optimizer = torch.optim.Adam(m2.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    x = (torch.rand(2 * BATCH, FEATURES, generator=generator) < 0.5).float()
    labels = torch.randint(0, CLASSES, (BATCH,), generator=generator)
    x_l, x_u, y_l = x[:BATCH], x[BATCH:], F.one_hot(labels, CLASSES).float()

    def step() -> float:
        loss = (labelled_elbo.differentiable_loss(m2.model, m2.guide, x_l, y_l)
                + elbo.differentiable_loss(m2.model, unlabelled_guide, x_u)
                + args.alpha * F.cross_entropy(m2.classifier(x_l), labels, reduction="sum"))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.detach()

    for _ in range(3):  # warm-up
        step()
    start = time.perf_counter()
    for _ in range(args.steps):
        last = step()
    seconds = (time.perf_counter() - start) / args.steps
    print(json.dumps({"case": "pyro_m2", "pyro": pyro.__version__, "threads": torch.get_num_threads(), "step_ms": round(1000 * seconds, 2),
                      "samples_per_s": round(2 * BATCH / seconds, 1), "loss_finite": bool(torch.isfinite(last))}))


if __name__ == "__main__":
    main()

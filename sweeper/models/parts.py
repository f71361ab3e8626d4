"""Pieces every model is built from: networks, likelihoods, KL, label enumeration, noise.

Pure torch. Randomness comes from explicit integer keys rather than torch's global
generator, so a loss is a function of (parameters, batch, hyperparameters, key) alone:
the same key gives the same noise whether a configuration trains alone or stacked
with others under vmap.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------- hyperparameters


@dataclass(frozen=True)
class Hyper:
    """A hyperparameter a model takes: its default and the values it accepts."""

    default: float
    low: float | None = None
    high: float | None = None
    integer: bool = False
    help: str = ""

    def check(self, value) -> str | None:
        """Why `value` is not allowed, or None."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"expected a number, got {value!r}"
        if self.integer and not float(value).is_integer():
            return f"expected an integer, got {value!r}"
        if not math.isfinite(value):
            return f"expected a finite number, got {value!r}"
        if self.low is not None and value < self.low:
            return f"must be >= {self.low:g}, got {value!r}"
        if self.high is not None and value > self.high:
            return f"must be <= {self.high:g}, got {value!r}"
        return None


# Network shape hyperparameters shared by the models (Jurasiński / Kingma defaults).
ARCHITECTURE = {
    "hidden": Hyper(500, low=1, integer=True, help="units in each hidden layer"),
    "latent": Hyper(50, low=1, integer=True, help="size of z"),
}

# ---------------------------------------------------------------- networks


def mlp(sizes: list[int], activation=nn.Softplus) -> nn.Sequential:
    """Linear layers with `activation` between them (none after the last), Xavier init."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = nn.Linear(n_in, n_out)
        nn.init.xavier_uniform_(linear.weight)
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class JointLinear(nn.Module):
    """W [a; b; ...] + bias over several inputs, as W_a a + W_b b + ... + bias.

    The same map as a Linear over the concatenation (Xavier init over the whole W), but
    each input keeps its own shape: an x of shape (B, 1, D) and every label (1, K, K)
    broadcast to (B, K, H), so x is projected once rather than once per label.
    """

    def __init__(self, in_sizes: tuple[int, ...], n_out: int):
        super().__init__()
        bound = math.sqrt(6.0 / (sum(in_sizes) + n_out))
        self.weights = nn.ParameterList(nn.Parameter(torch.empty(n_out, n).uniform_(-bound, bound)) for n in in_sizes)
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return sum((F.linear(x, w) for x, w in zip(inputs, self.weights, strict=True)), self.bias)


class ConditionalMLP(nn.Module):
    """An MLP over several inputs (e.g. x and y): a JointLinear first layer, then `mlp`."""

    def __init__(self, in_sizes: tuple[int, ...], hidden: int, n_out: int, activation=nn.Softplus):
        super().__init__()
        self.first = JointLinear(in_sizes, hidden)
        self.activation = activation()
        self.rest = mlp([hidden, n_out])

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.rest(self.activation(self.first(*inputs)))


class GaussianEncoder(nn.Module):
    """q(z | inputs) = N(mu, diag(exp(log_var))), from a ConditionalMLP over the inputs."""

    def __init__(self, in_sizes: tuple[int, ...], hidden: int, latent: int):
        super().__init__()
        self.body = ConditionalMLP(in_sizes, hidden, 2 * latent)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_var = self.body(*inputs).chunk(2, dim=-1)
        return mu, log_var


# ---------------------------------------------------------------- densities


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x | logits) summed over the last dimension; x may be grey levels in [0, 1].

    x log sigmoid(l) + (1 - x) log sigmoid(-l) = x l - softplus(l); x broadcasts against l.
    """
    return (x * logits - F.softplus(logits)).sum(-1)


def kl_standard_normal(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, exp(log_var)) || N(0, I) ), analytic, summed over the last dimension."""
    return 0.5 * (mu.square() + log_var.exp() - 1.0 - log_var).sum(-1)


def reparameterise(mu: torch.Tensor, log_var: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    return mu + (0.5 * log_var).exp() * eps


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """H of the categorical given by logits, over the last dimension."""
    log_p = logits.log_softmax(-1)
    return -(log_p.exp() * log_p).sum(-1)


def enumerate_labels(x: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every row of x with every label, as broadcastable views: (B, 1, D) and one-hot (1, K, K).

    A model evaluates L(x, y) for all y in one batched pass, with no loop and no copy of x.
    """
    return x.unsqueeze(1), torch.eye(n_classes, dtype=x.dtype, device=x.device).unsqueeze(0)


def one_hot(y: torch.Tensor, n_classes: int, dtype: torch.dtype) -> torch.Tensor:
    return F.one_hot(y, n_classes).to(dtype)


# ---------------------------------------------------------------- keys and noise
# A key is an int64 tensor. splitmix64's finaliser turns (key, counter) into 64 random
# bits; int64 arithmetic wraps, and the masks make torch's arithmetic shifts logical.

_GOLDEN = -7046029254386353131  # 0x9E3779B97F4A7C15 as a signed int64
_M1 = -4658895280553007687  # 0xBF58476D1CE4E5B9
_M2 = -7723592293110705685  # 0x94D049BB133111EB


def _mix(x: torch.Tensor) -> torch.Tensor:
    x = x ^ ((x >> 30) & ((1 << 34) - 1))
    x = x * _M1
    x = x ^ ((x >> 27) & ((1 << 37) - 1))
    x = x * _M2
    return x ^ ((x >> 31) & ((1 << 33) - 1))


def key(seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    return _mix(torch.tensor(seed, dtype=torch.int64, device=device) * _GOLDEN + 1)


def fold_in(key: torch.Tensor, data: int | torch.Tensor) -> torch.Tensor:
    """A new key derived from `key` and `data` (a step counter, a stream name's index)."""
    return _mix(key ^ _mix(torch.as_tensor(data, dtype=torch.int64, device=key.device) * _GOLDEN + 2))


def _uniform64(key: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    counters = torch.arange(math.prod(shape), dtype=torch.int64, device=key.device)
    bits = _mix(key * _GOLDEN + counters * _M2)
    # top 24 bits -> uniform in (0, 1), centred in its bucket so 0 and 1 never occur
    return ((((bits >> 40) & 0xFFFFFF).to(torch.float64) + 0.5) / float(1 << 24)).reshape(shape)


def uniform(key: torch.Tensor, shape: tuple[int, ...], dtype=torch.float32) -> torch.Tensor:
    """Uniform noise in (0, 1) of `shape`, a pure function of `key`."""
    return _uniform64(key, shape).to(dtype)


def normal(key: torch.Tensor, shape: tuple[int, ...], dtype=torch.float32) -> torch.Tensor:
    """Standard normal noise of `shape`, a pure function of `key`."""
    return torch.special.ndtri(_uniform64(key, shape)).to(dtype)

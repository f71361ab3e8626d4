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


def shown(value, limit: int = 40) -> str:
    """A value's repr as a message shows it, cut to `limit` characters."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an integer of more digits than Python prints
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Hyper:
    """A hyperparameter a model takes: its default and the values it accepts.

    Numbers have bounds; options (e.g. the likelihood) have `choices` and a text default.
    `applies_if` (option, value): the hyperparameter only matters when that option has that value
    (sigma2 only with a Gaussian likelihood); otherwise a model ignores it.
    """

    default: float | str
    low: float | None = None
    high: float | None = None
    integer: bool = False
    help: str = ""
    choices: tuple[str, ...] | None = None
    applies_if: tuple[str, str] | None = None

    def check(self, value) -> str | None:
        """Why `value` is not allowed, or None."""
        if self.choices is not None:
            ok = isinstance(value, str) and value in self.choices
            return None if ok else f"expected one of {', '.join(self.choices)}, got {shown(value)}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"expected a number, got {shown(value)}"
        try:
            number = float(value)
        except OverflowError:
            return f"expected a finite number, got {shown(value)}"
        if not math.isfinite(number):
            return f"expected a finite number, got {shown(value)}"
        if self.integer and not number.is_integer():
            return f"expected an integer, got {shown(value)}"
        if self.integer and abs(number) > 2**31:
            return f"must be at most {2**31}, got {shown(value)}"
        if self.low is not None and value < self.low:
            return f"must be >= {self.low:g}, got {shown(value)}"
        if self.high is not None and value > self.high:
            return f"must be <= {self.high:g}, got {shown(value)}"
        return None


# Sizes a spec may ask for: past these a layer or a stack of them needs more memory than any one device has
# (a 65,536-square float32 weight is 16 GiB); what fits a given machine is checked before a sweep (estimate.check_memory).
MAX_WIDTH = 65_536
MAX_DEPTH = 64
MAX_SAMPLES = 1_000

# Network shape hyperparameters shared by the models (Jurasiński / Kingma defaults).
ARCHITECTURE = {
    "hidden": Hyper(500, low=1, high=MAX_WIDTH, integer=True, help="units in each hidden layer"),
    "latent": Hyper(50, low=1, high=MAX_WIDTH, integer=True, help="size of z"),
    "network": Hyper("mlp", choices=("mlp", "cnn"), help="MLP, or Raj's CNN for 28x28x1 and 32x32x3 images"),
    "depth": Hyper(1, low=1, high=MAX_DEPTH, integer=True, help="hidden layers of the MLP encoders and decoders"),
}

# How the labelled and the unlabelled terms of a semi-supervised objective are weighted.
WEIGHTING = {
    "weighting": Hyper("part_means", choices=("part_means", "dataset_sum"),
                       help="part_means: mean labelled term + mean unlabelled term (Jurasiński); dataset_sum: the "
                            "sum over the training set (Kingma), estimated from the batch, per training point"),
}


# Training the unlabelled term alone first: a VAE pretrained on every x before the labels count
# (Jurasiński §3.2, Fig. 5: M2 started from a pretrained VAE learns to ignore y).
PRETRAIN = {
    "pretrain": Hyper(0.0, low=0.0, high=1.0,
                      help="share of the epochs that train the unlabelled term alone, before the labelled one joins"),
}


def semi_supervised_loss(labelled: torch.Tensor, unlabelled: torch.Tensor, weighting: str, labelled_share,
                         pretraining: bool = False) -> torch.Tensor:
    """The loss from per-example labelled and unlabelled losses (minus bounds, plus weighted penalties).

    part_means:  mean(labelled) + mean(unlabelled): each part weighs the same whatever the data.
    dataset_sum: share * mean(labelled) + (1 - share) * mean(unlabelled), share = N_l / (N_l + N_u):
                 an unbiased estimate of (sum over the N_l labelled + sum over the N_u unlabelled) / (N_l + N_u),
                 the data-set objective per training point, whatever the batch ratio.
    A batch-level term (a scalar) may be added to either part. While `pretraining`, the unlabelled part alone.
    """
    if pretraining:
        return unlabelled.mean()
    if weighting == "part_means":
        return labelled.mean() + unlabelled.mean()
    return labelled_share * labelled.mean() + (1 - labelled_share) * unlabelled.mean()


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
        terms = sorted((F.linear(x, w) for x, w in zip(inputs, self.weights, strict=True)), key=torch.Tensor.numel)
        # the bias in the terms' dtype, as nn.Linear adds it: under bfloat16 autocast a float32 bias would
        # promote the whole (B, K, H) sum, and the activation after it, back to float32
        return sum(terms[1:], self.bias.to(terms[0].dtype) + terms[0])  # smallest first: one pass over the broadcast shape


class ConditionalMLP(nn.Module):
    """An MLP over several inputs (e.g. x and y): a JointLinear first layer, then `mlp`; with depth 0,
    the JointLinear alone, straight to the outputs."""

    def __init__(self, in_sizes: tuple[int, ...], hidden: int, n_out: int, activation=nn.Softplus, depth: int = 1):
        super().__init__()
        self.first = JointLinear(in_sizes, hidden if depth else n_out)
        self.activation = activation() if depth else nn.Identity()
        self.rest = mlp([hidden] * depth + [n_out], activation) if depth else nn.Identity()

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.rest(self.activation(self.first(*inputs)))


class ImageFeatures(nn.Module):
    """Raj's CNN trunk: two stride-2 3x3 convolutions (32, 64 filters, ReLU), flattened, then a fully
    connected layer of `width` units (ReLU; the paper's 512).

    Takes flat images (..., C*H*W) and returns (..., width); leading dimensions pass through.
    """

    def __init__(self, image_shape: tuple[int, int, int], width: int = 512):
        super().__init__()
        channels, height, width_px = image_shape
        self.image_shape = image_shape
        self.convolutions = nn.Sequential(
            nn.Conv2d(channels, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
        )
        self.dense = nn.Sequential(nn.Linear(64 * (height // 4) * (width_px // 4), width), nn.ReLU())
        self.n_out = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        images = x.reshape(-1, *self.image_shape)
        return self.dense(self.convolutions(images).flatten(1)).reshape(*lead, self.n_out)


class ImageDecoder(nn.Module):
    """Raj's CNN decoder: a fully connected layer of `width` units over its inputs (z and y, ReLU), one
    to 64 x H/4 x W/4 (3136 for MNIST, ReLU), then two stride-2 transposed convolutions (32 filters,
    ReLU; then C), flattened to (..., C*H*W). The paper's second table lists a third transposed
    convolution, which would give 56 x 56 from 7 x 7; its first table's shapes have two, as here."""

    def __init__(self, in_sizes: tuple[int, ...], image_shape: tuple[int, int, int], width: int = 512):
        super().__init__()
        channels, height, width_px = image_shape
        self.grid = (64, height // 4, width_px // 4)
        self.first = JointLinear(in_sizes, width)
        self.dense = nn.Sequential(nn.ReLU(), nn.Linear(width, math.prod(self.grid)), nn.ReLU())
        self.deconvolutions = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(32, channels, 3, stride=2, padding=1, output_padding=1),
        )
        self.n_out = channels * height * width_px

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        hidden = self.dense(self.first(*inputs))
        lead = hidden.shape[:-1]
        return self.deconvolutions(hidden.reshape(-1, *self.grid)).reshape(*lead, self.n_out)


class Network:
    """Builds the model's networks as an MLP or as Raj's CNN, for inputs of `input_shape`.

    MLP: every network has its own hidden layers of `hidden` softplus units (Kingma, Jurasiński).
    CNN: one trunk (ImageFeatures, `hidden` units at its end) shared by every network built here that
    reads x, as in Raj's encoder, whose z and y heads sit on the same 512 features: q(y|x) is a
    linear head on it, q(z|x, y) a linear layer over (features, y). Raj's Eq. (5) and his Optimized-ELBO
    draw z from q(z|X) alone (optimized_elbo's posterior: x); his labelled M2 bound (Eq. 6) from q(z|X, y).
    """

    def __init__(self, kind: str, input_shape: tuple[int, ...], hidden: int, depth: int = 1):
        if kind == "cnn" and (len(input_shape) != 3 or input_shape[1] % 4 or input_shape[2] % 4):
            raise ValueError(f"network cnn needs images with sides divisible by 4; this data has shape {input_shape}")
        self.kind, self.input_shape, self.hidden, self.depth = kind, input_shape, hidden, depth
        self.n_features = math.prod(input_shape)
        self.trunk = ImageFeatures(input_shape, hidden) if kind == "cnn" else None

    def features(self) -> tuple[nn.Module, int]:
        """A trunk for x and the size of what it gives (the CNN's: the same module every time)."""
        if self.trunk is not None:
            return self.trunk, self.trunk.n_out
        return nn.Identity(), self.n_features

    def classifier(self, n_classes: int) -> nn.Module:
        """q(y|x): logits."""
        trunk, n = self.features()
        return nn.Sequential(trunk, nn.Linear(n, n_classes) if self.trunk is not None else mlp([n, self.hidden, n_classes]))

    def encoder(self, *other_inputs: int, latent: int) -> GaussianEncoder:
        """q(z | x, others...) with a Gaussian over `latent` dimensions."""
        trunk, n = self.features()
        return GaussianEncoder((n, *other_inputs), self.hidden, latent, trunk, 0 if self.trunk is not None else self.depth)

    def gaussian_decoder(self, *in_sizes: int) -> GaussianEncoder:
        """p(x | inputs) = N(mean, diag(exp(log_var))): both from the inputs, through MLP hidden layers."""
        if self.kind == "cnn":
            raise ValueError("a learned output variance is built for MLPs (M1+M2's M2 on features) only")
        return GaussianEncoder(in_sizes, self.hidden, self.n_features, depth=self.depth)

    def decoder(self, *in_sizes: int) -> nn.Module:
        """p(x | inputs): the logits or means of x, from the given inputs."""
        if self.kind == "cnn":
            return ImageDecoder(in_sizes, self.input_shape, self.hidden)
        return ConditionalMLP(in_sizes, self.hidden, self.n_features, depth=self.depth)


class GaussianEncoder(nn.Module):
    """q(z | x, others) = N(mu, diag(exp(log_var))): a trunk for x, then a ConditionalMLP."""

    def __init__(self, in_sizes: tuple[int, ...], hidden: int, latent: int, trunk: nn.Module | None = None, depth: int = 1):
        super().__init__()
        self.trunk = trunk or nn.Identity()
        self.body = ConditionalMLP(in_sizes, hidden, 2 * latent, depth=depth)

    def forward(self, x: torch.Tensor, *others: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_var = self.body(self.trunk(x), *others).chunk(2, dim=-1)
        return mu, log_var


# ---------------------------------------------------------------- densities


def bernoulli_log_likelihood(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x | logits) summed over the last dimension; x may be grey levels in [0, 1].

    x log sigmoid(l) + (1 - x) log sigmoid(-l) = x l - softplus(l); x broadcasts against l.
    Written as that sum rather than as binary cross-entropy: under vmap torch has no batched
    cross-entropy and decomposes it into a dozen passes over x broadcast to every label.
    """
    return torch.linalg.vecdot(logits, x) - F.softplus(logits).sum(-1)


def gaussian_log_likelihood(mean: torch.Tensor, x: torch.Tensor, sigma2: torch.Tensor | float,
                            observed: torch.Tensor | None = None) -> torch.Tensor:
    """log N(x | mean, sigma2 I) summed over the last dimension; sigma2 weighs reconstruction. `observed`: a 0/1
    mask of the dimensions modelled, the others left out of the sum (M1+M2's dropped features)."""
    if observed is None:
        d = x.shape[-1]
        return -0.5 * (x - mean).square().sum(-1) / sigma2 - 0.5 * d * torch.log(2 * math.pi * torch.as_tensor(sigma2))
    d = observed.sum()
    return -0.5 * ((x - mean).square() * observed).sum(-1) / sigma2 - 0.5 * d * torch.log(2 * math.pi * torch.as_tensor(sigma2))


def gaussian_log_likelihood_learned(mean: torch.Tensor, log_var: torch.Tensor, x: torch.Tensor,
                                    observed: torch.Tensor | None = None) -> torch.Tensor:
    """log N(x | mean, diag(exp(log_var))) summed over the last dimension: a variance per dimension, which the
    decoder outputs beside the mean (Kingma's p(z1 | y, z2) in M1+M2). `observed`: as gaussian_log_likelihood's."""
    terms = (x - mean).square() * (-log_var).exp() + log_var + math.log(2 * math.pi)
    return -0.5 * (terms if observed is None else terms * observed).sum(-1)


def log_normal(z: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(z | mu, diag(exp(log_var))) summed over the last dimension."""
    return -0.5 * ((z - mu).square() / log_var.exp() + log_var + math.log(2 * math.pi)).sum(-1)


def kl_standard_normal(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, exp(log_var)) || N(0, I) ), analytic, summed over the last dimension."""
    return 0.5 * (mu.square() + log_var.exp() - 1.0 - log_var).sum(-1)


def reparameterise(mu: torch.Tensor, log_var: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    return mu + (0.5 * log_var).exp() * eps


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """H of the categorical given by logits, over the last dimension."""
    log_p = logits.log_softmax(-1)
    return -(log_p.exp() * log_p).sum(-1)


def mutual_information(logits: torch.Tensor) -> torch.Tensor:
    """I(y; x) over a batch: H(mean q(y|x)) - mean H(q(y|x))."""
    q = logits.softmax(-1)
    mean_q = q.mean(0)
    return -(mean_q * mean_q.clamp_min(1e-12).log()).sum() - entropy(logits).mean()


def smooth_labels(y: torch.Tensor, n_classes: int, epsilon, dtype=torch.float32) -> torch.Tensor:
    """1 - epsilon on the label, epsilon / (K - 1) on each other class."""
    hot = one_hot(y, n_classes, dtype)
    return hot * (1 - epsilon) + (1 - hot) * (epsilon / (n_classes - 1))


def reverse_gradient(x: torch.Tensor) -> torch.Tensor:
    """x going forward, -gradient going back: one optimiser then plays a min-max game."""
    return 2 * x.detach() - x


def one_hot(y: torch.Tensor, n_classes: int, dtype: torch.dtype) -> torch.Tensor:
    return F.one_hot(y, n_classes).to(dtype)


ENUMERATIONS = ("parallel", "sequential")


def over_labels(bound, n_classes: int, *inputs: torch.Tensor, enumeration: str = "parallel"):
    """bound(*inputs, y, label) for every label, stacked on a label dimension after the batch ones.

    `bound` is written once for broadcastable tensors: it gets each input with a label
    dimension inserted before its last, (..., B, 1, D), every one-hot label (1, K, K) and
    label = slice(None), and returns tensors of shape (..., B, K); it indexes any per-label
    noise with `label`. With enumeration="sequential" the same bound is called once per label
    instead, with the inputs as they are and y one label: the slow, obvious way, kept as the
    reference the parallel pass is tested against (Pyro's parallel and sequential enumeration).
    """
    first = inputs[0]
    if enumeration == "parallel":
        eye = torch.eye(n_classes, dtype=first.dtype, device=first.device).unsqueeze(0)
        return bound(*(x.unsqueeze(-2) for x in inputs), eye, slice(None))
    eye = torch.eye(n_classes, dtype=first.dtype, device=first.device)
    per_label = [bound(*inputs, eye[k].expand(*first.shape[:-1], n_classes), k) for k in range(n_classes)]
    at = first.dim() - 1  # the label dimension comes after the batch dimensions
    if isinstance(per_label[0], tuple):
        return tuple(torch.stack(parts, dim=at) for parts in zip(*per_label))
    return torch.stack(per_label, dim=at)


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


_BUCKET_BITS = 23  # a uniform's resolution: (k + 1/2) / 2^23 is exact in float32, and never 0 or 1
_BUCKETS = 1 << _BUCKET_BITS


def _hash(key: torch.Tensor, counters: torch.Tensor) -> torch.Tensor:
    # the finaliser spreads a counter's low bits over all 64. No counter is multiplied by a constant:
    # inductor compiles an arange times a constant that wraps into wrong numbers and a corrupted heap
    return _mix(key ^ counters)


def _buckets(key: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """A 23-bit integer for each counter in `index`: counters 2i and 2i+1 share one 64-bit hash, taking
    its top and its next 23 bits, so a draw of n numbers costs n/2 hashes."""
    bits = _hash(key, index >> 1)
    shift = (64 - _BUCKET_BITS) - _BUCKET_BITS * (index & 1)  # the pair's first: bits 41-63; its second: bits 18-40
    return torch.bitwise_right_shift(bits, shift) & (_BUCKETS - 1)


def _all_buckets(key: torch.Tensor, n: int) -> torch.Tensor:
    """_buckets of counters 0 .. n-1, hashing each pair once."""
    bits = _hash(key, torch.arange((n + 1) // 2, dtype=torch.int64, device=key.device))
    both = torch.stack([bits >> (64 - _BUCKET_BITS), bits >> (64 - 2 * _BUCKET_BITS)], dim=-1) & (_BUCKETS - 1)
    return both.reshape(*both.shape[:-2], -1)[..., :n]


def _to_uniform(buckets: torch.Tensor, dtype) -> torch.Tensor:
    return ((buckets.to(torch.float32) + 0.5) * (1.0 / _BUCKETS)).to(dtype)


@torch.library.custom_op("sweeper::erfinv", mutates_args=())
def _erfinv(u: torch.Tensor) -> torch.Tensor:
    """torch.erfinv, opaque to torch.compile. Inductor's CPU code computes erfinv one element at a time,
    about 60 times slower than ATen's vectorised kernel, and to other last bits: compiled noise would
    then differ from eager noise. As a custom op the compiled step calls ATen's kernel."""
    return torch.erfinv(u)


@_erfinv.register_fake
def _(u):
    return torch.empty_like(u)


@_erfinv.register_vmap
def _(info, in_dims, u):
    return _erfinv(u), in_dims[0]


def _to_normal(buckets: torch.Tensor, dtype) -> torch.Tensor:
    # the normal quantile of u, through erfinv (vectorised on the CPU; ndtri is not). Eagerly, straight to
    # ATen: the custom op's own dispatch costs about 0.15 ms a call under vmap
    u = 2.0 * _to_uniform(buckets, torch.float32) - 1.0
    return (math.sqrt(2.0) * (_erfinv(u) if torch.compiler.is_compiling() else torch.erfinv(u))).to(dtype)


def uniform(key: torch.Tensor, shape: tuple[int, ...], dtype=torch.float32) -> torch.Tensor:
    """Uniform noise in (0, 1) of `shape`, a pure function of `key`."""
    return _to_uniform(_all_buckets(key, math.prod(shape)), dtype).reshape(shape)


def normal(key: torch.Tensor, shape: tuple[int, ...], dtype=torch.float32) -> torch.Tensor:
    """Standard normal noise of `shape`, a pure function of `key`."""
    return _to_normal(_all_buckets(key, math.prod(shape)), dtype).reshape(shape)


def normal_at(key: torch.Tensor, index: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """normal(key, shape).flatten()[index], drawing only those: a few elements of a large draw."""
    return _to_normal(_buckets(key, index), dtype)

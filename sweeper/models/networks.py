"""The networks models are built from: MLPs and Raj's CNN, the Gaussian encoders, the joint input layer."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# The hidden layers' nonlinearity of the MLP networks, by the name the `activation` hyperparameter gives.
ACTIVATIONS = {"softplus": nn.Softplus, "relu": nn.ReLU}

# The layers whose parameters train.Stack casts to bfloat16 once a step when the step runs in bfloat16. The
# convolutions are left to autocast, which casts their weights at each use: under vmap, torch's batched
# convolution meets a bfloat16 bias with a float32 input and refuses it.
LOW_PRECISION_LAYERS = (nn.Linear,)


class Float32(nn.Module):
    """A network's output in float32. Under bfloat16 the hidden activations stay bfloat16 from layer to layer,
    and what the bounds read (logits, means, log-variances) is float32: the likelihoods, the KL and the
    log-softmax are computed there. In float32 it is a no-op."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float()


def mlp(sizes: list[int], activation=nn.Softplus) -> nn.Sequential:
    """Linear layers with `activation` between them (none after the last), Xavier init; the output in float32."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = nn.Linear(n_in, n_out)
        nn.init.xavier_uniform_(linear.weight)
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers, Float32())  # no parameters: the layers' names are unchanged


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
        self.rest = mlp([hidden] * depth + [n_out], activation) if depth else Float32()

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
        # in the transposed convolutions' own dtype: CPU autocast leaves them in float32, and a bfloat16 input
        # from the dense layers would not meet their weights
        hidden = self.dense(self.first(*inputs)).to(self.deconvolutions[0].weight.dtype)
        lead = hidden.shape[:-1]
        return self.deconvolutions(hidden.reshape(-1, *self.grid)).reshape(*lead, self.n_out).float()  # as Float32


class Network:
    """Builds the model's networks as an MLP or as Raj's CNN, for inputs of `input_shape`.

    MLP: every network has its own hidden layers of `hidden` units, softplus (Kingma, Jurasiński) or `activation`.
    CNN: one trunk (ImageFeatures, `hidden` units at its end) shared by every network built here that
    reads x, as in Raj's encoder, whose z and y heads sit on the same 512 features: q(y|x) is a
    linear head on it, q(z|x, y) a linear layer over (features, y). Raj's Eq. (5) and his Optimized-ELBO
    draw z from q(z|X) alone (optimized_elbo's posterior: x); his labelled M2 bound (Eq. 6) from q(z|X, y).
    """

    def __init__(self, kind: str, input_shape: tuple[int, ...], hidden: int, depth: int = 1, activation: str = "softplus"):
        if kind == "cnn" and (len(input_shape) != 3 or input_shape[1] % 4 or input_shape[2] % 4):
            raise ValueError(f"network cnn needs images with sides divisible by 4; this data has shape {input_shape}")
        self.kind, self.input_shape, self.hidden, self.depth = kind, input_shape, hidden, depth
        self.activation = ACTIVATIONS[activation]  # the MLPs'
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
        if self.trunk is not None:
            return nn.Sequential(trunk, nn.Linear(n, n_classes), Float32())
        return nn.Sequential(trunk, mlp([n, self.hidden, n_classes], self.activation))

    def encoder(self, *other_inputs: int, latent: int) -> GaussianEncoder:
        """q(z | x, others...) with a Gaussian over `latent` dimensions."""
        trunk, n = self.features()
        return GaussianEncoder((n, *other_inputs), self.hidden, latent, trunk, 0 if self.trunk is not None else self.depth,
                               self.activation)

    def gaussian_decoder(self, *in_sizes: int) -> GaussianEncoder:
        """p(x | inputs) = N(mean, diag(exp(log_var))): both from the inputs, through MLP hidden layers."""
        if self.kind == "cnn":
            raise ValueError("a learned output variance is built for MLPs (M1+M2's M2 on features) only")
        return GaussianEncoder(in_sizes, self.hidden, self.n_features, depth=self.depth, activation=self.activation)

    def decoder(self, *in_sizes: int) -> nn.Module:
        """p(x | inputs): the logits or means of x, from the given inputs."""
        if self.kind == "cnn":
            return ImageDecoder(in_sizes, self.input_shape, self.hidden)
        return ConditionalMLP(in_sizes, self.hidden, self.n_features, self.activation, self.depth)


class GaussianEncoder(nn.Module):
    """q(z | x, others) = N(mu, diag(exp(log_var))): a trunk for x, then a ConditionalMLP."""

    def __init__(self, in_sizes: tuple[int, ...], hidden: int, latent: int, trunk: nn.Module | None = None, depth: int = 1,
                 activation=nn.Softplus):
        super().__init__()
        self.trunk = trunk or nn.Identity()
        self.body = ConditionalMLP(in_sizes, hidden, 2 * latent, activation, depth)

    def forward(self, x: torch.Tensor, *others: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_var = self.body(self.trunk(x), *others).chunk(2, dim=-1)
        return mu, log_var



def reverse_gradient(x: torch.Tensor) -> torch.Tensor:
    """x going forward, -gradient going back: one optimiser then plays a min-max game."""
    return 2 * x.detach() - x

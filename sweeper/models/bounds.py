"""The terms the objectives are written in: log-likelihoods, KL divergences, entropies, the weight prior, and
how a batch's labelled and unlabelled terms make one loss."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .enumeration import one_hot


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


def log_weight_prior(module: nn.Module) -> torch.Tensor:
    """log N(W | 0, I) summed over every weight matrix and kernel of `module` (parameters of two or more
    dimensions; biases are left free, as Maaløe's code, which takes the prior over its "W" parameters).
    Under torch.func.functional_call the parameters are the ones passed in, so under vmap it is each member's."""
    weights = [p.float() for p in module.parameters() if p.dim() > 1]  # in float32: under bfloat16 they arrive cast
    return sum(-0.5 * (w.square().sum() + w.numel() * math.log(2 * math.pi)) for w in weights)


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

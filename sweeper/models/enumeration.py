"""Summing a bound over every label: in one batched pass, or one pass per label (the reference)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


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

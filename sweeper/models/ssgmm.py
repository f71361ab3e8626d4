"""A semi-supervised Gaussian mixture, one component per class, fitted by EM.

E-step: labelled points belong to their class; unlabelled points get responsibilities
        r_k(x) = pi_k N(x | mu_k, S_k) / sum_j pi_j N(x | mu_j, S_j), in log space.
M-step: pi, mu, S from all points weighted by their responsibilities; S_k + floor I.
An "epoch" is one EM iteration over the whole training set; its loss is minus the
log-likelihood per point of the parameters it started from, which EM never increases.
Full or diagonal covariance; float64 throughout.
"""
from __future__ import annotations

import math

import torch

from .base import Model


class SSGMM(Model):
    name = "ssgmm"


    def __init__(self, input_shape, n_classes: int, covariance: str = "full", cov_floor: float = 1e-3):
        super().__init__(input_shape, n_classes)
        self.full, self.floor = covariance == "full", cov_floor
        d, k = self.n_features, n_classes
        self.register_buffer("log_pi", torch.full((k,), -math.log(k), dtype=torch.float64))
        self.register_buffer("mu", torch.zeros(k, d, dtype=torch.float64))
        self.register_buffer("cov", torch.eye(d, dtype=torch.float64).repeat(k, 1, 1) if self.full else torch.ones(k, d, dtype=torch.float64))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def log_joint(self, x: torch.Tensor) -> torch.Tensor:
        """log pi_k + log N(x | mu_k, S_k), (N, K)."""
        x = x.to(torch.float64)
        diff = x[:, None, :] - self.mu[None]  # (N, K, D)
        d = x.shape[-1]
        if self.full:
            chol = torch.linalg.cholesky(self.cov)  # (K, D, D); one solve per class, all points at once
            solved = torch.linalg.solve_triangular(chol, diff.permute(1, 2, 0), upper=False).permute(2, 0, 1)
            log_det = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        else:
            solved = diff / self.cov.sqrt()[None]
            log_det = torch.log(self.cov).sum(-1)
        return self.log_pi - 0.5 * (solved.square().sum(-1) + log_det + d * math.log(2 * math.pi))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.log_joint(x).to(x.dtype)

    @torch.no_grad()
    def em_step(self, x_labelled: torch.Tensor, y_labelled: torch.Tensor, x_unlabelled: torch.Tensor) -> torch.Tensor:
        """One EM iteration; returns minus the log-likelihood per point before it."""
        x = torch.cat([x_labelled, x_unlabelled]).to(torch.float64)
        labelled = torch.nn.functional.one_hot(y_labelled, self.n_classes).to(torch.float64)
        if not self.fitted:  # start from the labelled class means and the pooled covariance
            self.mu.copy_((labelled.T @ x_labelled.to(torch.float64)) / labelled.sum(0)[:, None])
            centred = x - x.mean(0)
            pooled = centred.T @ centred / len(x)
            self.cov.copy_(pooled.expand_as(self.cov) if self.full else pooled.diagonal().expand_as(self.cov))
            self.cov += self._floor()
            self.fitted.fill_(True)
        joint_l = self.log_joint(x_labelled).gather(-1, y_labelled[:, None]).squeeze(-1)
        joint_u = self.log_joint(x_unlabelled)
        log_likelihood = joint_l.sum() + torch.logsumexp(joint_u, -1).sum()

        responsibility = torch.cat([labelled, joint_u.softmax(-1)])  # (N, K)
        counts = responsibility.sum(0)
        self.log_pi.copy_(torch.log(counts / counts.sum()))
        self.mu.copy_((responsibility.T @ x) / counts[:, None])
        diff = x[:, None, :] - self.mu[None]  # (N, K, D)
        if self.full:
            self.cov.copy_(torch.einsum("nk,nkd,nke->kde", responsibility, diff, diff) / counts[:, None, None])
        else:
            self.cov.copy_((responsibility[..., None] * diff.square()).sum(0) / counts[:, None])
        self.cov += self._floor()
        return -log_likelihood / len(x)

    def _floor(self) -> torch.Tensor:
        eye = torch.eye(self.n_features, dtype=torch.float64, device=self.mu.device)
        return self.floor * (eye if self.full else torch.ones_like(eye[0]))

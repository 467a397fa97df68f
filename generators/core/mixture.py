"""Gaussian mixtures with an exact score: ground truth for checking samplers (EDM2 ``toy_example``).

Noising p(x) = sum_k w_k N(mu_k, S_k) by sigma gives p_sigma(x) = sum_k w_k N(mu_k, S_k + sigma^2 I),
whose score is exact, and so is the ideal denoiser D(x, sigma) = x + sigma^2 grad log p_sigma(x).
"""
from __future__ import annotations

import math

import torch
from torch import nn


class GaussianMixture(nn.Module):
    """A mixture in R^d with exact score and denoiser, usable as a ``DenoiseFn``.

    Args:
        means: (K, d) component means.
        covs: (K, d, d) component covariances.
        weights: (K,) mixture weights (normalised here).
    """

    def __init__(self, means: torch.Tensor, covs: torch.Tensor, weights: torch.Tensor | None = None) -> None:
        super().__init__()
        k, d = means.shape
        if covs.shape != (k, d, d):
            raise ValueError(f"covs must have shape {(k, d, d)}, got {tuple(covs.shape)}")
        weights = torch.ones(k) if weights is None else weights
        self.register_buffer("means", means.double())
        self.register_buffer("covs", covs.double())
        self.register_buffer("weights", (weights / weights.sum()).double())

    @classmethod
    def ring(cls, k: int = 8, radius: float = 2.0, std: float = 0.25, d: int = 2) -> "GaussianMixture":
        """K isotropic components evenly spaced on a circle (the standard 2-D benchmark)."""
        angles = torch.arange(k) * 2 * math.pi / k
        means = torch.zeros(k, d)
        means[:, 0], means[:, 1] = radius * angles.cos(), radius * angles.sin()
        covs = torch.eye(d).expand(k, d, d) * std**2
        return cls(means, covs.clone())

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n samples (n, d) and their component labels (n,)."""
        comp = torch.multinomial(self.weights.float(), n, replacement=True, generator=generator)
        chol = torch.linalg.cholesky(self.covs)[comp]
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        x = self.means[comp] + (chol @ z.unsqueeze(-1)).squeeze(-1)
        return x.float(), comp

    def _component_terms(self, x: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.double()
        eye = torch.eye(self.dim, dtype=torch.float64, device=x.device)
        cov = self.covs[None] + (sigma.double() ** 2)[:, None, None, None] * eye  # (B, K, d, d)
        diff = x[:, None, :] - self.means[None]  # (B, K, d)
        prec_diff = torch.linalg.solve(cov, diff.unsqueeze(-1)).squeeze(-1)  # (B, K, d)
        maha = (diff * prec_diff).sum(-1)
        logdet = torch.logdet(cov)
        log_comp = self.weights.log()[None] - 0.5 * (maha + logdet + self.dim * math.log(2 * math.pi))
        return log_comp, prec_diff

    def log_prob(self, x: torch.Tensor, sigma: float | torch.Tensor = 0.0) -> torch.Tensor:
        """log p_sigma(x), shape (B,)."""
        sigma = torch.as_tensor(sigma, dtype=torch.float64).expand(x.shape[0])
        log_comp, _ = self._component_terms(x, sigma)
        return torch.logsumexp(log_comp, dim=1).to(x.dtype)

    def score(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Exact grad_x log p_sigma(x), shape (B, d)."""
        log_comp, prec_diff = self._component_terms(x, sigma)
        resp = torch.softmax(log_comp, dim=1)
        return -(resp[..., None] * prec_diff).sum(1).to(x.dtype)

    def component_posterior(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """p(k | x) under p_sigma, shape (B, K): an exact noisy classifier."""
        log_comp, _ = self._component_terms(x, sigma)
        return torch.log_softmax(log_comp, dim=1).to(x.dtype)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: object = None) -> torch.Tensor:
        """The ideal denoiser D(x, sigma) = x + sigma^2 grad log p_sigma(x)."""
        s2 = (sigma.to(x.dtype) ** 2)[:, None]
        return x + s2 * self.score(x, sigma)

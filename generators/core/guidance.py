"""Guidance as wrappers around a denoiser; they compose and never live in a sampler loop.

- Classifier-free guidance (Ho & Salimans 2022, eq. 6):
  eps~ = eps(null) + w * (eps(y) - eps(null)). Since eps = (x - D) / sigma is affine in D
  at fixed x and sigma, the same combination applies to D.
- Classifier guidance (Dhariwal & Nichol 2021, Algorithm 1: mu^ = mu + s * Sigma * grad log p(y | x_t, t)),
  applied as a shift of the score, grad log p(x) + s * grad log p(y | x): in terms of D,
  D^ = D + s * sigma^2 * grad_x log p_phi(y | x, sigma). For the ancestral step this moves the
  mean by s * Sigma * grad (to first order in beta), and it carries over to every sampler.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from .denoiser import DenoiseFn
from .shapes import append_dims


def cat_cond(a: Any, b: Any) -> Any:
    """Concatenate two conditionings along the batch dim (tensors, dicts, or objects with ``cat``)."""
    if isinstance(a, torch.Tensor):
        return torch.cat([a, b])
    if isinstance(a, dict):
        return {k: cat_cond(a[k], b[k]) for k in a}
    if hasattr(a, "cat"):
        return a.cat(b)
    raise TypeError(f"cannot batch conditioning of type {type(a).__name__} for guidance")


def classifier_free_guidance(
    denoiser: Callable[..., torch.Tensor],
    cond: Any,
    null_cond: Any,
    scale: float,
    interval: tuple[float, float] | None = None,
) -> DenoiseFn:
    """D~ = D(null) + w * (D(y) - D(null)); w = 1 is plain conditional sampling, w = 0 unconditional.

    Both branches run in one batched call. With ``interval = (sigma_lo, sigma_hi)`` the guidance
    applies only to noise levels sigma_lo < sigma <= sigma_hi and w = 1 elsewhere, which keeps
    the sample diversity that guidance at high noise destroys (Kynkaanniemi et al. 2024, eq. 5).
    """
    if scale < 0:
        raise ValueError(f"guidance_scale must be >= 0, got {scale}; use 0 for unconditional, 1 for no guidance")
    if interval is not None and not 0 <= interval[0] < interval[1]:
        raise ValueError(f"guidance interval must be (sigma_lo, sigma_hi) with 0 <= sigma_lo < sigma_hi, got {interval}")
    if scale == 1.0:
        return lambda x, sigma: denoiser(x, sigma, cond)
    if scale == 0.0:  # unconditional at every noise level, interval or not
        return lambda x, sigma: denoiser(x, sigma, null_cond)
    both = cat_cond(null_cond, cond)

    def guided(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        d_null, d_cond = denoiser(torch.cat([x, x]), torch.cat([sigma, sigma]), both).chunk(2)
        w = torch.full_like(sigma, scale)
        if interval is not None:
            inside = (sigma > interval[0]) & (sigma <= interval[1])
            w = torch.where(inside, w, torch.ones_like(w))
        return d_null + append_dims(w, x.ndim).to(x.dtype) * (d_cond - d_null)

    return guided


def classifier_guidance(
    denoise: DenoiseFn,
    log_prob: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    scale: float,
) -> DenoiseFn:
    """D^ = D + s * sigma^2 * grad_x log p_phi(y | x, sigma).

    Args:
        denoise: D(x, sigma), already bound to its conditioning (or unconditional).
        log_prob: (x, sigma) -> log p_phi(y | x, sigma) per sample, shape (B,), for the target labels.
        scale: the guidance scale s >= 0.
    """
    if scale < 0:
        raise ValueError(f"classifier_scale must be >= 0, got {scale}")

    def guided(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        x0 = denoise(x, sigma)
        if scale == 0:
            return x0
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            grad = torch.autograd.grad(log_prob(xg, sigma).sum(), xg)[0]
        return x0 + scale * append_dims(sigma, x.ndim) ** 2 * grad

    return guided


class NoisyClassifier(nn.Module):
    """p_phi(y | x_t, t) for classifier guidance: a network on VP inputs at step t(sigma).

    ``net(x_vp, t) -> logits``; the wrapper takes VE inputs like every denoiser so its
    gradient is taken in the sampler's coordinates.
    """

    def __init__(self, net: nn.Module, schedule) -> None:
        super().__init__()
        self.net = net
        self.schedule = schedule

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        x_vp = x / append_dims((1 + sigma.to(x.dtype) ** 2).sqrt(), x.ndim)
        return self.net(x_vp, self.schedule.sigma_to_t(sigma.to(x.dtype)))

    def log_prob_fn(self, labels: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """(x, sigma) -> log p(labels | x, sigma), for :func:`classifier_guidance`."""

        def log_prob(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            logits = self(x, sigma)
            return torch.log_softmax(logits, dim=-1).gather(1, labels.view(-1, 1)).squeeze(1)

        return log_prob


def noisy_classifier_loss(
    classifier: NoisyClassifier, x0: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Cross-entropy of p_phi(y | x_t, t) on forward-noised inputs, t ~ U{0..T-1} (Dhariwal & Nichol 2021, sec. 4)."""
    schedule = classifier.schedule
    t = torch.randint(0, schedule.num_train_timesteps, (x0.shape[0],), generator=generator).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator).to(x0)
    x_t = schedule.q_sample(x0, t, noise)
    logits = classifier.net(x_t, t.to(x0.dtype))
    return nn.functional.cross_entropy(logits, labels)

"""Langevin dynamics and NCSN's annealed Langevin sampling (Song & Ermon 2019).

Langevin dynamics draws from p(x) with only its score:
  x~_t = x~_{t-1} + (eps / 2) grad_x log p(x~_{t-1}) + sqrt(eps) z_t,  z_t ~ N(0, I),
exact as eps -> 0 and T -> infinity. Annealed Langevin (Algorithm 1 of Song & Ermon 2019)
runs it for each noise level sigma_L > ... > sigma_1 with step alpha_i = eps sigma_i^2 / sigma_1^2,
using the noise-conditional score s(x, sigma_i) ~ grad log p_{sigma_i}(x).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from .denoiser import DenoiseFn
from .noise import NoiseSource, standard_normal
from .shapes import append_dims

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
StepCallback = Callable[[int, int, torch.Tensor], None]


def langevin_dynamics(
    score: ScoreFn,
    x: torch.Tensor,
    step_size: float,
    num_steps: int,
    generator: NoiseSource = None,
) -> torch.Tensor:
    """Unadjusted Langevin dynamics from ``x`` with step ``eps = step_size`` for ``num_steps`` steps."""
    if step_size <= 0:
        raise ValueError(f"step_size must be positive, got {step_size}")
    for _ in range(num_steps):
        z = standard_normal(x.shape, generator, x.dtype, x.device)
        x = x + 0.5 * step_size * score(x) + math.sqrt(step_size) * z
    return x


def sample_annealed_langevin(
    denoise: DenoiseFn,
    noise: torch.Tensor,
    sigmas: torch.Tensor,
    steps_per_level: int = 10,
    step_lr: float = 2e-5,
    denoise_final: bool = True,
    generator: NoiseSource = None,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1).

    Args:
        denoise: D(x, sigma); the score is (D - x) / sigma^2.
        noise: standard normal of the output shape; the chain starts at sigma_L * noise.
        sigmas: increasing noise levels sigma_1 < ... < sigma_L (e.g. ``geometric_sigmas``).
        steps_per_level: T, Langevin steps per noise level.
        step_lr: eps; the step at level i is eps * sigma_i^2 / sigma_1^2.
        denoise_final: finish with one Tweedie step at sigma_1 (Jolicoeur-Martineau et al. 2021).
    """
    if sigmas.ndim != 1 or len(sigmas) < 1 or not bool((sigmas[1:] > sigmas[:-1]).all()):
        raise ValueError("sigmas must be a 1-D increasing sequence sigma_1 < ... < sigma_L")
    sigmas = sigmas.to(noise.device, noise.dtype)
    x = noise * sigmas[-1]
    levels = sigmas.flip(0)
    for i, sigma in enumerate(levels):
        alpha = step_lr * float(sigma / sigmas[0]) ** 2
        sig = sigma.expand(x.shape[0])

        def score(x_: torch.Tensor) -> torch.Tensor:
            return (denoise(x_, sig) - x_) / append_dims(sig, x_.ndim) ** 2

        x = langevin_dynamics(score, x, alpha, steps_per_level, generator)
        if callback is not None:
            callback(i, len(levels), x)
    if denoise_final:
        x = denoise(x, sigmas[0].expand(x.shape[0]))
    return x

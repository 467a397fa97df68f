"""Training objectives as small callables: ``loss(net, x0, cond) -> scalar``.

- :class:`DiffusionLoss`: L_simple = E_{t, x0, eps} ||eps - eps_theta(sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, t)||^2
  (Ho et al. 2020, eq. 14), or the x0 / v targets (Salimans & Ho 2022), optionally weighted
  by Min-SNR-gamma (Hang et al. 2023, eq. 7), with t ~ U{1..T} and condition dropout for
  classifier-free guidance (Ho & Salimans 2022, Algorithm 1).
- :class:`DenoisingScoreMatchingLoss`: NCSN's objective
  (1/L) sum_i lambda(sigma_i) * 1/2 E ||s_theta(x~, sigma_i) + (x~ - x) / sigma_i^2||^2 with
  lambda(sigma) = sigma^2 (Song & Ermon 2019, eq. 5-6).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from .denoiser import PREDICTION_TYPES, prediction_target
from .schedules import NoiseSchedule
from .shapes import append_dims, masked_mean

WEIGHTINGS: tuple[str, ...] = ("none", "min_snr")


def min_snr_weight(snr: torch.Tensor, gamma: float, prediction_type: str) -> torch.Tensor:
    """Min-SNR-gamma loss weight for each prediction type (Hang et al. 2023, sec. 3.4)."""
    clipped = snr.clamp(max=gamma)
    if prediction_type == "epsilon":
        return clipped / snr
    if prediction_type == "sample":
        return clipped
    return clipped / (snr + 1)


@dataclass
class DiffusionLoss:
    """Denoising loss for a VP network ``net(x_t, t, cond)``.

    Args:
        schedule: the forward process.
        prediction_type: "epsilon", "sample" or "v_prediction".
        weighting: "none" (L_simple) or "min_snr".
        snr_gamma: gamma of Min-SNR weighting.
        cond_dropout: maps a conditioning to one with some entries replaced by the null
            condition (the encoder's ``drop``), applied during training for CFG.
    """

    schedule: NoiseSchedule
    prediction_type: str = "epsilon"
    weighting: str = "none"
    snr_gamma: float = 5.0
    cond_dropout: Callable[[Any, torch.Generator | None], Any] | None = None

    def __post_init__(self) -> None:
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {self.prediction_type!r}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")

    def __call__(
        self,
        net: Callable[..., torch.Tensor],
        x0: torch.Tensor,
        cond: Any = None,
        mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Mean loss over the batch; ``mask`` (broadcastable to x0) excludes padded entries."""
        b = x0.shape[0]
        t = torch.randint(0, self.schedule.num_train_timesteps, (b,), generator=generator).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(x0)
        x_t = self.schedule.q_sample(x0, t, noise)
        if self.cond_dropout is not None and cond is not None:
            cond = self.cond_dropout(cond, generator)
        out = net(x_t, t.to(x0.dtype), cond)
        abar = append_dims(self.schedule.alphas_cumprod.to(x0.device)[t].to(x0.dtype), x0.ndim)
        target = prediction_target(x0, noise, abar, self.prediction_type)
        per_sample = masked_mean((out.float() - target.float()) ** 2, mask)
        if self.weighting == "min_snr":
            per_sample = per_sample * min_snr_weight(self.schedule.snr(t), self.snr_gamma, self.prediction_type).float()
        return per_sample.mean()


@dataclass
class DenoisingScoreMatchingLoss:
    """NCSN denoising score matching over noise levels ``sigmas`` with lambda(sigma) = sigma^2.

    ``net(x~, log sigma, cond)`` predicts sigma * s(x~, sigma) (see ``ScoreDenoiser``), so
    lambda(sigma) ||s - target||^2 = ||out + (x~ - x) / sigma||^2 = ||out + z||^2.
    """

    sigmas: torch.Tensor

    def __call__(
        self,
        net: Callable[..., torch.Tensor],
        x0: torch.Tensor,
        cond: Any = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        idx = torch.randint(0, len(self.sigmas), (x0.shape[0],), generator=generator)
        sigma = self.sigmas[idx].to(x0)
        z = torch.randn(x0.shape, generator=generator).to(x0)
        x_noisy = x0 + append_dims(sigma, x0.ndim) * z
        out = net(x_noisy, sigma.log(), cond)
        return 0.5 * ((out + z) ** 2).flatten(1).sum(dim=1).mean()

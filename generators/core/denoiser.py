"""The one denoiser contract every sampler sees.

A *denoise function* ``D(x, sigma) -> x0_hat`` maps a noisy sample in variance-exploding
coordinates, x = x_0 + sigma * eps, and per-sample noise levels sigma (B,) to an estimate
of x_0 (Karras et al. 2022, eq. 2-3). Conditioning and guidance are bound around it
(:mod:`generators.core.guidance`), so samplers never see labels or prompts.

From D follow the other parameterisations (Karras et al. 2022, eq. 3; Song et al. 2021):
  eps(x, sigma)   = (x - D) / sigma
  score(x, sigma) = (D - x) / sigma^2           (Tweedie's formula)

:class:`VPDenoiser` adapts a network trained on a discrete VP schedule that predicts
epsilon, x_0 or v (Salimans & Ho 2022) at step t; :class:`ScoreDenoiser` adapts a
noise-conditional score network s(x, sigma) (NCSN, Song & Ermon 2019/2020).
"""
from __future__ import annotations

from typing import Any, Callable, Literal

import torch
from torch import nn

from .schedules import NoiseSchedule
from .shapes import append_dims

DenoiseFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
PredictionType = Literal["epsilon", "sample", "v_prediction"]
PREDICTION_TYPES: tuple[str, ...] = ("epsilon", "sample", "v_prediction")


def eps_from_x0(x: torch.Tensor, sigma: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """epsilon = (x - x0) / sigma in VE coordinates."""
    return (x - x0) / append_dims(sigma, x.ndim)


def score_from_x0(x: torch.Tensor, sigma: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """grad log p_sigma(x) = (x0 - x) / sigma^2 (Tweedie)."""
    return (x0 - x) / append_dims(sigma, x.ndim) ** 2


def x0_from_prediction(
    prediction: torch.Tensor, x_vp: torch.Tensor, abar: torch.Tensor, prediction_type: str
) -> torch.Tensor:
    """x_0 from a VP network output; ``abar`` broadcastable to ``x_vp``."""
    if prediction_type == "epsilon":
        return (x_vp - (1 - abar).sqrt() * prediction) / abar.sqrt()
    if prediction_type == "sample":
        return prediction
    if prediction_type == "v_prediction":
        return abar.sqrt() * x_vp - (1 - abar).sqrt() * prediction
    raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {prediction_type!r}")


def prediction_target(
    x0: torch.Tensor, noise: torch.Tensor, abar: torch.Tensor, prediction_type: str
) -> torch.Tensor:
    """Regression target for a VP network: eps, x_0, or v = sqrt(abar) eps - sqrt(1 - abar) x_0."""
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "sample":
        return x0
    if prediction_type == "v_prediction":
        return abar.sqrt() * noise - (1 - abar).sqrt() * x0
    raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {prediction_type!r}")


class VPDenoiser(nn.Module):
    """Wrap ``net(x_t, t, cond)`` trained on a discrete VP schedule as D(x, sigma, cond).

    x_vp = x / sqrt(1 + sigma^2) is the VP input at the (fractional) step t(sigma)
    (k-diffusion ``DiscreteEpsDDPMDenoiser``). ``clip_x0`` clamps the x_0 estimate
    (e.g. to [-1, 1] for images), which every sampler then inherits.
    """

    def __init__(
        self,
        net: Callable[..., torch.Tensor],
        schedule: NoiseSchedule,
        prediction_type: str = "epsilon",
        clip_x0: float | None = None,
    ) -> None:
        super().__init__()
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {prediction_type!r}")
        self.net = net
        self.schedule = schedule
        self.prediction_type = prediction_type
        self.clip_x0 = clip_x0

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: Any = None) -> torch.Tensor:
        sigma = sigma.to(x.dtype)
        abar = append_dims(1.0 / (1.0 + sigma**2), x.ndim)
        x_vp = x * abar.sqrt()
        t = self.schedule.sigma_to_t(sigma)
        out = self.net(x_vp, t, cond).to(x.dtype)
        x0 = x0_from_prediction(out, x_vp, abar, self.prediction_type)
        if self.clip_x0 is not None:
            x0 = x0.clamp(-self.clip_x0, self.clip_x0)
        return x0


class ScoreDenoiser(nn.Module):
    """Wrap a noise-conditional score network as D(x, sigma, cond).

    The network sees (x, log sigma) and outputs sigma * s(x, sigma), the NCSNv2
    output scaling (Song & Ermon 2020, technique 3), so D = x + sigma * out.
    """

    def __init__(self, net: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: Any = None) -> torch.Tensor:
        out = self.net(x, sigma.to(x.dtype).log(), cond)
        return x + append_dims(sigma.to(x.dtype), x.ndim) * out


def bind(denoiser: Callable[..., torch.Tensor], cond: Any = None) -> DenoiseFn:
    """Close a conditional denoiser over its conditioning: D(x, sigma)."""
    if cond is None:
        return lambda x, sigma: denoiser(x, sigma)
    return lambda x, sigma: denoiser(x, sigma, cond)

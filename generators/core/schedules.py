"""Forward process of DDPM (Ho et al. 2020) and noise-level sequences.

The forward kernel q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I) gives the
one-step marginal q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) with
alpha_t = 1 - beta_t and abar_t = prod_{i<=t} alpha_i (Ho et al. 2020, eq. 4), and the
posterior q(x_{t-1} | x_t, x_0) = N(mu~_t, beta~_t I) (eq. 6-7).

Every discrete VP schedule also defines a variance-exploding noise level
sigma_t = sqrt((1 - abar_t) / abar_t): x_t / sqrt(abar_t) = x_0 + sigma_t * eps.
That sigma is the common noise coordinate of the denoiser contract
(:mod:`generators.core.denoiser`), so a VP-trained model also serves VE/NCSN samplers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from .shapes import append_dims

BetaScheduleName = Literal["linear", "cosine", "sigmoid"]
BETA_SCHEDULES: tuple[str, ...] = ("linear", "cosine", "sigmoid")


def make_betas(
    name: str,
    num_steps: int,
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
) -> torch.Tensor:
    """beta_1..beta_T as float64.

    - ``linear``: Ho et al. 2020, beta from 1e-4 to 0.02.
    - ``cosine``: Nichol & Dhariwal 2021, eq. 17, abar_t = cos^2((t/T + s)/(1 + s) * pi/2), s = 0.008.
    - ``sigmoid``: Jabri et al. 2022, betas along a sigmoid between beta_start and beta_end.
    """
    if num_steps <= 0:
        raise ValueError(f"num_train_timesteps must be positive, got {num_steps}")
    if name == "linear":
        return torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float64)
    if name == "cosine":
        s = 0.008
        steps = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps
        abar = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        abar = abar / abar[0]
        return (1 - abar[1:] / abar[:-1]).clamp(max=0.999)
    if name == "sigmoid":
        x = torch.linspace(-6, 6, num_steps, dtype=torch.float64)
        return torch.sigmoid(x) * (beta_end - beta_start) + beta_start
    raise ValueError(f"beta_schedule must be one of {BETA_SCHEDULES}, got {name!r}")


@dataclass(frozen=True)
class NoiseSchedule:
    """A discrete variance-preserving schedule; index t = 0..T-1 means step t+1 of the paper."""

    betas: torch.Tensor  # (T,) float64

    @classmethod
    def create(
        cls, name: str = "linear", num_train_timesteps: int = 1000,
        beta_start: float = 1e-4, beta_end: float = 0.02,
    ) -> "NoiseSchedule":
        return cls(make_betas(name, num_train_timesteps, beta_start, beta_end))

    @property
    def num_train_timesteps(self) -> int:
        return int(self.betas.shape[0])

    @property
    def alphas(self) -> torch.Tensor:
        return 1.0 - self.betas

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        return torch.cumprod(self.alphas, dim=0)

    @property
    def alphas_cumprod_prev(self) -> torch.Tensor:
        return torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]])

    @property
    def sigmas(self) -> torch.Tensor:
        """VE noise level sigma_t = sqrt((1 - abar_t) / abar_t), increasing in t."""
        abar = self.alphas_cumprod
        return ((1 - abar) / abar).sqrt()

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[0])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    def _gather(self, values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        out = values.to(like.device)[t.long()].to(like.dtype)
        return append_dims(out, like.ndim)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (Ho et al. 2020, eq. 4)."""
        abar = self._gather(self.alphas_cumprod, t, x0)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def q_step(self, x_prev: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """One forward step x_t ~ q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I) (eq. 2)."""
        beta = self._gather(self.betas, t, x_prev)
        return (1 - beta).sqrt() * x_prev + beta.sqrt() * noise

    def posterior(
        self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean mu~_t(x_t, x_0) and variance beta~_t of q(x_{t-1} | x_t, x_0) (eq. 6-7)."""
        abar = self._gather(self.alphas_cumprod, t, x0)
        abar_prev = self._gather(self.alphas_cumprod_prev, t, x0)
        beta = self._gather(self.betas, t, x0)
        alpha = 1 - beta
        mean = (abar_prev.sqrt() * beta / (1 - abar)) * x0 + (alpha.sqrt() * (1 - abar_prev) / (1 - abar)) * x_t
        var = beta * (1 - abar_prev) / (1 - abar)
        return mean, var

    def snr(self, t: torch.Tensor) -> torch.Tensor:
        """Signal-to-noise ratio abar_t / (1 - abar_t) at integer steps t, shape (B,)."""
        abar = self.alphas_cumprod.to(t.device)[t.long()]
        return abar / (1 - abar)

    def sigma_to_t(self, sigma: torch.Tensor) -> torch.Tensor:
        """Continuous step index for a VE noise level, interpolating log sigma (k-diffusion)."""
        log_sigmas = self.sigmas.log().to(sigma.device)
        log_sigma = sigma.double().clamp_min(1e-12).log()
        idx = torch.searchsorted(log_sigmas, log_sigma).clamp(1, len(log_sigmas) - 1)
        lo, hi = log_sigmas[idx - 1], log_sigmas[idx]
        w = ((log_sigma - lo) / (hi - lo)).clamp(0, 1)
        return (idx - 1 + w).to(sigma.dtype)

    def t_to_sigma(self, t: torch.Tensor) -> torch.Tensor:
        """VE noise level at a (possibly fractional) step index, log-linear interpolation."""
        log_sigmas = self.sigmas.log().to(t.device)
        t = t.double().clamp(0, len(log_sigmas) - 1)
        lo = t.floor().long()
        hi = t.ceil().long()
        w = t - lo
        return ((1 - w) * log_sigmas[lo] + w * log_sigmas[hi]).exp().float()


def geometric_sigmas(sigma_min: float, sigma_max: float, num_levels: int) -> torch.Tensor:
    """NCSN noise levels sigma_1 < ... < sigma_L, a geometric sequence (Song & Ermon 2019, sec. 4.1)."""
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
    if num_levels < 2:
        raise ValueError(f"num_levels must be at least 2, got {num_levels}")
    return torch.logspace(math.log10(sigma_min), math.log10(sigma_max), num_levels)

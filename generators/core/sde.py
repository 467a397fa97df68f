"""Score-based sampling with SDEs (Song et al. 2021, "Score-Based Generative Modeling through SDEs").

Forward SDE dx = f(x, t) dt + g(t) dw on t in [0, 1]; its reverse
dx = [f(x, t) - g(t)^2 grad log p_t(x)] dt + g(t) dw_bar (eq. 6) and the probability-flow
ODE dx = [f(x, t) - 1/2 g(t)^2 grad log p_t(x)] dt (eq. 13).

- VP SDE (eq. 11): f = -1/2 beta(t) x, g = sqrt(beta(t)), beta(t) = beta_min + t (beta_max - beta_min);
  the continuous limit of DDPM.
- VE SDE (eq. 9): f = 0, g = sigma(t) sqrt(2 log(sigma_max / sigma_min)), sigma(t) = sigma_min (sigma_max/sigma_min)^t;
  the continuous limit of NCSN.

Both marginals are x_t = s(t) (x_0 + sigma(t) eps), so the score comes from the one
denoiser contract: grad log p_t(x) = (s D(x / s, sigma) - x) / (s sigma)^2.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .denoiser import DenoiseFn
from .schedules import NoiseSchedule
from .noise import NoiseSource, standard_normal
from .shapes import append_dims, batch_norm2

StepCallback = Callable[[int, int, torch.Tensor], None]


@dataclass(frozen=True)
class VPSDE:
    """Variance-preserving SDE (Song et al. 2021, eq. 11)."""

    beta_min: float = 0.1
    beta_max: float = 20.0
    t_min: float = 1e-3

    @classmethod
    def from_schedule(cls, schedule: NoiseSchedule) -> "VPSDE":
        """The VP SDE whose discretisation is the given schedule's betas (linear schedules exactly)."""
        n = schedule.num_train_timesteps
        return cls(beta_min=float(schedule.betas[0]) * n, beta_max=float(schedule.betas[-1]) * n)

    def beta(self, t: torch.Tensor) -> torch.Tensor:
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def scale(self, t: torch.Tensor) -> torch.Tensor:
        """s(t) = exp(-1/2 int_0^t beta)."""
        return torch.exp(-0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min)

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        s = self.scale(t)
        return (1 - s**2).clamp_min(1e-20).sqrt() / s

    def drift(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return -0.5 * append_dims(self.beta(t), x.ndim) * x

    def diffusion(self, t: torch.Tensor) -> torch.Tensor:
        return self.beta(t).sqrt()

    def prior(self, noise: torch.Tensor) -> torch.Tensor:
        return noise

    def corrector_alpha(self, t: torch.Tensor, dt: float) -> torch.Tensor:
        """alpha_i of the discretised chain, for the Langevin corrector step size (Song et al. 2021, Algorithm 5).

        alpha_i = abar(t_i) / abar(t_i - dt) = exp(-beta(t) dt), which is 1 - beta(t) dt to first order but
        stays positive for coarse steps: 1 - beta dt went negative below ~20 steps, and the corrector's
        square root then made every sample NaN.
        """
        return torch.exp(-self.beta(t) * dt)


@dataclass(frozen=True)
class VESDE:
    """Variance-exploding SDE (Song et al. 2021, eq. 9)."""

    sigma_min: float = 0.01
    sigma_max: float = 50.0
    t_min: float = 1e-5

    def scale(self, t: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(t)

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        return self.sigma_min * (self.sigma_max / self.sigma_min) ** t

    def drift(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)

    def diffusion(self, t: torch.Tensor) -> torch.Tensor:
        return self.sigma(t) * math.sqrt(2 * math.log(self.sigma_max / self.sigma_min))

    def prior(self, noise: torch.Tensor) -> torch.Tensor:
        return noise * self.sigma_max

    def corrector_alpha(self, t: torch.Tensor, dt: float) -> torch.Tensor:
        return torch.ones_like(t)


SDE = VPSDE | VESDE


def sde_score(denoise: DenoiseFn, sde: SDE, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """grad_x log p_t(x) from D: (s D(x/s, sigma) - x) / (s sigma)^2."""
    s = sde.scale(t).to(x.dtype)
    sigma = sde.sigma(t).to(x.dtype)
    s_, sig_ = append_dims(s, x.ndim), append_dims(sigma, x.ndim)
    x0 = denoise(x / s_, sigma)
    return (s_ * x0 - x) / (s_ * sig_) ** 2


def _final_denoise(denoise: DenoiseFn, sde: SDE, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Tweedie denoising at t_min (Song et al. 2021's last noise-removal step)."""
    s = append_dims(sde.scale(t).to(x.dtype), x.ndim)
    return denoise(x / s, sde.sigma(t).to(x.dtype))


def _time_grid(sde: SDE, n: int, like: torch.Tensor) -> torch.Tensor:
    return torch.linspace(1.0, sde.t_min, n + 1, dtype=like.dtype, device=like.device)


def _euler_maruyama_step(
    denoise: DenoiseFn, sde: SDE, x: torch.Tensor, t: torch.Tensor, dt: float, generator: NoiseSource
) -> torch.Tensor:
    """x_{t - dt} = x - [f - g^2 score] dt + g sqrt(dt) z: one reverse-SDE step (Song et al. 2021, eq. 6)."""
    g = append_dims(sde.diffusion(t).to(x.dtype), x.ndim)
    drift = sde.drift(x, t) - g**2 * sde_score(denoise, sde, x, t)
    z = standard_normal(x.shape, generator, x.dtype, x.device)
    return x - drift * dt + g * math.sqrt(dt) * z


def sample_reverse_sde(
    denoise: DenoiseFn,
    noise: torch.Tensor,
    sde: SDE,
    num_steps: int,
    generator: NoiseSource = None,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """Euler-Maruyama on the reverse SDE (Song et al. 2021, eq. 6), then Tweedie denoising."""
    x = sde.prior(noise)
    ts = _time_grid(sde, num_steps, x)
    for i in range(num_steps):
        x = _euler_maruyama_step(denoise, sde, x, ts[i].expand(x.shape[0]), float(ts[i] - ts[i + 1]), generator)
        if callback is not None:
            callback(i, num_steps, x)
    return _final_denoise(denoise, sde, x, ts[-1].expand(x.shape[0]))


def langevin_corrector(
    denoise: DenoiseFn,
    sde: SDE,
    x: torch.Tensor,
    t: torch.Tensor,
    snr: float,
    n_steps: int,
    dt: float,
    generator: NoiseSource = None,
) -> torch.Tensor:
    """Langevin corrector of Song et al. 2021, Algorithm 4/5: eps_i = 2 alpha_i (r ||z|| / ||score||)^2.

    As in the reference implementation the norms are averaged over the batch, which keeps the
    step stable in low dimension where single-sample norms fluctuate.
    """
    alpha = sde.corrector_alpha(t, dt).to(x.dtype)
    for _ in range(n_steps):
        score = sde_score(denoise, sde, x, t)
        z = standard_normal(x.shape, generator, x.dtype, x.device)
        step = 2 * alpha * (snr * batch_norm2(z).mean() / batch_norm2(score).mean().clamp_min(1e-12)) ** 2
        step = append_dims(step, x.ndim)
        x = x + step * score + (2 * step).sqrt() * z
    return x


def sample_predictor_corrector(
    denoise: DenoiseFn,
    noise: torch.Tensor,
    sde: SDE,
    num_steps: int,
    snr: float = 0.16,
    corrector_steps: int = 1,
    generator: NoiseSource = None,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """Predictor-corrector sampling (Song et al. 2021, Algorithm 1): reverse-SDE Euler-Maruyama
    predictor, Langevin corrector with signal-to-noise ratio ``snr``."""
    x = sde.prior(noise)
    ts = _time_grid(sde, num_steps, x)
    for i in range(num_steps):
        t = ts[i].expand(x.shape[0])
        dt = float(ts[i] - ts[i + 1])
        x = langevin_corrector(denoise, sde, x, t, snr, corrector_steps, dt, generator)
        x = _euler_maruyama_step(denoise, sde, x, t, dt, generator)
        if callback is not None:
            callback(i, num_steps, x)
    return _final_denoise(denoise, sde, x, ts[-1].expand(x.shape[0]))


def sample_probability_flow(
    denoise: DenoiseFn,
    noise: torch.Tensor,
    sde: SDE,
    num_steps: int,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """Deterministic probability-flow ODE (Song et al. 2021, eq. 13), Heun's method (2nd order)."""
    x = sde.prior(noise)
    ts = _time_grid(sde, num_steps, x)

    def velocity(x_: torch.Tensor, t_: torch.Tensor) -> torch.Tensor:
        g = append_dims(sde.diffusion(t_).to(x_.dtype), x_.ndim)
        return sde.drift(x_, t_) - 0.5 * g**2 * sde_score(denoise, sde, x_, t_)

    for i in range(num_steps):
        t, t_next = ts[i].expand(x.shape[0]), ts[i + 1].expand(x.shape[0])
        dt = float(ts[i + 1] - ts[i])
        v = velocity(x, t)
        x_euler = x + v * dt
        x = x + 0.5 * (v + velocity(x_euler, t_next)) * dt
        if callback is not None:
            callback(i, num_steps, x)
    return _final_denoise(denoise, sde, x, ts[-1].expand(x.shape[0]))

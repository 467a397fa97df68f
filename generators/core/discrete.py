"""Discrete-time samplers by wrapping diffusers' schedulers around the denoiser contract.

- ``ddpm``: ancestral sampling, Algorithm 2 of Ho et al. 2020, with sigma_t^2 = beta~_t
  (``variance="beta_tilde"``) or beta_t (``variance="beta"``); on a subset of steps when
  ``num_inference_steps`` < T.
- ``ddim``: Song et al. 2021 (DDIM), eq. 12, with eta in [0, 1] on a subset of steps.
- ``dpmsolver++``: DPM-Solver++(2M) (Lu et al. 2022).
- ``unipc``: UniPC-bh2 (Zhao et al. 2023).
- ``euler`` / ``heun``: Euler and Heun steps on the probability-flow ODE in sigma
  (Karras et al. 2022, Algorithm 1).

Each scheduler is built from the model's own beta schedule (``trained_betas``), with
``timestep_spacing="trailing"`` so the first step starts at pure noise (Lin et al. 2024).
The network is reached through the denoiser contract, so guidance and conditioning
wrappers apply unchanged.
"""
from __future__ import annotations

import inspect
from typing import Callable

import torch
from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    UniPCMultistepScheduler,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from .denoiser import DenoiseFn
from .noise import AntitheticNoise, NoiseSource, standard_normal
from .schedules import NoiseSchedule
from .shapes import append_dims

StepCallback = Callable[[int, int, torch.Tensor], None]
PostStep = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]

DISCRETE_SAMPLERS: tuple[str, ...] = ("ddpm", "ddim", "dpmsolver++", "unipc", "euler", "heun")


def make_scheduler(name: str, schedule: NoiseSchedule, variance: str = "beta_tilde") -> SchedulerMixin:
    """A diffusers scheduler for ``name`` on the model's beta schedule (epsilon outputs)."""
    common = dict(
        num_train_timesteps=schedule.num_train_timesteps,
        trained_betas=schedule.betas.float().numpy(),
        prediction_type="epsilon",
        timestep_spacing="trailing",
    )
    if name == "ddpm":
        if variance not in ("beta", "beta_tilde"):
            raise ValueError(f"variance must be 'beta' or 'beta_tilde', got {variance!r}")
        var = "fixed_small" if variance == "beta_tilde" else "fixed_large"
        return DDPMScheduler(**common, variance_type=var, clip_sample=False)
    if name == "ddim":
        return DDIMScheduler(**common, clip_sample=False, set_alpha_to_one=True)
    if name == "dpmsolver++":
        return DPMSolverMultistepScheduler(**common, algorithm_type="dpmsolver++", solver_order=2)
    if name == "unipc":
        return UniPCMultistepScheduler(**common, solver_order=2)
    if name == "euler":
        return EulerDiscreteScheduler(**common)
    if name == "heun":
        return HeunDiscreteScheduler(**common)
    raise ValueError(f"sampler must be one of {DISCRETE_SAMPLERS}, got {name!r}")


def vp_eps(denoise: DenoiseFn, schedule: NoiseSchedule, x_vp: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """epsilon at VP input x_t and (fractional) step t, through D: eps = (x - D(x, sigma)) / sigma."""
    t = t.reshape(-1).expand(x_vp.shape[0]).to(x_vp.device)
    sigma = schedule.t_to_sigma(t).to(x_vp.dtype)
    x_ve = x_vp * append_dims((1 + sigma**2).sqrt(), x_vp.ndim)
    x0 = denoise(x_ve, sigma)
    return (x_ve - x0) / append_dims(sigma, x_vp.ndim)


def _antithetic_scheduler(name: str, schedule: NoiseSchedule, variance: str, eta: float) -> tuple[SchedulerMixin, float]:
    """The scheduler and eta that take an :class:`AntitheticNoise` source: its draws go in through DDIM's
    ``variance_noise``. DDPM with sigma_t^2 = beta~_t is DDIM with eta = 1 (Song et al. 2021, eq. 16), on any
    subset of steps; the deterministic solvers draw nothing."""
    if name == "ddpm":
        if variance != "beta_tilde":
            raise ValueError("antithetic noise runs DDPM as DDIM with eta = 1, which is sigma_t^2 = beta~_t; "
                             "use variance='beta_tilde' or a generator")
        return make_scheduler("ddim", schedule), 1.0
    return make_scheduler(name, schedule, variance), eta


def _step_kwargs(scheduler: SchedulerMixin, generator: NoiseSource, eta: float) -> dict:
    params = inspect.signature(scheduler.step).parameters
    kwargs: dict = {}
    if "generator" in params and not isinstance(generator, AntitheticNoise):
        kwargs["generator"] = generator
    if "eta" in params:
        kwargs["eta"] = eta
    return kwargs


def sample_discrete(
    name: str,
    denoise: DenoiseFn,
    noise: torch.Tensor,
    schedule: NoiseSchedule,
    num_inference_steps: int,
    generator: NoiseSource = None,
    eta: float = 0.0,
    variance: str = "beta_tilde",
    start: torch.Tensor | None = None,
    strength: float = 1.0,
    start_sigma: float | None = None,
    post_step: PostStep | None = None,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """Run a diffusers scheduler from pure noise, or from ``start`` noised to ``strength``.

    Args:
        name: one of :data:`DISCRETE_SAMPLERS`.
        denoise: D(x, sigma) in VE coordinates.
        noise: standard normal tensor of the output shape (any trailing shape).
        schedule: the model's training schedule.
        num_inference_steps: steps in 1..T.
        generator: the stochastic samplers' draws: a torch generator, or :class:`AntitheticNoise` for
            antithetic pairs of paths (ddpm then runs as DDIM with eta = 1, the same sampler).
        eta: DDIM stochasticity (0 deterministic, 1 DDPM-like).
        variance: DDPM's sigma_t^2, "beta_tilde" or "beta".
        start: a clean sample x_0 to edit (SDEdit, inpainting), noised here to ``strength``; or,
            with ``start_sigma``, an already noisy sample x_0 + sigma * n to denoise.
        strength: fraction of the schedule to run from ``start`` (1 = from pure noise).
        start_sigma: noise level of ``start``; the reverse process begins at the step whose
            noise level is closest to it.
        post_step: (x, t_next) -> x after each full step, e.g. inpainting projections.
        callback: (i, n, x) after each step, for progress bars.
    Returns:
        The sample, in the scheduler's data coordinates (x_0 space).
    """
    antithetic = isinstance(generator, AntitheticNoise)
    if antithetic:
        scheduler, eta = _antithetic_scheduler(name, schedule, variance, eta)
    else:
        scheduler = make_scheduler(name, schedule, variance)
    scheduler.set_timesteps(num_inference_steps, device=noise.device)
    timesteps = scheduler.timesteps
    if start is not None and start_sigma is not None:
        sched_sigmas = schedule.t_to_sigma(timesteps.float())
        begin = int((sched_sigmas.log() - torch.tensor(start_sigma).log()).abs().argmin())
        timesteps = timesteps[begin:]
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(begin)
        sig = float(sched_sigmas[begin])
        x = start if name in ("euler", "heun") else start / (1 + sig**2) ** 0.5
    elif start is not None:
        order = getattr(scheduler, "order", 1)
        keep = max(1, min(num_inference_steps, round(num_inference_steps * strength)))
        begin = (num_inference_steps - keep) * order
        timesteps = timesteps[begin:]
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(begin)
        x = scheduler.add_noise(start, noise, timesteps[:1])
    else:
        x = noise * scheduler.init_noise_sigma
    kwargs = _step_kwargs(scheduler, generator, eta)
    n = len(timesteps)
    for i, t in enumerate(timesteps):
        x_in = scheduler.scale_model_input(x, t)
        eps = vp_eps(denoise, schedule, x_in, t.float())
        if antithetic and eta > 0:
            kwargs["variance_noise"] = standard_normal(x.shape, generator, x.dtype, x.device)
        x = scheduler.step(eps, t, x, **kwargs).prev_sample
        first_order_done = getattr(scheduler, "state_in_first_order", True)
        if post_step is not None and first_order_done:
            x = post_step(x, timesteps[i + 1 :][:1] if i + 1 < n else None)
        if callback is not None:
            callback(i, n, x)
    return x


def add_noise_like(
    name: str, schedule: NoiseSchedule, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor | None
) -> torch.Tensor:
    """Noise x_0 to step ``t`` in the coordinates scheduler ``name`` integrates in (``t=None``: x_0)."""
    if t is None or len(t) == 0:
        return x0
    scheduler = make_scheduler(name, schedule)
    if name in ("euler", "heun"):
        sigma = schedule.t_to_sigma(t.float().reshape(-1)).to(x0)
        return x0 + append_dims(sigma, x0.ndim) * noise
    return scheduler.add_noise(x0, noise, t.long().reshape(-1))

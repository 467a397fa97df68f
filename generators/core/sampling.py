"""Every sampler by name, for any denoiser and any tensor shape.

``sample("dpmsolver++", denoise, noise, schedule, 20)`` runs one of :data:`SAMPLERS`:

=====================  ===========================================================  ==========
name                   method                                                       NFE
=====================  ===========================================================  ==========
ddpm                   ancestral sampling, Ho et al. 2020, Algorithm 2              steps
ddim                   Song et al. 2021 (DDIM), eta in [0, 1]                       steps
dpmsolver++            DPM-Solver++(2M), Lu et al. 2022                             steps
unipc                  UniPC, Zhao et al. 2023                                      steps
euler / heun           probability-flow ODE in sigma, Karras et al. 2022           steps / 2 steps - 1
sde-vp / sde-ve        reverse SDE, Euler-Maruyama (Song et al. 2021)               steps + 1
pc-vp / pc-ve          predictor-corrector, Langevin corrector                      2 steps + 1
pf-ode / pf-ode-ve     probability-flow ODE, Heun                                   2 steps + 1
annealed-langevin      NCSN annealed Langevin (Song & Ermon 2019, Algorithm 1)      steps + 1
=====================  ===========================================================  ==========
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .denoiser import DenoiseFn
from .discrete import DISCRETE_SAMPLERS, sample_discrete
from .noise import NoiseSource
from .langevin import sample_annealed_langevin
from .schedules import NoiseSchedule, geometric_sigmas
from .validation import MAX_CONTINUOUS_STEPS
from .sde import VESDE, VPSDE, sample_predictor_corrector, sample_probability_flow, sample_reverse_sde

StepCallback = Callable[[int, int, torch.Tensor], None]

CONTINUOUS_SAMPLERS: tuple[str, ...] = (
    "sde-vp", "sde-ve", "pc-vp", "pc-ve", "pf-ode", "pf-ode-ve", "annealed-langevin",
)
SAMPLERS: tuple[str, ...] = DISCRETE_SAMPLERS + CONTINUOUS_SAMPLERS
# The step counts the README documents per sampler (measured on the shipped digits: bench/bench_image.py samplers).
DEFAULT_STEPS: dict[str, int] = {
    "ddpm": 100, "ddim": 25, "dpmsolver++": 25, "unipc": 25, "euler": 50, "heun": 25, "sde-vp": 100,
    "sde-ve": 100, "pc-vp": 100, "pc-ve": 100, "pf-ode": 25, "pf-ode-ve": 25, "annealed-langevin": 100,
}


@dataclass(frozen=True)
class SamplerOptions:
    """Knobs of the individual samplers; defaults are the papers' recommendations."""

    eta: float = 0.0                 # DDIM stochasticity
    variance: str = "beta_tilde"     # DDPM sigma_t^2: "beta_tilde" or "beta"
    snr: float = 0.16                # PC Langevin corrector signal-to-noise ratio
    corrector_steps: int = 1
    steps_per_level: int = 5         # annealed Langevin: T per noise level
    # annealed Langevin: eps. The step at level i is eps * sigma_i^2 / sigma_1^2; with a VP schedule's
    # sigma_1 = 0.01, eps = 1e-4 makes it sigma_i^2 (half-way to the denoised estimate each step). The
    # NCSN value 2e-5 left the chain lagging the annealing on a 100-step budget (labels read 10-28 %
    # right on the shipped digits; 96.5-100 % with 1e-4, see the README).
    step_lr: float = 1e-4
    sigma_max: float | None = None   # VE / annealed Langevin largest sigma (default: the schedule's)

    def __post_init__(self) -> None:
        if not 0.0 <= self.eta <= 1.0:
            raise ValueError(f"eta must be in [0, 1], got {self.eta}")
        if self.variance not in ("beta", "beta_tilde"):
            raise ValueError(f"variance must be 'beta' or 'beta_tilde', got {self.variance!r}")
        if self.snr <= 0 or self.step_lr <= 0 or self.steps_per_level < 1 or self.corrector_steps < 0:
            raise ValueError("snr and step_lr must be positive, steps_per_level >= 1, corrector_steps >= 0")


def check_sampler(sampler: str, num_inference_steps: int, schedule: NoiseSchedule) -> None:
    """Raise a ValueError naming the parameter for an unknown sampler or a bad step count."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}; got {sampler!r}")
    if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, int) or num_inference_steps <= 0:
        raise ValueError(f"num_inference_steps must be a positive integer, got {num_inference_steps!r}")
    if sampler in CONTINUOUS_SAMPLERS and num_inference_steps > MAX_CONTINUOUS_STEPS:
        raise ValueError(f"num_inference_steps={num_inference_steps} is beyond the {MAX_CONTINUOUS_STEPS} steps "
                         f"allowed for {sampler!r}; use fewer steps")
    if sampler in DISCRETE_SAMPLERS and num_inference_steps > schedule.num_train_timesteps:
        raise ValueError(
            f"num_inference_steps={num_inference_steps} exceeds the model's {schedule.num_train_timesteps} "
            f"training steps; use at most {schedule.num_train_timesteps}"
        )


def sample(
    sampler: str,
    denoise: DenoiseFn,
    noise: torch.Tensor,
    schedule: NoiseSchedule,
    num_inference_steps: int,
    generator: NoiseSource = None,
    options: SamplerOptions = SamplerOptions(),
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """Draw x_0 by the named sampler from standard-normal ``noise`` of any shape.

    Args:
        sampler: one of :data:`SAMPLERS`.
        denoise: D(x, sigma) in VE coordinates, with conditioning and guidance bound.
        noise: N(0, I) tensor with the output's shape (B, ...).
        schedule: the model's discrete training schedule; fixes the VP/VE SDE ranges.
        num_inference_steps: number of solver steps (see the NFE column above).
        generator: the stochastic samplers' draws: a torch generator, or
            :class:`~generators.core.noise.AntitheticNoise` for antithetic pairs of whole paths.
        options: per-sampler knobs.
        callback: (i, n, x) after each step.
    """
    check_sampler(sampler, num_inference_steps, schedule)
    if sampler in DISCRETE_SAMPLERS:
        return sample_discrete(
            sampler, denoise, noise, schedule, num_inference_steps, generator,
            eta=options.eta, variance=options.variance, callback=callback,
        )
    sigma_max = options.sigma_max or schedule.sigma_max
    vp, ve = VPSDE.from_schedule(schedule), VESDE(sigma_min=schedule.sigma_min, sigma_max=sigma_max)
    if sampler in ("sde-vp", "sde-ve"):
        sde = vp if sampler == "sde-vp" else ve
        return sample_reverse_sde(denoise, noise, sde, num_inference_steps, generator, callback)
    if sampler in ("pc-vp", "pc-ve"):
        sde = vp if sampler == "pc-vp" else ve
        return sample_predictor_corrector(
            denoise, noise, sde, num_inference_steps, options.snr, options.corrector_steps, generator, callback
        )
    if sampler in ("pf-ode", "pf-ode-ve"):
        sde = vp if sampler == "pf-ode" else ve
        return sample_probability_flow(denoise, noise, sde, num_inference_steps, callback)
    levels = max(2, num_inference_steps // options.steps_per_level)
    sigmas = geometric_sigmas(schedule.sigma_min, sigma_max, levels)
    return sample_annealed_langevin(
        denoise, noise, sigmas, options.steps_per_level, options.step_lr,
        generator=generator, callback=callback,
    )

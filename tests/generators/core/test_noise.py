"""Antithetic noise: pairs of mirror-image paths, each an exact sample (generators/core/noise.py)."""
import pytest
import torch

from evaluation.metrics import sliced_wasserstein
from generators.core.mixture import GaussianMixture
from generators.core.noise import AntitheticNoise, antithetic, standard_normal, torch_generator
from generators.core.sampling import SamplerOptions, sample
from generators.core.schedules import NoiseSchedule

from .test_samplers import GaussianDenoiser

SCHEDULE = NoiseSchedule.create("linear", 1000)
STOCHASTIC = ["ddpm", "ddim", "sde-vp", "sde-ve", "pc-vp", "annealed-langevin"]
OPTIONS = {"ddim": SamplerOptions(eta=1.0), "sde-ve": SamplerOptions(sigma_max=20.0),
           "annealed-langevin": SamplerOptions(sigma_max=20.0)}


def test_antithetic_pairs_items_within_the_batch():
    z = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    a = antithetic(z)
    assert torch.equal(a[:3], z[:3]) and torch.equal(a[3:], -z[:2])  # odd: the middle item is unpaired


def test_standard_normal_is_torch_randn_for_a_generator():
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    assert torch.equal(standard_normal((4, 2), g1), torch.randn(4, 2, generator=g2))
    source = AntitheticNoise(torch.Generator().manual_seed(4))
    z = standard_normal((4, 2), source, torch.float64)
    ref = torch.randn(4, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    assert z.dtype == torch.float64 and torch.equal(z[:2], ref[:2]) and torch.equal(z[2:], -ref[:2])
    assert torch_generator(source) is source.generator and torch_generator(g1) is g1


@pytest.mark.parametrize("name", STOCHASTIC)
def test_antithetic_paths_cancel_for_a_gaussian(name):
    """For N(mu, s^2) data the denoiser is affine, so a sample is affine in the start and every step's
    noise: the mean of an antithetic pair is the same for every pair, while each sample keeps its spread."""
    den = GaussianDenoiser(0.5, 0.3)
    g = torch.Generator().manual_seed(0)
    noise = antithetic(torch.randn(400, 4, generator=g))
    steps = 40 if name in ("ddpm", "ddim") else 60
    x = sample(name, den, noise, SCHEDULE, steps, AntitheticNoise(g), OPTIONS.get(name, SamplerOptions()))
    pair_means = (x[:200] + x[200:]) / 2
    assert float(pair_means.std()) < 1e-3 * float(x.std())
    assert float(x[:200].std()) > 0.2  # the samples themselves are spread (s = 0.3)
    # iid paths from the same starts do not cancel: the path noise matters, not only the start
    y = sample(name, den, noise, SCHEDULE, steps, torch.Generator().manual_seed(1), OPTIONS.get(name, SamplerOptions()))
    assert float(((y[:200] + y[200:]) / 2).std()) > 0.01


@pytest.mark.parametrize("name", ["ddpm", "sde-vp"])
def test_each_antithetic_sample_is_exact(name):
    """Every item of an antithetic batch is still a draw from the data: the ring mixture is matched."""
    gm = GaussianMixture.ring(8, 2.0, 0.25)
    ref, _ = gm.sample(1500, torch.Generator().manual_seed(123))
    g = torch.Generator().manual_seed(7)
    x = sample(name, gm, antithetic(torch.randn(1500, 2, generator=g)), SCHEDULE, 100 if name == "ddpm" else 300,
               AntitheticNoise(g))
    assert sliced_wasserstein(x, ref) < 0.15  # the bound of test_samplers (real-vs-real 0.05-0.13)


def test_ddpm_with_beta_variance_refuses_antithetic_noise():
    with pytest.raises(ValueError, match="variance='beta_tilde'"):
        sample("ddpm", GaussianDenoiser(0.0, 1.0), torch.randn(4, 2), SCHEDULE, 10, AntitheticNoise(),
               SamplerOptions(variance="beta"))

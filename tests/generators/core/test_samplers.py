"""Every sampler against ground truth: an exact-score Gaussian mixture (EDM2's toy example)."""
import pytest
import torch

from evaluation.metrics import sliced_wasserstein
from generators.core.mixture import GaussianMixture
from generators.core.sampling import SAMPLERS, SamplerOptions, check_sampler, sample
from generators.core.schedules import NoiseSchedule

SCHEDULE = NoiseSchedule.create("linear", 1000)
STEPS = {
    "ddpm": 100, "ddim": 50, "dpmsolver++": 20, "unipc": 20, "euler": 40, "heun": 20,
    "sde-vp": 300, "sde-ve": 300, "pc-vp": 150, "pc-ve": 150, "pf-ode": 30, "pf-ode-ve": 60,
    "annealed-langevin": 300,
}
VE_OPTIONS = SamplerOptions(sigma_max=20.0)
N = 1500
SW_BOUND = 0.15


@pytest.fixture(scope="module")
def mixture():
    gm = GaussianMixture.ring(8, 2.0, 0.25)
    ref, _ = gm.sample(N, torch.Generator().manual_seed(123))
    ref2, _ = gm.sample(N, torch.Generator().manual_seed(456))
    return gm, ref, sliced_wasserstein(ref, ref2)


def _options(name):
    return VE_OPTIONS if name in ("sde-ve", "pc-ve", "pf-ode-ve", "annealed-langevin") else SamplerOptions()


def test_every_sampler_is_covered():
    assert set(STEPS) == set(SAMPLERS)


@pytest.mark.parametrize("name", SAMPLERS)
def test_sampler_matches_exact_mixture(name, mixture):
    gm, ref, baseline = mixture
    g = torch.Generator().manual_seed(7)
    x = sample(name, gm, torch.randn(N, 2, generator=g), SCHEDULE, STEPS[name], g, _options(name))
    dist = sliced_wasserstein(x, ref)
    # bound: two independent true draws of 1,500 give SW 0.05-0.13 (12 seeds); a mixture with its
    # modes on a circle of radius 1.5 instead of 2 gives 0.36
    assert dist < SW_BOUND, f"{name}: SW={dist:.3f} vs real-real {baseline:.3f}"
    # every one of the 8 modes is populated roughly evenly
    comp = gm.component_posterior(x, torch.full((N,), 1e-3)).argmax(1)
    frac = torch.bincount(comp, minlength=8).float() / N
    assert frac.min() > 0.07 and frac.max() < 0.18


def test_bound_rejects_a_wrong_score(mixture):
    gm, ref, baseline = mixture
    wrong = GaussianMixture.ring(8, 1.5, 0.25)  # modes on the wrong circle
    g = torch.Generator().manual_seed(7)
    x = sample("dpmsolver++", wrong, torch.randn(N, 2, generator=g), SCHEDULE, 20, g)
    assert sliced_wasserstein(x, ref) > 2 * SW_BOUND


class GaussianDenoiser(torch.nn.Module):
    """Exact denoiser for N(mu, s^2 I) data of any shape: D = mu + s^2 / (s^2 + sigma^2) (x - mu)."""

    def __init__(self, mu, s):
        super().__init__()
        self.mu, self.s = mu, s

    def forward(self, x, sigma):
        k = (self.s**2 / (self.s**2 + sigma**2)).view(-1, *([1] * (x.ndim - 1)))
        return self.mu + k * (x - self.mu)


@pytest.mark.parametrize("shape", [(64, 3, 4, 5, 6), (256, 7, 3)])
@pytest.mark.parametrize("name", ["ddpm", "ddim", "dpmsolver++", "heun", "sde-vp", "pc-ve", "pf-ode", "annealed-langevin"])
def test_samplers_take_any_shape(name, shape):
    """Video (B, C, T, H, W) and point sets (B, N, D) go through unchanged."""
    den = GaussianDenoiser(0.5, 0.3)
    g = torch.Generator().manual_seed(0)
    x = sample(name, den, torch.randn(shape, generator=g), SCHEDULE, STEPS[name], g, _options(name))
    assert x.shape == shape
    assert abs(float(x.mean()) - 0.5) < 0.02
    assert abs(float(x.std()) - 0.3) < 0.06  # few-step DDIM/DPM shrink it ~10%, Langevin widens it


def test_bad_sampler_arguments():
    with pytest.raises(ValueError, match="sampler must be one of"):
        check_sampler("ddpmm", 10, SCHEDULE)
    with pytest.raises(ValueError, match="num_inference_steps"):
        check_sampler("ddim", 0, SCHEDULE)
    with pytest.raises(ValueError, match="exceeds the model's 1000 training steps"):
        check_sampler("ddim", 1001, SCHEDULE)
    with pytest.raises(ValueError, match="eta"):
        SamplerOptions(eta=1.5)


def test_pc_vp_with_few_steps_stays_finite():
    """The VP corrector's alpha was 1 - beta(t) dt, negative below ~20 steps: every sample became NaN."""
    import torch

    from generators.core.sampling import sample
    from generators.core.schedules import NoiseSchedule

    schedule = NoiseSchedule.create("linear", 1000)
    noise = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    for steps in (1, 2, 5):
        x = sample("pc-vp", lambda x, sigma: torch.zeros_like(x), noise, schedule, steps,
                   torch.Generator().manual_seed(0))
        assert torch.isfinite(x).all(), steps

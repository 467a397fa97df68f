"""Closed forms of the forward process (Ho et al. 2020, eq. 4, 6-7)."""
import math

import pytest
import torch

from generators.core.schedules import NoiseSchedule, geometric_sigmas, make_betas


@pytest.mark.parametrize("name", ["linear", "cosine", "sigmoid"])
def test_one_step_marginal_matches_iterated_kernel(name):
    sched = NoiseSchedule.create(name, 200)
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor([1.5, -0.7]).repeat(100_000, 1)
    x = x0.clone()
    for t in range(120):
        x = sched.q_step(x, torch.full((len(x),), t), torch.randn(x.shape, generator=g))
    abar = float(sched.alphas_cumprod[119])
    assert torch.allclose(x.mean(0), math.sqrt(abar) * x0[0], atol=0.01)
    assert torch.allclose(x.var(0), torch.full((2,), 1 - abar), atol=0.01)
    one_step = sched.q_sample(x0, torch.full((len(x0),), 119), torch.randn(x0.shape, generator=g))
    assert torch.allclose(one_step.mean(0), x.mean(0), atol=0.015)


@pytest.mark.parametrize("t", [1, 10, 500, 999])
def test_posterior_is_bayes_rule_on_1d_gaussian(t):
    """q(x_{t-1}|x_t,x0) ∝ q(x_t|x_{t-1}) q(x_{t-1}|x0): product of two Gaussians in x_{t-1}."""
    sched = NoiseSchedule.create("linear", 1000)
    x0, xt = torch.tensor([0.8], dtype=torch.float64), torch.tensor([-0.3], dtype=torch.float64)
    beta, abar_prev = float(sched.betas[t]), float(sched.alphas_cumprod[t - 1])
    # likelihood in x_{t-1}: N(x_t; sqrt(1-beta) x_{t-1}, beta); prior N(sqrt(abar_prev) x0, 1 - abar_prev)
    prec = (1 - beta) / beta + 1 / (1 - abar_prev)
    mean = (math.sqrt(1 - beta) * float(xt) / beta + math.sqrt(abar_prev) * float(x0) / (1 - abar_prev)) / prec
    mu, var = sched.posterior(x0, xt, torch.tensor([t]))
    assert float(mu) == pytest.approx(mean, rel=1e-5, abs=1e-7)
    assert float(var) == pytest.approx(1 / prec, rel=1e-5)
    # numerically normalised product on a grid agrees too
    grid = torch.linspace(-6, 6, 200_001, dtype=torch.float64)
    logp = -((xt.double() - math.sqrt(1 - beta) * grid) ** 2) / (2 * beta) - (grid - math.sqrt(abar_prev) * float(x0)) ** 2 / (2 * (1 - abar_prev))
    w = torch.softmax(logp, 0)
    assert float((w * grid).sum()) == pytest.approx(mean, abs=1e-4)


def test_posterior_mean_in_eps_form():
    """mu~ = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t) when x0 comes from (x_t, eps)."""
    sched = NoiseSchedule.create("cosine", 1000)
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    t = torch.tensor([3, 100, 400, 900])
    xt = sched.q_sample(x0, t, eps)
    mu, _ = sched.posterior(x0, xt, t)
    beta = sched.betas[t].float()[:, None]
    abar = sched.alphas_cumprod[t].float()[:, None]
    expected = (xt - beta / (1 - abar).sqrt() * eps) / (1 - beta).sqrt()
    assert torch.allclose(mu, expected, atol=1e-4)


def test_sigma_and_step_round_trip():
    sched = NoiseSchedule.create("linear", 1000)
    t = torch.tensor([0.0, 1.0, 17.5, 998.0, 999.0])
    assert torch.allclose(sched.sigma_to_t(sched.t_to_sigma(t)), t, atol=1e-3)
    assert torch.all(sched.sigmas[1:] > sched.sigmas[:-1])


def test_sequences_and_bad_names():
    s = geometric_sigmas(0.01, 50.0, 10)
    assert s[0] == pytest.approx(0.01) and s[-1] == pytest.approx(50.0)
    assert torch.allclose(s[1:] / s[:-1], (s[1:] / s[:-1]).mean().expand(9), rtol=1e-4)
    with pytest.raises(ValueError, match="beta_schedule"):
        make_betas("quadratic", 10)
    with pytest.raises(ValueError, match="sigma_min"):
        geometric_sigmas(1.0, 0.5, 4)

"""Objectives: targets, weighting, and denoising score matching against a closed form."""
import pytest
import torch

from generators.core.denoiser import VPDenoiser, prediction_target, x0_from_prediction
from generators.core.losses import DenoisingScoreMatchingLoss, DiffusionLoss, min_snr_weight
from generators.core.schedules import NoiseSchedule, geometric_sigmas

SCHEDULE = NoiseSchedule.create("linear", 1000)


@pytest.mark.parametrize("ptype", ["epsilon", "sample", "v_prediction"])
def test_targets_invert_to_x0(ptype):
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(5, 3, 4, generator=g), torch.randn(5, 3, 4, generator=g)
    t = torch.tensor([0, 10, 200, 600, 999])
    xt = SCHEDULE.q_sample(x0, t, eps)
    abar = SCHEDULE.alphas_cumprod[t].float().view(-1, 1, 1)
    target = prediction_target(x0, eps, abar, ptype)
    assert torch.allclose(x0_from_prediction(target, xt, abar, ptype), x0, atol=1e-3)


@pytest.mark.parametrize("ptype", ["epsilon", "sample", "v_prediction"])
def test_vp_denoiser_with_oracle_recovers_x0(ptype):
    """An oracle network that outputs the true target makes D return x0 exactly, at any sigma."""
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(4, 2, generator=g), torch.randn(4, 2, generator=g)
    sigma = SCHEDULE.sigmas[[5, 50, 500, 900]].float()

    def oracle(x_vp, t, cond):
        abar = (1 / (1 + sigma**2)).view(-1, 1)
        return prediction_target(x0, eps, abar, ptype)

    d = VPDenoiser(oracle, SCHEDULE, ptype)
    assert torch.allclose(d(x0 + sigma.view(-1, 1) * eps, sigma), x0, atol=1e-4)


def test_min_snr_weights():
    snr = torch.tensor([0.5, 5.0, 50.0])
    assert torch.allclose(min_snr_weight(snr, 5.0, "epsilon"), torch.tensor([1.0, 1.0, 0.1]))
    assert torch.allclose(min_snr_weight(snr, 5.0, "sample"), torch.tensor([0.5, 5.0, 5.0]))
    assert torch.allclose(min_snr_weight(snr, 5.0, "v_prediction"), torch.tensor([0.5 / 1.5, 5 / 6, 5 / 51]))


def test_diffusion_loss_drop_and_errors():
    seen = []

    def net(x, t, cond):
        seen.append(cond.clone())
        return torch.zeros_like(x)

    loss = DiffusionLoss(SCHEDULE, cond_dropout=lambda c, g: torch.where(torch.rand(c.shape, generator=g) < 0.5, 10, c))
    value = loss(net, torch.zeros(2000, 2), torch.zeros(2000, dtype=torch.long), generator=torch.Generator().manual_seed(0))
    assert value == pytest.approx(1.0, abs=0.05)  # E||eps - 0||^2 per entry = 1
    assert 0.45 < (seen[0] == 10).float().mean() < 0.55
    with pytest.raises(ValueError, match="prediction_type"):
        DiffusionLoss(SCHEDULE, prediction_type="score")
    with pytest.raises(ValueError, match="weighting"):
        DiffusionLoss(SCHEDULE, weighting="p2")


def test_dsm_loss_with_exact_score_matches_closed_form():
    """Data N(0, s^2 I): exact sigma * score = -sigma x~ / (s^2 + sigma^2) gives
    lambda(sigma) l(sigma) = 1/2 d s^2 / (s^2 + sigma^2)."""
    s, d = 0.7, 3
    sigmas = geometric_sigmas(0.1, 5.0, 6)
    exact = lambda x, log_sigma, cond: -log_sigma.exp().view(-1, 1) * x / (s**2 + log_sigma.exp().view(-1, 1) ** 2)  # noqa: E731
    g = torch.Generator().manual_seed(0)
    x0 = s * torch.randn(200_000, d, generator=g)
    value = DenoisingScoreMatchingLoss(sigmas)(exact, x0, generator=g)
    expected = float((0.5 * d * s**2 / (s**2 + sigmas**2)).mean())
    assert value == pytest.approx(expected, rel=0.02)
    wrong = lambda x, log_sigma, cond: 1.1 * exact(x, log_sigma, cond)  # noqa: E731
    assert DenoisingScoreMatchingLoss(sigmas)(wrong, x0, generator=g) > value


def test_mask_excludes_padded_entries():
    """Padded set entries (mask 0) do not change the loss, whatever the network outputs there."""
    mask = torch.ones(4, 6, 1)
    mask[:, 4:] = 0
    x0 = torch.randn(4, 6, 2)

    def net_with(pad_value):
        def net(x, t, cond):
            out = torch.zeros_like(x)
            out[:, 4:] = pad_value
            return out
        return net

    loss = DiffusionLoss(SCHEDULE)
    a = loss(net_with(0.0), x0, mask=mask, generator=torch.Generator().manual_seed(0))
    b = loss(net_with(100.0), x0, mask=mask, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b)

"""Classifier-free and classifier guidance as denoiser wrappers."""
import pytest
import torch

from generators.core.guidance import (
    NoisyClassifier, classifier_free_guidance, classifier_guidance, noisy_classifier_loss,
)
from generators.core.mixture import GaussianMixture
from generators.core.sampling import sample
from generators.core.schedules import NoiseSchedule

SCHEDULE = NoiseSchedule.create("linear", 1000)


class ComponentDenoiser(torch.nn.Module):
    """cond y in 0..K-1 -> exact denoiser of component y; y = K (null) -> the whole mixture."""

    def __init__(self, gm):
        super().__init__()
        self.gm = gm
        self.parts = [GaussianMixture(gm.means[k:k + 1].float(), gm.covs[k:k + 1].float()) for k in range(len(gm.means))]

    def forward(self, x, sigma, cond):
        out = self.gm(x, sigma)
        for k, part in enumerate(self.parts):
            sel = cond == k
            if sel.any():
                out[sel] = part(x[sel], sigma[sel])
        return out


def test_cfg_is_the_affine_combination():
    den = lambda x, sigma, c: x * c.view(-1, 1).float()  # noqa: E731
    x, sigma = torch.ones(3, 2), torch.ones(3)
    guided = classifier_free_guidance(den, torch.full((3,), 2), torch.full((3,), 5), scale=3.0)
    # D(null) + w (D(y) - D(null)) = 5 + 3 (2 - 5) = -4
    assert torch.allclose(guided(x, sigma), torch.full((3, 2), -4.0))
    with pytest.raises(ValueError, match="guidance_scale"):
        classifier_free_guidance(den, 1, 0, -1.0)


def test_cfg_scale_one_samples_the_condition_and_zero_the_mixture():
    gm = GaussianMixture.ring(4, 2.0, 0.2)
    den = ComponentDenoiser(gm)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(400, 2, generator=g)
    y = torch.full((400,), 1)
    cond_samples = sample("dpmsolver++", classifier_free_guidance(den, y, torch.full((400,), 4), 1.0), noise, SCHEDULE, 20)
    assert (gm.component_posterior(cond_samples, torch.full((400,), 1e-3)).argmax(1) == 1).float().mean() > 0.99
    uncond = sample("dpmsolver++", classifier_free_guidance(den, y, torch.full((400,), 4), 0.0), noise, SCHEDULE, 20)
    frac = (gm.component_posterior(uncond, torch.full((400,), 1e-3)).argmax(1) == 1).float().mean()
    assert 0.15 < frac < 0.35
    guided = sample("dpmsolver++", classifier_free_guidance(den, y, torch.full((400,), 4), 4.0), noise, SCHEDULE, 20)
    # w > 1 extrapolates away from the unconditional model: samples move out from the mixture centre
    assert guided.norm(dim=1).mean() > cond_samples.norm(dim=1).mean() + 0.1


def test_classifier_guidance_with_exact_classifier_gives_the_posterior():
    """With s = 1 and the exact p(y | x_t), score + grad log p(y|x_t) is the score of p(x_t | y)."""
    gm = GaussianMixture.ring(4, 2.0, 0.2)
    target = 2
    log_prob = lambda x, sigma: gm.component_posterior(x, sigma)[:, target]  # noqa: E731
    g = torch.Generator().manual_seed(0)
    x = sample("dpmsolver++", classifier_guidance(gm, log_prob, 1.0), torch.randn(400, 2, generator=g), SCHEDULE, 25)
    hits = (gm.component_posterior(x, torch.full((400,), 1e-3)).argmax(1) == target).float().mean()
    assert hits > 0.97
    with pytest.raises(ValueError, match="classifier_scale"):
        classifier_guidance(gm, log_prob, -1.0)


def test_noisy_classifier_trains_and_guides():
    gm = GaussianMixture.ring(4, 2.0, 0.2)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 64), torch.nn.SiLU(), torch.nn.Linear(64, 64), torch.nn.SiLU(), torch.nn.Linear(64, 4))
    clf = NoisyClassifier(lambda x, t: net(torch.cat([x, (t / 1000).unsqueeze(1)], 1)), SCHEDULE)
    clf.add_module("mlp", net)
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(400):
        x0, y = gm.sample(256, g)
        loss = noisy_classifier_loss(clf, x0, y, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x0, y = gm.sample(500, g)
    acc = (clf(x0, torch.full((500,), 0.05)).argmax(1) == y).float().mean()
    assert acc > 0.95
    labels = torch.full((300,), 3)
    x = sample("dpmsolver++", classifier_guidance(gm, clf.log_prob_fn(labels), 2.0), torch.randn(300, 2, generator=g), SCHEDULE, 25)
    hits = (gm.component_posterior(x, torch.full((300,), 1e-3)).argmax(1) == 3).float().mean()
    assert hits > 0.8  # unguided: 0.25


def test_guidance_interval_switches_guidance_by_noise_level():
    den = lambda x, sigma, c: x * c.view(-1, 1).float()  # noqa: E731
    guided = classifier_free_guidance(den, torch.full((2,), 2), torch.full((2,), 5), 3.0, interval=(0.1, 2.0))
    out = guided(torch.ones(2, 2), torch.tensor([1.0, 10.0]))
    assert torch.allclose(out[0], torch.full((2,), -4.0))  # inside: 5 + 3 (2 - 5)
    assert torch.allclose(out[1], torch.full((2,), 2.0))   # outside: plain conditional
    uncond = classifier_free_guidance(den, torch.full((2,), 2), torch.full((2,), 5), 0.0, interval=(0.1, 2.0))
    assert torch.allclose(uncond(torch.ones(2, 2), torch.tensor([1.0, 10.0])), torch.full((2, 2), 5.0))
    with pytest.raises(ValueError, match="guidance interval"):
        classifier_free_guidance(den, 1, 0, 3.0, interval=(2.0, 1.0))

"""The hierarchical VAE's fixed latent-point spread (``PointVAE(h_std=...)``)."""
import math

import pytest
import torch

from generators.pointcloud.losses import VAELoss, reparameterize
from generators.pointcloud.model import PointVAE


def test_fixed_spread_replaces_the_learned_variance():
    torch.manual_seed(0)
    x = torch.randn(2, 32, 3)
    fixed = PointVAE(latent_dim=8, hidden=16, depth=1, h_std=0.05)
    z_mu, _, h_mu, h_logvar = fixed.encode(x)
    assert h_logvar.shape == h_mu.shape == (2, 32, 4)
    assert torch.allclose(h_logvar, torch.full_like(h_logvar, 2 * math.log(0.05)))
    assert (h_mu[..., :3] - x).abs().max() <= 0.05 and h_mu[..., 3:].abs().max() <= 1  # bounded means
    h = reparameterize(h_mu, h_logvar, torch.Generator().manual_seed(0))
    assert (h - h_mu).std().item() == pytest.approx(0.05, rel=0.15)
    learned = PointVAE(latent_dim=8, hidden=16, depth=1)  # h_std=0: the encoder's own variance
    learned.load_state_dict(fixed.state_dict())
    assert not torch.allclose(learned.encode(x)[3], h_logvar)
    loss = VAELoss(kl_weight_z=1e-4, kl_weight_h=1e-3)(fixed, x, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and fixed.global_encoder.head[-1].weight.grad.abs().sum() > 0


def test_negative_spread_is_refused():
    with pytest.raises(ValueError, match="h_std"):
        PointVAE(h_std=-0.1)

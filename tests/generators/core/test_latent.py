"""Latent diffusion around a diffusers AutoencoderKL and around any encode/decode module."""
import pytest
import torch
from diffusers import AutoencoderKL

from generators.core.latent import LatentSpace
from generators.core.sampling import sample
from generators.core.schedules import NoiseSchedule


def tiny_vae():
    torch.manual_seed(0)
    return AutoencoderKL(in_channels=1, out_channels=1, down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
                         up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), block_out_channels=(8, 16),
                         latent_channels=2, norm_num_groups=4, sample_size=16).eval()


def test_scale_estimate_gives_unit_std_latents():
    space = LatentSpace(tiny_vae())
    data = [torch.rand(8, 1, 16, 16) * 2 - 1 for _ in range(3)]
    with pytest.raises(ValueError, match="scale_factor is unset"):
        space.encode(data[0])
    space.estimate_scale(data)
    with torch.no_grad():
        z = torch.cat([space.encode(x) for x in data])
    assert z.shape == (24, 2, 8, 8)
    assert float(z.std()) == pytest.approx(1.0, rel=0.05)
    assert space.latent_shape((1, 1, 16, 16)) == (2, 8, 8)


def test_samplers_run_in_latent_space_and_decode():
    space = LatentSpace(tiny_vae(), scale_factor=2.0)
    sched = NoiseSchedule.create("linear", 1000)
    den = lambda z, sigma: z / (1 + sigma.view(-1, 1, 1, 1) ** 2)  # exact for N(0, I) latents  # noqa: E731
    with torch.no_grad():
        x = space.sample(lambda n: sample("ddim", den, n, sched, 10), torch.randn(2, 2, 8, 8))
    assert x.shape == (2, 1, 16, 16)


class PCA(torch.nn.Module):
    """Any module with encode/decode works: an orthogonal projection."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.linalg.qr(torch.randn(6, 3))[0])

    def encode(self, x):
        return x @ self.w

    def decode(self, z):
        return z @ self.w.T


def test_generic_autoencoder_and_latent_loss():
    space = LatentSpace(PCA())
    space.estimate_scale([torch.randn(100, 6) * 3])
    assert space.scale_factor == pytest.approx(1 / 3, rel=0.15)
    seen = {}
    loss = space.loss(lambda net, z, cond=None: seen.setdefault("shape", z.shape) and torch.tensor(0.0))
    loss(None, torch.randn(5, 6))
    assert seen["shape"] == (5, 3)
    with pytest.raises(TypeError, match="encode"):
        LatentSpace(torch.nn.Linear(2, 2))

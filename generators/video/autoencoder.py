"""The per-frame autoencoder of the latent video model, trained by the project on moving-digit frames.

A small diffusers ``AutoencoderKL`` maps each 32x32 frame to a 8x8x4 latent (Rombach et al. 2022,
sec. 3.1: a KL-regularised autoencoder, loss ||x - D(E(x))||_1 + beta KL(q(z|x) || N(0, I))); the
video denoiser then diffuses the stacked frame latents, as ModelScopeT2V and Stable Video Diffusion
do with their image autoencoders. :class:`PerFrameAutoencoder` applies it frame by frame to
(B, C, T, H, W) clips so that ``generators.core.latent.LatentSpace`` wraps it unchanged.
"""
from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import torch
from diffusers import AutoencoderKL
from torch import nn

from generators.core.checkpoint import load_model, save_model
from generators.core.training import GeneratedBatches, TrainConfig, TrainResult, seeded, train, write_train_record

from .captions import CaptionSet
from .data import MovingDigits
from .presets import AutoencoderPreset, get_preset


def build_autoencoder(p: AutoencoderPreset, channels: int = 1, sample_size: int = 32) -> AutoencoderKL:
    """An ``AutoencoderKL`` with ``len(block_out_channels) - 1`` downsamplings and ``latent_channels`` channels."""
    n = len(p.block_out_channels)
    return AutoencoderKL(in_channels=channels, out_channels=channels, down_block_types=("DownEncoderBlock2D",) * n,
                         up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=tuple(p.block_out_channels),
                         layers_per_block=p.layers_per_block, latent_channels=p.latent_channels,
                         norm_num_groups=p.norm_num_groups, sample_size=sample_size)


class AutoencoderLoss:
    """L1 reconstruction of a posterior sample plus ``kl_weight`` times the per-element KL to N(0, I)."""

    def __init__(self, kl_weight: float) -> None:
        if kl_weight < 0:
            raise ValueError(f"kl_weight must be >= 0, got {kl_weight}")
        self.kl_weight = kl_weight

    def __call__(self, ae: AutoencoderKL, frames: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        posterior = ae.encode(frames).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator).to(posterior.mean)
        recon = ae.decode(z).sample  # (B, C, H, W)
        kl = 0.5 * (posterior.mean ** 2 + posterior.var - 1.0 - posterior.logvar).mean()
        return (recon.float() - frames.float()).abs().mean() + self.kl_weight * kl.float()


class PerFrameAutoencoder(nn.Module):
    """``encode``: (B, C, T, H, W) -> latent means (B, c, T, h, w); ``decode`` the reverse, frame by frame."""

    def __init__(self, autoencoder: AutoencoderKL) -> None:
        super().__init__()
        self.autoencoder = autoencoder

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        z = self.autoencoder.encode(x.transpose(1, 2).reshape(b * t, c, h, w)).latent_dist.mode()  # (B*T, c, h, w)
        return z.reshape(b, t, *z.shape[1:]).transpose(1, 2)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = z.shape
        x = self.autoencoder.decode(z.transpose(1, 2).reshape(b * t, c, h, w)).sample  # (B*T, C, H, W)
        return x.reshape(b, t, *x.shape[1:]).transpose(1, 2)


def load_autoencoder(path: str | os.PathLike, device: str | torch.device = "cpu") -> AutoencoderKL:
    """An autoencoder folder (config.json + safetensors; the EMA weights where present)."""
    return load_model(path, AutoencoderKL).to(device).eval()


@torch.no_grad()
def reconstruction_psnr(ae: AutoencoderKL, frames: torch.Tensor, batch_size: int = 256) -> float:
    """Mean PSNR (dB, peak-to-peak 2 in [-1, 1]) of ``D(E(x))`` against held-out frames ``x`` (N, C, H, W)."""
    device = next(ae.parameters()).device
    scores = []
    for i in range(0, len(frames), batch_size):
        x = frames[i:i + batch_size].to(device)
        recon = ae.decode(ae.encode(x).latent_dist.mode()).sample.clamp(-1, 1)
        mse = (recon - x).pow(2).flatten(1).mean(1).clamp_min(1e-10)
        scores.append(10 * torch.log10(4.0 / mse))
    return float(torch.cat(scores).mean())


def train_video_autoencoder(
    output_dir: str | os.PathLike,
    preset: str = "small",
    max_steps: int | None = None,
    seed: int = 0,
    mixed_precision: str = "no",
    checkpoint_every: int | None = None,
    device: str | None = None,
    command: str = "",
    progress: bool = True,
) -> TrainResult:
    """Train the preset's per-frame autoencoder on train-split frames; resumable from ``output_dir/training_state``.

    The loadable folder (``load_autoencoder(output_dir)``) is refreshed at every checkpoint; ``training.json``
    records the command and the held-out reconstruction PSNR.
    """
    p = get_preset(preset)
    ap = p.autoencoder
    steps = max_steps or ap.max_steps
    clips = MovingDigits(p.clip, CaptionSet(p.clip.directions, p.clip.two_digit_prob > 0), "train")
    with seeded(seed):
        ae = build_autoencoder(ap, 1, p.clip.frame_size)
    config = TrainConfig(max_steps=steps, batch_size=ap.batch_size, learning_rate=ap.learning_rate,
                         warmup_steps=min(100, max(1, steps // 10)), ema_decay=0.99 if steps < 5000 else 0.999,
                         mixed_precision=mixed_precision, checkpoint_every=checkpoint_every or ap.checkpoint_every,
                         seed=seed, cpu=device == "cpu")
    output_dir = Path(output_dir)

    def publish(step: int, inner: nn.Module, ema_state: dict[str, torch.Tensor]) -> None:
        save_model(output_dir, inner, ema_state)

    frames = GeneratedBatches(lambda g, n: (clips.frames(g, n),))
    result = train(ae, AutoencoderLoss(ap.kl_weight), frames, config, output_dir, on_checkpoint=publish, progress=progress)
    if result.resumed_from >= result.steps:  # nothing ran: keep the record of the run that did
        return result
    held_out = MovingDigits(p.clip, clips.captions, "test").frames(torch.Generator().manual_seed(seed), 256)
    psnr = reconstruction_psnr(load_autoencoder(output_dir), held_out)
    write_train_record(output_dir, command or f"train_video_autoencoder({str(output_dir)!r}, preset={preset!r})", config,
                       result, {"preset": preset, "autoencoder": asdict(ap), "held_out_psnr_db": round(psnr, 2),
                                "dataset": "moving digits, single frames of train-split digits"})
    return result

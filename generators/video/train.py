"""Train the moving-digits video model (``train_video(out, preset="small")``): autoencoder, then denoiser.

For a latent preset the per-frame autoencoder is trained first in ``output_dir/autoencoder_training``
(or an existing one is reused), its latent scale is estimated on a seeded batch of clips (Rombach
et al. 2022, sec. 4.3.2), and the denoiser trains on the frozen latents. Both stages resume from
their ``training_state/``; the clips are rendered from the step's generator, so a resumed run sees the
batches it would have seen. The loadable generator folder is ``output_dir`` itself (its files; the frozen
autoencoder is part of the network), refreshed at every checkpoint; ``training_state/`` and
``autoencoder_training/`` beside them are for resuming only.
"""
from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import torch
from diffusers import AutoencoderKL
from torch import nn

from generators.core.checkpoint import read_json
from generators.core.latent import LatentSpace
from generators.core.losses import DiffusionLoss
from generators.core.pipeline import DiffusionConfig
from generators.core.training import (STATE_DIR, TrainConfig, TrainResult, needs_train_record, seeded, train,
                                     write_train_record)

from .autoencoder import PerFrameAutoencoder, load_autoencoder, train_video_autoencoder
from .captions import CaptionSet
from .data import MovingDigits
from .generator import VideoGenerator
from .model import SpatioTemporalUNet
from .objective import CaptionTable, VideoBatches, VideoDiffusionLoss
from .presets import VideoPreset, get_preset

AUTOENCODER_STAGE = "autoencoder_training"
SCALE_BATCH = 64


def build_model(p: VideoPreset, autoencoder: AutoencoderKL | None = None,
                latent_scale: float | None = None) -> SpatioTemporalUNet:
    """The preset's denoiser; a latent preset carries ``autoencoder`` (frozen, its weights copied) and its scale."""
    if p.latent and autoencoder is None:
        raise ValueError("a latent preset needs its trained autoencoder (train_video trains one first)")
    ae_config = None
    if p.latent:
        ae_config = {k: v for k, v in autoencoder.config.items() if not k.startswith("_")}
    model = SpatioTemporalUNet(
        in_channels=p.autoencoder.latent_channels if p.latent else 1,
        block_out_channels=p.block_out_channels,
        layers_per_block=p.layers_per_block,
        attention_levels=p.attention_levels,
        temporal_levels=p.temporal_levels,
        num_heads=p.num_heads,
        norm_num_groups=p.norm_num_groups,
        cond_dim=p.cond_dim,
        max_frames=max(32, 2 * p.clip.num_frames),
        max_motion=p.max_motion,
        autoencoder_config=ae_config,
        latent_scale=latent_scale,
        temporal_cross_attention=p.temporal_cross_attention,
    )
    if model.autoencoder is not None:
        model.autoencoder.load_state_dict(autoencoder.state_dict())
    return model


def _steps_done(directory: Path) -> int:
    state = directory / STATE_DIR / "state.json"
    return int(read_json(state, "training state")["step"]) if state.is_file() else 0


def prepare_latent(preset: str, output_dir: Path, autoencoder: str | os.PathLike | None, seed: int,
                   mixed_precision: str, device: str | None, progress: bool) -> tuple[AutoencoderKL, float, dict]:
    """Train (or reuse) the autoencoder and fit the latent scale; returns both and a record of them."""
    p = get_preset(preset)
    ae_dir = Path(autoencoder) if autoencoder is not None else output_dir / AUTOENCODER_STAGE
    if autoencoder is None and _steps_done(ae_dir) < p.autoencoder.max_steps:
        train_video_autoencoder(ae_dir, preset, seed=seed, mixed_precision=mixed_precision, device=device,
                                command=f"stage 1 of train_video({str(output_dir)!r})", progress=progress)
    ae = load_autoencoder(ae_dir)
    clips = MovingDigits(p.clip, CaptionSet(p.clip.directions, p.clip.two_digit_prob > 0), "train")
    scale = LatentSpace(PerFrameAutoencoder(ae)).estimate_scale(
        [clips.sample(torch.Generator().manual_seed(seed), SCALE_BATCH).clips])
    ae_record = read_json(ae_dir / "training.json", "autoencoder record") if (ae_dir / "training.json").is_file() else {}
    return ae, scale, {"autoencoder": str(ae_dir), "latent_scale": scale,
                       "autoencoder_held_out_psnr_db": ae_record.get("held_out_psnr_db"),
                       "autoencoder_seconds": ae_record.get("seconds_this_run")}


def train_video(
    output_dir: str | os.PathLike,
    preset: str = "small",
    max_steps: int | None = None,
    seed: int = 0,
    mixed_precision: str = "no",
    checkpoint_every: int | None = None,
    device: str | None = None,
    command: str = "",
    progress: bool = True,
    autoencoder: str | os.PathLike | None = None,
) -> TrainResult:
    """Train the preset's video model; ``output_dir`` becomes a ``VideoGenerator.from_pretrained`` folder.

    Args:
        output_dir: the checkpoint folder; an existing ``training_state/`` is resumed.
        preset: a name in ``PRESETS`` (``tiny``, ``small``, ``small-pixel``, ...).
        max_steps: denoiser steps (default the preset's); the autoencoder always runs its preset's steps.
        seed: fixes the initial weights, the clips and the noise.
        mixed_precision, checkpoint_every: as in ``generators.core.training.TrainConfig``.
        device: ``"cpu"`` forces the CPU; None lets accelerate pick the GPU when there is one.
        command: recorded in ``training.json``.
        autoencoder: an existing autoencoder folder to reuse instead of training one (latent presets).
    """
    p = get_preset(preset)
    output_dir = Path(output_dir)
    captions = CaptionSet(p.clip.directions, p.clip.two_digit_prob > 0)
    ae, scale, latent_record = (prepare_latent(preset, output_dir, autoencoder, seed, mixed_precision, device, progress)
                                if p.latent else (None, None, {}))
    with seeded(seed):
        model = build_model(p, ae, scale)
    latent = None
    if model.autoencoder is not None:
        latent = LatentSpace(PerFrameAutoencoder(model.autoencoder), scale)
    diffusion = DiffusionConfig(prediction_type=p.prediction_type, cond_drop_prob=p.mix.uncond)
    table = CaptionTable.build(model.text_encoder, captions.captions)
    loss = VideoDiffusionLoss(DiffusionLoss(diffusion.schedule(), p.prediction_type, p.weighting), table, p.mix, latent)
    steps = max_steps or p.max_steps
    config = TrainConfig(max_steps=steps, batch_size=p.batch_size, learning_rate=p.learning_rate,
                         warmup_steps=min(200, max(1, steps // 10)), ema_decay=p.ema_decay,
                         mixed_precision=mixed_precision, checkpoint_every=checkpoint_every or p.checkpoint_every,
                         seed=seed, cpu=device == "cpu")

    def publish(step: int, inner: nn.Module, ema_state: dict[str, torch.Tensor]) -> None:
        VideoGenerator(inner, diffusion, next(inner.parameters()).device, clip=p.clip).save_pretrained(output_dir,
                                                                                                    ema_state)
        inner.train()

    data = VideoBatches(MovingDigits(p.clip, captions, "train"), p.mix)
    result = train(model, loss, data, config, output_dir, on_checkpoint=publish, progress=progress)
    if needs_train_record(result, output_dir):
        params = sum(t.numel() for t in model.parameters() if t.requires_grad)
        write_train_record(output_dir, command or f"train_video({str(output_dir)!r}, preset={preset!r}, max_steps={steps})",
                           config, result, {"preset": preset, "preset_config": asdict(p), "parameters": params,
                                            "num_captions": len(captions), "resumed_from": result.resumed_from,
                                            "dataset": "moving digits from the sklearn digits train split (80%)",
                                            "parameters_note": "trainable (the frozen autoencoder excluded)",
                                            **latent_record})
    return result

"""Train the moving-digits video model (``train_video(out, preset="small")``): autoencoder, recognizer, denoiser.

For a latent preset the per-frame autoencoder is trained first in ``output_dir/autoencoder_training``
(or an existing one is reused), its latent scale is estimated on a seeded batch of clips (Rombach
et al. 2022, sec. 4.3.2), and the denoiser trains on the frozen latents. A preset with a
``recognizer`` (the shipped ``small``) also trains the frozen first-frame recognizer in
``output_dir/recognizer_training``; it joins the published folder, never the training state. A
preset with an ``init_preset`` (a fine-tune; ``tiny-staged`` in the tests) instead trains (or reuses)
that preset in ``output_dir/init_training`` and starts from its weights: added modules start from their
initialisation, added input channels at zero, and the frozen autoencoder and its scale are the first
stage's. Every stage resumes from its ``training_state/``; the clips are rendered from the step's
generator, so a resumed run sees the batches it would have seen. The loadable generator folder is
``output_dir`` itself (its files; the frozen autoencoder and recognizer are part of the network),
refreshed at every checkpoint; the stage folders beside them are for resuming only.
"""
from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import torch
from diffusers import AutoencoderKL
from torch import nn

from conditioning.image import FrameRecognizer
from generators.core.checkpoint import load_tensors, read_json
from generators.core.latent import LatentSpace
from generators.core.losses import DiffusionLoss
from generators.core.pipeline import DiffusionConfig
from generators.core.training import (STATE_DIR, TrainConfig, TrainResult, load_init_weights, needs_train_record,
                                     run_finished, seeded, steps_done, train, write_train_record)

from .autoencoder import PerFrameAutoencoder, load_autoencoder, train_video_autoencoder
from .captions import CaptionSet
from .data import MovingDigits
from .generator import VideoGenerator
from .model import SpatioTemporalUNet
from .objective import CaptionTable, VideoBatches, VideoDiffusionLoss
from .presets import VideoPreset, get_preset
from .recognizer import load_recognizer, train_recognizer

AUTOENCODER_STAGE = "autoencoder_training"
INIT_STAGE = "init_training"
RECOGNIZER_STAGE = "recognizer_training"
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
        first_frame_tokens=p.first_frame_tokens,
        first_frame_patch=p.first_frame_patch,
        first_frame_concat=p.first_frame_concat,
    )
    if model.autoencoder is not None:
        model.autoencoder.load_state_dict(autoencoder.state_dict())
    return model


def _published_recognizer(directory: Path) -> dict | None:
    config = directory / "config.json"
    return read_json(config, "model config").get("recognizer_config") if config.is_file() else None


def prepare_latent(preset: str, output_dir: Path, autoencoder: str | os.PathLike | None, seed: int,
                   mixed_precision: str, device: str | None, progress: bool) -> tuple[AutoencoderKL, float, dict]:
    """Train (or reuse) the autoencoder and fit the latent scale; returns both and a record of them."""
    p = get_preset(preset)
    ae_dir = Path(autoencoder) if autoencoder is not None else output_dir / AUTOENCODER_STAGE
    if autoencoder is None and steps_done(ae_dir) < p.autoencoder.max_steps:
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


def with_recognizer(model: SpatioTemporalUNet, recognizer: FrameRecognizer) -> SpatioTemporalUNet:
    """The network to publish: ``model``'s architecture with ``recognizer`` as a frozen submodule (its
    weights copied; load the denoiser's with :func:`published_state`). The recognizer never joins the
    training state, so a run resumes the same whether or not its preset has one."""
    config = {k: v for k, v in model.config.items() if not k.startswith("_")}
    config["recognizer_config"] = {k: v for k, v in recognizer.config.items() if not k.startswith("_")}
    published = SpatioTemporalUNet.from_config(config).to(next(model.parameters()).device).eval()
    published.recognizer.load_state_dict(recognizer.state_dict())
    return published


def published_state(state: dict[str, torch.Tensor], recognizer: FrameRecognizer) -> dict[str, torch.Tensor]:
    """A training state dict (e.g. the EMA weights) plus the recognizer's weights under ``recognizer.``."""
    return {**state, **{f"recognizer.{k}": v for k, v in recognizer.state_dict().items()}}


def init_stage(preset: str, output_dir: Path, seed: int, mixed_precision: str, device: str | None,
               progress: bool) -> tuple[SpatioTemporalUNet, dict]:
    """Train (or resume, or reuse) the preset's ``init_preset`` in ``output_dir/init_training``; its network."""
    p = get_preset(preset)
    init_dir = output_dir / INIT_STAGE
    first = get_preset(p.init_preset)
    if not run_finished(init_dir, first.max_steps):
        train_video(init_dir, p.init_preset, seed=seed, mixed_precision=mixed_precision, device=device,
                    command=f"stage 1 of train_video({str(output_dir)!r}, preset={preset!r})", progress=progress)
    source = VideoGenerator.from_pretrained(init_dir, device="cpu").model
    source.recognizer = None  # a frozen extra of the published folder, not part of the trained network
    record = read_json(init_dir / "training.json", "stage-1 record")
    return source, {"init_preset": p.init_preset, "init_stage": str(init_dir), "init_steps": record.get("steps"),
                    "init_command": record.get("command"), "latent_scale": source.config.latent_scale,
                    **{k: record[k] for k in ("autoencoder", "autoencoder_held_out_psnr_db", "autoencoder_seconds")
                       if k in record}}


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
    source = None
    if p.init_preset is not None:
        source, latent_record = init_stage(preset, output_dir, seed, mixed_precision, device, progress)
        ae, scale = source.autoencoder, source.config.latent_scale
    else:
        ae, scale, latent_record = (prepare_latent(preset, output_dir, autoencoder, seed, mixed_precision, device,
                                                   progress) if p.latent else (None, None, {}))
    with seeded(seed):
        model = build_model(p, ae, scale)
    if source is not None:
        latent_record["init_new_modules"] = sorted({k.split(".")[0] for k in load_init_weights(model, source)})
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

    recognizer = None
    if p.recognizer:
        rec_dir = output_dir / RECOGNIZER_STAGE
        train_recognizer(rec_dir, preset, seed=seed, mixed_precision=mixed_precision, device=device,
                         command=f"stage of train_video({str(output_dir)!r})", progress=progress)
        recognizer = load_recognizer(rec_dir)
        latent_record.update({k: v for k, v in read_json(rec_dir / "training.json", "recognizer record").items()
                              if k.startswith("recognizer_")})

    published: list[SpatioTemporalUNet] = []  # built once (it loads the text encoder), refilled at each checkpoint

    def publish(step: int, inner: nn.Module, ema_state: dict[str, torch.Tensor]) -> None:
        net, state = inner, ema_state
        if recognizer is not None:
            if not published:
                published.append(with_recognizer(inner, recognizer))
            net, state = published[0], published_state(ema_state, recognizer)
            net.load_state_dict(state)
        VideoGenerator(net, diffusion, next(inner.parameters()).device, clip=p.clip).save_pretrained(output_dir, state)
        inner.train()

    data = VideoBatches(MovingDigits(p.clip, captions, "train"), p.mix)
    result = train(model, loss, data, config, output_dir, on_checkpoint=publish, progress=progress)
    earlier = None
    if not result.losses and recognizer is not None and _published_recognizer(output_dir) is None:
        # resumed with no step left, from a state published before its preset had a recognizer: publish
        # the state's EMA weights with it, and record this run (the denoiser's own record kept inside)
        state = load_tensors(output_dir / STATE_DIR / "model.safetensors")
        model.load_state_dict(state)
        publish(result.steps, model, {**state, **load_tensors(output_dir / STATE_DIR / "ema.safetensors")})
        record_path = output_dir / "training.json"
        earlier = read_json(record_path, "training record") if record_path.is_file() else {}
    if needs_train_record(result, output_dir) or earlier is not None:
        if earlier:
            latent_record["denoiser_record"] = earlier
        params = sum(t.numel() for t in model.parameters() if t.requires_grad)
        write_train_record(output_dir, command or f"train_video({str(output_dir)!r}, preset={preset!r}, max_steps={steps})",
                           config, result, {"preset": preset, "preset_config": asdict(p), "parameters": params,
                                            "num_captions": len(captions), "resumed_from": result.resumed_from,
                                            "dataset": "moving digits from the sklearn digits train split (80%)",
                                            "parameters_note": "trainable (the frozen autoencoder excluded)",
                                            **latent_record})
    return result

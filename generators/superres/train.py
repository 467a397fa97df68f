"""Train a super-resolution stage (``train_superres``) and the cascade (``train_cascade``) on the core loop.

Both run ``generators.core.training.train``: seeded initial weights, batches drawn from (seed, step),
EMA, and resumption from ``<folder>/training_state/``. The loadable folder is published through
``save_pretrained`` at every checkpoint, and ``training.json`` records the command.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from conditioning.image import LowResConditioner
from generators.core.checkpoint import read_json
from generators.core.losses import DiffusionLoss
from generators.core.pipeline import DiffusionConfig
from generators.core.training import (TrainConfig, TrainResult, load_init_weights, run_finished, seeded, train,
                                     write_train_record)

from .base import BaseGenerator, PromptUNet
from .cascade import write_layout
from .data import HELD_OUT, SOURCES, LabelledCrops, SRPairs, residual_std
from .generator import SuperResolver
from .model import SRNet
from .presets import BasePreset, SRPreset, cascade_preset, sr_preset

INIT_STAGE = "init_training"  # a fine-tuning preset's first stage, inside its output folder
DATASET = ("skimage.data (and sklearn sample) photos and textures (random crops, zoom, flips, RGB / grey); never: "
           + ", ".join(HELD_OUT))


@dataclass
class SRLoss:
    """L_simple on the normalised residual r = (x - up(y)) / residual_scale (Ho et al. 2020, eq. 14;
    SRDiff, Li et al. 2022), with the low-res condition noise-augmented at a random level (Ho et al. 2022,
    sec. 4.3) and dropped to the learned null with the checkpoint's probability (Ho & Salimans 2022)."""

    diffusion_loss: DiffusionLoss

    def __call__(self, net: Any, high: torch.Tensor, low: torch.Tensor, kinds: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        model = getattr(net, "module", net)  # DistributedDataParallel keeps the network in .module
        size = tuple(high.shape[-2:])
        told = kinds if model.config.num_degradations else None  # the degradation condition, where the net has one
        cond = model.conditioner(low, size, generator=generator, degradation=told)  # random level per sample
        base = model.conditioner.upsample(low, size)
        residual = (high - base) / model.config.residual_scale
        return self.diffusion_loss(net, residual, cond, generator=generator)


def _train_config(max_steps: int, batch_size: int, learning_rate: float, warmup_steps: int, ema_decay: float,
                  checkpoint_every: int, seed: int, mixed_precision: str, device: str | None,
                  lr_schedule: str = "constant") -> TrainConfig:
    if device not in (None, "cpu") and not str(device).startswith("cuda"):
        raise ValueError(f"device must be None (automatic), 'cpu' or 'cuda[:N]', got {device!r}")
    return TrainConfig(max_steps=max_steps, batch_size=batch_size, learning_rate=learning_rate,
                       warmup_steps=warmup_steps, ema_decay=ema_decay, checkpoint_every=checkpoint_every,
                       mixed_precision=mixed_precision, seed=seed, cpu=device == "cpu", lr_schedule=lr_schedule)


def _estimate_residual_scale(source: SRPairs) -> float:
    """The residual std of the preset's data, rounded; a fixed seed keeps it the same on every resume."""
    with seeded(0):
        upsample = LowResConditioner(channels=3, embedding_dim=8).upsample
    return round(residual_std(source, upsample), 4)


def train_stage(output_dir: str | os.PathLike, p: SRPreset, names: tuple[str, ...], zoom: tuple[float, float], *,
                max_steps: int | None = None, seed: int = 0, mixed_precision: str = "no",
                checkpoint_every: int | None = None, device: str | None = None, command: str = "",
                progress: bool = True, record: dict | None = None, init: SRNet | None = None) -> TrainResult:
    """Train one :class:`SuperResolver` stage on crops of ``names`` into ``output_dir`` (resumable).

    ``init``: a trained network to fine-tune (same architecture; modules it lacks, such as the degradation
    embedding, keep their zero initialisation); its residual scale is kept, so its outputs mean the same.
    """
    source = SRPairs(names, p.size, p.scale, zoom, p.grey_prob)
    residual_scale = float(init.config.residual_scale) if init is not None else _estimate_residual_scale(source)
    with seeded(seed):
        model = SRNet(channels=3, scale=p.scale, residual_scale=residual_scale, patch_size=p.patch_size,
                      block_channels=p.block_channels, blocks_per_level=p.blocks_per_level,
                      max_aug_level=p.max_aug_level, sample_aug_level=p.sample_aug_level,
                      num_degradations=p.num_degradations)
    if init is not None:
        added = load_init_weights(model, init)
        record = {**(record or {}), "init_new_modules": sorted({k.rsplit(".", 1)[0] for k in added})}
    diffusion = DiffusionConfig(beta_schedule=p.beta_schedule, prediction_type=p.prediction_type,
                                cond_drop_prob=p.cond_drop_prob)
    dropout = (lambda cond, g: model.conditioner.drop_condition(cond, p.cond_drop_prob, g)) if p.cond_drop_prob else None
    loss = SRLoss(DiffusionLoss(diffusion.schedule(), p.prediction_type, p.weighting, cond_dropout=dropout))
    config = _train_config(max_steps or p.max_steps, p.batch_size, p.learning_rate, p.warmup_steps, p.ema_decay,
                           checkpoint_every or p.checkpoint_every, seed, mixed_precision, device, p.lr_schedule)
    output_dir = Path(output_dir)

    def publish(step: int, inner: SRNet, ema_state: dict[str, torch.Tensor]) -> None:
        SuperResolver(inner, diffusion).save_pretrained(output_dir, ema_state)
        inner.train()

    result = train(model, loss, source, config, output_dir, on_checkpoint=publish, progress=progress)
    write_train_record(output_dir, command, config, result, {
        "preset_config": asdict(p), "residual_scale": residual_scale, "dataset": DATASET,
        "train_photos": list(names), "zoom": list(zoom), **(record or {})})
    return result


def train_superres(output_dir: str | os.PathLike, preset: str = "small", max_steps: int | None = None, seed: int = 0,
                   mixed_precision: str = "no", checkpoint_every: int | None = None, device: str | None = None,
                   command: str = "", progress: bool = True) -> TrainResult:
    """Train the x4 super-resolution model on every non-held-out photo and texture (``sr-x4``).

    Re-running with the same ``output_dir`` resumes from ``output_dir/training_state``; ``seed`` fixes
    the initial weights, the batches and the noise. Both degradations (bicubic, area) are trained on.
    """
    p = sr_preset(preset)
    output_dir = Path(output_dir)
    command = command or f"mmdiff train superres --preset {preset} --out {output_dir}"
    init, record = None, {"preset": preset}
    if p.init_preset is not None:  # a fine-tune: its first stage in output_dir/init_training, reused when done
        init_dir = output_dir / INIT_STAGE
        first = sr_preset(p.init_preset)
        if not run_finished(init_dir, first.max_steps):
            train_superres(init_dir, p.init_preset, seed=seed, mixed_precision=mixed_precision,
                           checkpoint_every=checkpoint_every, device=device, progress=progress,
                           command=f"stage 1 of train_superres({str(output_dir)!r}, preset={preset!r})")
        init = SuperResolver.from_pretrained(init_dir, device="cpu").model
        first_record = read_json(init_dir / "training.json", "stage-1 record")
        record.update(init_preset=p.init_preset, init_stage=str(init_dir), init_steps=first_record.get("steps"),
                      init_seconds=first_record.get("seconds_this_run"))
    return train_stage(output_dir, p, p.train_photos, p.zoom, max_steps=max_steps, seed=seed,
                       mixed_precision=mixed_precision, checkpoint_every=checkpoint_every, device=device,
                       command=command, progress=progress, record=record, init=init)


def train_base(output_dir: str | os.PathLike, p: BasePreset, names: tuple[str, ...], zoom: tuple[float, float], *,
               max_steps: int | None = None, seed: int = 0, mixed_precision: str = "no",
               checkpoint_every: int | None = None, device: str | None = None, command: str = "",
               progress: bool = True, record: dict | None = None) -> TrainResult:
    """Train the cascade's prompt-conditioned base generator on labelled crops at its resolution."""
    with seeded(seed):
        model = PromptUNet(sample_size=p.size, channels=3, block_out_channels=p.block_out_channels,
                           layers_per_block=p.layers_per_block, attention_levels=p.attention_levels,
                           norm_num_groups=p.norm_num_groups, names=names,
                           prompts=tuple(SOURCES[n].prompt for n in names))
    diffusion = DiffusionConfig(beta_schedule=p.beta_schedule, prediction_type=p.prediction_type,
                                cond_drop_prob=p.cond_drop_prob)
    encoder = model.label_encoder
    loss = DiffusionLoss(diffusion.schedule(), p.prediction_type,
                         cond_dropout=lambda labels, g: encoder.drop(labels, p.cond_drop_prob, g))
    config = _train_config(max_steps or p.max_steps, p.batch_size, p.learning_rate, p.warmup_steps, p.ema_decay,
                           checkpoint_every or p.checkpoint_every, seed, mixed_precision, device)
    output_dir = Path(output_dir)

    def publish(step: int, inner: PromptUNet, ema_state: dict[str, torch.Tensor]) -> None:
        BaseGenerator(inner, diffusion).save_pretrained(output_dir, ema_state)
        inner.train()

    result = train(model, loss, LabelledCrops(names, p.size, zoom), config, output_dir, on_checkpoint=publish,
                   progress=progress)
    write_train_record(output_dir, command, config, result, {
        "preset_config": asdict(p), "dataset": DATASET, "train_photos": list(names), "zoom": list(zoom),
        **(record or {})})
    return result


def train_cascade(output_dir: str | os.PathLike, preset: str = "small", max_steps: int | None = None, seed: int = 0,
                  mixed_precision: str = "no", checkpoint_every: int | None = None, device: str | None = None,
                  command: str = "", progress: bool = True) -> dict[str, TrainResult | None]:
    """Train the base generator and every stage into ``output_dir/{base,stage1,...}``, then write ``cascade.json``.

    ``max_steps`` (when given) applies to every part. Each part resumes on its own; a part already
    trained to its steps is skipped (its result is None).
    """
    p = cascade_preset(preset)
    output_dir = Path(output_dir)
    command = command or f"mmdiff train cascade --preset {preset} --out {output_dir}"
    common = dict(max_steps=max_steps, seed=seed, mixed_precision=mixed_precision, checkpoint_every=checkpoint_every,
                  device=device, command=command, progress=progress, record={"preset": preset, "cascade": str(output_dir)})
    results: dict[str, TrainResult | None] = {}
    base_dir = output_dir / "base"
    results["base"] = None if run_finished(base_dir, max_steps or p.base.max_steps) else train_base(
        base_dir, p.base, p.names, p.zoom_at(p.base.size), **common)
    for k, stage in enumerate(p.stages, start=1):
        folder = output_dir / f"stage{k}"
        results[f"stage{k}"] = None if run_finished(folder, max_steps or stage.max_steps) else train_stage(
            folder, stage, p.names, p.zoom_at(stage.size), **common)
    write_layout(output_dir, "base", [f"stage{k}" for k in range(1, len(p.stages) + 1)])
    return results

"""Train a super-resolution stage (``train_superres``) and the cascade (``train_cascade``) on the core loop.

Both run ``generators.core.training.train``: seeded initial weights, batches drawn from (seed, step),
EMA, and resumption from ``<folder>/training_state/``. The loadable folder is published through
``save_pretrained`` at every checkpoint, and ``training.json`` records the command.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from conditioning.image import LowResConditioner
from generators.core.checkpoint import init_checkpoint_record, read_json
from generators.core.losses import DiffusionLoss
from generators.core.pipeline import DiffusionConfig
from generators.core.training import (TrainConfig, TrainResult, load_init_weights, run_finished, seeded, train,
                                     write_train_record)

from .base import BaseGenerator, PromptUNet
from .cascade import write_layout
from .data import HELD_OUT, SOURCES, LabelledCrops, SRPairs, residual_std
from .generator import SuperResolver
from .model import REGRESSION_TIMESTEP, SRNet
from .presets import SR_PRESETS, BasePreset, SRPreset, cascade_preset, sr_preset

INIT_STAGE = "init_training"  # a fine-tuning preset's first stage, inside its output folder
MEAN_STAGE = "mean_training"  # a hybrid preset's regression network, inside its output folder
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
        cond, base = model.condition(low, size, generator=generator, degradation=told)  # random level per sample
        residual = (high - base) / model.config.residual_scale
        return self.diffusion_loss(net, residual, cond, generator=generator)


@dataclass
class SRRegressionLoss:
    """MSE of the network run as a regressor (x_t = 0, t = T) against the normalised residual over the
    augmented up(y): trains R(y), the estimate of E[x | y] that a hybrid stage diffuses around (SRDiff,
    Li et al. 2022, sec. 3.2). The input is noise-augmented at a random level, as for the diffusion."""

    def __call__(self, net: Any, high: torch.Tensor, low: torch.Tensor, kinds: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        model = getattr(net, "module", net)
        told = kinds if model.config.num_degradations else None
        cond = model.conditioner(low, tuple(high.shape[-2:]), generator=generator, degradation=told)
        target = (high - cond.image) / model.config.residual_scale
        t = torch.full((high.shape[0],), REGRESSION_TIMESTEP, device=high.device)
        return F.mse_loss(net(torch.zeros_like(cond.image), t, cond).float(), target.float())


def _train_config(max_steps: int, batch_size: int, learning_rate: float, warmup_steps: int, ema_decay: float,
                  checkpoint_every: int, seed: int, mixed_precision: str, device: str | None,
                  lr_schedule: str = "constant") -> TrainConfig:
    if device not in (None, "cpu") and not str(device).startswith("cuda"):
        raise ValueError(f"device must be None (automatic), 'cpu' or 'cuda[:N]', got {device!r}")
    return TrainConfig(max_steps=max_steps, batch_size=batch_size, learning_rate=learning_rate,
                       warmup_steps=warmup_steps, ema_decay=ema_decay, checkpoint_every=checkpoint_every,
                       mixed_precision=mixed_precision, seed=seed, cpu=device == "cpu", lr_schedule=lr_schedule)


def _estimate_residual_scale(source: SRPairs, mean: SRNet | None = None) -> float:
    """The residual std of the preset's data, rounded; a fixed seed keeps it the same on every resume.

    With a regression network ``mean``: the std of x - R(y) (the sample level of augmentation), the
    residual a hybrid stage diffuses.
    """
    if mean is None:
        with seeded(0):
            upsample = LowResConditioner(channels=3, embedding_dim=8).upsample
        return round(residual_std(source, lambda low, size, kinds: upsample(low, size)), 4)
    mean = mean.eval()
    told = mean.config.num_degradations > 0

    def estimate(low: torch.Tensor, size: tuple[int, int], kinds: torch.Tensor) -> torch.Tensor:
        up = mean.conditioner.upsample(low, size)
        return mean.regression_image(up, torch.zeros(low.shape[0]), kinds if told else None)

    return round(residual_std(source, estimate), 4)


def train_stage(output_dir: str | os.PathLike, p: SRPreset, names: tuple[str, ...], zoom: tuple[float, float], *,
                max_steps: int | None = None, seed: int = 0, mixed_precision: str = "no",
                checkpoint_every: int | None = None, device: str | None = None, command: str = "",
                progress: bool = True, record: dict | None = None, init: SRNet | None = None,
                mean: SRNet | None = None, objective: str = "diffusion") -> TrainResult:
    """Train one :class:`SuperResolver` stage on crops of ``names`` into ``output_dir`` (resumable).

    ``init``: a trained network to fine-tune (same architecture; modules it lacks, such as the degradation
    embedding, keep their zero initialisation); its residual scale is kept, so its outputs mean the same.
    ``mean``: a trained regression network; the stage becomes a hybrid that diffuses the residual over
    its R(y) (the residual scale is then re-estimated for x - R(y), and ``mean`` stays frozen).
    ``objective``: "diffusion", or "regression" to train the network as such a regressor (MSE).
    """
    if objective not in ("diffusion", "regression"):
        raise ValueError(f"objective must be 'diffusion' or 'regression', got {objective!r}")
    if objective == "regression" and mean is not None:
        raise ValueError("a regression stage cannot have a mean network of its own")
    source = SRPairs(names, p.size, p.scale, zoom, p.grey_prob)
    if mean is not None:
        residual_scale = _estimate_residual_scale(source, mean)
    elif init is not None:
        residual_scale = float(init.config.residual_scale)
    else:
        residual_scale = _estimate_residual_scale(source)
    mean_config = {k: v for k, v in mean.config.items() if not k.startswith("_")} if mean is not None else None
    with seeded(seed):
        model = SRNet(channels=3, scale=p.scale, residual_scale=residual_scale, patch_size=p.patch_size,
                      block_channels=p.block_channels, blocks_per_level=p.blocks_per_level,
                      max_aug_level=p.max_aug_level, sample_aug_level=p.sample_aug_level,
                      num_degradations=p.num_degradations, mean_config=mean_config)
    if init is not None:  # a hybrid init brings its own regressor too: the new one below replaces it
        added = [k for k in load_init_weights(model, init) if not k.startswith("mean_net.")]
        record = {**(record or {}), "init_new_modules": sorted({k.rsplit(".", 1)[0] for k in added})}
    if mean is not None:
        model.mean_net.load_state_dict(mean.state_dict())
    record = {**(record or {}), "objective": objective}
    diffusion = DiffusionConfig(beta_schedule=p.beta_schedule, prediction_type=p.prediction_type,
                                cond_drop_prob=p.cond_drop_prob)
    dropout = (lambda cond, g: model.conditioner.drop_condition(cond, p.cond_drop_prob, g)) if p.cond_drop_prob else None
    loss: SRLoss | SRRegressionLoss = SRRegressionLoss() if objective == "regression" else \
        SRLoss(DiffusionLoss(diffusion.schedule(), p.prediction_type, p.weighting, cond_dropout=dropout))
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
                   command: str = "", progress: bool = True,
                   init_checkpoint: str | os.PathLike | None = None) -> TrainResult:
    """Train the x4 super-resolution model on every non-held-out photo and texture (``sr-x4``).

    Re-running with the same ``output_dir`` resumes from ``output_dir/training_state``; ``seed`` fixes
    the initial weights, the batches and the noise. Both degradations (bicubic, area) are trained on.
    ``init_checkpoint``: the published folder a ``continues`` preset starts from. A hybrid's regressor
    trains on as the regression stage and its diffusion network as the diffusion stage; a plain network
    starts both. training.json records the folder, its weights' sha256 and its own training command.
    """
    p = sr_preset(preset)
    output_dir = Path(output_dir)
    command = command or f"mmdiff train superres --preset {preset} --out {output_dir}"
    init, record = None, {"preset": preset}
    mean_init = None
    if p.continues and init_checkpoint is None:
        raise ValueError(f"preset {preset!r} continues a published checkpoint: pass init_checkpoint "
                         "(--init-checkpoint), e.g. data/checkpoints/sr-x4")
    if init_checkpoint is not None:
        if not p.continues:
            names = [n for n, q in SR_PRESETS.items() if q.continues]
            raise ValueError(f"init_checkpoint is for the presets that continue a checkpoint ({', '.join(names)}); "
                             f"preset {preset!r} trains its own start")
        init = SuperResolver.from_pretrained(init_checkpoint, device="cpu").model
        mean_init = init.mean_net if init.mean_net is not None else init
        record.update(init_checkpoint_record(Path(init_checkpoint)))
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
    mean = None
    if p.mean_steps:  # a hybrid: its regression network first, in output_dir/mean_training, from the same init
        mean_dir = output_dir / MEAN_STAGE
        if not run_finished(mean_dir, p.mean_steps):
            mean_p = replace(p, max_steps=p.mean_steps, learning_rate=p.mean_learning_rate, mean_steps=0)
            train_stage(mean_dir, mean_p, p.train_photos, p.zoom, seed=seed, mixed_precision=mixed_precision,
                        checkpoint_every=checkpoint_every, device=device, progress=progress,
                        init=mean_init if mean_init is not None else init, objective="regression",
                        record={"preset": preset},
                        command=f"regression stage of train_superres({str(output_dir)!r}, preset={preset!r})")
        mean = SuperResolver.from_pretrained(mean_dir, device="cpu").model
        mean_record = read_json(mean_dir / "training.json", "regression-stage record")
        record.update(mean_stage=str(mean_dir), mean_steps=mean_record.get("steps"),
                      mean_seconds=mean_record.get("seconds_this_run"))
    return train_stage(output_dir, p, p.train_photos, p.zoom, max_steps=max_steps, seed=seed,
                       mixed_precision=mixed_precision, checkpoint_every=checkpoint_every, device=device,
                       command=command, progress=progress, record=record, init=init, mean=mean)


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

"""Train the class-conditional digits generator (``mmdiff train image --preset small``)."""
from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

from generators.core.losses import DiffusionLoss
from generators.core.pipeline import DiffusionConfig
from generators.core.training import TrainConfig, TrainResult, seeded, train, write_train_record

from .data import load_digits_split
from .generator import ImageGenerator
from .model import PRESETS, build_model


def train_config_for(preset: str, max_steps: int | None = None, seed: int = 0, mixed_precision: str = "no",
                     checkpoint_every: int | None = None) -> TrainConfig:
    p = PRESETS[preset]
    return TrainConfig(
        max_steps=max_steps or p.max_steps,
        batch_size=p.batch_size,
        learning_rate=p.learning_rate,
        warmup_steps=min(200, max(1, (max_steps or p.max_steps) // 10)),
        ema_decay=0.999,
        checkpoint_every=checkpoint_every or p.checkpoint_every,
        mixed_precision=mixed_precision,
        seed=seed,
    )


def train_image(
    output_dir: str | os.PathLike,
    preset: str = "small",
    max_steps: int | None = None,
    seed: int = 0,
    mixed_precision: str = "no",
    checkpoint_every: int | None = None,
    prediction_type: str = "epsilon",
    cond_drop_prob: float = 0.1,
    command: str = "",
    progress: bool = True,
) -> TrainResult:
    """Train on the digits train split; writes a loadable generator folder to ``output_dir``.

    The folder is refreshed at every checkpoint, and re-running with the same ``output_dir``
    resumes from ``output_dir/training_state``. ``seed`` fixes the initial weights, the batches and
    the noise, so two runs of the same command end with identical weights on a CPU.
    """
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {preset!r}")
    if not 0.0 <= cond_drop_prob < 1.0:
        raise ValueError(f"cond_drop_prob must be in [0, 1), got {cond_drop_prob}")
    p = PRESETS[preset]
    data = load_digits_split("train", p.image_size)
    with seeded(seed):
        model = build_model(preset)
    diffusion = DiffusionConfig(prediction_type=prediction_type, cond_drop_prob=cond_drop_prob)
    encoder = model.label_encoder
    loss = DiffusionLoss(
        diffusion.schedule(), prediction_type,
        cond_dropout=lambda labels, g: encoder.drop(labels, cond_drop_prob, g),
    )
    config = train_config_for(preset, max_steps, seed, mixed_precision, checkpoint_every)
    output_dir = Path(output_dir)

    def publish(step: int, inner, ema_state) -> None:
        ImageGenerator(inner, diffusion).save_pretrained(output_dir, ema_state)
        inner.train()

    result = train(model, loss, (data.images, data.labels), config, output_dir, on_checkpoint=publish, progress=progress)
    write_train_record(output_dir, command or f"mmdiff train image --preset {preset} --out {output_dir}", config, result,
                       {"preset": preset, "preset_config": asdict(p), "dataset": "sklearn.datasets.load_digits (train split, 80%)"})
    return result

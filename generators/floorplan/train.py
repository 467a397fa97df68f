"""Train the floorplan generator (``mmdiff train floorplan --preset small``) on the shared training loop.

The data are procedural plans (:mod:`.procedural`) of the train split, a fixed pool drawn once per run
from ``DATA_SEED`` (so ``--seed`` changes the initial weights and the batches, not the data set), or the
plans of an RPLAN-derived folder (:mod:`.rplan`). Batches come from :class:`.data.PlanBatches`, a
function of the loop's (seed, step) generator, so a resumed run sees the batches it would have seen.
"""
from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import torch

from generators.core.pipeline import DiffusionConfig
from generators.core.training import TrainConfig, TrainResult, seeded, train, write_train_record

from .data import PlanBatches, graph_split, procedural_plans
from .generator import FloorplanGenerator
from .model import PRESETS, FloorplanLoss, build_model
from .plan import Floorplan

DATA_SEED = 0
DIFFUSION = dict(beta_schedule="cosine", num_train_timesteps=1000, prediction_type="sample")
DEVICES = ("cpu", "cuda")


def training_plans(preset: str, rplan_dir: str | os.PathLike | None = None) -> list[Floorplan]:
    """The pool of training plans: procedural (train split), or the train split of an RPLAN folder."""
    p = PRESETS[preset]
    if rplan_dir is None:
        return procedural_plans("train", p.pool_size, p.train_rooms, seed=DATA_SEED)
    from .rplan import load_rplan_folder

    plans = [plan for plan in load_rplan_folder(rplan_dir, max_rooms=p.max_rooms, max_tokens=p.max_tokens)
             if graph_split(plan.graph) == "train"]
    if not plans:
        raise ValueError(f"no usable RPLAN plans in {rplan_dir} (train split, at most {p.max_rooms} rooms)")
    return plans


def train_config_for(preset: str, max_steps: int | None = None, seed: int = 0, mixed_precision: str = "no",
                     checkpoint_every: int | None = None, device: str | None = None) -> TrainConfig:
    p = PRESETS[preset]
    steps = max_steps or p.max_steps
    return TrainConfig(max_steps=steps, batch_size=p.batch_size, learning_rate=p.learning_rate,
                       warmup_steps=min(500, max(1, steps // 20)), ema_decay=0.999,
                       checkpoint_every=checkpoint_every or p.checkpoint_every, mixed_precision=mixed_precision,
                       seed=seed, cpu=device == "cpu")


def train_floorplan(
    output_dir: str | os.PathLike,
    preset: str = "small",
    max_steps: int | None = None,
    seed: int = 0,
    mixed_precision: str = "no",
    checkpoint_every: int | None = None,
    device: str | None = None,
    command: str = "",
    progress: bool = True,
    rplan_dir: str | os.PathLike | None = None,
    cond_drop_prob: float = 0.1,
) -> TrainResult:
    """Train (or resume) a floorplan generator; ``output_dir`` becomes a loadable checkpoint folder.

    Args:
        output_dir: the checkpoint folder, refreshed at every checkpoint; ``output_dir/training_state``
            is resumed when present (a second call with a larger ``max_steps`` continues the run).
        preset: a key of :data:`.model.PRESETS` (``tiny`` for tests, ``small`` shipped, ``base`` for a GPU).
        max_steps: optimiser steps in all (default: the preset's).
        seed: fixes the initial weights, the batches and the noise.
        mixed_precision: "no", "bf16" or "fp16" (accelerate).
        checkpoint_every: steps between checkpoints (default: the preset's).
        device: "cpu", "cuda" or None (accelerate's choice).
        command: the command line recorded in ``training.json``.
        progress: show a progress bar.
        rplan_dir: train on the RPLAN-derived JSON files of this folder instead of procedural plans.
        cond_drop_prob: probability of dropping the graph, for classifier-free guidance.
    """
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {preset!r}")
    if device is not None and device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES} or None, got {device!r}")
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
        raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
    diffusion = DiffusionConfig(**DIFFUSION, cond_drop_prob=cond_drop_prob)
    config = train_config_for(preset, max_steps, seed, mixed_precision, checkpoint_every, device)
    plans = training_plans(preset, rplan_dir)
    with seeded(seed):
        model = build_model(preset)
    output_dir = Path(output_dir)

    def publish(step: int, inner: torch.nn.Module, ema_state: dict[str, torch.Tensor]) -> None:
        FloorplanGenerator(inner, diffusion, device=next(inner.parameters()).device).save_pretrained(output_dir, ema_state)
        inner.train()

    loss = FloorplanLoss(diffusion.schedule(), cond_drop_prob)
    result = train(model, loss, PlanBatches(plans), config, output_dir, on_checkpoint=publish, progress=progress)
    p = PRESETS[preset]
    write_train_record(output_dir, command or f"mmdiff train floorplan --preset {preset} --out {output_dir}", config,
                       result, {"preset": preset, "preset_config": asdict(p),
                                "parameters": sum(t.numel() for t in model.parameters()),
                                "dataset": f"RPLAN folder {rplan_dir}" if rplan_dir else
                                f"procedural plans, train split, {len(plans)} plans of {p.train_rooms} rooms (seed {DATA_SEED})"})
    return result

"""The training loop every family uses, on accelerate (mixed precision, accumulation, multi-process).

``train(model, loss_fn, data, config, output_dir)`` runs ``config.max_steps`` optimiser steps of
``loss_fn(model, *batch, generator=...)`` with AdamW, linear warm-up, gradient clipping and an
EMA of the weights (diffusers ``EMAModel``). Every ``checkpoint_every`` steps it writes
``output_dir/training_state/`` (weights, EMA, optimiser, step; safetensors and JSON, nothing pickled)
by building a complete folder and swapping it into place; calling ``train``
again with the same ``output_dir`` resumes from there, losing at most one checkpoint interval.
Batches and noise are drawn from generators seeded by (seed, step), so a resumed run sees the
same batches it would have seen without the crash.

``data`` is either in-memory tensors sharing dim 0, or any :class:`BatchSource`: an object whose
``batch(generator, batch_size)`` returns the batch's tensors, drawn only from that generator. Data
that does not fit in memory (video clips, point clouds, floorplans generated on the fly or read
from disk) comes through :class:`DatasetBatches` (a map-style ``torch.utils.data.Dataset``) or
:class:`GeneratedBatches` (a function of the generator), and keeps the (seed, step) determinism
and the exact resume.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from contextlib import contextmanager
from typing import Callable, Iterator, Protocol, Sequence, runtime_checkable

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from diffusers.training_utils import EMAModel
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import (CheckpointError, atomic_save_tensors, atomic_write_json, load_state_checked, load_tensors,
                         read_json)

STATE_DIR = "training_state"
MIXED_PRECISION = ("no", "bf16", "fp16")
LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings; every field is explicit (EDM's ``training_loop`` style)."""

    max_steps: int = 1000
    batch_size: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 0.0
    warmup_steps: int = 100
    grad_accum_steps: int = 1
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    mixed_precision: str = "no"
    checkpoint_every: int = 500
    seed: int = 0
    cpu: bool = False
    lr_schedule: str = "constant"
    min_lr_ratio: float = 0.05

    def __post_init__(self) -> None:
        for name in ("max_steps", "batch_size", "grad_accum_steps", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}")


def learning_rate_at(config: TrainConfig, step: int) -> float:
    """The learning rate of (0-based) ``step``: linear warm-up, then constant or a cosine decay.

    The cosine schedule (SGDR, Loshchilov & Hutter 2017, eq. 5, one cycle) falls from ``learning_rate``
    after warm-up to ``min_lr_ratio * learning_rate`` at ``max_steps``. A resumed run with a larger
    ``max_steps`` stretches the remaining decay, so the schedule depends on the final step count.
    """
    base = config.learning_rate
    if step < config.warmup_steps:
        return base * (step + 1) / config.warmup_steps
    if config.lr_schedule == "constant":
        return base
    span = max(1, config.max_steps - config.warmup_steps)
    progress = min(1.0, (step - config.warmup_steps) / span)
    floor = config.min_lr_ratio
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def load_init_weights(model: nn.Module, source: nn.Module) -> list[str]:
    """Copy ``source``'s weights into ``model`` to fine-tune it; returns the keys ``model`` has and ``source`` lacks.

    Every tensor of ``source`` must exist in ``model`` with the same shape (a ValueError names the first
    that does not), except a convolution that gained input channels: its old channels are copied and the
    new ones start at zero, so the network computes what ``source`` computed until training moves them
    (the zero-initialised additions of ControlNet, Zhang et al. 2023, sec. 3.1, and of SVD's
    image-to-video fine-tuning). Added modules keep their own (zero or seeded) initialisation.
    """
    own, theirs = model.state_dict(), source.state_dict()
    merged = dict(own)
    for key, value in theirs.items():
        mine = own.get(key)
        if mine is not None and mine.shape == value.shape:
            merged[key] = value.to(mine.dtype)
        elif (mine is not None and mine.ndim == 4 and value.ndim == 4 and mine.shape[0] == value.shape[0]
              and mine.shape[2:] == value.shape[2:] and mine.shape[1] > value.shape[1]):
            grown = torch.zeros_like(mine)
            grown[:, :value.shape[1]] = value.to(mine.dtype)
            merged[key] = grown
        else:
            got = tuple(mine.shape) if mine is not None else "missing"
            raise ValueError(f"init weights: {key} {tuple(value.shape)} does not fit the new model ({got}); "
                             "the initial network must be the same network minus added modules or input channels")
    model.load_state_dict(merged)
    return sorted(set(own) - set(theirs))


@dataclass
class TrainResult:
    """What a training run did."""

    steps: int
    resumed_from: int
    losses: list[float]
    seconds: float
    samples_per_second: float
    peak_memory_mb: float | None


LossFn = Callable[..., torch.Tensor]
LOSS_READ_EVERY = 25  # on an accelerator, steps between reading the losses back to the host
CPU_LOSS_READ_EVERY = 1  # on the CPU a read costs nothing: every step, so the progress bar is current


@runtime_checkable
class BatchSource(Protocol):
    """Training data as a function of a seeded generator: the same generator state gives the same batch."""

    def batch(self, generator: torch.Generator, batch_size: int) -> tuple[torch.Tensor, ...]: ...


class TensorBatches:
    """In-memory tensors sharing dim 0; a batch is a uniform random draw of indices (with replacement)."""

    def __init__(self, tensors: Sequence[torch.Tensor]) -> None:
        self.tensors = list(tensors)
        if not self.tensors:
            raise ValueError("data must hold at least one tensor")
        self.n = int(self.tensors[0].shape[0])
        if any(int(d.shape[0]) != self.n for d in self.tensors):
            raise ValueError("all data tensors must have the same first dimension")

    def to(self, device: torch.device) -> "TensorBatches":
        return TensorBatches([d.to(device) for d in self.tensors])

    def batch(self, generator: torch.Generator, batch_size: int) -> tuple[torch.Tensor, ...]:
        idx = torch.randint(0, self.n, (batch_size,), generator=generator).to(self.tensors[0].device)
        return tuple(d[idx] for d in self.tensors)


class DatasetBatches:
    """A map-style ``Dataset`` (items: tuples of tensors) read by random index; items may be built on the fly.

    ``dataset[i]`` must depend on ``i`` alone (a procedural dataset seeds its own generator by ``i``),
    so that the batch depends only on the generator that picked the indices.
    """

    def __init__(self, dataset: torch.utils.data.Dataset) -> None:
        self.dataset = dataset
        self.n = len(dataset)  # type: ignore[arg-type]
        if self.n < 1:
            raise ValueError("the training dataset is empty")

    def batch(self, generator: torch.Generator, batch_size: int) -> tuple[torch.Tensor, ...]:
        idx = torch.randint(0, self.n, (batch_size,), generator=generator).tolist()
        items = [self.dataset[i] for i in idx]
        items = [item if isinstance(item, tuple) else (item,) for item in items]
        return tuple(torch.stack([torch.as_tensor(item[j]) for item in items]) for j in range(len(items[0])))


class GeneratedBatches:
    """Batches made by ``fn(generator, batch_size)``, e.g. clips rendered on the fly from the generator's draws."""

    def __init__(self, fn: Callable[[torch.Generator, int], tuple[torch.Tensor, ...]]) -> None:
        self.fn = fn

    def batch(self, generator: torch.Generator, batch_size: int) -> tuple[torch.Tensor, ...]:
        return tuple(self.fn(generator, batch_size))


def as_batch_source(data: Sequence[torch.Tensor] | BatchSource) -> BatchSource:
    """In-memory tensors become :class:`TensorBatches`; a BatchSource passes through."""
    if isinstance(data, BatchSource):
        return data
    return TensorBatches(data)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's global RNG for the block (model initialisation), restoring it afterwards.

    ``with seeded(seed): model = build_model(preset)`` makes a run's initial weights a function of
    its ``--seed``, so two identical training commands end with identical weights.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _is_complete(directory: Path) -> bool:
    """A state folder is complete when its ``state.json`` (written last) is there."""
    return (directory / "state.json").is_file()


def recover_state(directory: Path) -> None:
    """Finish a swap that a crash interrupted, so that resume finds the newest complete state.

    ``_save_state`` writes ``<dir>.tmp`` completely (``state.json`` last), then renames ``<dir>`` to
    ``<dir>.old`` and ``<dir>.tmp`` to ``<dir>``. After a crash at any point, the newest complete
    folder among them becomes ``<dir>``; nothing complete is ever deleted before that.
    """
    tmp, old = directory.with_name(directory.name + ".tmp"), directory.with_name(directory.name + ".old")
    if not _is_complete(directory):
        for candidate in (tmp, old):
            if _is_complete(candidate):
                if directory.exists():
                    shutil.rmtree(directory)
                os.replace(candidate, directory)
                break
    if _is_complete(directory):
        shutil.rmtree(old, ignore_errors=True)


def save_optimizer(directory: Path, optimizer: torch.optim.Optimizer) -> None:
    """The optimiser state without pickle: tensors in ``optimizer.safetensors``, the rest in ``optimizer.json``."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for idx, slot in sd["state"].items():
        for key, value in slot.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{idx}.{key}"] = value
            else:
                scalars[f"{idx}.{key}"] = value
    atomic_save_tensors(directory / "optimizer.safetensors", tensors)
    atomic_write_json(directory / "optimizer.json", {"param_groups": sd["param_groups"], "scalars": scalars})


def load_optimizer(directory: Path, optimizer: torch.optim.Optimizer) -> None:
    """Inverse of :func:`save_optimizer`; damaged files raise CheckpointError naming them."""
    tensors = load_tensors(directory / "optimizer.safetensors")
    meta = read_json(directory / "optimizer.json", "optimizer state")
    state: dict[int, dict] = {}
    for key, value in list(tensors.items()) + list(meta.get("scalars", {}).items()):
        idx, _, name = key.partition(".")
        state.setdefault(int(idx), {})[name] = value
    groups = [{k: tuple(v) if isinstance(own.get(k), tuple) else v for k, v in saved.items()}  # JSON lists -> tuples
              for saved, own in zip(meta.get("param_groups", []), optimizer.param_groups)]
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (KeyError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"optimizer state in {directory} does not match this model ({exc}); delete "
                              f"{directory} to restart training from scratch") from exc


def _save_state(directory: Path, model: nn.Module, ema: EMAModel, optimizer: torch.optim.Optimizer, step: int) -> None:
    """Write the resumable state to a fresh folder (``state.json`` last), then swap it into place."""
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    names = [n for n, _ in model.named_parameters()]
    atomic_save_tensors(tmp / "model.safetensors", model.state_dict())
    atomic_save_tensors(tmp / "ema.safetensors", dict(zip(names, ema.shadow_params)))
    save_optimizer(tmp, optimizer)
    atomic_write_json(tmp / "state.json", {"step": step, "ema_optimization_step": ema.optimization_step})
    old = directory.with_name(directory.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        os.replace(directory, old)
    os.replace(tmp, directory)
    shutil.rmtree(old, ignore_errors=True)


def _load_state(directory: Path, model: nn.Module, ema: EMAModel, optimizer: torch.optim.Optimizer) -> int:
    state = read_json(directory / "state.json", "training state")
    load_state_checked(model, load_tensors(directory / "model.safetensors"), directory)
    ema_weights = load_tensors(directory / "ema.safetensors")
    names = [n for n, _ in model.named_parameters()]
    ema.shadow_params = [ema_weights[n].clone() for n in names]
    ema.optimization_step = int(state["ema_optimization_step"])
    load_optimizer(directory, optimizer)
    return int(state["step"])


def ema_state_dict(model: nn.Module, ema: EMAModel) -> dict[str, torch.Tensor]:
    """The model's state dict with parameters replaced by their EMA (buffers unchanged)."""
    state = dict(model.state_dict())
    for (name, _), shadow in zip(model.named_parameters(), ema.shadow_params):
        state[name] = shadow.detach().clone()
    return state


def train(
    model: nn.Module,
    loss_fn: LossFn,
    data: Sequence[torch.Tensor] | BatchSource,
    config: TrainConfig,
    output_dir: str | os.PathLike,
    on_checkpoint: Callable[[int, nn.Module, dict[str, torch.Tensor]], None] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``model`` on ``data``: in-memory tensors sharing dim 0, or a :class:`BatchSource`.

    Args:
        model: the network; ``loss_fn(model, *batch, generator=g)`` returns a scalar loss.
        loss_fn: a loss callable such as :class:`~generators.core.losses.DiffusionLoss`.
        data: tensors sharing dim 0 (e.g. images and labels), or a BatchSource for data built on the fly.
        config: optimisation settings.
        output_dir: where ``training_state/`` lives; an existing one is resumed.
        on_checkpoint: called on the main process after each checkpoint with
            (step, unwrapped model, EMA state dict), e.g. to publish a model folder.
        progress: show a tqdm bar with the loss.
    """
    source = as_batch_source(data)
    output_dir = Path(output_dir)
    state_dir = output_dir / STATE_DIR
    if AcceleratorState._shared_state and AcceleratorState().mixed_precision != config.mixed_precision:
        # accelerate keeps one state per process; a new precision in the same process needs a fresh one
        AcceleratorState._reset_state(reset_partial_state=False)
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.grad_accum_steps,
        cpu=config.cpu,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    # foreach: two fused kernels per step instead of three per parameter (same update, s -= (1 - d)(s - p))
    ema = EMAModel(model.parameters(), decay=config.ema_decay, use_ema_warmup=True, power=2 / 3, foreach=True)
    start = 0
    recover_state(state_dir)
    if _is_complete(state_dir):
        start = _load_state(state_dir, model, ema, optimizer)
    model, optimizer = accelerator.prepare(model, optimizer)
    ema.to(accelerator.device)
    device = accelerator.device
    if isinstance(source, TensorBatches):
        source = source.to(device)
    rank, world = accelerator.process_index, accelerator.num_processes
    losses: list[float] = []
    pending: list[torch.Tensor] = []  # losses still on the device: read back in groups, not every step

    def read_losses() -> None:
        if pending:
            losses.extend(torch.stack(pending).float().cpu().tolist())
            pending.clear()

    bar = tqdm(total=config.max_steps, initial=start, desc="train", disable=not (progress and accelerator.is_main_process))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    model.train()
    for step in range(start, config.max_steps):
        for g in optimizer.param_groups:
            g["lr"] = learning_rate_at(config, step)
        for micro in range(config.grad_accum_steps):
            gen = torch.Generator().manual_seed(((config.seed * 1_000_003 + step) * 64 + micro) * 97 + rank)
            batch = [b.to(device) for b in source.batch(gen, config.batch_size)]
            with accelerator.accumulate(model), accelerator.autocast():
                loss = loss_fn(model, *batch, generator=gen)
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.grad_clip > 0:
                    accelerator.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        ema.step(accelerator.unwrap_model(model).parameters())
        pending.append(loss.detach())
        done = step + 1
        checkpoint = done % config.checkpoint_every == 0 or done == config.max_steps
        # Reading a loss waits for the device; on a GPU that stall would stop the host from queueing the
        # next step while this one runs, so losses are read every LOSS_READ_EVERY steps there.
        if checkpoint or len(pending) >= (CPU_LOSS_READ_EVERY if device.type == "cpu" else LOSS_READ_EVERY):
            read_losses()
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        bar.update(1)
        if checkpoint:
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:
                inner = accelerator.unwrap_model(model)
                _save_state(state_dir, inner, ema, optimizer, done)
                if on_checkpoint is not None:
                    on_checkpoint(done, inner, ema_state_dict(inner, ema))
    bar.close()
    seconds = time.perf_counter() - t0
    steps_run = config.max_steps - start
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    rate = steps_run * config.batch_size * config.grad_accum_steps * world / seconds if steps_run else 0.0
    return TrainResult(config.max_steps, start, losses, seconds, rate, peak)


def steps_done(directory: str | os.PathLike) -> int:
    """The step of the resumable state in ``directory/training_state`` (0 when there is none)."""
    state = Path(directory) / STATE_DIR / "state.json"
    return int(read_json(state, "training state")["step"]) if state.is_file() else 0


def run_finished(directory: str | os.PathLike, steps: int) -> bool:
    """True when the run in ``directory`` reached ``steps`` and wrote its record: a stage to reuse, not to train."""
    return steps_done(directory) >= steps and (Path(directory) / "training.json").is_file()


def needs_train_record(result: TrainResult, directory: str | os.PathLike) -> bool:
    """True when ``training.json`` should be (re)written: steps ran, or none were left but no record exists yet
    (a run stopped after its last checkpoint and before its record)."""
    return result.resumed_from < result.steps or not (Path(directory) / "training.json").is_file()


# what training.json keeps of an earlier run into the same folder (write_train_record)
PREVIOUS_RUN_KEYS = ("command", "steps", "seconds_this_run", "seconds_total_this_run", "preset", "stages")


def write_train_record(directory: str | os.PathLike, command: str, config: TrainConfig, result: TrainResult, extra: dict | None = None) -> None:
    """Record how a shipped checkpoint was produced (``training.json``).

    A folder that an earlier, finished run already recorded (a resume under a longer schedule or another
    command, e.g. a preset that extends a stage) keeps that run's command, steps and time under
    ``previous_runs``, oldest first, so the record names every command the weights went through. Rerunning
    the same command to the same step count adds nothing.
    """
    path = Path(directory) / "training.json"
    previous: list[dict] = []
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = None
        if isinstance(old, dict) and "command" in old:
            previous = list(old.get("previous_runs", []))
            if (old["command"], old.get("steps")) != (command, result.steps):
                previous.append({k: old[k] for k in PREVIOUS_RUN_KEYS if k in old})
    record = {
        "command": command,
        "train_config": asdict(config),
        "steps": result.steps,
        "final_loss_mean_last_100": (sum(result.losses[-100:]) / len(result.losses[-100:])) if result.losses else None,
        "seconds_this_run": round(result.seconds, 1),
        "samples_per_second": round(result.samples_per_second, 1),
        **(extra or {}),
        **({"previous_runs": previous} if previous else {}),
    }
    atomic_write_json(path, record)



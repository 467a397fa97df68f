"""Prefect tasks for the image family: each one calls the library and passes file paths, not tensors.

Tasks that hold the model take the device's concurrency slot (:mod:`flows.gpu`); tasks that read or
write files retry on transient I/O errors; tasks whose inputs are large lists use ``NO_CACHE``.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from .. import model_cache
from ..artifacts import Progress, artifact_key
from ..common import IO_RETRIES, log, training_device
from ..gpu import device_slot
from ..report import GalleryRow, Report
from ..reuse import code_version, fingerprint, mark_complete, publish_folder, reused_run
from .params import TrainImageParams

CODE_PATHS = ("generators/core", "generators/image")


def shard_seed(seed: int, shard_index: int) -> int:
    """The seed of shard ``shard_index``: derived from (seed, index) alone, never from the worker count."""
    return int(np.random.SeedSequence([seed, shard_index]).generate_state(1)[0])


def shard_labels(labels: list[int], shard_size: int) -> list[tuple[int, int, list[int]]]:
    """Split ``labels`` into (shard_index, start, labels) chunks of ``shard_size``."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    return [(i, start, labels[start:start + shard_size]) for i, start in enumerate(range(0, len(labels), shard_size))]


def dataset_version(preset: str) -> str:
    """sha256 of the training split exactly as the trainer sees it (images and labels)."""
    import hashlib

    from generators.image.data import load_digits_split
    from generators.image.model import PRESETS

    data = load_digits_split("train", PRESETS[preset].image_size)
    h = hashlib.sha256(data.images.numpy().tobytes())
    h.update(data.labels.numpy().tobytes())
    return h.hexdigest()


def image_generator(checkpoint: str, device: str = "cpu") -> Any:
    """The class-conditional generator from the model cache (loaded afresh on a GPU)."""
    return model_cache.load("image", checkpoint, device)


@task(name="fingerprint-training", **IO_RETRIES)
def fingerprint_task(params: TrainImageParams) -> dict[str, Any]:
    """The training folder for these parameters: cache_root/image-<preset>-<fingerprint>."""
    from generators.image.train import train_config_for

    config = asdict(train_config_for(params.preset, params.max_steps, params.seed, params.mixed_precision,
                                     params.checkpoint_every))
    config.update(preset=params.preset, num_processes=params.num_processes)
    digest = fingerprint(config, dataset_version(params.preset), code_version(CODE_PATHS))
    folder = Path(params.cache_root) / f"image-{params.preset}-{digest[:16]}"
    return {"folder": str(folder), "fingerprint": digest, "config": config}


def _watch_training(folder: Path, total: int, progress: Progress, stop: threading.Event) -> None:
    """Poll ``training_state/state.json`` (rewritten at every checkpoint) and move the progress bar."""
    state = folder / "training_state" / "state.json"
    while not stop.wait(0.5):
        try:
            progress.update(json.loads(state.read_text())["step"] / total)
        except (OSError, ValueError, KeyError):
            continue


@task(name="train-image", cache_policy=NO_CACHE)
def train_task(folder: str, digest: str, params: TrainImageParams, command: str = "") -> dict[str, Any]:
    """Train (resuming from ``folder/training_state``) unless ``folder`` already holds this fingerprint."""
    from generators.image.model import PRESETS
    from generators.image.train import train_image

    out = Path(folder)
    reused = reused_run(out, digest)
    if reused is not None:
        return reused
    total = params.max_steps or PRESETS[params.preset].max_steps
    progress = Progress(artifact_key("train-image-progress"), f"training {params.preset} for {total} steps")
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_training, args=(out, total, progress, stop), daemon=True)
    watcher.start()
    t0 = time.perf_counter()
    try:
        with device_slot(training_device()):
            if params.num_processes > 1:
                from .launch import accelerate_train

                summary = accelerate_train(out, params.preset, params.max_steps, params.seed, params.mixed_precision,
                                           params.checkpoint_every, params.num_processes)
                steps, resumed = summary["steps"], summary["resumed_from"]
            else:
                result = train_image(out, params.preset, params.max_steps, params.seed, params.mixed_precision,
                                     params.checkpoint_every, command=command or "prefect flow train_image",
                                     progress=False)
                steps, resumed = result.steps, result.resumed_from
    finally:
        stop.set()
        watcher.join()
    progress.update(1.0, force=True)
    seconds = time.perf_counter() - t0
    mark_complete(out, digest, {"steps": steps, "preset": params.preset})
    if resumed:
        log(f"resumed {out} from step {resumed}")
    return {"reused": False, "folder": folder, "steps": steps, "resumed_from": resumed, "seconds": round(seconds, 2)}


@task(name="publish-checkpoint", **IO_RETRIES)
def publish_task(folder: str, publish_dir: str) -> str:
    """Copy the finished checkpoint (without its training state) to ``publish_dir`` atomically."""
    return str(publish_folder(Path(folder), Path(publish_dir)))


@task(name="check-checkpoint", **IO_RETRIES)
def check_checkpoint_task(checkpoint: str) -> dict[str, Any]:
    """Fail early, naming the folder, if the checkpoint does not load; returns its diffusion config."""
    gen = image_generator(checkpoint)
    return {"checkpoint": checkpoint, "image_size": gen.image_size, **asdict(gen.diffusion)}


@task(name="generate-shard", cache_policy=NO_CACHE)
def generate_shard_task(checkpoint: str, shard_index: int, start: int, labels: list[int], seed: int, sampler: str,
                        num_inference_steps: int, guidance_scale: float, out_dir: str, device: str = "cpu",
                        batch_size: int = 256) -> list[dict[str, Any]]:
    """Generate one shard with its derived seed, write PNGs, return one row per sample."""
    progress = Progress(artifact_key("generate-shard", str(shard_index), "progress"),
                        f"sampling shard {shard_index} ({len(labels)} images)")
    with device_slot(device):
        gen = image_generator(checkpoint, device)
        s = shard_seed(seed, shard_index)
        out = gen(labels, num_inference_steps=num_inference_steps, sampler=sampler, guidance_scale=guidance_scale,
                  seed=s, batch_size=batch_size, callback=progress.step_callback(0, 1))
    progress.update(1.0, force=True)
    paths = out.save(Path(out_dir), prefix=f"shard{shard_index:03d}")
    return [{"index": start + i, "label": int(y), "shard": shard_index, "seed": s, "path": str(p)}
            for i, (y, p) in enumerate(zip(labels, paths))]


@task(name="score-samples", cache_policy=NO_CACHE, **IO_RETRIES)
def score_samples_task(rows: list[dict[str, Any]], classifier: str) -> list[dict[str, Any]]:
    """Per-sample metrics from the PNGs: the digit classifier's prediction and its confidence."""
    import torch
    from PIL import Image

    if not rows:
        return rows
    model = model_cache.load("digit-classifier", classifier, "cpu")
    arrays = [np.asarray(Image.open(r["path"]), dtype=np.float32) for r in rows]
    x = torch.from_numpy(np.stack(arrays))[:, None] / 127.5 - 1.0  # (N, 1, H, W) in [-1, 1]
    with torch.no_grad():
        probs = torch.softmax(model(x), dim=-1)
    conf, pred = probs.max(dim=-1)
    return [{**r, "predicted": int(p), "confidence": round(float(c), 4), "correct": int(p) == r["label"]}
            for r, p, c in zip(rows, pred.tolist(), conf.tolist())]


@task(name="evaluate-image", cache_policy=NO_CACHE)
def evaluate_task(checkpoint: str, per_class: int, sampler: str, num_inference_steps: int, guidance_scale: float,
                  seed: int, cas_epochs: int, classifier: str, device: str = "cpu",
                  full_range_guidance: bool = False) -> dict[str, Any]:
    """Accuracy, Frechet distance and CAS (``generators.image.evaluate``) for a checkpoint folder."""
    from generators.image.evaluate import evaluate_image_generator
    from generators.image.generator import DEFAULT_GUIDANCE_INTERVAL

    with device_slot(device):
        gen = image_generator(checkpoint, device)
        return evaluate_image_generator(gen, per_class, sampler, num_inference_steps, guidance_scale, seed,
                                        classifier_path=classifier, cas_epochs=cas_epochs,
                                        guidance_interval=None if full_range_guidance else DEFAULT_GUIDANCE_INTERVAL)


@task(name="write-report", cache_policy=NO_CACHE, **IO_RETRIES)
def write_report_task(run_dir: str, title: str, tables: list[tuple[str, dict]], rows: list[dict[str, Any]],
                      notes: list[str] | None = None) -> str:
    """Write ``run_dir/index.html``: metric tables, notes, and the samples as a gallery."""
    run = Path(run_dir)
    report = Report(title, tables=list(tables))
    for note in notes or []:
        report.rows.append(GalleryRow("note", [], note))
    if rows:
        images = []
        for r in rows:
            caption = f"label {r['label']}"
            if "predicted" in r:
                caption += f" (pred {r['predicted']}, {r['confidence']:.2f})"
            images.append((str(Path(r["path"]).resolve().relative_to(run.resolve())), caption))
        report.rows.append(GalleryRow("samples", images))
    return str(report.write(run))

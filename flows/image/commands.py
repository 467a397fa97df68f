"""The image family's command functions: what ``mmdiff <verb> image|text2img|controlnet`` runs.

Each takes its validated parameter model and the ``--out`` path, and calls the same tasks' functions
as the family's flows (``task.fn``), so the CLI and the flows behave alike: ``train image`` reuses a
finished checkpoint by fingerprint, resumes an interrupted one and publishes to ``publish_dir``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from generators.core.checkpoint import atomic_write_json

from .. import model_cache
from ..common import command_line
from .params import (EvaluateControlNetParams, EvaluateImageParams, EvaluateText2ImgParams, GenerateControlNetParams,
                     GenerateImageParams, GenerateText2ImgParams, TrainClassifierParams, TrainControlNetParams,
                     TrainImageParams, TrainText2ImgParams)
from .tasks import evaluate_task, fingerprint_task, publish_task, train_task


def _write_metrics(checkpoint: str, metrics: dict[str, Any], write: bool) -> dict[str, Any]:
    metrics = {**metrics, "command": command_line() or metrics.get("command", "")}
    if write:
        atomic_write_json(Path(checkpoint) / "metrics.json", metrics)
    return metrics


def train_image(params: TrainImageParams, out: Path | None = None) -> dict[str, Any]:
    """Fingerprint -> train (reused when finished, resumed when interrupted) -> publish to ``publish_dir``."""
    fp = fingerprint_task.fn(params)
    trained = train_task.fn(fp["folder"], fp["fingerprint"], params, command=command_line())
    published = publish_task.fn(fp["folder"], params.publish_dir)
    return {"published": published, "folder": fp["folder"], "steps": trained["steps"], "reused": trained["reused"],
            "resumed_from": trained["resumed_from"], "train_seconds": trained["seconds"]}


def generate_image(params: GenerateImageParams, out: Path | None) -> list[str]:
    """One PNG per label under ``out``, sampled and written in chunks of ``batch_size`` (memory stays bounded)."""
    gen = model_cache.load("image", params.checkpoint, params.device)
    folder = out or Path("outputs/generate")
    if folder.suffix and len(params.labels) != 1:
        raise ValueError(f"--out {folder}: {len(params.labels)} images cannot go into one file; give a folder path")
    written: list[str] = []
    for chunk in gen.chunks(params.labels, num_inference_steps=params.num_inference_steps, sampler=params.sampler,
                            guidance_scale=params.guidance_scale, seed=params.seed, batch_size=params.batch_size,
                            progress=True):
        written += [str(p) for p in chunk.save(folder)]
    return written


def evaluate_image(params: EvaluateImageParams, out: Path | None = None) -> dict[str, Any]:
    """Accuracy, Frechet distance and CAS against held-out digits (``--write-metrics`` keeps them)."""
    metrics = evaluate_task.fn(params.checkpoint, params.per_class, params.sampler, params.num_inference_steps,
                               params.guidance_scale, params.seed, params.cas_epochs, params.classifier, params.device,
                               params.full_range_guidance)
    return _write_metrics(params.checkpoint, metrics, params.write_metrics)


def generate_text2img(params: GenerateText2ImgParams, out: Path | None) -> list[str]:
    """One digit per prompt under ``out``."""
    gen = model_cache.load("text2img", params.checkpoint)
    result = gen(params.prompt, num_inference_steps=params.num_inference_steps, sampler=params.sampler,
                 guidance_scale=params.guidance_scale, seed=params.seed, progress=True)
    return [str(p) for p in result.save(out or Path("outputs/text2img"))]


def train_text2img(params: TrainText2ImgParams, out: Path | None) -> dict[str, Any]:
    """Fine-tune the digits model into a text-conditioned one in ``out`` (resumable)."""
    from generators.image.text2img import train_text2img as train

    result = train(out, params.base, params.max_steps, params.batch_size, params.learning_rate, seed=params.seed,
                   checkpoint_every=params.checkpoint_every, command=command_line())
    return {"out": str(out), "steps": result.steps, "resumed_from": result.resumed_from}


def evaluate_text2img(params: EvaluateText2ImgParams, out: Path | None = None) -> dict[str, Any]:
    """Digit and attribute accuracy on held-out phrasings, beside the label-only base."""
    from generators.image.evaluate_conditioning import evaluate_text2img as evaluate
    from generators.image.generator import DEFAULT_GUIDANCE_INTERVAL

    metrics = evaluate(params.checkpoint, params.base, params.prompts, params.num_inference_steps,
                       params.guidance_scale, params.seed,
                       guidance_interval=None if params.full_range_guidance else DEFAULT_GUIDANCE_INTERVAL)
    return _write_metrics(params.checkpoint, metrics, params.write_metrics)


def _read_edge_maps(paths: list[str]) -> np.ndarray:
    """Edge-map PNGs -> uint8 (B, H, W); animated files are refused (only one frame would be used)."""
    from PIL import Image, UnidentifiedImageError

    maps = []
    for p in paths:
        if not Path(p).is_file():
            raise ValueError(f"--control file not found: {p}; pass edge-map PNGs (white edges on black)")
        try:
            with Image.open(p) as im:
                if getattr(im, "n_frames", 1) > 1:
                    raise ValueError(f"--control {p} has {im.n_frames} frames; give a single-frame edge map")
                maps.append(np.asarray(im.convert("L")))
        except (UnidentifiedImageError, OSError) as exc:
            raise ValueError(f"--control {p} is not a readable image ({exc})") from None
    if len({m.shape for m in maps}) > 1:
        raise ValueError(f"--control maps differ in size: {sorted({m.shape for m in maps})}")
    return np.stack(maps)


def generate_controlnet(params: GenerateControlNetParams, out: Path | None) -> list[str]:
    """Edge maps -> digits with the ControlNet adapter on its frozen base."""
    gen = model_cache.load("controlnet", params.checkpoint)
    result = gen(_read_edge_maps(params.control), labels=params.labels, num_inference_steps=params.num_inference_steps,
                 sampler=params.sampler, guidance_scale=params.guidance_scale, seed=params.seed, progress=True)
    return [str(p) for p in result.save(out or Path("outputs/controlnet"))]


def train_controlnet(params: TrainControlNetParams, out: Path | None) -> dict[str, Any]:
    """Train an edge-map adapter in ``out`` on the frozen base (resumable)."""
    from generators.image.controlnet import train_controlnet as train

    result = train(out, params.base, params.max_steps, params.batch_size, params.learning_rate, seed=params.seed,
                   checkpoint_every=params.checkpoint_every, command=command_line())
    return {"out": str(out), "steps": result.steps, "resumed_from": result.resumed_from}


def evaluate_controlnet(params: EvaluateControlNetParams, out: Path | None = None) -> dict[str, Any]:
    """Edge F1 of the outputs vs their input maps, beside the base without control."""
    from generators.image.evaluate_conditioning import evaluate_controlnet as evaluate

    metrics = evaluate(params.checkpoint, params.images, params.num_inference_steps, params.seed)
    return _write_metrics(params.checkpoint, metrics, params.write_metrics)


def train_classifier(params: TrainClassifierParams, out: Path | None) -> dict[str, Any]:
    """The evaluation digit classifier, saved in ``out`` with its held-out accuracy in metrics.json."""
    from generators.image.classifier import train_digit_classifier

    metrics = train_digit_classifier(out, epochs=params.epochs, seed=params.seed)
    atomic_write_json(Path(out) / "metrics.json", {**metrics, "command": command_line()})
    return metrics

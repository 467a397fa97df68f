"""Prefect tasks for the video family: each calls the library and passes file paths, not tensors.

Tasks that hold a model take the device's concurrency slot (:mod:`flows.gpu`); tasks that write files
retry transient I/O errors; tasks with large inputs use ``NO_CACHE``.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from .. import model_cache
from ..common import IO_RETRIES, log, training_device
from ..gpu import device_slot
from ..report import GalleryRow, Report
from ..reuse import code_version, fingerprint, mark_complete, publish_folder, reused_run
from .params import GenerateVideoParams, TrainVideoParams

CODE_PATHS = ("generators/core", "generators/video", "conditioning")


def dataset_version(preset: str) -> str:
    """sha256 of what the clips are rendered from: the train-split sprites and the clip spec."""
    from generators.video.data import digit_sprites
    from generators.video.presets import get_preset

    clip = get_preset(preset).clip
    sprites, labels = digit_sprites("train", clip.digit_size)
    h = hashlib.sha256(sprites.numpy().tobytes())
    h.update(labels.numpy().tobytes())
    h.update(json.dumps(asdict(clip), sort_keys=True).encode())
    return h.hexdigest()


def video_generator(checkpoint: str, device: str = "cpu") -> Any:
    """The video generator from the model cache (loaded afresh on a GPU)."""
    return model_cache.load("video", checkpoint, device)


@task(name="fingerprint-video-training", **IO_RETRIES)
def fingerprint_task(params: TrainVideoParams) -> dict[str, Any]:
    """The training folder for these parameters: cache_root/video-<preset>-<fingerprint>."""
    from generators.video.presets import get_preset

    config = {"preset": params.preset, "preset_config": asdict(get_preset(params.preset)),
              "max_steps": params.max_steps, "seed": params.seed, "mixed_precision": params.mixed_precision,
              "checkpoint_every": params.checkpoint_every, "autoencoder": params.autoencoder}
    digest = fingerprint(json.loads(json.dumps(config, default=str)), dataset_version(params.preset),
                         code_version(CODE_PATHS))
    return {"folder": str(Path(params.cache_root) / f"video-{params.preset}-{digest[:16]}"), "fingerprint": digest}


@task(name="train-video", cache_policy=NO_CACHE)
def train_task(folder: str, digest: str, params: TrainVideoParams, command: str = "") -> dict[str, Any]:
    """Train (resuming from ``folder``'s training states) unless ``folder`` already holds this fingerprint."""
    from generators.video.train import train_video

    out = Path(folder)
    reused = reused_run(out, digest)
    if reused is not None:
        return reused
    t0 = time.perf_counter()
    device = training_device(params.device)
    with device_slot(device):
        result = train_video(out, params.preset, params.max_steps, params.seed, params.mixed_precision,
                             params.checkpoint_every, params.device, command=command or "prefect flow train_video",
                             progress=False, autoencoder=params.autoencoder)
    mark_complete(out, digest, {"steps": result.steps, "preset": params.preset})
    if result.resumed_from:
        log(f"resumed {out} from step {result.resumed_from}")
    return {"reused": False, "folder": folder, "steps": result.steps, "resumed_from": result.resumed_from,
            "seconds": round(time.perf_counter() - t0, 2)}


@task(name="publish-video-checkpoint", **IO_RETRIES)
def publish_task(folder: str, publish_dir: str) -> str:
    """Publish the finished checkpoint's files (not its training-state folders) to ``publish_dir`` as a whole."""
    return str(publish_folder(Path(folder), Path(publish_dir)))


def _first_frame(path: str | None) -> Any:
    if not path:
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.convert("RGB").copy()
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"image {path} is not a readable image ({exc})") from None


def generate_clip(params: GenerateVideoParams, out: Path) -> list[str]:
    """Generate the clip ``params`` describe and save it at ``out`` (a .mp4, .gif or a folder)."""
    with device_slot(params.device):
        gen = video_generator(params.checkpoint, params.device)
        clip = gen(prompt=params.prompt or None, labels=params.labels, motion=params.motion,
                   image=_first_frame(params.image), num_frames=params.frames,
                   num_inference_steps=params.num_inference_steps, sampler=params.sampler,
                   guidance_scale=params.guidance_scale, seed=params.seed)
        if params.interpolate:
            clip = gen.interpolate(clip, prompt=params.prompt or None, num_inference_steps=params.num_inference_steps,
                                   sampler=params.sampler, guidance_scale=params.guidance_scale, seed=params.seed)
    return [str(p) for p in clip.save(out)]


@task(name="generate-video", cache_policy=NO_CACHE, **IO_RETRIES)
def generate_task(params: GenerateVideoParams, out: str) -> list[str]:
    """One clip written to ``out``."""
    return generate_clip(params, Path(out))


@task(name="evaluate-video", cache_policy=NO_CACHE)
def evaluate_task(checkpoint: str, num_prompts: int, sampler: str, steps: int, guidance_scale: float, seed: int,
                  num_i2v: int, num_long: int, long_frames: int, batch_size: int, digit_classifier: str,
                  video_classifier: str, device: str = "cpu") -> dict[str, Any]:
    """``generators.video.evaluate_video`` on a checkpoint folder."""
    from generators.video import evaluate_video

    with device_slot(device):
        return evaluate_video(video_generator(checkpoint, device), num_prompts, sampler, steps, guidance_scale, seed,
                              num_i2v, num_long, long_frames, batch_size, digit_classifier, video_classifier)


@task(name="write-video-report", cache_policy=NO_CACHE, **IO_RETRIES)
def write_report_task(run_dir: str, title: str, tables: list[tuple[str, dict]], media: list[str]) -> str:
    """``run_dir/index.html``: the metric tables and the clips (GIFs play, MP4s play in place)."""
    run = Path(run_dir)
    report = Report(title, tables=list(tables))
    for kind, suffix in (("gif", ".gif"), ("video", ".mp4")):
        files = [m for m in media if m.endswith(suffix)]
        if files:
            report.rows.append(GalleryRow("clips", [(str(Path(m).resolve().relative_to(run.resolve())), Path(m).name)
                                                    for m in files], kind=kind))
    return str(report.write(run))

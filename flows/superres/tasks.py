"""Prefect tasks for the super-resolution family: each calls the library and passes file paths, not tensors.

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

from generators.core.checkpoint import weights_sha256

from .. import model_cache
from ..common import IO_RETRIES, log, training_device
from ..gpu import device_slot
from ..report import GalleryRow, Report
from ..reuse import code_version, fingerprint, mark_complete, publish_folder, reused_run
from . import CODE_PATHS
from .params import TrainSuperresParams, UpscaleParams


def dataset_version(names: tuple[str, ...]) -> str:
    """sha256 of the photos the trainer crops from, in order, and of the held-out list."""
    from generators.superres.data import HELD_OUT, load_photo_uint8

    h = hashlib.sha256(json.dumps({"names": list(names), "held_out": list(HELD_OUT)}).encode())
    for name in names:
        h.update(load_photo_uint8(name).tobytes())
    return h.hexdigest()


def resolver(checkpoint: str, device: str = "cpu") -> Any:
    """The super-resolution generator from the model cache (loaded afresh on a GPU)."""
    return model_cache.load("superres", checkpoint, device)


@task(name="fingerprint-superres-training", **IO_RETRIES)
def fingerprint_task(params: TrainSuperresParams) -> dict[str, Any]:
    """The training folder for these parameters: cache_root/superres-<preset>-<fingerprint>."""
    from generators.superres.presets import sr_preset

    preset = sr_preset(params.preset)
    config = {"preset": params.preset, "preset_config": asdict(preset),
              "init_preset_config": asdict(sr_preset(preset.init_preset)) if preset.init_preset else None,
              "max_steps": params.max_steps, "seed": params.seed, "mixed_precision": params.mixed_precision,
              "checkpoint_every": params.checkpoint_every,
              "init_checkpoint": weights_sha256(params.init_checkpoint) if params.init_checkpoint else None}
    digest = fingerprint(json.loads(json.dumps(config)), dataset_version(preset.train_photos),
                         code_version(CODE_PATHS))
    return {"folder": str(Path(params.cache_root) / f"superres-{params.preset}-{digest[:16]}"), "fingerprint": digest}


@task(name="train-superres", cache_policy=NO_CACHE)
def train_task(folder: str, digest: str, params: TrainSuperresParams, command: str = "") -> dict[str, Any]:
    """Train (resuming from ``folder/training_state``) unless ``folder`` already holds this fingerprint."""
    from generators.superres.train import train_superres

    out = Path(folder)
    reused = reused_run(out, digest)
    if reused is not None:
        return reused
    t0 = time.perf_counter()
    with device_slot(training_device(params.device)):
        result = train_superres(out, params.preset, params.max_steps, params.seed, params.mixed_precision,
                                params.checkpoint_every, params.device,
                                command=command or "prefect flow train_superres", progress=False,
                                init_checkpoint=params.init_checkpoint)
    mark_complete(out, digest, {"steps": result.steps, "preset": params.preset})
    if result.resumed_from:
        log(f"resumed {out} from step {result.resumed_from}")
    return {"reused": False, "folder": folder, "steps": result.steps, "resumed_from": result.resumed_from,
            "seconds": round(time.perf_counter() - t0, 2)}


@task(name="publish-superres-checkpoint", **IO_RETRIES)
def publish_task(folder: str, publish_dir: str) -> str:
    """Copy the finished checkpoint (without its training state) to ``publish_dir`` as a whole."""
    return str(publish_folder(Path(folder), Path(publish_dir)))


def upscale_files(params: UpscaleParams, out: Path) -> list[str]:
    """Upscale ``params.image`` and save to ``out`` (a file for one output, else a folder); nothing half-written."""
    with device_slot(params.device):
        sr = resolver(params.checkpoint, params.device)
        result = sr(image=list(params.image), scale=params.scale, num_inference_steps=params.num_inference_steps,
                    sampler=params.sampler, seed=params.seed, num_samples=params.num_samples,
                    degradation=params.degradation, tile_size=params.tile_size, tile_overlap=params.tile_overlap,
                    antithetic=params.antithetic, self_ensemble=params.self_ensemble)
    return [str(p) for p in result.save(out)]


@task(name="upscale", cache_policy=NO_CACHE, **IO_RETRIES)
def upscale_task(params: UpscaleParams, out: str) -> list[str]:
    """Upscaled images written to ``out``."""
    return upscale_files(params, Path(out))


@task(name="side-by-side", cache_policy=NO_CACHE, **IO_RETRIES)
def side_by_side_task(inputs: list[str], outputs: list[str], scale: int, out_dir: str) -> list[dict[str, Any]]:
    """For each input: low-res, bicubic and diffusion PNGs of the output's size, as report rows."""
    import numpy as np
    from PIL import Image

    from evaluation.superres import bicubic_upsample
    from generators.core.checkpoint import atomic_write_bytes
    from generators.core.pipeline import png_bytes

    rows = []
    folder = Path(out_dir)
    for i, (src, result) in enumerate(zip(inputs, outputs)):
        low = np.asarray(Image.open(src).convert("RGB"))
        big = np.asarray(Image.open(result).convert("RGB"))
        nearest = np.kron(low, np.ones((scale, scale, 1), np.uint8))[: big.shape[0], : big.shape[1]]
        paths = []
        for name, img in (("low-res", nearest), ("bicubic", bicubic_upsample(low, scale)), ("diffusion", big)):
            path = folder / f"{i:03d}_{name}.png"
            atomic_write_bytes(path, png_bytes(img))
            paths.append((str(path), name))
        rows.append({"title": f"{Path(src).name}: low-res / bicubic / diffusion (x{scale})", "images": paths})
    return rows


@task(name="evaluate-superres", cache_policy=NO_CACHE)
def evaluate_task(checkpoint: str, crop: int, num_samples: int, sampler: str, steps: int, seed: int,
                  device: str = "cpu", antithetic: bool = True, self_ensemble: bool = True) -> dict[str, Any]:
    """``generators.superres.evaluate.evaluate_superres`` on a checkpoint folder (held-out photos only)."""
    from generators.superres.evaluate import evaluate_superres

    with device_slot(device):
        return evaluate_superres(resolver(checkpoint, device), crop=crop, num_samples=num_samples,
                                 num_inference_steps=steps, sampler=sampler, seed=seed, antithetic=antithetic,
                                 self_ensemble=self_ensemble)


@task(name="generate-cascade", cache_policy=NO_CACHE, **IO_RETRIES)
def cascade_task(checkpoint: str, prompt: list[str], num: int, sampler: str, steps: int, guidance_scale: float,
                 stage_guidance_scale: float, seed: int, out: str, device: str = "cpu") -> list[str]:
    """Every stage's PNGs under ``out`` (``stage<k>_<r>px/``) and ``out/contact_sheet.png``."""
    with device_slot(device):
        cascade = model_cache.load("cascade", checkpoint, device)
        result = cascade(prompt=prompt, num_images=num, num_inference_steps=steps, sampler=sampler,
                         guidance_scale=guidance_scale, stage_guidance_scale=stage_guidance_scale, seed=seed)
    return [str(p) for p in result.save(Path(out)) + result.save(Path(out) / "contact_sheet.png")]


@task(name="evaluate-cascade", cache_policy=NO_CACHE)
def evaluate_cascade_task(checkpoint: str, classifier: str, preset: str, per_prompt: int, sampler: str, steps: int,
                          guidance_scale: float, seed: int, device: str = "cpu") -> dict[str, Any]:
    """Per-stage Frechet distance of the cascade (``generators.superres.evaluate.evaluate_cascade``)."""
    from generators.superres.evaluate import evaluate_cascade

    with device_slot(device):
        cascade = model_cache.load("cascade", checkpoint, device)
        return evaluate_cascade(cascade, classifier, preset=preset, per_prompt=per_prompt,
                                num_inference_steps=steps, sampler=sampler, guidance_scale=guidance_scale, seed=seed)


@task(name="write-superres-report", cache_policy=NO_CACHE, **IO_RETRIES)
def write_report_task(run_dir: str, title: str, tables: list[tuple[str, dict]], rows: list[dict[str, Any]]) -> str:
    """``run_dir/index.html``: metric tables and image rows (paths made relative to the run folder)."""
    run = Path(run_dir).resolve()
    report = Report(title, tables=list(tables))
    for row in rows:
        images = [(str(Path(p).resolve().relative_to(run)), caption) for p, caption in row["images"]]
        report.rows.append(GalleryRow(row["title"], images, row.get("note", "")))
    return str(report.write(Path(run_dir)))

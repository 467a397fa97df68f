"""The image family's gallery: the rows of the composed flow's ``image-gallery`` step (``make demo``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from prefect import task

from generators.image import ImageGenerator, ImageOutput

from .. import model_cache
from ..common import IO_RETRIES
from ..gpu import device_slot
from ..registry import StepContext, StepResult
from ..report import GalleryRow
from .params import ImageSection

DEMO_PROMPTS = ["a thin upright two", "a thick, slanted seven", "please draw the number 4; make it wide",
                "a narrow upright one", "a thick zero"]


def _row(title: str, out, run_dir: Path, prefix: str, captions: list[str], note: str = "") -> GalleryRow:
    paths = out.save(run_dir / "images", prefix=prefix)
    return GalleryRow(title, [(str(p.relative_to(run_dir)), c) for p, c in zip(paths, captions)], note)


def image_rows(gen: ImageGenerator, run_dir: Path, labels: list[int], steps: int, seed: int,
               source: ImageOutput | None = None) -> list[GalleryRow]:
    """Rows for the digits generator: samplers, guidance, SDEdit, inpainting, denoising (of ``source``)."""
    rows = []
    for sampler, n in (("dpmsolver++", steps), ("ddim", steps), ("ddpm", 200), ("pf-ode", 30)):
        out = gen(labels, num_inference_steps=n, sampler=sampler, guidance_scale=3.0, seed=seed)
        rows.append(_row(f"{sampler}, {n} steps, guidance 3", out, run_dir, f"{sampler}", [f"label {y}" for y in labels]))
    if source is None:
        source = gen(labels, num_inference_steps=steps, guidance_scale=3.0, seed=seed + 1)
    target = [(y + 1) % 10 for y in labels]
    edited = gen.sdedit(source.images, target, strength=0.7, seed=seed)
    rows.append(_row("source digits", source, run_dir, "source", [f"label {y}" for y in labels]))
    rows.append(_row("SDEdit, strength 0.7, toward label+1", edited, run_dir, "sdedit", [f"-> {y}" for y in target]))
    mask = np.zeros(source.images.shape[1:3], dtype=np.float32)
    mask[: mask.shape[0] // 2] = 1
    filled = gen.inpaint(source.images, mask, labels, seed=seed)
    rows.append(_row("inpainting the top half", filled, run_dir, "inpaint", [f"label {y}" for y in labels]))
    rng = np.random.default_rng(seed)
    noisy = np.clip(source.images.astype(np.float32) + rng.normal(0, 0.3 * 127.5, source.images.shape), 0, 255).astype(np.uint8)
    rows.append(_row("noisy input (std 0.3)", ImageOutput(noisy, source.labels), run_dir, "noisy", ["noisy"] * len(labels)))
    clean = gen.denoise(noisy, noise_std=0.3, seed=seed)
    rows.append(_row("denoised (reverse process from the matching step)", clean, run_dir, "denoised", ["denoised"] * len(labels)))
    return rows


def conditioning_rows(run_dir: Path, source: ImageOutput, seed: int,
                      text2img_checkpoint: str | Path | None = None,
                      controlnet_checkpoint: str | Path | None = None) -> list[GalleryRow]:
    """Prompt -> image and edge map -> image rows; a row is left out when its checkpoint is None or ''."""
    import torch

    from generators.image.controlnet import edge_map
    from generators.image.data import from_uint8

    rows = []
    if text2img_checkpoint:
        out = model_cache.load("text2img", str(text2img_checkpoint))(DEMO_PROMPTS, guidance_scale=3.0, seed=seed)
        rows.append(_row("text -> image (prompt under each digit)", out, run_dir, "text2img", DEMO_PROMPTS))
    if controlnet_checkpoint:
        edges = edge_map(from_uint8(source.images))
        edge_png = ImageOutput((edges.permute(0, 2, 3, 1).numpy() * 255).astype("uint8"), source.labels)
        rows.append(_row("edge maps (input)", edge_png, run_dir, "edges", ["edges"] * len(source.labels)))
        out = model_cache.load("controlnet", str(controlnet_checkpoint))(edges.to(torch.float32), seed=seed)
        rows.append(_row("edge map -> image (ControlNet, no label)", out, run_dir, "controlnet", ["from edges"] * len(source.labels)))
    return rows


@task(name="image-gallery", **IO_RETRIES)
def image_gallery_task(section: ImageSection, run_dir: str, seed: int, device: str = "cpu") -> list[dict[str, Any]]:
    """The image family's rows of the report (files under ``run_dir/images``), as plain dicts.

    ``full`` gives the demo's rows (samplers, SDEdit, inpainting, denoising, and the prompt -> image
    and edge map -> image rows of the conditioning checkpoints that are given); otherwise one row of samples.
    """
    labels, steps, sampler = section.labels, section.num_inference_steps, section.sampler
    with device_slot(device):
        gen = model_cache.load("image", section.checkpoint, device)
        if section.gallery == "full":
            source = gen(labels, num_inference_steps=steps, guidance_scale=3.0, seed=seed + 1)
            rows = image_rows(gen, Path(run_dir), labels, steps, seed, source)
            rows += conditioning_rows(Path(run_dir), source, seed, section.text2img_checkpoint or None,
                                      section.controlnet_checkpoint or None)
        else:
            out = gen(labels, num_inference_steps=steps, sampler=sampler, guidance_scale=3.0, seed=seed)
            rows = [_row(f"digits: {sampler}, {steps} steps, guidance 3", out, Path(run_dir), "digits",
                         [f"label {y}" for y in labels])]
    return [r.to_dict() for r in rows]


def run_gallery_step(section: ImageSection, context: StepContext) -> StepResult:
    """The composed flow's ``image-gallery`` step."""
    return StepResult(image_gallery_task(section, context.run_dir, context.seed))

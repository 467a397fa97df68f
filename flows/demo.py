"""The main job (``make demo``): the composed flow on the shipped checkpoints, one gallery report.

This module holds the image family's gallery rows (used by the composed flow's ``image-gallery``
step) and :func:`run_demo`, which runs :func:`flows.composed.composed_flow` as a Prefect flow run.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from generators.image import ImageGenerator, ImageOutput

from .params import CONTROLNET_CHECKPOINT, TEXT2IMG_CHECKPOINT
from .report import GalleryRow

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
                      text2img_checkpoint: str | Path | None = TEXT2IMG_CHECKPOINT,
                      controlnet_checkpoint: str | Path | None = CONTROLNET_CHECKPOINT) -> list[GalleryRow]:
    """Prompt -> image and edge map -> image rows; a row is left out when its checkpoint is None or ''."""
    import torch

    from generators.image.controlnet import ControlNetImageGenerator, edge_map
    from generators.image.data import from_uint8

    rows = []
    if text2img_checkpoint:
        from generators.image.text2img import TextImageGenerator

        out = TextImageGenerator.from_pretrained(text2img_checkpoint)(DEMO_PROMPTS, guidance_scale=3.0, seed=seed)
        rows.append(_row("text -> image (prompt under each digit)", out, run_dir, "text2img", DEMO_PROMPTS))
    if controlnet_checkpoint:
        edges = edge_map(from_uint8(source.images))
        edge_png = ImageOutput((edges.permute(0, 2, 3, 1).numpy() * 255).astype("uint8"), source.labels)
        rows.append(_row("edge maps (input)", edge_png, run_dir, "edges", ["edges"] * len(source.labels)))
        out = ControlNetImageGenerator.from_pretrained(controlnet_checkpoint)(edges.to(torch.float32), seed=seed)
        rows.append(_row("edge map -> image (ControlNet, no label)", out, run_dir, "controlnet", ["from edges"] * len(source.labels)))
    return rows


def run_demo(output_root: str | Path = "outputs", seed: int = 0) -> Path:
    """Run the composed flow on the shipped checkpoints; returns ``outputs/<run-id>/index.html``.

    Every family that has landed adds its rows to the one report; the others are listed as skipped.
    """
    import os

    # Without PREFECT_API_URL, Prefect starts a temporary local server for this run. On the first
    # run it creates its SQLite database, which takes longer than Prefect's 20 s start-up limit on a
    # small machine; and it should not try to send telemetry (offline machines log errors for it).
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from .composed import composed_flow
    from .params import ComposedParams

    result = composed_flow(ComposedParams(output_root=str(output_root), seed=seed))
    return Path(result["report"])

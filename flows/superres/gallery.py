"""The family's rows of the composed flow (``make demo``): earlier steps' previews (or the brief's images)
upscaled x4, shown as low-res / bicubic / diffusion side by side, and the cascade's stages."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from prefect import task

from .. import model_cache
from ..common import IO_RETRIES, log
from ..gpu import device_slot
from ..registry import StepContext, StepResult
from ..report import GalleryRow
from .params import SuperresSection
from .tasks import resolver


def _low_res(path: str, max_side: int) -> np.ndarray:
    """The image as uint8 RGB, area-downscaled so that its longer side is at most ``max_side``."""
    from PIL import Image

    with Image.open(path) as im:
        rgb = im.convert("RGB")
        factor = max(rgb.size) / max_side
        if factor > 1:
            rgb = rgb.resize((max(2, round(rgb.size[0] / factor)), max(2, round(rgb.size[1] / factor))), Image.BOX)
        return np.asarray(rgb)


def upscale_rows(section: SuperresSection, images: list[str], run_dir: Path, seed: int,
                 device: str = "cpu") -> list[GalleryRow]:
    """One row per image: low-res (enlarged), bicubic and diffusion at the output size."""
    from evaluation.superres import bicubic_upsample
    from generators.superres.output import ImagesOutput

    rows = []
    with device_slot(device):
        sr = resolver(section.checkpoint, device)
        for i, path in enumerate(images[: section.max_images]):
            low = _low_res(path, section.max_input_side)
            out = sr(image=low, num_inference_steps=section.num_inference_steps, degradation=section.degradation,
                     seed=seed + i)
            s = sr.scale
            trio = [np.kron(low, np.ones((s, s, 1), np.uint8)), bicubic_upsample(low, s), out.images[0]]
            paths = ImagesOutput(trio).save(run_dir / "superres", prefix=f"{i:02d}")
            rows.append(GalleryRow(f"{Path(path).name}: low-res / bicubic / diffusion x{s}",
                                   [(str(p.relative_to(run_dir)), c) for p, c in zip(paths, ("low-res", "bicubic",
                                                                                              "diffusion"))]))
    return rows


def cascade_rows(section: SuperresSection, run_dir: Path, seed: int, device: str = "cpu") -> list[GalleryRow]:
    """One row per cascade stage for ``section.cascade_prompt``; a note when the cascade folder is missing."""
    if not section.cascade_checkpoint:
        return []
    if not (Path(section.cascade_checkpoint) / "cascade.json").is_file():
        return [GalleryRow("cascade", [], f"no cascade at {section.cascade_checkpoint}; train it with "
                                          "`mmdiff train cascade --preset small`")]
    with device_slot(device):
        cascade = model_cache.load("cascade", section.cascade_checkpoint, device)
        out = cascade(prompt=section.cascade_prompt, num_images=4, num_inference_steps=section.num_inference_steps,
                      seed=seed)
    paths = out.save(run_dir / "cascade")
    rows = []
    for k, r in enumerate(cascade.resolutions):
        images = [(str(p.relative_to(run_dir)), f"{r}px") for p in paths if p.parent.name == f"stage{k}_{r}px"]
        rows.append(GalleryRow(f"cascade '{section.cascade_prompt}': stage {k} ({r}x{r})", images))
    return rows


@task(name="superres-gallery", **IO_RETRIES)
def superres_gallery_task(section: SuperresSection, images: list[str], run_dir: str, seed: int,
                          device: str = "cpu") -> list[dict[str, Any]]:
    """The family's rows under ``run_dir/superres`` and ``run_dir/cascade``, as plain dicts."""
    run = Path(run_dir)
    rows = upscale_rows(section, images, run, seed, device) if images else []
    if not images:
        log("superres: no previews from earlier steps and no images in the section; upscale row skipped")
    return [r.to_dict() for r in rows + cascade_rows(section, run, seed, device)]


def held_out_inputs(count: int, folder: Path, crop: int = 256) -> list[str]:
    """Centre crops of the first ``count`` held-out photos (never trained on), written as PNGs in ``folder``."""
    from generators.core.checkpoint import atomic_write_bytes
    from generators.core.pipeline import png_bytes
    from generators.superres.data import HELD_OUT, load_photo_uint8
    from generators.superres.evaluate import centre_crop

    paths = []
    for name in HELD_OUT[:count]:
        path = folder / f"{name}.png"
        atomic_write_bytes(path, png_bytes(centre_crop(load_photo_uint8(name), crop)))
        paths.append(str(path))
    return paths


def run_gallery_step(section: SuperresSection, context: StepContext) -> StepResult:
    """The composed flow's ``upscale`` step: earlier steps' previews, else the section's images, else
    crops of held-out photos."""
    images = list(context.outputs.get("previews", {}).get("images", [])) or list(section.images)
    if not images and section.held_out_photos:
        images = held_out_inputs(section.held_out_photos, Path(context.run_dir) / "superres" / "inputs")
    rows = superres_gallery_task(section, images, context.run_dir, context.seed)
    upscaled = [p for r in rows for p, caption in r["images"] if caption == "diffusion"]
    return StepResult(rows, {"images": [str(Path(context.run_dir) / p) for p in upscaled]})

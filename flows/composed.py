"""The composed flow: one brief (bubble graph + style prompt) -> every modality -> one run folder, one report.

Planned steps, in order (issue 4): floorplans from the bubble graph, keeping the most compatible;
a 3D object per room from its prompt, refined into a mesh; previews rendered from the meshes;
previews upscaled by the super-resolution cascade; a short video; and the image family's gallery.
A step runs only when its generator family has landed (``generators/<family>/`` exists) *and* its
step is wired here; otherwise it is skipped with a message saying which and why, and the run
goes on. Families join by adding a runner to :data:`STEP_RUNNERS`.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from prefect import flow, task
from prefect.runtime import flow_run
from prefect.cache_policies import NO_CACHE

from .artifacts import artifact_key, publish_report
from .gpu import device_slot
from .image import run_dir_task
from .image_tasks import IO_RETRIES
from .params import ComposedParams
from .report import GalleryRow, Report


@dataclass(frozen=True)
class Step:
    """One step of the composed flow and the generator family it needs."""

    name: str
    family: str
    description: str


STEPS: tuple[Step, ...] = (
    Step("floorplans", "floorplan", "generate floorplans from the bubble graph and keep the most compatible"),
    Step("room-objects", "pointcloud", "generate a 3D object per room from its prompt and refine it into a mesh"),
    Step("previews", "pointcloud", "render previews of the room meshes"),
    Step("upscale", "superres", "upscale the previews with the super-resolution cascade"),
    Step("video", "video", "make a short video from the style prompt"),
    Step("image-gallery", "image", "class-conditional digit gallery (samplers, SDEdit, inpainting, denoising)"),
)


def family_landed(family: str) -> bool:
    """True when ``generators/<family>`` is an importable package."""
    return importlib.util.find_spec(f"generators.{family}") is not None


@task(name="image-gallery", **IO_RETRIES)
def image_gallery_task(checkpoint: str, run_dir: str, labels: list[int], sampler: str, steps: int, seed: int,
                       full: bool = True, device: str = "cpu", text2img_checkpoint: str = "",
                       controlnet_checkpoint: str = "") -> list[dict[str, Any]]:
    """The image family's rows of the report (files under ``run_dir/images``), as plain dicts.

    ``full`` gives the demo's rows (samplers, SDEdit, inpainting, denoising, and the prompt -> image
    and edge map -> image rows of the conditioning checkpoints that are given); otherwise one row of samples.
    """
    from . import model_cache
    from .demo import conditioning_rows, image_rows

    with device_slot(device):
        gen = model_cache.image_generator(checkpoint, device)
        if full:
            source = gen(labels, num_inference_steps=steps, guidance_scale=3.0, seed=seed + 1)
            rows = image_rows(gen, Path(run_dir), labels, steps, seed, source)
            rows += conditioning_rows(Path(run_dir), source, seed, text2img_checkpoint or None,
                                      controlnet_checkpoint or None)
        else:
            out = gen(labels, num_inference_steps=steps, sampler=sampler, guidance_scale=3.0, seed=seed)
            paths = out.save(Path(run_dir) / "images", prefix="digits")
            rows = [GalleryRow(f"digits: {sampler}, {steps} steps, guidance 3",
                               [(str(p.relative_to(run_dir)), f"label {y}") for p, y in zip(paths, labels)])]
    return [{"title": r.title, "images": r.images, "note": r.note} for r in rows]


def _run_image(params: ComposedParams, run_dir: str) -> list[dict[str, Any]]:
    return image_gallery_task(params.image_checkpoint, run_dir, params.labels, params.sampler,
                              params.num_inference_steps, params.seed, params.image_gallery == "full",
                              text2img_checkpoint=params.text2img_checkpoint,
                              controlnet_checkpoint=params.controlnet_checkpoint)


# The wired steps: step name -> runner(params, run_dir) -> report rows. Families join here as they land.
STEP_RUNNERS: dict[str, Callable[[ComposedParams, str], list[dict[str, Any]]]] = {
    "image-gallery": _run_image,
}


def plan(steps: tuple[Step, ...] = STEPS) -> list[tuple[Step, str | None]]:
    """Each step with None (runs) or the reason it is skipped."""
    out = []
    for step in steps:
        if not family_landed(step.family):
            reason = f"skipped: the '{step.family}' generator has not landed yet (generators/{step.family}/ is missing)"
        elif step.name not in STEP_RUNNERS:
            reason = f"skipped: the '{step.family}' generator has landed but its composed step is not wired yet"
        else:
            reason = None
        out.append((step, reason))
    return out


@task(name="write-composed-report", cache_policy=NO_CACHE, **IO_RETRIES)
def write_composed_report(run_dir: str, params: ComposedParams, status: list[dict[str, str]],
                          rows: list[dict[str, Any]]) -> str:
    """``run_dir/index.html``: the brief, each step's status, then every gallery row."""
    brief = params.brief
    report = Report("mmdiff composed run")
    report.tables.append(("brief", {
        "style prompt": brief.style_prompt or "(none)",
        "rooms": ", ".join(f"{r.name} ({r.room_type}, {r.area_m2:g} m2)" for r in brief.rooms),
        "adjacency": ", ".join(f"{a}-{b}" for a, b in brief.adjacency) or "(none)",
    }))
    report.tables.append(("steps", {s["step"]: s["status"] for s in status}))
    report.rows.extend(GalleryRow(r["title"], [tuple(i) for i in r["images"]], r.get("note", "")) for r in rows)
    return str(report.write(run_dir))


@flow(name="composed", log_prints=True)
def composed_flow(params: ComposedParams = ComposedParams()) -> dict[str, Any]:
    """From one brief, run every landed family's step into one run folder with one report."""
    run_dir = run_dir_task(params.output_root, "composed")
    status: list[dict[str, str]] = []
    rows: list[dict[str, Any]] = []
    for step, reason in plan():
        if reason is not None:
            print(f"step {step.name} ({step.description}): {reason}")
            status.append({"step": step.name, "family": step.family, "status": reason})
            continue
        rows.extend(STEP_RUNNERS[step.name](params, run_dir))
        status.append({"step": step.name, "family": step.family, "status": "ran"})
    report = write_composed_report(run_dir, params, status, rows)
    metrics = {s["step"]: s["status"] for s in status}
    publish_report(artifact_key("composed-report"), "composed run", metrics, Path(run_dir), status)
    return {"run_dir": run_dir, "report": report, "steps": status, "flow_run_id": str(flow_run.id)}

"""The point-cloud family's steps of the composed run: ``room-objects`` and ``previews``.

``room-objects`` makes one object per room of the brief from the room's type (bedroom -> bed, living
room -> sofa, ...; the room's ``object_prompt`` is added as text) and refines it into a mesh;
``previews`` renders each mesh headless from three views, for the gallery and for later steps
(``context.outputs["previews"]["images"]``, e.g. the super-resolution step).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from ..common import IO_RETRIES
from ..registry import StepContext, StepResult
from ..report import GalleryRow
from .params import ROOM_OBJECTS, GeneratePointCloudParams, PointCloudSection
from .tasks import generate_task, previews_task


def room_requests(brief: Any, section: PointCloudSection, categories: tuple[str, ...] | None = None) -> list[tuple[str, str, str]]:
    """(room name, category, prompt) for the first ``max_objects`` rooms whose object the model knows."""
    out = []
    for room in brief.rooms:
        category = ROOM_OBJECTS.get(room.room_type)
        if category is None or (categories is not None and category not in categories):
            continue
        out.append((room.name, category, room.object_prompt.strip() or f"a {category}"))
    return out[: section.max_objects]


@task(name="room-objects", cache_policy=NO_CACHE, **IO_RETRIES)
def room_objects_task(section: PointCloudSection, brief: Any, run_dir: str, seed: int) -> dict[str, Any]:
    """Generate and refine one object per room; the meshes' files and one gallery row."""
    from .. import model_cache

    gen = model_cache.load("pointcloud", section.checkpoint)
    requests = room_requests(brief, section, gen.categories)
    if not requests:
        return {"rows": [], "meshes": [], "rooms": []}
    text = gen.model.global_prior.text_encoder is not None
    params = GeneratePointCloudParams(label=[c for _, c, _ in requests], prompt=[p for _, _, p in requests] if text else [],
                                      num_points=section.num_points, num_inference_steps=section.num_inference_steps,
                                      sampler=section.sampler, guidance_scale=section.guidance_scale,
                                      checkpoint=section.checkpoint, seed=seed,
                                      refine_resolution=section.refine_resolution)
    rows = generate_task.fn(params, str(Path(run_dir) / "room-objects"))
    run = Path(run_dir).resolve()
    images = [(str(Path(r["preview"]).resolve().relative_to(run)), f"{room}: {cat}")
              for r, (room, cat, _) in zip(rows, requests)]
    row = GalleryRow("room objects (generated clouds refined into meshes)", images, kind="mesh")
    return {"rows": [row.to_dict()], "meshes": [r["glb"] for r in rows], "rooms": [room for room, _, _ in requests]}


def run_room_objects(section: PointCloudSection, context: StepContext) -> StepResult:
    """The composed flow's ``room-objects`` step."""
    result = room_objects_task(section, context.brief, context.run_dir, context.seed)
    return StepResult(result["rows"], {"meshes": result["meshes"], "rooms": result["rooms"]})


def run_previews(section: PointCloudSection, context: StepContext) -> StepResult:
    """The composed flow's ``previews`` step: three views of every mesh of ``room-objects``."""
    meshes = context.outputs.get("room-objects", {}).get("meshes", [])
    if not meshes:
        return StepResult([], {"images": []})
    paths = previews_task(meshes, str(Path(context.run_dir) / "previews"), section.preview_size)
    run = Path(context.run_dir).resolve()
    rooms = context.outputs["room-objects"].get("rooms", [""] * len(paths))
    row = GalleryRow("mesh previews (three views, headless z-buffer)",
                     [(str(Path(p).resolve().relative_to(run)), room) for p, room in zip(paths, rooms)], kind="mesh")
    return StepResult([row.to_dict()], {"images": paths})

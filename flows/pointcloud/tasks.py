"""The point-cloud family's tasks: thin calls of ``generators.pointcloud``; they pass file paths, not models."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from generators.core.checkpoint import atomic_write_bytes
from generators.pointcloud.data import read_points
from generators.pointcloud.output import MeshOutput, PointCloudOutput, mesh_bytes, points_ply_bytes, preview_png
from generators.pointcloud.refine import RefineOptions, refine
from generators.pointcloud.render import render_views

from .. import model_cache
from ..common import IO_RETRIES, log
from ..gpu import device_slot
from ..report import GalleryRow, Report
from .params import EvaluatePointCloudParams, GeneratePointCloudParams, RefineParams, TrainPointCloudParams


@task(name="train-pointcloud", cache_policy=NO_CACHE)
def train_task(params: TrainPointCloudParams, command: str = "") -> dict[str, Any]:
    """Run (or resume) the three training stages into ``params.out_dir``."""
    from generators.pointcloud import train_pointcloud

    result = train_pointcloud(params.out_dir, params.preset, params.max_steps, params.seed, params.mixed_precision,
                              params.checkpoint_every, params.device, command=command, progress=False,
                              data_root=params.data_root, init_checkpoint=params.init_checkpoint,
                              keep_stages=tuple(params.keep_stages), finetune_stages=tuple(params.finetune_stages))
    return {"checkpoint": str(Path(params.out_dir).resolve()), "steps": result.steps,
            "resumed_from": result.resumed_from, "seconds": round(result.seconds, 2)}


def save_shapes(out: PointCloudOutput, out_dir: Path, captions: list[str], options: RefineOptions) -> list[dict[str, Any]]:
    """Per shape: points PLY, refined mesh (PLY and GLB) and a preview PNG; one row each."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (points, caption) in enumerate(zip(out.points, captions)):
        mesh = refine(points, options).mesh
        files = {"points": out_dir / f"shape_{i:03d}_points.ply", "mesh": out_dir / f"shape_{i:03d}_mesh.ply",
                 "glb": out_dir / f"shape_{i:03d}.glb", "preview": out_dir / f"shape_{i:03d}.png"}
        atomic_write_bytes(files["points"], points_ply_bytes(points))
        atomic_write_bytes(files["mesh"], mesh_bytes(mesh, ".ply"))
        atomic_write_bytes(files["glb"], mesh_bytes(mesh, ".glb"))
        atomic_write_bytes(files["preview"], preview_png(mesh))
        rows.append({"index": i, "caption": caption, "watertight": bool(mesh.is_watertight),
                     "faces": int(len(mesh.faces)), **{k: str(v) for k, v in files.items()}})
    return rows


@task(name="generate-pointcloud", cache_policy=NO_CACHE, **IO_RETRIES)
def generate_task(params: GeneratePointCloudParams, out_dir: str) -> list[dict[str, Any]]:
    """Generate one shape per label/prompt, refine each, and write its files under ``out_dir``."""
    with device_slot(params.device):
        gen = model_cache.load("pointcloud", params.checkpoint, params.device)
        out = gen(label=params.label or None, prompt=params.prompt or None, num_points=params.num_points,
                  num_inference_steps=params.num_inference_steps, sampler=params.sampler,
                  guidance_scale=params.guidance_scale, seed=params.seed)
    captions = [" / ".join(x for x in (lab, pr) if x) or "unconditional" for lab, pr in zip(out.labels, out.prompts)]
    log(f"generated {len(out.points)} clouds of {params.num_points} points")
    options = RefineOptions(method=params.refine_method, resolution=params.refine_resolution)
    return save_shapes(out, Path(out_dir), captions, options)


@task(name="evaluate-pointcloud", cache_policy=NO_CACHE)
def evaluate_task(params: EvaluatePointCloudParams) -> dict[str, Any]:
    """The family's evaluation of a checkpoint (nothing written)."""
    from generators.pointcloud.evaluate import evaluate_pointcloud

    gen = model_cache.load("pointcloud", params.checkpoint)
    return evaluate_pointcloud(gen, params.per_category, params.num_points, params.sampler, params.num_inference_steps,
                               params.guidance_scale, params.seed, params.emd_points, params.refine_per_category,
                               breakdown=params.breakdown)


@task(name="refine-pointcloud", **IO_RETRIES)
def refine_task(params: RefineParams, out: str) -> dict[str, Any]:
    """Read a user's cloud, refine it into a mesh and write ``out`` (its extension picks the format)."""
    options = RefineOptions(method=params.method, resolution=params.resolution, simplify_faces=params.simplify_faces)
    result = refine(read_points(params.points), options)
    MeshOutput([result.mesh]).save(out)
    return {"out": str(out), "vertices": int(len(result.mesh.vertices)), "faces": int(len(result.mesh.faces)),
            "watertight": bool(result.mesh.is_watertight), "method": params.method}


@task(name="render-previews", **IO_RETRIES)
def previews_task(meshes: list[str], out_dir: str, size: int = 192) -> list[str]:
    """Three shaded views of each mesh file, headless (``generators.pointcloud.render``), as PNGs."""
    import trimesh

    from generators.core.pipeline import png_bytes

    paths = []
    for path in meshes:
        target = Path(out_dir) / (Path(path).stem + "_views.png")
        atomic_write_bytes(target, png_bytes(render_views(trimesh.load(path, force="mesh"), size)))
        paths.append(str(target))
    return paths


@task(name="write-pointcloud-report", **IO_RETRIES)
def write_report_task(run_dir: str, title: str, tables: list[tuple[str, dict]], rows: list[dict[str, Any]]) -> str:
    """``run_dir/index.html``: metric tables and one mesh preview per shape."""
    run = Path(run_dir).resolve()
    report = Report(title, tables=list(tables))
    if rows:
        images = [(str(Path(r["preview"]).resolve().relative_to(run)), r["caption"]) for r in rows]
        report.rows.append(GalleryRow("refined meshes", images, kind="mesh"))
    return str(report.write(run))


def flatten_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The evaluation's mean and worst values as one flat table."""
    flat = {f"mean {k}": round(v, 4) for k, v in metrics.get("mean", {}).items()}
    flat.update({f"worst {k}": round(v, 4) for k, v in metrics.get("worst", {}).items()})
    flat.update({f"done: {k}": v for k, v in metrics.get("done_when", {}).items()})
    return flat


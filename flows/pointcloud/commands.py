"""The point-cloud family's command functions: ``mmdiff train|generate|evaluate pointcloud`` and ``mmdiff refine``.

Each takes its validated parameter model and the ``--out`` path and calls the same task functions as the
family's flows (``task.fn``), so the CLI and the flows behave alike.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from generators.core.checkpoint import atomic_write_json

from .. import model_cache
from ..common import command_line
from .params import EvaluatePointCloudParams, GeneratePointCloudParams, RefineParams, TrainPointCloudParams
from .tasks import evaluate_task, refine_task, train_task


def train_pointcloud(params: TrainPointCloudParams, out: Path | None = None) -> dict[str, Any]:
    """Train (or resume) the three stages into ``--out`` (default ``params.out_dir``)."""
    if out is not None:
        params = params.model_copy(update={"out_dir": str(out)})
    return train_task.fn(params, command=command_line())


def generate_pointcloud(params: GeneratePointCloudParams, out: Path | None) -> list[str]:
    """One shape per label/prompt; ``--out`` with an extension (.glb, .obj, .stl, .ply, .npy, .png) takes
    one shape in that format, a folder takes points, mesh and preview per shape."""
    gen = model_cache.load("pointcloud", params.checkpoint, params.device)
    result = gen(label=params.label or None, prompt=params.prompt or None, num_points=params.num_points,
                 num_inference_steps=params.num_inference_steps, sampler=params.sampler,
                 guidance_scale=params.guidance_scale, seed=params.seed, progress=True)
    return [str(p) for p in result.save(out or Path("outputs/pointcloud"))]


def evaluate_pointcloud(params: EvaluatePointCloudParams, out: Path | None = None) -> dict[str, Any]:
    """MMD / COV / 1-NNA per category and mesh quality (``--write-metrics`` keeps them beside the checkpoint)."""
    metrics = {**evaluate_task.fn(params), "command": command_line()}
    if params.write_metrics:
        atomic_write_json(Path(params.checkpoint) / "metrics.json", metrics)
    return metrics


def refine_pointcloud(params: RefineParams, out: Path | None) -> dict[str, Any]:
    """Any user's cloud -> a mesh at ``--out`` (its extension picks PLY, OBJ, GLB, STL or a PNG preview)."""
    if out is None:
        raise ValueError("--out is required: a mesh file such as mesh.obj, mesh.glb, mesh.stl or mesh.ply")
    return refine_task.fn(params, str(out))

"""The point-cloud family's flows: train, generate, evaluate, refine; each writes ``outputs/<run>/index.html``.

>>> from flows.pointcloud.flows import generate_pointcloud_flow
>>> generate_pointcloud_flow(GeneratePointCloudParams(label=["chair"], num_inference_steps=10))
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.runtime import flow_run

from ..artifacts import artifact_key, publish_report
from ..common import family_flow, run_dir_task
from .params import EvaluatePointCloudParams, GeneratePointCloudParams, RefineParams, TrainPointCloudParams
from .tasks import evaluate_task, flatten_metrics, generate_task, refine_task, train_task, write_report_task


@family_flow("train_pointcloud")
def train_pointcloud_flow(params: TrainPointCloudParams = TrainPointCloudParams()) -> dict[str, Any]:
    """VAE -> global prior -> point prior (each resumed where it stopped) -> a few refined samples -> report."""
    run_dir = run_dir_task(params.output_root, "train-pointcloud")
    trained = train_task(params)
    prompt = ["a chair with four legs"] if _has_text(trained) else []
    sample = GeneratePointCloudParams(prompt=prompt, num_points=512, checkpoint=trained["checkpoint"], seed=params.seed,
                                      refine_resolution=64)
    rows = generate_task(sample, str(Path(run_dir) / "shapes"))
    report = write_report_task(run_dir, "train_pointcloud", [("training", trained)], rows)
    publish_report(artifact_key("train-pointcloud-report"), "train_pointcloud", trained, Path(run_dir), rows)
    return {"run_dir": run_dir, "report": report, "metrics": trained, "checkpoint": trained["checkpoint"],
            "flow_run_id": str(flow_run.id)}


def _has_text(trained: dict[str, Any]) -> bool:
    import json

    config = json.loads((Path(trained["checkpoint"]) / "config.json").read_text())
    return bool(config.get("global_prior_config", {}).get("text", True))


@family_flow("generate_pointcloud")
def generate_pointcloud_flow(params: GeneratePointCloudParams = GeneratePointCloudParams(label=["chair"])) -> dict[str, Any]:
    """Load -> generate one shape per label/prompt -> refine -> points, meshes, previews -> report."""
    run_dir = run_dir_task(params.output_root, "generate-pointcloud")
    rows = generate_task(params, str(Path(run_dir) / "shapes"))
    metrics = {"shapes": len(rows), "watertight": sum(r["watertight"] for r in rows) / max(1, len(rows)),
               "sampler": params.sampler, "steps": params.num_inference_steps, "seed": params.seed,
               "num_points": params.num_points, "checkpoint": params.checkpoint}
    report = write_report_task(run_dir, "generate_pointcloud", [("run", metrics)], rows)
    publish_report(artifact_key("generate-pointcloud-report"), "generate_pointcloud", metrics, Path(run_dir), rows)
    return {"run_dir": run_dir, "report": report, "metrics": metrics, "shapes": rows, "flow_run_id": str(flow_run.id)}


@family_flow("evaluate_pointcloud")
def evaluate_pointcloud_flow(params: EvaluatePointCloudParams = EvaluatePointCloudParams()) -> dict[str, Any]:
    """MMD / COV / 1-NNA per category and mesh quality of a checkpoint, with a row of refined samples."""
    run_dir = run_dir_task(params.output_root, "evaluate-pointcloud")
    metrics = evaluate_task(params)
    sample = GeneratePointCloudParams(label=list(metrics["per_category"])[:4], num_points=params.num_points,
                                      checkpoint=params.checkpoint, seed=params.seed,
                                      num_inference_steps=params.num_inference_steps, sampler=params.sampler,
                                      refine_resolution=64)
    rows = generate_task(sample, str(Path(run_dir) / "shapes"))
    tables = [("summary", flatten_metrics(metrics))] + [(f"category {c}", v) for c, v in metrics["per_category"].items()]
    report = write_report_task(run_dir, "evaluate_pointcloud", tables, rows)
    publish_report(artifact_key("evaluate-pointcloud-report"), "evaluate_pointcloud", flatten_metrics(metrics),
                   Path(run_dir), rows)
    return {"run_dir": run_dir, "report": report, "metrics": metrics, "flow_run_id": str(flow_run.id)}


@family_flow("refine_pointcloud")
def refine_pointcloud_flow(params: RefineParams, out: str) -> dict[str, Any]:
    """Refine a user's cloud file into the mesh file ``out``."""
    return refine_task(params, out)

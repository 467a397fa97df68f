"""The floorplan family's flows: ``train_floorplan``, ``generate_floorplan``, ``evaluate_floorplan``.

Flows only wire tasks (:mod:`flows.floorplan.tasks`); each run writes ``outputs/<run>/index.html`` (the
plans as SVG with the requested graph beside each) and a markdown artifact with the metrics.

>>> from flows.floorplan.flows import generate_floorplan_flow
>>> generate_floorplan_flow({"graph": "data/samples/graphs/two_bedroom.json", "num": 4})
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.runtime import flow_run

from ..artifacts import artifact_key, publish_report
from ..common import family_flow, run_dir_task
from .params import (FLOORPLAN_CLASSIFIER_CHECKPOINT, SAMPLE_GRAPH, EvaluateFloorplanParams, GenerateFloorplanParams,
                     TrainFloorplanParams)
from .tasks import evaluate_task, fingerprint_task, generate_task, publish_task, train_task, write_report_task


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"plans": len(rows), "mean_compatibility": sum(r["compatibility"] for r in rows) / max(len(rows), 1),
            "max_overlap": max((r["overlap"] for r in rows), default=0.0)}


@family_flow("generate_floorplan")
def generate_floorplan_flow(params: GenerateFloorplanParams = GenerateFloorplanParams()) -> dict[str, Any]:
    """Load a checkpoint -> generate plans for a bubble graph -> SVG, PNG and JSON files -> report."""
    run_dir = run_dir_task(params.output_root, "generate-floorplan")
    rows = generate_task(params, str(Path(run_dir) / "plans"))
    metrics = {**_summary(rows), "graph": params.graph, "sampler": params.sampler, "steps": params.num_inference_steps,
               "guidance_scale": params.guidance_scale, "seed": params.seed, "checkpoint": params.checkpoint}
    report = write_report_task(run_dir, "generate_floorplan", [("run", metrics)], rows)
    publish_report(artifact_key("generate-floorplan-report"), "generate_floorplan", metrics, Path(run_dir), rows)
    return {"run_dir": run_dir, "report": report, "metrics": metrics, "plans": rows, "flow_run_id": str(flow_run.id)}


@family_flow("evaluate_floorplan")
def evaluate_floorplan_flow(params: EvaluateFloorplanParams = EvaluateFloorplanParams()) -> dict[str, Any]:
    """The family's metrics on held-out graphs, with sample plans of the example graph in the report."""
    run_dir = run_dir_task(params.output_root, "evaluate-floorplan")
    metrics = evaluate_task(params.checkpoint, params.num_graphs, params.samples_per_graph, params.sampler,
                            params.num_inference_steps, params.guidance_scale, params.seed, params.classifier,
                            params.device)
    sample = GenerateFloorplanParams(graph=SAMPLE_GRAPH, num=2, checkpoint=params.checkpoint, sampler=params.sampler,
                                     num_inference_steps=params.num_inference_steps, seed=params.seed)
    rows = generate_task(sample, str(Path(run_dir) / "plans"))
    metrics = {**metrics, "checkpoint": params.checkpoint}
    report = write_report_task(run_dir, "evaluate_floorplan", [("metrics", metrics)], rows)
    publish_report(artifact_key("evaluate-floorplan-report"), "evaluate_floorplan", metrics, Path(run_dir))
    return {"run_dir": run_dir, "report": report, "metrics": metrics, "flow_run_id": str(flow_run.id)}


@family_flow("train_floorplan")
def train_floorplan_flow(params: TrainFloorplanParams = TrainFloorplanParams()) -> dict[str, Any]:
    """Training (reused or resumed by fingerprint) -> optional evaluation -> publish -> sample plans -> report."""
    run_dir = run_dir_task(params.output_root, "train-floorplan")
    fp = fingerprint_task(params)
    trained = train_task(fp["folder"], fp["fingerprint"], params)
    metrics: dict[str, Any] = {"preset": params.preset, "steps": trained["steps"], "reused": trained["reused"],
                               "resumed_from": trained["resumed_from"], "train_seconds": trained["seconds"],
                               "fingerprint": fp["fingerprint"][:16]}
    if params.eval_graphs > 0:
        classifier = FLOORPLAN_CLASSIFIER_CHECKPOINT if (Path(FLOORPLAN_CLASSIFIER_CHECKPOINT) / "config.json").is_file() else ""
        scores = evaluate_task(fp["folder"], params.eval_graphs, 2, "ddpm", params.eval_steps, 2.0, params.seed,
                               classifier)
        metrics.update({k: scores[k] for k in ("compatibility", "overlap", "rooms_match", "door_feasibility")})
    published = publish_task(fp["folder"], params.publish_dir)
    metrics["published"] = published
    sample = GenerateFloorplanParams(graph=SAMPLE_GRAPH, num=2, checkpoint=published,
                                     num_inference_steps=params.eval_steps, seed=params.seed)
    rows = generate_task(sample, str(Path(run_dir) / "plans"))
    report = write_report_task(run_dir, "train_floorplan", [("training", metrics)], rows)
    publish_report(artifact_key("train-floorplan-report"), "train_floorplan", metrics, Path(run_dir))
    return {"run_dir": run_dir, "report": report, "metrics": metrics, "checkpoint": published,
            "flow_run_id": str(flow_run.id)}

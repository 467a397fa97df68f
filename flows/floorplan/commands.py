"""The floorplan family's command functions: what ``mmdiff <verb> floorplan|floorplan-classifier`` runs.

Each takes its validated parameter model and the ``--out`` path and calls the same task functions as
the family's flows (``task.fn``), so the CLI and the flows behave alike.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from generators.core.checkpoint import atomic_write_json

from ..common import command_line
from .params import EvaluateFloorplanParams, GenerateFloorplanParams, TrainFloorplanClassifierParams, TrainFloorplanParams
from .tasks import evaluate_task, fingerprint_task, generate_plans, publish_task, train_task

SUFFIXES = ("", ".svg", ".png", ".json")


def train_floorplan(params: TrainFloorplanParams, out: Path | None = None) -> dict[str, Any]:
    """Fingerprint -> train (reused when finished, resumed when interrupted) -> publish to ``publish_dir``."""
    fp = fingerprint_task.fn(params)
    trained = train_task.fn(fp["folder"], fp["fingerprint"], params, command=command_line())
    published = publish_task.fn(fp["folder"], params.publish_dir)
    return {"published": published, "folder": fp["folder"], "steps": trained["steps"], "reused": trained["reused"],
            "resumed_from": trained["resumed_from"], "train_seconds": trained["seconds"]}


def generate_floorplan(params: GenerateFloorplanParams, out: Path | None) -> list[dict[str, Any]]:
    """Plans for ``--graph`` at ``out``: a folder (SVG, PNG and JSON per plan) or one .svg, .png or .json file."""
    out = Path(out or "outputs/floorplans")
    if out.suffix.lower() not in SUFFIXES:
        raise ValueError(f"--out {out}: give a folder, or a .svg, .png or .json file")
    return generate_plans(params, out)


def evaluate_floorplan(params: EvaluateFloorplanParams, out: Path | None = None) -> dict[str, Any]:
    """The family's metrics on held-out graphs (``--write-metrics`` keeps them in the checkpoint's metrics.json)."""
    metrics = evaluate_task.fn(params.checkpoint, params.num_graphs, params.samples_per_graph, params.sampler,
                               params.num_inference_steps, params.guidance_scale, params.seed, params.classifier,
                               params.device)
    metrics = {**metrics, "command": command_line() or "evaluate_floorplan"}
    if params.write_metrics:
        atomic_write_json(Path(params.checkpoint) / "metrics.json", metrics)
    return metrics


def train_floorplan_classifier(params: TrainFloorplanClassifierParams, out: Path | None) -> dict[str, Any]:
    """The realism classifier, trained on rendered procedural plans and saved in ``out``."""
    from generators.floorplan import train_floorplan_classifier as train

    if out is None:
        raise ValueError("--out is required: the folder for the classifier checkpoint")
    return train(out, steps=params.steps, num_plans=params.num_plans, seed=params.seed, command=command_line())

"""The floorplan family's orchestration and its registry record (:data:`FAMILY`).

Flows and tasks are imported only when used, so that the CLI starts without importing Prefect.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from ..common import lazy
from ..registry import Command, ComposedStep, Family, StepContext, StepResult
from . import params as p


def _lazy(module: str, name: str) -> Callable[..., Any]:
    return lazy(f"flows.floorplan.{module}", name)


def _load_floorplan(path: str, device: str) -> Any:
    from generators.floorplan import FloorplanGenerator

    return FloorplanGenerator.from_pretrained(path, device=device)


def _load_classifier(path: str, device: str) -> Any:
    from evaluation.floorplan import PlanClassifier
    from generators.core.checkpoint import load_model

    return load_model(path, PlanClassifier, use_ema=False).to(device).eval()


def _deployments(defaults: Mapping[str, Any]) -> list[Any]:
    from .deployments import build_deployments

    return build_deployments(defaults)


def _warm_flows() -> tuple[Any, ...]:
    from .flows import evaluate_floorplan_flow, generate_floorplan_flow

    return (generate_floorplan_flow, evaluate_floorplan_flow)


def _gallery(section: p.FloorplanSection, context: StepContext) -> StepResult:
    from .gallery import run_gallery_step

    return run_gallery_step(section, context)


c = "commands"
FAMILY = Family(
    name="floorplan",
    description="bubble graph -> floorplan (HouseDiffusion-style corner transformer, refinement, doors)",
    commands=(
        Command("train", "floorplan", p.TrainFloorplanParams, _lazy(c, "train_floorplan"),
                "Train the floorplan generator on procedural (or RPLAN) plans (reused by fingerprint, resumed).",
                cli_skip=("eval_graphs", "eval_steps", "output_root")),
        Command("generate", "floorplan", p.GenerateFloorplanParams, _lazy(c, "generate_floorplan"),
                "Plans for a bubble-graph JSON file (--graph g.json --num 4).",
                out="a folder (SVG, PNG and JSON per plan) or one .svg, .png or .json file",
                cli_skip=("output_root",), out_formats=("", ".svg", ".png", ".json")),
        Command("evaluate", "floorplan", p.EvaluateFloorplanParams, _lazy(c, "evaluate_floorplan"),
                "Compatibility, overlap, room match, door feasibility, diversity and realism on held-out graphs.",
                cli_skip=("output_root",)),
        Command("train", "floorplan-classifier", p.TrainFloorplanClassifierParams,
                _lazy(c, "train_floorplan_classifier"),
                "Train the plan classifier whose features give the realism Frechet distance.",
                out="checkpoint folder", out_required=True),
    ),
    deployments=_deployments,
    warm_flows=_warm_flows,
    loaders={"floorplan": _load_floorplan, "floorplan-classifier": _load_classifier},
    preload=(("floorplan", p.FLOORPLAN_CHECKPOINT),),
    composed_section=p.FloorplanSection,
    composed_steps=(ComposedStep("floorplans", "bubble graph of the brief -> plans, the most compatible kept", 200,
                                 _gallery),),
    checkpoints={"floorplan": p.FLOORPLAN_CHECKPOINT, "floorplan-classifier": p.FLOORPLAN_CLASSIFIER_CHECKPOINT},
    code_paths=("generators/core", "generators/floorplan", "conditioning", "evaluation"),
)

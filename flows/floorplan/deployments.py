"""The floorplan family's deployments (served by ``mmdiff serve``): train, generate, evaluate, nightly evaluation."""
from __future__ import annotations

from typing import Any, Mapping

from prefect.deployments.runner import RunnerDeployment

from ..common import form_overrides, nightly

from .flows import evaluate_floorplan_flow, generate_floorplan_flow, train_floorplan_flow
from .params import EvaluateFloorplanParams, GenerateFloorplanParams

NIGHTLY_EVALUATION_CRON = "45 2 * * *"


def build_deployments(defaults: Mapping[str, Any]) -> list[RunnerDeployment]:
    """The floorplan deployments; ``defaults`` may set ``output_root``, ``checkpoints['floorplan']`` and ``schedules``."""
    overrides = form_overrides(defaults, "floorplan")
    generate = GenerateFloorplanParams(**overrides).model_dump(mode="json")
    evaluate = EvaluateFloorplanParams(**overrides).model_dump(mode="json")
    schedule = nightly(NIGHTLY_EVALUATION_CRON, defaults)
    tags = ["mmdiff", "floorplan"]
    return [
        train_floorplan_flow.to_deployment(name="train-floorplan", tags=tags,
                                           description="Train the floorplan generator (fingerprint reuse, resume)."),
        generate_floorplan_flow.to_deployment(name="generate-floorplan", tags=tags, parameters={"params": generate},
                                              description="Plans for a bubble-graph JSON file (SVG, PNG, JSON)."),
        evaluate_floorplan_flow.to_deployment(name="evaluate-floorplan", tags=tags, parameters={"params": evaluate},
                                              description="Compatibility, overlap, room match, doors, diversity, realism."),
        evaluate_floorplan_flow.to_deployment(name="nightly-evaluation", tags=tags, parameters={"params": evaluate},
                                              schedule=schedule,
                                              description="Nightly evaluation of the floorplan checkpoint (02:45 UTC)."),
    ]

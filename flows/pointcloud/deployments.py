"""The point-cloud family's deployments (served by ``mmdiff serve``): on-demand train / generate /
evaluate / refine forms, and the nightly evaluation at 02:30 UTC."""
from __future__ import annotations

from typing import Any, Mapping

from prefect.deployments.runner import RunnerDeployment

from ..common import form_overrides, nightly

from .flows import evaluate_pointcloud_flow, generate_pointcloud_flow, train_pointcloud_flow
from .params import EvaluatePointCloudParams, GeneratePointCloudParams

NIGHTLY_EVALUATION_CRON = "30 2 * * *"


def build_deployments(defaults: Mapping[str, Any]) -> list[RunnerDeployment]:
    """``defaults`` may set ``output_root``, ``checkpoints['pointcloud']`` and ``schedules`` (attach the cron)."""
    overrides = form_overrides(defaults, "pointcloud")
    generate = GeneratePointCloudParams(label=["chair"], **overrides).model_dump(mode="json")
    evaluate = EvaluatePointCloudParams(**overrides).model_dump(mode="json")
    schedule = nightly(NIGHTLY_EVALUATION_CRON, defaults)
    tags = ["mmdiff", "pointcloud"]
    return [
        train_pointcloud_flow.to_deployment(name="train-pointcloud", tags=tags,
                                            description="Train the VAE and both priors (resumable)."),
        generate_pointcloud_flow.to_deployment(name="generate-pointcloud", tags=tags, parameters={"params": generate},
                                               description="Shapes from labels or prompts, refined into meshes."),
        evaluate_pointcloud_flow.to_deployment(name="evaluate-pointcloud", tags=tags, parameters={"params": evaluate},
                                               description="MMD / COV / 1-NNA per category and mesh quality."),
        evaluate_pointcloud_flow.to_deployment(name="nightly-evaluation", tags=tags, parameters={"params": evaluate},
                                               schedule=schedule, description="Nightly evaluation (02:30 UTC)."),
    ]

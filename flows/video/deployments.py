"""The video family's deployments (served by ``mmdiff serve``): train, generate, evaluate, nightly evaluation."""
from __future__ import annotations

from typing import Any, Mapping

from prefect.deployments.runner import RunnerDeployment

from ..common import form_overrides, nightly

from .flows import evaluate_video_flow, generate_video_flow, train_video_flow
from .params import EvaluateVideoParams, GenerateVideoParams

NIGHTLY_EVALUATION_CRON = "30 2 * * *"


def build_deployments(defaults: Mapping[str, Any]) -> list[RunnerDeployment]:
    """The video deployments; ``defaults`` may set ``output_root``, ``checkpoints['video']`` and ``schedules``."""
    overrides = form_overrides(defaults, "video")
    generate = GenerateVideoParams(**overrides).model_dump(mode="json")
    evaluate = EvaluateVideoParams(**overrides).model_dump(mode="json")
    schedule = nightly(NIGHTLY_EVALUATION_CRON, defaults)
    tags = ["mmdiff", "video"]
    return [
        train_video_flow.to_deployment(name="train-video", tags=tags,
                                       description="Train the moving-digits video model (fingerprint reuse, resume)."),
        generate_video_flow.to_deployment(name="generate-video", tags=tags, parameters={"params": generate},
                                          description="One clip from a prompt and/or a first frame (GIF and MP4)."),
        evaluate_video_flow.to_deployment(name="evaluate-video", tags=tags, parameters={"params": evaluate},
                                          description="Digit, motion, identity, FVD-style and long-clip metrics."),
        evaluate_video_flow.to_deployment(name="nightly-evaluation", tags=tags, parameters={"params": evaluate},
                                          schedule=schedule,
                                          description="Nightly evaluation of the video checkpoint (02:30 UTC)."),
    ]

"""The super-resolution family's deployments (served by ``mmdiff serve``): train, upscale, evaluate, the
cascade, and the nightly evaluation."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prefect.deployments.runner import RunnerDeployment

from ..common import form_overrides, nightly

from .flows import (
    evaluate_cascade_flow,
    evaluate_superres_flow,
    generate_cascade_flow,
    train_superres_flow,
    upscale_flow,
)
from .params import EvaluateCascadeParams, EvaluateSuperresParams

NIGHTLY_EVALUATION_CRON = "0 4 * * *"


def build_deployments(defaults: Mapping[str, Any]) -> list[RunnerDeployment]:
    """The deployments; ``defaults`` may set ``output_root``, ``checkpoints['superres' | 'cascade']`` and ``schedules``."""
    sr, cascade = form_overrides(defaults, "superres"), form_overrides(defaults, "cascade")
    evaluate = EvaluateSuperresParams(**sr).model_dump(mode="json")
    schedule = nightly(NIGHTLY_EVALUATION_CRON, defaults)
    tags = ["mmdiff", "superres"]
    return [
        train_superres_flow.to_deployment(name="train-superres", tags=tags,
                                          description="Train the x4 super-resolution model (fingerprint reuse, resume)."),
        upscale_flow.to_deployment(name="upscale", tags=tags,
                                   description="Upscale image files; low-res / bicubic / diffusion side by side."),
        evaluate_superres_flow.to_deployment(name="evaluate-superres", tags=tags, parameters={"params": evaluate},
                                             description="PSNR, SSIM, HF energy and consistency on held-out photos."),
        evaluate_superres_flow.to_deployment(name="nightly-evaluation", tags=tags, parameters={"params": evaluate},
                                             schedule=schedule,
                                             description="Nightly evaluation of the x4 checkpoint (04:00 UTC)."),
        generate_cascade_flow.to_deployment(name="generate-cascade", tags=tags,
                                            description="Prompt -> base -> super-resolution stages, every stage shown."),
        evaluate_cascade_flow.to_deployment(name="evaluate-cascade", tags=tags,
                                            parameters={"params": EvaluateCascadeParams(**cascade).model_dump(mode="json")},
                                            description="Per-stage Frechet distance of the cascade."),
    ]

"""The super-resolution family's deployments (served by ``mmdiff serve``): train, upscale, evaluate, the
cascade, and the nightly evaluation."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

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
    checkpoints = defaults.get("checkpoints") or {}
    common: dict[str, Any] = {}
    if defaults.get("output_root"):
        common["output_root"] = str(Path(defaults["output_root"]).resolve())
    sr = {**common, **({"checkpoint": str(Path(checkpoints["superres"]).resolve())} if checkpoints.get("superres") else {})}
    cascade = {**common, **({"checkpoint": str(Path(checkpoints["cascade"]).resolve())} if checkpoints.get("cascade") else {})}
    evaluate = EvaluateSuperresParams(**sr).model_dump(mode="json")
    nightly = Cron(NIGHTLY_EVALUATION_CRON, timezone="UTC") if defaults.get("schedules", True) else None
    tags = ["mmdiff", "superres"]
    return [
        train_superres_flow.to_deployment(name="train-superres", tags=tags,
                                          description="Train the x4 super-resolution model (fingerprint reuse, resume)."),
        upscale_flow.to_deployment(name="upscale", tags=tags,
                                   description="Upscale image files; low-res / bicubic / diffusion side by side."),
        evaluate_superres_flow.to_deployment(name="evaluate-superres", tags=tags, parameters={"params": evaluate},
                                             description="PSNR, SSIM, HF energy and consistency on held-out photos."),
        evaluate_superres_flow.to_deployment(name="nightly-evaluation", tags=tags, parameters={"params": evaluate},
                                             schedule=nightly,
                                             description="Nightly evaluation of the x4 checkpoint (04:00 UTC)."),
        generate_cascade_flow.to_deployment(name="generate-cascade", tags=tags,
                                            description="Prompt -> base -> super-resolution stages, every stage shown."),
        evaluate_cascade_flow.to_deployment(name="evaluate-cascade", tags=tags,
                                            parameters={"params": EvaluateCascadeParams(**cascade).model_dump(mode="json")},
                                            description="Per-stage Frechet distance of the cascade."),
    ]

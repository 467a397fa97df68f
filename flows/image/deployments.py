"""The image family's deployments (served by ``mmdiff serve``), with their example schedules.

- ``train_image/train-image``, ``generate_image/generate-image``, ``evaluate_image/evaluate-image``:
  run on demand from the dashboard's form;
- ``evaluate_image/nightly-evaluation``: every night at 02:00 UTC;
- ``generate_image_from_file/nightly-generation-from-file``: every night at 03:00 UTC, its parameters
  read at run time from a JSON file (``flows/image/schedules/generate_image.json`` by default), so
  editing the file changes the next run without re-registering anything.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron, Schedule

from ..common import form_overrides
from ..params import load_params
from .flows import (DEFAULT_PARAMS_FILE, evaluate_image_flow, generate_image_flow, generate_image_from_file_flow,
                    train_image_flow)
from .params import EvaluateImageParams, GenerateImageParams

NIGHTLY_EVALUATION_CRON = "0 2 * * *"
NIGHTLY_GENERATION_CRON = "0 3 * * *"


def _nightly(cron: str, enabled: bool) -> Schedule | None:
    return Cron(cron, timezone="UTC") if enabled else None


def build_deployments(defaults: Mapping[str, Any]) -> list[RunnerDeployment]:
    """The image deployments; ``defaults`` may set ``output_root``, ``checkpoints['image']``,
    ``params_files['image']`` (the nightly generation's JSON file) and ``schedules`` (attach the crons)."""
    params_file = (defaults.get("params_files") or {}).get("image") or DEFAULT_PARAMS_FILE
    load_params(params_file, GenerateImageParams)  # a broken file fails at registration, not at 03:00
    overrides = form_overrides(defaults, "image")
    schedules = bool(defaults.get("schedules", True))
    generate = GenerateImageParams(**overrides).model_dump(mode="json")
    evaluate = EvaluateImageParams(**overrides).model_dump(mode="json")
    tags = ["mmdiff", "image"]
    return [
        train_image_flow.to_deployment(name="train-image", tags=tags,
                                       description="Train the digits generator (fingerprint reuse, resume, publish)."),
        generate_image_flow.to_deployment(name="generate-image", tags=tags, parameters={"params": generate},
                                          description="Generate digits; pick the sampler and task runner in the form."),
        evaluate_image_flow.to_deployment(name="evaluate-image", tags=tags, parameters={"params": evaluate},
                                          description="Accuracy, Frechet distance and CAS against held-out digits."),
        evaluate_image_flow.to_deployment(name="nightly-evaluation", tags=tags, parameters={"params": evaluate},
                                          schedule=_nightly(NIGHTLY_EVALUATION_CRON, schedules),
                                          description="Nightly evaluation of the image checkpoint (02:00 UTC)."),
        generate_image_from_file_flow.to_deployment(
            name="nightly-generation-from-file", tags=tags, parameters={"params_file": str(Path(params_file).resolve())},
            schedule=_nightly(NIGHTLY_GENERATION_CRON, schedules),
            description="Nightly generation whose parameters are read from a JSON file (03:00 UTC)."),
    ]

"""Deployments for every flow, with example schedules, served by one process (``mmdiff serve``).

Deployments (``<flow>/<deployment>`` in the dashboard):

- ``train_image/train-image``, ``generate_image/generate-image``, ``evaluate_image/evaluate-image``,
  ``composed/composed``: run on demand from the dashboard's form;
- ``evaluate_image/nightly-evaluation``: every night at 02:00 UTC;
- ``generate_image_from_file/nightly-generation-from-file``: every night at 03:00 UTC, its parameters
  read at run time from a JSON file (``flows/schedules/generate_image.json`` by default), so editing
  the file changes the next run without re-registering anything.

Served flow runs execute in subprocesses of the serving process; ``limit`` caps how many run at once.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron, Schedule

from .composed import composed_flow
from .image import evaluate_image_flow, generate_image_flow, train_image_flow
from .params import EvaluateImageParams, GenerateImageParams, load_params

DEFAULT_PARAMS_FILE = Path(__file__).resolve().parent / "schedules" / "generate_image.json"
NIGHTLY_EVALUATION_CRON = "0 2 * * *"
NIGHTLY_GENERATION_CRON = "0 3 * * *"
# How often the serving process asks the server for runs to start. Prefect's default (10 s) adds up
# to 10 s between pressing "Run" in the dashboard and the run starting; one query a second costs a
# local server nothing.
QUERY_SECONDS = 1.0


@flow(name="generate_image_from_file", log_prints=True)
def generate_image_from_file_flow(params_file: str = str(DEFAULT_PARAMS_FILE)) -> dict[str, Any]:
    """Read ``GenerateImageParams`` from a JSON file (validated), then run ``generate_image`` as a subflow."""
    params = load_params(params_file, GenerateImageParams)
    print(f"parameters from {params_file}: {params.model_dump_json()}")
    return generate_image_flow(params)


def _nightly(cron: str, enabled: bool) -> Schedule | None:
    return Cron(cron, timezone="UTC") if enabled else None


def build_deployments(params_file: str | Path = DEFAULT_PARAMS_FILE, image_checkpoint: str | None = None,
                      output_root: str | None = None, schedules: bool = True) -> list[RunnerDeployment]:
    """Every deployment ``mmdiff serve`` registers.

    Args:
        params_file: JSON parameters of the scheduled generation run (validated here, and again per run).
        image_checkpoint: default checkpoint folder in the image forms (the shipped one when None).
        output_root: default folder for run folders (``outputs`` when None).
        schedules: attach the example cron schedules (nightly evaluation and generation).
    """
    load_params(params_file, GenerateImageParams)  # a broken file fails at registration, not at 03:00
    overrides: dict[str, Any] = {}
    if image_checkpoint is not None:
        overrides["checkpoint"] = str(Path(image_checkpoint).resolve())
    if output_root is not None:
        overrides["output_root"] = str(Path(output_root).resolve())
    generate = GenerateImageParams(**overrides).model_dump(mode="json")
    evaluate = EvaluateImageParams(**overrides).model_dump(mode="json")
    composed_over = {k.replace("checkpoint", "image_checkpoint"): v for k, v in overrides.items()}
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
        composed_flow.to_deployment(name="composed", tags=["mmdiff", "composed"],
                                    parameters={"params": composed_over} if composed_over else None,
                                    description="One brief -> every landed family -> one run folder and report."),
    ]


def serve_all(params_file: str | Path = DEFAULT_PARAMS_FILE, image_checkpoint: str | None = None,
              output_root: str | None = None, schedules: bool = True, limit: int | None = 2,
              query_seconds: float = QUERY_SECONDS) -> None:
    """Register every deployment on the configured Prefect API and serve them until interrupted.

    ``query_seconds``: how often to look for runs to start (scheduled, or started from the dashboard).
    """
    from prefect import serve

    serve(*build_deployments(params_file, image_checkpoint, output_root, schedules), limit=limit,
          query_seconds=query_seconds)

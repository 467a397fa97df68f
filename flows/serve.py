"""Deployments for every flow, with example schedules, served by one process (``mmdiff serve``).

Deployments (``<flow>/<deployment>`` in the dashboard):

- ``train_image/train-image``, ``generate_image/generate-image``, ``evaluate_image/evaluate-image``,
  ``composed/composed``: run on demand from the dashboard's form;
- ``evaluate_image/nightly-evaluation``: every night at 02:00 UTC;
- ``generate_image_from_file/nightly-generation-from-file``: every night at 03:00 UTC, its parameters
  read at run time from a JSON file (``flows/schedules/generate_image.json`` by default), so editing
  the file changes the next run without re-registering anything.

Two runners share the serving process:

- inference deployments (``generate_image``, ``evaluate_image``, ``composed``) run *in* the serving
  process on a :class:`flows.warm.WarmRunner`: torch, diffusers and the models stay loaded between
  runs, and the runner hears of a new run from the server's event stream, so a run starts sampling
  within about a second of being created (one run at a time; a run with ``task_runner='ray'`` gets a
  subprocess of its own);
- the rest (training, the scheduled run whose parameters come from a file) run in a fresh
  subprocess each, on Prefect's own runner; ``limit`` caps how many of those run at once.

``mmdiff serve --isolate`` puts every deployment on Prefect's runner instead (a subprocess per run).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.client.schemas.objects import FlowRun
from prefect.deployments.runner import RunnerDeployment
from prefect.flows import Flow
from prefect.schedules import Cron, Schedule

from .composed import composed_flow
from .image import evaluate_image_flow, generate_image_flow, train_image_flow
from .params import EvaluateImageParams, GenerateImageParams, load_params
from .warm import WarmDeployment, WarmRunner

DEFAULT_PARAMS_FILE = Path(__file__).resolve().parent / "schedules" / "generate_image.json"
NIGHTLY_EVALUATION_CRON = "0 2 * * *"
NIGHTLY_GENERATION_CRON = "0 3 * * *"
# How often the serving process asks the server for runs to start. Prefect's default (10 s) adds up
# to 10 s between pressing "Run" in the dashboard and the run starting. Used when nothing is warm
# (``--isolate``); beside a warm runner, which starts runs on events, polling is only the fallback.
QUERY_SECONDS = 1.0
COLD_QUERY_SECONDS = 10.0  # Prefect's default, for the subprocess deployments beside a warm runner
# The warm runner starts runs on the server's events; its poll is the fallback if the stream drops.
WARM_QUERY_SECONDS = 5.0


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


# Flows whose deployments the warm runner executes in the serving process (by flow name).
WARM_FLOWS: dict[str, Flow[..., Any]] = {
    "generate_image": generate_image_flow,
    "evaluate_image": evaluate_image_flow,
    "composed": composed_flow,
}


def preload(image_checkpoint: str | None = None) -> None:
    """Load the forms' default models into the serving process's cache, so the first run is warm too.

    A checkpoint that does not load is reported here and again, with the same error, by the run.
    """
    from . import model_cache
    from .params import CLASSIFIER_CHECKPOINT, IMAGE_CHECKPOINT

    for load, path in ((model_cache.image_generator, image_checkpoint or IMAGE_CHECKPOINT),
                       (model_cache.digit_classifier, CLASSIFIER_CHECKPOINT)):
        try:
            load(path)
        except Exception as exc:  # the serving process keeps serving
            print(f"preload of {path} failed: {type(exc).__name__}: {exc}", flush=True)


def needs_own_process(flow_run: FlowRun) -> bool:
    """Warm-served runs that still get a subprocess: the Ray task runner starts a cluster from its driver."""
    params = (flow_run.parameters or {}).get("params")
    return isinstance(params, dict) and params.get("task_runner") == "ray"


def split_deployments(deployments: list[RunnerDeployment],
                      isolate: bool = False) -> tuple[list[WarmDeployment], list[RunnerDeployment]]:
    """(warm, subprocess) deployments: warm ones are those of :data:`WARM_FLOWS`, unless ``isolate``."""
    warm = [] if isolate else [WarmDeployment(d, WARM_FLOWS[d.flow_name]) for d in deployments
                               if d.flow_name in WARM_FLOWS]
    names = {(w.deployment.flow_name, w.deployment.name) for w in warm}
    return warm, [d for d in deployments if (d.flow_name, d.name) not in names]


async def aserve_all(deployments: list[RunnerDeployment], limit: int | None = 2, query_seconds: float = QUERY_SECONDS,
                     isolate: bool = False, warm_limit: int = 1, image_checkpoint: str | None = None) -> None:
    """Serve ``deployments``: inference ones on a :class:`WarmRunner`, the rest on Prefect's runner.

    The warm runner's default models (``image_checkpoint``, the classifier) are loaded in the background
    while it starts. Stops when either runner stops (Ctrl-C, SIGTERM); in-flight warm runs end ``Cancelled``.
    """
    import anyio
    from prefect.runner import Runner

    warm, cold = split_deployments(deployments, isolate)
    # Beside a warm runner, the subprocess deployments are training runs: long, and needing no 1 s
    # start. Polling them less often halves the API's writes (each poll stamps the deployments'
    # last-polled time), which SQLite serialises.
    runner = Runner(limit=limit, query_seconds=max(query_seconds, COLD_QUERY_SECONDS) if warm else query_seconds)
    for deployment in cold:
        await runner.aadd_deployment(deployment)
    warm_runner = WarmRunner(warm, query_seconds=max(query_seconds, WARM_QUERY_SECONDS), limit=warm_limit,
                             isolate=needs_own_process)
    for item in warm:
        print(f"serving {item.deployment.flow_name}/{item.deployment.name} in this process (warm)", flush=True)
    for deployment in cold:
        print(f"serving {deployment.flow_name}/{deployment.name} (a subprocess per run)", flush=True)

    async with anyio.create_task_group() as group:
        async def until_done(start: Any) -> None:
            try:
                await start()
            finally:
                group.cancel_scope.cancel()

        if cold:
            group.start_soon(until_done, runner.start)
        if warm:
            group.start_soon(until_done, warm_runner.start)
            group.start_soon(anyio.to_thread.run_sync, preload, image_checkpoint)


def serve_all(params_file: str | Path = DEFAULT_PARAMS_FILE, image_checkpoint: str | None = None,
              output_root: str | None = None, schedules: bool = True, limit: int | None = 2,
              query_seconds: float = QUERY_SECONDS, isolate: bool = False) -> None:
    """Register every deployment on the configured Prefect API and serve them until interrupted.

    ``query_seconds``: how often Prefect's runner looks for runs to start (scheduled, or started from
    the dashboard) when nothing is warm; ``isolate``: run every flow run in a subprocess of its own
    (no warm runner).
    """
    import asyncio

    from prefect.exceptions import TerminationSignal

    deployments = build_deployments(params_file, image_checkpoint, output_root, schedules)
    try:
        asyncio.run(aserve_all(deployments, limit, query_seconds, isolate, image_checkpoint=image_checkpoint))
    except (KeyboardInterrupt, TerminationSignal):
        print("shutting down", flush=True)

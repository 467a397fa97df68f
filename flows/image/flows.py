"""The image family's flows: ``train_image``, ``generate_image``, ``evaluate_image``.

Flows only wire tasks (:mod:`flows.image_tasks`); each run writes ``outputs/<run>/index.html`` and
creates a markdown artifact (metrics and where the outputs are), a table artifact (one row per
sample) and progress artifacts while training and sampling.

>>> from flows.image.flows import generate_image_flow
>>> generate_image_flow({"labels": [3, 7], "num_inference_steps": 10})   # or GenerateImageParams(...)
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.runtime import flow_run

from ..artifacts import artifact_key, publish_report
from ..common import family_flow, run_dir_task
from ..params import load_params
from ..runners import gpu_remote_options, make_task_runner
from .params import CLASSIFIER_CHECKPOINT, EvaluateImageParams, GenerateImageParams, TrainImageParams
from .tasks import (
    check_checkpoint_task,
    evaluate_task,
    fingerprint_task,
    generate_shard_task,
    publish_task,
    score_samples_task,
    shard_labels,
    train_task,
    write_report_task,
)

DEFAULT_PARAMS_FILE = Path(__file__).resolve().parent / "schedules" / "generate_image.json"


def submit_shards(params: GenerateImageParams, out_dir: str) -> list[dict[str, Any]]:
    """Submit one ``generate-shard`` task per shard on the current flow's task runner; rows in label order."""
    shards = shard_labels(params.labels, params.shard_size)
    with gpu_remote_options(params.task_runner, params.device):
        futures = [
            generate_shard_task.submit(params.checkpoint, index, start, labels, params.seed, params.sampler,
                                       params.num_inference_steps, params.guidance_scale, out_dir, params.device,
                                       batch_size=params.batch_size)
            for index, start, labels in shards
        ]
    return [row for f in futures for row in f.result()]


@family_flow("generate_image_shards")
def generate_shards_flow(params: GenerateImageParams, out_dir: str) -> list[dict[str, Any]]:
    """The shards as a subflow, so that they run on the task runner it was given (Ray)."""
    return submit_shards(params, out_dir)


def run_shards(params: GenerateImageParams, out_dir: str) -> list[dict[str, Any]]:
    """Generate the shards on the task runner ``params.task_runner`` names.

    ``local``: tasks of the calling flow, on its thread pool (two workers). ``ray``: a
    ``generate_image_shards`` subflow on a RayTaskRunner, because a flow's task runner is fixed when
    it starts. The local path has no subflow: creating one posts its tracking task run to the API
    (``POST /task_runs/``), which a local SQLite server often answered only after 2.0-2.7 s right
    after other tasks had finished (0.05 s otherwise), a fixed cost on every generation run.
    """
    if params.task_runner == "local":
        return submit_shards(params, out_dir)
    return generate_shards_flow.with_options(task_runner=make_task_runner(params.task_runner))(params, out_dir)


@family_flow("generate_image", task_runner=make_task_runner("local"))
def generate_image_flow(params: GenerateImageParams = GenerateImageParams()) -> dict[str, Any]:
    """Load a checkpoint -> generate a (sharded) batch -> write PNGs -> score -> report."""
    run_dir = run_dir_task(params.output_root, "generate-image")
    info = check_checkpoint_task(params.checkpoint)
    rows = run_shards(params, str(Path(run_dir) / "images"))
    rows = score_samples_task(rows, CLASSIFIER_CHECKPOINT)
    metrics = {
        "images": len(rows), "sampler": params.sampler, "steps": params.num_inference_steps,
        "guidance_scale": params.guidance_scale, "seed": params.seed, "shards": len({r["shard"] for r in rows}),
        "task_runner": params.task_runner, "classifier_agreement": sum(r["correct"] for r in rows) / len(rows),
        "image_size": info["image_size"], "checkpoint": params.checkpoint,
    }
    report = write_report_task(run_dir, "generate_image", [("run", metrics)], rows)
    publish_report(artifact_key("generate-image-report"), "generate_image", metrics, Path(run_dir), rows)
    return {"run_dir": run_dir, "report": report, "metrics": metrics, "samples": rows, "flow_run_id": str(flow_run.id)}


@family_flow("evaluate_image")
def evaluate_image_flow(params: EvaluateImageParams = EvaluateImageParams()) -> dict[str, Any]:
    """Accuracy, Frechet distance and CAS of a checkpoint against held-out digits, with a sample row."""
    run_dir = run_dir_task(params.output_root, "evaluate-image")
    check_checkpoint_task(params.checkpoint)
    metrics = evaluate_task(params.checkpoint, params.per_class, params.sampler, params.num_inference_steps,
                            params.guidance_scale, params.seed, params.cas_epochs, params.classifier, params.device,
                            params.full_range_guidance)
    rows = generate_shard_task(params.checkpoint, 0, 0, list(range(10)), params.seed, params.sampler,
                               params.num_inference_steps, params.guidance_scale, str(Path(run_dir) / "images"),
                               params.device)
    rows = score_samples_task(rows, params.classifier)
    metrics = {**metrics, "checkpoint": params.checkpoint}
    report = write_report_task(run_dir, "evaluate_image", [("metrics", metrics)], rows)
    publish_report(artifact_key("evaluate-image-report"), "evaluate_image", metrics, Path(run_dir), rows)
    return {"run_dir": run_dir, "report": report, "metrics": metrics, "flow_run_id": str(flow_run.id)}


@family_flow("train_image")
def train_image_flow(params: TrainImageParams = TrainImageParams()) -> dict[str, Any]:
    """Data -> training (reused or resumed by fingerprint) -> evaluation -> publish -> report."""
    run_dir = run_dir_task(params.output_root, "train-image")
    fp = fingerprint_task(params)
    trained = train_task(fp["folder"], fp["fingerprint"], params)
    metrics: dict[str, Any] = {"preset": params.preset, "steps": trained["steps"], "reused": trained["reused"],
                               "resumed_from": trained["resumed_from"], "train_seconds": trained["seconds"],
                               "num_processes": params.num_processes, "fingerprint": fp["fingerprint"][:16]}
    if params.eval_per_class > 0:
        scores = evaluate_task(fp["folder"], params.eval_per_class, "dpmsolver++", params.eval_steps, 3.0,
                               params.seed, params.cas_epochs, CLASSIFIER_CHECKPOINT)
        metrics.update({k: scores[k] for k in ("accuracy", "fd", "fd_real_baseline", "cas")})
    published = publish_task(fp["folder"], params.publish_dir)
    metrics["published"] = published
    rows = generate_shard_task(published, 0, 0, list(range(10)), params.seed, "dpmsolver++", params.eval_steps, 3.0,
                               str(Path(run_dir) / "images"))
    rows = score_samples_task(rows, CLASSIFIER_CHECKPOINT)
    report = write_report_task(run_dir, "train_image", [("training", metrics)], rows)
    publish_report(artifact_key("train-image-report"), "train_image", metrics, Path(run_dir), rows)
    return {"run_dir": run_dir, "report": report, "metrics": metrics, "checkpoint": published,
            "flow_run_id": str(flow_run.id)}


@family_flow("generate_image_from_file")
def generate_image_from_file_flow(params_file: str = str(DEFAULT_PARAMS_FILE)) -> dict[str, Any]:
    """Read ``GenerateImageParams`` from a JSON file (validated), then run ``generate_image`` as a subflow."""
    params = load_params(params_file, GenerateImageParams)
    print(f"parameters from {params_file}: {params.model_dump_json()}")
    return generate_image_flow(params)

"""The video family's flows: ``train_video``, ``generate_video``, ``evaluate_video``.

Flows only wire tasks (:mod:`flows.video.tasks`); each run writes ``outputs/<run>/index.html`` (the
clips play in it) and a markdown artifact with the metrics and where the outputs are.

>>> from flows.video.flows import generate_video_flow
>>> generate_video_flow({"prompt": "the digit 3 moves to the right", "frames": 16})
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.runtime import flow_run

from ..artifacts import artifact_key, publish_report
from ..common import family_flow, run_dir_task
from .params import DIGIT_CLASSIFIER_CHECKPOINT, EvaluateVideoParams, GenerateVideoParams, TrainVideoParams
from .tasks import evaluate_task, fingerprint_task, generate_task, publish_task, train_task, write_report_task


@family_flow("generate_video")
def generate_video_flow(params: GenerateVideoParams = GenerateVideoParams()) -> dict[str, Any]:
    """Load a checkpoint -> generate one clip (GIF and MP4) -> report."""
    run_dir = run_dir_task(params.output_root, "generate-video")
    media = generate_task(params, str(Path(run_dir) / "clip.gif")) + generate_task(params, str(Path(run_dir) / "clip.mp4"))
    metrics = {"prompt": params.prompt or "(none)", "image": params.image or "(none)", "frames": params.frames,
               "interpolate": params.interpolate, "sampler": params.sampler, "steps": params.num_inference_steps,
               "guidance_scale": params.guidance_scale, "seed": params.seed, "checkpoint": params.checkpoint}
    report = write_report_task(run_dir, "generate_video", [("run", metrics)], media)
    publish_report(artifact_key("generate-video-report"), "generate_video", metrics, Path(run_dir))
    return {"run_dir": run_dir, "report": report, "metrics": metrics, "media": media, "flow_run_id": str(flow_run.id)}


@family_flow("evaluate_video")
def evaluate_video_flow(params: EvaluateVideoParams = EvaluateVideoParams()) -> dict[str, Any]:
    """The family's metrics on a checkpoint, with one sample clip in the report."""
    run_dir = run_dir_task(params.output_root, "evaluate-video")
    metrics = evaluate_task(params.checkpoint, params.num_prompts, params.sampler, params.num_inference_steps,
                            params.guidance_scale, params.seed, params.num_i2v, params.num_long, params.long_frames,
                            params.batch_size, params.digit_classifier, params.video_classifier)
    sample = GenerateVideoParams(prompt="the digit 3 moves to the right", checkpoint=params.checkpoint,
                                 num_inference_steps=params.num_inference_steps, sampler=params.sampler, seed=params.seed)
    media = generate_task(sample, str(Path(run_dir) / "sample.gif"))
    metrics = {**metrics, "checkpoint": params.checkpoint}
    report = write_report_task(run_dir, "evaluate_video", [("metrics", metrics)], media)
    publish_report(artifact_key("evaluate-video-report"), "evaluate_video", metrics, Path(run_dir))
    return {"run_dir": run_dir, "report": report, "metrics": metrics, "flow_run_id": str(flow_run.id)}


@family_flow("train_video")
def train_video_flow(params: TrainVideoParams = TrainVideoParams()) -> dict[str, Any]:
    """Training (reused or resumed by fingerprint) -> optional evaluation -> publish -> a sample clip -> report."""
    run_dir = run_dir_task(params.output_root, "train-video")
    fp = fingerprint_task(params)
    trained = train_task(fp["folder"], fp["fingerprint"], params)
    metrics: dict[str, Any] = {"preset": params.preset, "steps": trained["steps"], "reused": trained["reused"],
                               "resumed_from": trained["resumed_from"], "train_seconds": trained["seconds"],
                               "fingerprint": fp["fingerprint"][:16]}
    if params.eval_prompts > 0:
        scores = evaluate_task(fp["folder"], params.eval_prompts, "dpmsolver++", params.eval_steps, 4.0, params.seed,
                               0, 0, 0, 16, DIGIT_CLASSIFIER_CHECKPOINT, params.video_classifier)
        metrics.update({k: scores[k] for k in ("digit_accuracy", "direction_accuracy", "fd", "fd_real_baseline")})
    published = publish_task(fp["folder"], params.publish_dir)
    metrics["published"] = published
    sample = GenerateVideoParams(prompt="the digit 3 moves to the right", checkpoint=published,
                                 num_inference_steps=params.eval_steps, seed=params.seed)
    media = generate_task(sample, str(Path(run_dir) / "sample.gif"))
    report = write_report_task(run_dir, "train_video", [("training", metrics)], media)
    publish_report(artifact_key("train-video-report"), "train_video", metrics, Path(run_dir))
    return {"run_dir": run_dir, "report": report, "metrics": metrics, "checkpoint": published,
            "flow_run_id": str(flow_run.id)}

"""The video family's command functions: what ``mmdiff <verb> video|video-classifier`` runs.

Each takes its validated parameter model and the ``--out`` path and calls the same task functions as
the family's flows (``task.fn``), so the CLI and the flows behave alike.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from generators.core.checkpoint import atomic_write_json

from ..common import command_line
from .params import EvaluateVideoParams, GenerateVideoParams, TrainVideoClassifierParams, TrainVideoParams
from .tasks import evaluate_task, fingerprint_task, generate_clip, publish_task, train_task


def train_video(params: TrainVideoParams, out: Path | None = None) -> dict[str, Any]:
    """Fingerprint -> train (reused when finished, resumed when interrupted) -> publish to ``publish_dir``."""
    fp = fingerprint_task.fn(params)
    trained = train_task.fn(fp["folder"], fp["fingerprint"], params, command=command_line())
    published = publish_task.fn(fp["folder"], params.publish_dir)
    return {"published": published, "folder": fp["folder"], "steps": trained["steps"], "reused": trained["reused"],
            "resumed_from": trained["resumed_from"], "train_seconds": trained["seconds"]}


def generate_video(params: GenerateVideoParams, out: Path | None) -> list[str]:
    """One clip at ``out``: ``clip.mp4``, ``clip.gif`` or a folder of PNG frames."""
    return generate_clip(params, out or Path("outputs/video/clip.mp4"))


def evaluate_video(params: EvaluateVideoParams, out: Path | None = None) -> dict[str, Any]:
    """The family's metrics (``--write-metrics`` keeps them in the checkpoint's metrics.json)."""
    metrics = evaluate_task.fn(params.checkpoint, params.num_prompts, params.sampler, params.num_inference_steps,
                               params.guidance_scale, params.seed, params.num_i2v, params.num_long, params.long_frames,
                               params.batch_size, params.digit_classifier, params.video_classifier)
    metrics = {**metrics, "command": command_line() or "evaluate_video"}
    if params.write_metrics:
        atomic_write_json(Path(params.checkpoint) / "metrics.json", metrics)
    return metrics


def train_video_classifier(params: TrainVideoClassifierParams, out: Path | None) -> dict[str, Any]:
    """The FVD-style feature network, trained in ``out`` (resumable)."""
    from generators.video import train_video_classifier as train

    result = train(out, params.preset, params.max_steps, params.seed, command=command_line(), progress=True)
    return {"out": str(out), "steps": result.steps, "resumed_from": result.resumed_from}

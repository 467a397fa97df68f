"""The super-resolution family's command functions: what ``mmdiff <verb> superres|cascade|...`` and
``mmdiff upscale`` run.

Each takes its validated parameter model and the ``--out`` path and calls the same task functions as the
family's flows (``task.fn``), so the CLI and the flows behave alike.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from generators.core.checkpoint import atomic_write_json

from ..common import command_line
from .params import (
    EvaluateCascadeParams,
    EvaluateSuperresParams,
    GenerateCascadeParams,
    TrainCascadeClassifierParams,
    TrainCascadeParams,
    TrainSuperresParams,
    UpscaleParams,
)
from .tasks import (
    cascade_task,
    evaluate_cascade_task,
    evaluate_task,
    fingerprint_task,
    publish_task,
    train_task,
    upscale_files,
)


def _write_metrics(folder: str, metrics: dict[str, Any], write: bool) -> dict[str, Any]:
    metrics = {**metrics, "command": command_line() or metrics.get("command", "")}
    if write:
        atomic_write_json(Path(folder) / "metrics.json", metrics)
    return metrics


def train_superres(params: TrainSuperresParams, out: Path | None = None) -> dict[str, Any]:
    """Fingerprint -> train (reused when finished, resumed when interrupted) -> publish to ``publish_dir``."""
    fp = fingerprint_task.fn(params)
    trained = train_task.fn(fp["folder"], fp["fingerprint"], params, command=command_line())
    published = publish_task.fn(fp["folder"], params.publish_dir)
    return {"published": published, "folder": fp["folder"], "steps": trained["steps"], "reused": trained["reused"],
            "resumed_from": trained["resumed_from"], "train_seconds": trained["seconds"]}


def upscale(params: UpscaleParams, out: Path | None) -> list[str]:
    """Upscaled image(s) at ``out``: a file (.png, .jpg, .tiff) for one output, else a folder of PNGs."""
    return upscale_files(params, out or Path("outputs/upscale"))


def evaluate_superres(params: EvaluateSuperresParams, out: Path | None = None) -> dict[str, Any]:
    """The held-out metrics (``--write-metrics`` keeps them in the checkpoint's metrics.json)."""
    metrics = evaluate_task.fn(params.checkpoint, params.crop, params.num_samples, params.sampler,
                               params.num_inference_steps, params.seed, params.device, params.antithetic,
                               params.self_ensemble)
    return _write_metrics(params.checkpoint, metrics, params.write_metrics)


def train_cascade(params: TrainCascadeParams, out: Path | None = None) -> dict[str, Any]:
    """The base generator and every stage in ``out`` (default ``out_dir``), each part resumable."""
    from generators.superres.train import train_cascade as train

    folder = out or Path(params.out_dir)
    results = train(folder, params.preset, params.max_steps, params.seed, params.mixed_precision,
                    params.checkpoint_every, params.device, command=command_line(), progress=True)
    return {"out": str(folder), **{part: (None if r is None else {"steps": r.steps, "resumed_from": r.resumed_from})
                                   for part, r in results.items()}}


def generate_cascade(params: GenerateCascadeParams, out: Path | None) -> list[str]:
    """Every stage's PNGs and a contact sheet under ``out``."""
    return cascade_task.fn(params.checkpoint, params.prompt, params.num, params.sampler, params.num_inference_steps,
                           params.guidance_scale, params.stage_guidance_scale, params.seed,
                           str(out or Path("outputs/cascade")), params.device)


def evaluate_cascade(params: EvaluateCascadeParams, out: Path | None = None) -> dict[str, Any]:
    """Per-stage Frechet distance (``--write-metrics`` keeps it in the cascade folder's metrics.json)."""
    metrics = evaluate_cascade_task.fn(params.checkpoint, params.classifier, params.preset, params.per_prompt,
                                       params.sampler, params.num_inference_steps, params.guidance_scale, params.seed,
                                       params.device)
    return _write_metrics(params.checkpoint, metrics, params.write_metrics)


def train_cascade_classifier(params: TrainCascadeClassifierParams, out: Path | None) -> dict[str, Any]:
    """The crop classifier in ``out`` with its held-out accuracy per resolution in metrics.json."""
    from generators.superres.evaluate import train_crop_classifier

    return train_crop_classifier(out, params.preset, params.seed, command=command_line())

"""The super-resolution family's flows: ``train_superres``, ``upscale``, ``evaluate_superres``,
``generate_cascade``, ``evaluate_cascade``.

Flows only wire tasks (:mod:`flows.superres.tasks`); each run writes ``outputs/<run>/index.html`` (low-res,
bicubic and diffusion side by side; the cascade's stages) and a markdown artifact with the metrics.

>>> from flows.superres.flows import upscale_flow
>>> upscale_flow({"image": ["photo.png"], "num_inference_steps": 20})
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.runtime import flow_run

from ..artifacts import artifact_key, publish_report
from ..common import family_flow, run_dir_task
from .params import (
    EvaluateCascadeParams,
    EvaluateSuperresParams,
    GenerateCascadeParams,
    TrainSuperresParams,
    UpscaleParams,
)
from .tasks import (
    cascade_task,
    evaluate_cascade_task,
    evaluate_task,
    fingerprint_task,
    publish_task,
    side_by_side_task,
    train_task,
    upscale_task,
    write_report_task,
)


def _sample_input(run_dir: str, size: int = 32) -> str:
    """A held-out photo's centre, downscaled by 4 and written as the flows' sample input PNG."""
    from evaluation.superres import downsample_array
    from generators.core.checkpoint import atomic_write_bytes
    from generators.core.pipeline import png_bytes
    from generators.superres.data import HELD_OUT, load_photo_uint8
    from generators.superres.evaluate import centre_crop

    path = Path(run_dir) / "inputs" / f"{HELD_OUT[0]}_{size}px.png"
    atomic_write_bytes(path, png_bytes(downsample_array(centre_crop(load_photo_uint8(HELD_OUT[0]), 4 * size), 4)))
    return str(path)


def _side_by_side(params: UpscaleParams, run_dir: str) -> tuple[list[str], list[dict[str, Any]]]:
    outputs = upscale_task(params, str(Path(run_dir) / "upscaled"))
    scale = params.scale or 4
    per_input = outputs[::params.num_samples]
    return outputs, side_by_side_task(list(params.image), per_input, scale, str(Path(run_dir) / "side-by-side"))


@family_flow("upscale")
def upscale_flow(params: UpscaleParams) -> dict[str, Any]:
    """Upscale the user's images -> PNGs -> low-res / bicubic / diffusion rows -> report."""
    run_dir = run_dir_task(params.output_root, "upscale")
    outputs, rows = _side_by_side(params, run_dir)
    metrics = {"images": len(params.image), "outputs": len(outputs), "scale": params.scale or "checkpoint's",
               "degradation": params.degradation, "sampler": params.sampler, "steps": params.num_inference_steps,
               "seed": params.seed, "checkpoint": params.checkpoint}
    report = write_report_task(run_dir, "upscale", [("run", metrics)], rows)
    publish_report(artifact_key("upscale-report"), "upscale", metrics, Path(run_dir))
    return {"run_dir": run_dir, "report": report, "metrics": metrics, "outputs": outputs,
            "flow_run_id": str(flow_run.id)}


@family_flow("evaluate_superres")
def evaluate_superres_flow(params: EvaluateSuperresParams = EvaluateSuperresParams()) -> dict[str, Any]:
    """Held-out metrics of a checkpoint, with one side-by-side row of a held-out photo."""
    run_dir = run_dir_task(params.output_root, "evaluate-superres")
    metrics = evaluate_task(params.checkpoint, params.crop, params.num_samples, params.sampler,
                            params.num_inference_steps, params.seed, params.device, params.antithetic,
                            params.self_ensemble)
    sample = UpscaleParams(image=[_sample_input(run_dir)], checkpoint=params.checkpoint, sampler=params.sampler,
                           num_inference_steps=params.num_inference_steps, seed=params.seed)
    _, rows = _side_by_side(sample, run_dir)
    tables = [(k, {m: v for m, v in metrics[k].items() if m != "per_photo"}) for k in ("bicubic", "area") if k in metrics]
    report = write_report_task(run_dir, "evaluate_superres", tables, rows)
    metrics = {**metrics, "checkpoint": params.checkpoint}
    publish_report(artifact_key("evaluate-superres-report"), "evaluate_superres",
                   {k: v for k, v in metrics.items() if not isinstance(v, dict)}, Path(run_dir))
    return {"run_dir": run_dir, "report": report, "metrics": metrics, "flow_run_id": str(flow_run.id)}


@family_flow("train_superres")
def train_superres_flow(params: TrainSuperresParams = TrainSuperresParams()) -> dict[str, Any]:
    """Training (reused or resumed by fingerprint) -> optional evaluation -> publish -> a sample row -> report."""
    run_dir = run_dir_task(params.output_root, "train-superres")
    fp = fingerprint_task(params)
    trained = train_task(fp["folder"], fp["fingerprint"], params)
    metrics: dict[str, Any] = {"preset": params.preset, "steps": trained["steps"], "reused": trained["reused"],
                               "resumed_from": trained["resumed_from"], "train_seconds": trained["seconds"],
                               "fingerprint": fp["fingerprint"][:16]}
    if params.eval_samples > 0:
        scores = evaluate_task(fp["folder"], params.eval_crop, params.eval_samples, "dpmsolver++", params.eval_steps,
                               params.seed)
        for kind in ("bicubic", "area"):
            metrics.update({f"{kind}_{m}": scores[kind][m] for m in ("psnr_mean", "psnr_bicubic", "hf_single",
                                                                     "consistency_single")})
    published = publish_task(fp["folder"], params.publish_dir)
    metrics["published"] = published
    sample = UpscaleParams(image=[_sample_input(run_dir)], checkpoint=published, num_inference_steps=params.eval_steps,
                           seed=params.seed)
    _, rows = _side_by_side(sample, run_dir)
    report = write_report_task(run_dir, "train_superres", [("training", metrics)], rows)
    publish_report(artifact_key("train-superres-report"), "train_superres", metrics, Path(run_dir))
    return {"run_dir": run_dir, "report": report, "metrics": metrics, "checkpoint": published,
            "flow_run_id": str(flow_run.id)}


def _stage_rows(paths: list[str]) -> list[dict[str, Any]]:
    """One row per cascade stage folder (``stage<k>_<r>px``) of the saved images."""
    stages: dict[str, list[tuple[str, str]]] = {}
    for p in paths:
        if Path(p).parent.name.startswith("stage"):
            stages.setdefault(Path(p).parent.name, []).append((p, Path(p).stem))
    return [{"title": f"cascade {name}", "images": images} for name, images in sorted(stages.items())]


@family_flow("generate_cascade")
def generate_cascade_flow(params: GenerateCascadeParams) -> dict[str, Any]:
    """Prompt -> base -> every super-resolution stage -> PNGs per stage and a contact sheet -> report."""
    run_dir = run_dir_task(params.output_root, "generate-cascade")
    paths = cascade_task(params.checkpoint, params.prompt, params.num, params.sampler, params.num_inference_steps,
                         params.guidance_scale, params.stage_guidance_scale, params.seed,
                         str(Path(run_dir) / "cascade"), params.device)
    metrics = {"prompts": ", ".join(params.prompt), "images_per_prompt": params.num, "sampler": params.sampler,
               "steps": params.num_inference_steps, "seed": params.seed, "checkpoint": params.checkpoint}
    report = write_report_task(run_dir, "generate_cascade", [("run", metrics)], _stage_rows(paths))
    publish_report(artifact_key("generate-cascade-report"), "generate_cascade", metrics, Path(run_dir))
    return {"run_dir": run_dir, "report": report, "metrics": metrics, "outputs": paths, "flow_run_id": str(flow_run.id)}


@family_flow("evaluate_cascade")
def evaluate_cascade_flow(params: EvaluateCascadeParams = EvaluateCascadeParams()) -> dict[str, Any]:
    """Per-stage Frechet distance of the cascade, with its stages for one prompt in the report."""
    run_dir = run_dir_task(params.output_root, "evaluate-cascade")
    metrics = evaluate_cascade_task(params.checkpoint, params.classifier, params.preset, params.per_prompt,
                                    params.sampler, params.num_inference_steps, params.guidance_scale, params.seed,
                                    params.device)
    stages = {k: v for k, v in metrics.items() if isinstance(v, dict)}
    paths = cascade_task(params.checkpoint, [params.sample_prompt], 4, params.sampler,
                         params.num_inference_steps, params.guidance_scale, 1.0, params.seed,
                         str(Path(run_dir) / "cascade"), params.device)
    report = write_report_task(run_dir, "evaluate_cascade", list(stages.items()), _stage_rows(paths))
    publish_report(artifact_key("evaluate-cascade-report"), "evaluate_cascade",
                   {f"{k}_{m}": v for k, d in stages.items() for m, v in d.items()}, Path(run_dir))
    return {"run_dir": run_dir, "report": report, "metrics": metrics, "flow_run_id": str(flow_run.id)}

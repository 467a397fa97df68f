"""The super-resolution family's orchestration and its registry record (:data:`FAMILY`).

Flows and tasks are imported only when used, so that the CLI starts without importing Prefect.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..common import lazy
from ..registry import Command, ComposedStep, Family, StepContext, StepResult
from . import params as p

CODE_PATHS = ("generators/core", "generators/superres", "conditioning", "evaluation")


def _lazy(module: str, name: str) -> Callable[..., Any]:
    return lazy(f"flows.superres.{module}", name)


def _load_superres(path: str, device: str) -> Any:
    from generators.superres import SuperResolver

    return SuperResolver.from_pretrained(path, device=device)


def _load_cascade(path: str, device: str) -> Any:
    from generators.superres import Cascade

    return Cascade.from_pretrained(path, device=device)


def _deployments(defaults: Mapping[str, Any]) -> list[Any]:
    from .deployments import build_deployments

    return build_deployments(defaults)


def _warm_flows() -> tuple[Any, ...]:
    from .flows import generate_cascade_flow, upscale_flow

    return (upscale_flow, generate_cascade_flow)


def _gallery(section: p.SuperresSection, context: StepContext) -> StepResult:
    from .gallery import run_gallery_step

    return run_gallery_step(section, context)


c = "commands"
FAMILY = Family(
    name="superres",
    description="diffusion super-resolution of your images (x4, tiled, held to the input) and a prompt cascade",
    commands=(
        Command("train", "superres", p.TrainSuperresParams, _lazy(c, "train_superres"),
                "Train the x4 super-resolution model (reused by fingerprint, resumed, published).",
                cli_skip=("eval_samples", "eval_crop", "eval_steps", "output_root")),
        Command("upscale", None, p.UpscaleParams, _lazy(c, "upscale"),
                "Upscale image files (grey, RGBA and 16-bit are converted; large ones are tiled).",
                out="output image (.png, .jpg, .tiff) for one result, else a folder", cli_skip=("output_root",),
                arguments=("image",), out_formats=("", ".png", ".jpg", ".jpeg", ".tif", ".tiff")),
        Command("evaluate", "superres", p.EvaluateSuperresParams, _lazy(c, "evaluate_superres"),
                "PSNR / SSIM (single, mean of samples, bicubic), HF energy and consistency on held-out photos.",
                cli_skip=("output_root",)),
        Command("train", "cascade", p.TrainCascadeParams, _lazy(c, "train_cascade"),
                "Train the cascade's base generator and stages (each part resumes).",
                out="cascade folder (resumes part by part)", cli_skip=("out_dir", "output_root")),
        Command("generate", "cascade", p.GenerateCascadeParams, _lazy(c, "generate_cascade"),
                "Prompt -> base -> super-resolution stages; PNGs of every stage and a contact sheet.",
                out="folder for the PNGs", cli_skip=("output_root",)),
        Command("evaluate", "cascade", p.EvaluateCascadeParams, _lazy(c, "evaluate_cascade"),
                "Per-stage Frechet distance against real crops at each resolution.",
                cli_skip=("output_root", "sample_prompt")),
        Command("train", "cascade-classifier", p.TrainCascadeClassifierParams, _lazy(c, "train_cascade_classifier"),
                "Train the crop classifier whose features score the cascade.", out="checkpoint folder",
                out_required=True),
    ),
    deployments=_deployments,
    warm_flows=_warm_flows,
    loaders={"superres": _load_superres, "cascade": _load_cascade},
    preload=tuple(("superres", path) for path in (p.SR_CHECKPOINT,) if (Path(path) / "config.json").is_file()),
    composed_section=p.SuperresSection,
    composed_steps=(ComposedStep("upscale", "x4 super-resolution of the previews (low-res / bicubic / diffusion) "
                                 "and the cascade's stages", 320, _gallery),),
    checkpoints={"superres": p.SR_CHECKPOINT, "cascade": p.CASCADE_CHECKPOINT,
                 "cascade-classifier": p.CASCADE_CLASSIFIER_CHECKPOINT},
    code_paths=CODE_PATHS,
)

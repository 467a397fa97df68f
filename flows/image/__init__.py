"""The image family's orchestration and its registry record (:data:`FAMILY`).

Flows and tasks are imported only when used, so that the CLI starts without importing Prefect.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from ..common import lazy
from ..registry import Command, ComposedStep, Family, StepContext, StepResult
from . import params as p


def _lazy(module: str, name: str) -> Callable[..., Any]:
    return lazy(f"flows.image.{module}", name)


def _load_image(path: str, device: str) -> Any:
    from generators.image import ImageGenerator

    return ImageGenerator.from_pretrained(path, device=device)


def _load_text2img(path: str, device: str) -> Any:
    from generators.image.text2img import TextImageGenerator

    return TextImageGenerator.from_pretrained(path, device=device)


def _load_controlnet(path: str, device: str) -> Any:
    from generators.image.controlnet import ControlNetImageGenerator

    return ControlNetImageGenerator.from_pretrained(path, device=device)


def _load_classifier(path: str, device: str) -> Any:
    from evaluation.digits import load_digit_classifier

    return load_digit_classifier(path).to(device).eval()


def _deployments(defaults: Mapping[str, Any]) -> list[Any]:
    from .deployments import build_deployments

    return build_deployments(defaults)


def _warm_flows() -> tuple[Any, ...]:
    from .flows import evaluate_image_flow, generate_image_flow

    return (generate_image_flow, evaluate_image_flow)


def _gallery(section: p.ImageSection, context: StepContext) -> StepResult:
    from .gallery import run_gallery_step

    return run_gallery_step(section, context)


c = "commands"
FAMILY = Family(
    name="image",
    description="class-conditional digits, text-to-image and edge-map ControlNet on the shared core",
    commands=(
        Command("train", "image", p.TrainImageParams, _lazy(c, "train_image"),
                "Train the class-conditional digits generator (reused by fingerprint, resumed, published).",
                cli_skip=("eval_per_class", "eval_steps", "cas_epochs", "output_root")),
        Command("generate", "image", p.GenerateImageParams, _lazy(c, "generate_image"),
                "Generate one digit per label and write PNGs.", out="folder for the PNGs (or x.png for one label)",
                out_formats=("", ".png"),
                cli_skip=("shard_size", "task_runner", "output_root")),
        Command("evaluate", "image", p.EvaluateImageParams, _lazy(c, "evaluate_image"),
                "Accuracy, Frechet distance and CAS of generated digits against held-out real digits.",
                cli_skip=("output_root",)),
        Command("train", "text2img", p.TrainText2ImgParams, _lazy(c, "train_text2img"),
                "Fine-tune the digits model into a text-conditioned one.", out="checkpoint folder (resumes)",
                out_required=True),
        Command("generate", "text2img", p.GenerateText2ImgParams, _lazy(c, "generate_text2img"),
                "Generate one digit per prompt with classifier-free guidance.", out="folder for the PNGs",
                out_formats=("", ".png")),
        Command("evaluate", "text2img", p.EvaluateText2ImgParams, _lazy(c, "evaluate_text2img"),
                "Digit and attribute accuracy on held-out prompt phrasings."),
        Command("train", "controlnet", p.TrainControlNetParams, _lazy(c, "train_controlnet"),
                "Train an edge-map ControlNet adapter on the frozen digits model.",
                out="adapter folder (resumes)", out_required=True),
        Command("generate", "controlnet", p.GenerateControlNetParams, _lazy(c, "generate_controlnet"),
                "Edge maps (white on black PNGs) -> digits.", out="folder for the PNGs", out_formats=("", ".png")),
        Command("evaluate", "controlnet", p.EvaluateControlNetParams, _lazy(c, "evaluate_controlnet"),
                "Edge F1 of ControlNet outputs vs the input maps, beside the unconditioned base."),
        Command("train", "digit-classifier", p.TrainClassifierParams, _lazy(c, "train_classifier"),
                "Train the evaluation digit classifier on the train split.", out="checkpoint folder",
                out_required=True),
    ),
    deployments=_deployments,
    warm_flows=_warm_flows,
    loaders={"image": _load_image, "text2img": _load_text2img, "controlnet": _load_controlnet,
             "digit-classifier": _load_classifier},
    preload=(("image", p.IMAGE_CHECKPOINT), ("digit-classifier", p.CLASSIFIER_CHECKPOINT)),
    composed_section=p.ImageSection,
    composed_steps=(ComposedStep("image-gallery", "digit gallery: samplers, SDEdit, inpainting, denoising, "
                                 "prompt -> image, edge map -> image", 100, _gallery),),
    checkpoints={"image": p.IMAGE_CHECKPOINT, "text2img": p.TEXT2IMG_CHECKPOINT,
                 "controlnet": p.CONTROLNET_CHECKPOINT, "digit-classifier": p.CLASSIFIER_CHECKPOINT},
    code_paths=("generators/core", "generators/image"),
)

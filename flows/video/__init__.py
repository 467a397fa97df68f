"""The video family's orchestration and its registry record (:data:`FAMILY`).

Flows and tasks are imported only when used, so that the CLI starts without importing Prefect.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from ..common import lazy
from ..registry import Command, ComposedStep, Family, StepContext, StepResult
from . import params as p


def _lazy(module: str, name: str) -> Callable[..., Any]:
    return lazy(f"flows.video.{module}", name)


def _load_video(path: str, device: str) -> Any:
    from generators.video import VideoGenerator

    return VideoGenerator.from_pretrained(path, device=device)


def _deployments(defaults: Mapping[str, Any]) -> list[Any]:
    from .deployments import build_deployments

    return build_deployments(defaults)


def _warm_flows() -> tuple[Any, ...]:
    from .flows import evaluate_video_flow, generate_video_flow

    return (generate_video_flow, evaluate_video_flow)


def _gallery(section: p.VideoSection, context: StepContext) -> StepResult:
    from .gallery import run_gallery_step

    return run_gallery_step(section, context)


c = "commands"
FAMILY = Family(
    name="video",
    description="moving-digits video diffusion: text/class/motion/image-to-video, long clips, 2x interpolation",
    commands=(
        Command("train", "video", p.TrainVideoParams, _lazy(c, "train_video"),
                "Train the video model: per-frame autoencoder, then the denoiser (reused by fingerprint, resumed).",
                cli_skip=("eval_prompts", "eval_steps", "video_classifier", "output_root")),
        Command("generate", "video", p.GenerateVideoParams, _lazy(c, "generate_video"),
                "One clip from --prompt and/or --image (first frame); --frames beyond the window extends it.",
                out="clip.mp4, clip.gif or a folder of PNG frames", cli_skip=("output_root",),
                out_formats=("", ".mp4", ".gif")),
        Command("evaluate", "video", p.EvaluateVideoParams, _lazy(c, "evaluate_video"),
                "Digit, motion-direction, identity, FVD-style, image-to-video and long-clip metrics.",
                cli_skip=("output_root",)),
        Command("train", "video-classifier", p.TrainVideoClassifierParams, _lazy(c, "train_video_classifier"),
                "Train the video classifier whose features give the FVD-style distance.",
                out="checkpoint folder (resumes)", out_required=True),
    ),
    deployments=_deployments,
    warm_flows=_warm_flows,
    loaders={"video": _load_video},
    preload=(("video", p.VIDEO_CHECKPOINT),),
    composed_section=p.VideoSection,
    composed_steps=(ComposedStep("video", "text -> video from the brief's video prompt, and image -> video", 500,
                                 _gallery),),
    checkpoints={"video": p.VIDEO_CHECKPOINT, "video-classifier": p.VIDEO_CLASSIFIER_CHECKPOINT},
    code_paths=("generators/core", "generators/video", "conditioning"),
)

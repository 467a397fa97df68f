"""Parameters of the image family's commands and flows (the CLI's options and the dashboard's forms)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from generators.core.validation import DEFAULT_BATCH_SIZE, check_prompts

from ..params import (DEVICE_PATTERN, FlowParams, MixedPrecision, Preset, Sampler, TaskRunnerName, guidance_field,
                      seed_field)

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINTS = ROOT / "data" / "checkpoints"
IMAGE_CHECKPOINT = str(CHECKPOINTS / "image-digits")
CLASSIFIER_CHECKPOINT = str(CHECKPOINTS / "digit-classifier")
TEXT2IMG_CHECKPOINT = str(CHECKPOINTS / "image-text2img")
CONTROLNET_CHECKPOINT = str(CHECKPOINTS / "image-controlnet-edges")
# A request larger than this is refused up front; within it, sampling runs in chunks of batch_size.
MAX_IMAGES = 50_000


def _digits(labels: list[int]) -> list[int]:
    bad = [v for v in labels if not 0 <= v <= 9]
    if bad:
        raise ValueError(f"labels must be digits 0..9; got out-of-range {bad[:10]}")
    return labels


class SamplingParams(FlowParams):
    """The sampling keywords of the generator contract, shared by the image commands."""

    sampler: Sampler = "dpmsolver++"
    num_inference_steps: int = Field(25, ge=1, le=1000, description="sampler steps")
    guidance_scale: float = guidance_field(3.0)
    seed: int = seed_field()


class TrainImageParams(FlowParams):
    """Parameters of ``train_image``: data -> training (reused by fingerprint, or resumed) -> evaluation -> publish."""

    preset: Preset = Field("tiny", description="model size: tiny (tests), small (CPU demo), base (GPU)")
    max_steps: int | None = Field(None, ge=1, le=1_000_000, description="override the preset's number of steps")
    seed: int = seed_field()
    mixed_precision: MixedPrecision = "no"
    checkpoint_every: int | None = Field(None, ge=1, le=1_000_000, description="steps between resumable checkpoints")
    num_processes: int = Field(1, ge=1, le=64, description="processes for `accelerate launch` (DDP); 1 = in-process")
    cache_root: str = Field("outputs/checkpoints/cache", description="where fingerprinted training folders live")
    publish_dir: str = Field("outputs/checkpoints/image-digits", description="where the finished checkpoint is published")
    eval_per_class: int = Field(10, ge=0, le=1000, description="digits per label for the evaluation step (0 skips it)")
    eval_steps: int = Field(25, ge=1, le=1000)
    cas_epochs: int = Field(5, ge=1, le=100)
    output_root: str = Field("outputs", description="run folders are created here")


class GenerateImageParams(SamplingParams):
    """Parameters of ``generate_image``: load -> generate a batch (sharded) -> write PNGs -> report."""

    labels: list[int] = Field(default_factory=lambda: list(range(10)), min_length=1, max_length=MAX_IMAGES,
                              description="digits 0..9, one image each")
    batch_size: int = Field(DEFAULT_BATCH_SIZE, ge=1, le=4096, description="images sampled at once (bounds memory)")
    shard_size: int = Field(16, ge=1, le=MAX_IMAGES, description="images per shard; each shard has its own derived seed")
    task_runner: TaskRunnerName = Field("local", description="local threads, or Ray (prefect-ray) for shards")
    device: str = Field("cpu", pattern=DEVICE_PATTERN, description="cpu, cuda or cuda:N")
    checkpoint: str = Field(IMAGE_CHECKPOINT, description="generator checkpoint folder")
    output_root: str = Field("outputs", description="run folders are created here")

    _labels_are_digits = field_validator("labels")(classmethod(lambda cls, v: _digits(v)))


class EvaluateImageParams(SamplingParams):
    """Parameters of ``evaluate_image``: accuracy, Frechet distance and CAS against held-out digits."""

    checkpoint: str = Field(IMAGE_CHECKPOINT, description="generator checkpoint folder")
    per_class: int = Field(100, ge=1, le=1000, description="generated digits per label")
    full_range_guidance: bool = Field(False, description="guide at every noise level, not only in the default interval")
    cas_epochs: int = Field(15, ge=1, le=100)
    classifier: str = Field(CLASSIFIER_CHECKPOINT, description="digit classifier checkpoint folder")
    device: str = Field("cpu", pattern=DEVICE_PATTERN)
    write_metrics: bool = Field(False, description="write metrics.json into the checkpoint folder")
    output_root: str = Field("outputs")


class GenerateText2ImgParams(SamplingParams):
    """``generate text2img``: one digit per prompt, with classifier-free guidance."""

    prompt: list[str] = Field(..., min_length=1, max_length=4096, description="prompts, e.g. 'a thin upright two'")
    checkpoint: str = Field(TEXT2IMG_CHECKPOINT, description="text-to-image checkpoint folder")

    _prompts = field_validator("prompt")(classmethod(lambda cls, v: check_prompts(v)))


class TrainText2ImgParams(FlowParams):
    """``train text2img``: fine-tune the digits U-Net into a text-conditioned one."""

    base: str = Field(IMAGE_CHECKPOINT, description="class-conditional checkpoint to start from")
    max_steps: int = Field(1500, ge=1, le=1_000_000)
    batch_size: int = Field(64, ge=1, le=4096)
    learning_rate: float = Field(1e-3, gt=0, le=1.0, allow_inf_nan=False)
    seed: int = seed_field()
    checkpoint_every: int = Field(100, ge=1, le=1_000_000)


class EvaluateText2ImgParams(FlowParams):
    """``evaluate text2img``: digit and attribute accuracy on held-out prompt phrasings."""

    checkpoint: str = Field(TEXT2IMG_CHECKPOINT)
    base: str = Field(IMAGE_CHECKPOINT, description="the label-only baseline")
    prompts: int = Field(200, ge=1, le=10_000)
    num_inference_steps: int = Field(25, ge=1, le=1000)
    guidance_scale: float = guidance_field(3.0)
    full_range_guidance: bool = Field(False, description="guide at every noise level, not only in the default interval")
    seed: int = seed_field()
    write_metrics: bool = Field(False, description="write metrics.json into the checkpoint folder")


class GenerateControlNetParams(SamplingParams):
    """``generate controlnet``: edge map PNGs (white edges on black) -> digits."""

    control: list[str] = Field(..., min_length=1, max_length=4096, description="edge-map PNG files")
    labels: list[int] | None = Field(None, description="optional digits, one per edge map")
    checkpoint: str = Field(CONTROLNET_CHECKPOINT, description="ControlNet adapter folder")

    @field_validator("labels")
    @classmethod
    def _labels(cls, v: list[int] | None) -> list[int] | None:
        return None if v is None else _digits(v)


class TrainControlNetParams(TrainText2ImgParams):
    """``train controlnet``: an edge-map adapter on the frozen digits model."""


class EvaluateControlNetParams(FlowParams):
    """``evaluate controlnet``: edge F1 of outputs vs input maps, beside the unconditioned base."""

    checkpoint: str = Field(CONTROLNET_CHECKPOINT)
    images: int = Field(200, ge=1, le=10_000)
    num_inference_steps: int = Field(25, ge=1, le=1000)
    seed: int = seed_field()
    write_metrics: bool = Field(False, description="write metrics.json into the checkpoint folder")


class TrainClassifierParams(FlowParams):
    """``train digit-classifier``: the evaluation classifier on the digits train split."""

    epochs: int = Field(30, ge=1, le=1000)
    seed: int = seed_field()


class ImageSection(FlowParams):
    """The image family's section of the composed flow's parameters."""

    checkpoint: str = Field(IMAGE_CHECKPOINT)
    gallery: Literal["full", "quick"] = Field(
        "full", description="full: samplers, SDEdit, inpainting, denoising, prompt -> image, edge map -> image; "
                            "quick: one row of samples")
    text2img_checkpoint: str = Field(TEXT2IMG_CHECKPOINT, description="prompt -> image row ('' skips it)")
    controlnet_checkpoint: str = Field(CONTROLNET_CHECKPOINT, description="edge map -> image row ('' skips it)")
    labels: list[int] = Field(default_factory=lambda: list(range(10)), min_length=1, max_length=256)
    sampler: Sampler = "dpmsolver++"
    num_inference_steps: int = Field(25, ge=1, le=1000)

    _labels_are_digits = field_validator("labels")(classmethod(lambda cls, v: _digits(v)))

"""Parameters of the video family's commands and flows (the CLI's options and the dashboard's forms)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from ..params import DEVICE_PATTERN, FlowParams, MixedPrecision, Sampler, guidance_field, seed_field

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINTS = ROOT / "data" / "checkpoints"
VIDEO_CHECKPOINT = str(CHECKPOINTS / "video-moving-digits")
VIDEO_CLASSIFIER_CHECKPOINT = str(CHECKPOINTS / "video-classifier")
DIGIT_CLASSIFIER_CHECKPOINT = str(CHECKPOINTS / "digit-classifier")
VideoPresetName = Literal["tiny", "tiny-pixel", "tiny-staged", "small", "small-pixel", "base"]
MAX_FRAMES = 1024


class VideoSamplingParams(FlowParams):
    """The sampling keywords of the generator contract, shared by the video commands."""

    sampler: Sampler = "dpmsolver++"
    num_inference_steps: int = Field(25, ge=1, le=1000, description="sampler steps")
    guidance_scale: float = guidance_field(4.0)
    seed: int = seed_field()


class TrainVideoParams(FlowParams):
    """``train video``: autoencoder (latent presets) -> denoiser (reused by fingerprint, or resumed) -> publish."""

    preset: VideoPresetName = Field("tiny", description="tiny (tests), small (shipped, CPU), small-pixel, base (GPU)")
    max_steps: int | None = Field(None, ge=1, le=1_000_000, description="override the preset's denoiser steps")
    seed: int = seed_field()
    mixed_precision: MixedPrecision = "no"
    checkpoint_every: int | None = Field(None, ge=1, le=1_000_000, description="steps between resumable checkpoints")
    device: str | None = Field(None, pattern=DEVICE_PATTERN, description="cpu forces the CPU; empty: GPU if any")
    autoencoder: str | None = Field(None, description="reuse this autoencoder folder instead of training one")
    cache_root: str = Field("outputs/checkpoints/cache", description="where fingerprinted training folders live")
    publish_dir: str = Field("outputs/checkpoints/video-moving-digits", description="where the finished checkpoint goes")
    eval_prompts: int = Field(0, ge=0, le=1000, description="held-out prompts for the evaluation step (0 skips it)")
    eval_steps: int = Field(25, ge=1, le=1000)
    video_classifier: str = Field(VIDEO_CLASSIFIER_CHECKPOINT, description="FVD-style feature network for evaluation")
    output_root: str = Field("outputs", description="run folders are created here")


class GenerateVideoParams(VideoSamplingParams):
    """``generate video``: one clip from a prompt (and optionally a first frame) -> MP4, GIF or PNG folder."""

    prompt: str = Field("", max_length=300, description="e.g. 'the digit 3 moves to the right' (empty: unconditional)")
    image: str | None = Field(None, description="first frame (PNG) for image-to-video")
    labels: int | None = Field(None, ge=0, le=9, description="digit class condition")
    motion: float | None = Field(None, ge=0.0, le=4.0, allow_inf_nan=False, description="pixels per frame")
    frames: int = Field(16, ge=1, le=MAX_FRAMES, description="clip length; longer than the model's window extends it")
    interpolate: bool = Field(False, description="2x frame interpolation of the generated clip")
    checkpoint: str = Field(VIDEO_CHECKPOINT, description="video checkpoint folder")
    device: str = Field("cpu", pattern=DEVICE_PATTERN, description="cpu, cuda or cuda:N")
    output_root: str = Field("outputs", description="run folders are created here")

    @field_validator("image")
    @classmethod
    def _image_exists(cls, v: str | None) -> str | None:
        if v and not Path(v).is_file():
            raise ValueError(f"image file not found: {v}; pass a PNG first frame")
        return v or None


class EvaluateVideoParams(VideoSamplingParams):
    """``evaluate video``: digit, motion, identity, FVD-style, image-to-video and long-clip metrics."""

    checkpoint: str = Field(VIDEO_CHECKPOINT, description="video checkpoint folder")
    num_prompts: int = Field(100, ge=1, le=10_000, description="held-out one-digit prompts")
    num_i2v: int = Field(20, ge=0, le=10_000, description="image-to-video clips from held-out first frames")
    num_long: int = Field(10, ge=0, le=1000, description="long clips")
    long_frames: int = Field(64, ge=2, le=MAX_FRAMES)
    batch_size: int = Field(16, ge=1, le=64)
    digit_classifier: str = Field(DIGIT_CLASSIFIER_CHECKPOINT)
    video_classifier: str = Field(VIDEO_CLASSIFIER_CHECKPOINT)
    write_metrics: bool = Field(False, description="write metrics.json into the checkpoint folder")
    output_root: str = Field("outputs")


class TrainVideoClassifierParams(FlowParams):
    """``train video-classifier``: the FVD-style feature network, on clips of a preset."""

    preset: VideoPresetName = Field("small", description="whose clips it learns (tiny for tests)")
    max_steps: int | None = Field(None, ge=1, le=1_000_000)
    seed: int = seed_field()


class VideoSection(FlowParams):
    """The video family's section of the composed flow: text-to-video from the brief's video prompt, image-to-video."""

    checkpoint: str = Field(VIDEO_CHECKPOINT)
    prompt: str = Field("", max_length=300, description="overrides the brief's video_prompt when set")
    frames: int = Field(16, ge=1, le=MAX_FRAMES)
    num_inference_steps: int = Field(25, ge=1, le=1000)
    guidance_scale: float = guidance_field(4.0)
    image_to_video: bool = Field(True, description="add an image-to-video row from a held-out digit")

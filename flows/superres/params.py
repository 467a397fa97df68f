"""Parameters of the super-resolution family's commands and flows (the CLI's options and the dashboard's forms)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from ..params import DEVICE_PATTERN, FlowParams, MixedPrecision, Sampler, guidance_field, seed_field

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINTS = ROOT / "data" / "checkpoints"
SR_CHECKPOINT = str(CHECKPOINTS / "sr-x4")
CASCADE_CHECKPOINT = str(CHECKPOINTS / "cascade")
CASCADE_CLASSIFIER_CHECKPOINT = str(CHECKPOINTS / "cascade-classifier")
Degradation = Literal["bicubic", "area"]
CascadePreset = Literal["tiny", "small"]
SRPresetName = Literal["tiny", "tiny-tuned", "tiny-hybrid", "tiny-hybrid-continue", "small", "small-tuned",
                       "small-hybrid", "small-hybrid-continue", "small-hybrid-refit", "base"]
MAX_INPUTS = 256


def _files_exist(paths: list[str], what: str) -> list[str]:
    missing = [p for p in paths if not Path(p).is_file()]
    if missing:
        raise ValueError(f"{what} not found: {missing[:5]}; pass existing image files")
    return paths


class SRSampling(FlowParams):
    """The sampling keywords of the generator contract."""

    sampler: Sampler = "dpmsolver++"
    num_inference_steps: int = Field(20, ge=1, le=1000, description="sampler steps")
    seed: int = seed_field()


class UpscaleParams(SRSampling):
    """``mmdiff upscale photo.png --scale 4 --out photo_x4.png``: super-resolution of the user's images."""

    image: list[str] = Field(..., min_length=1, max_length=MAX_INPUTS, description="image files (PNG, JPEG, TIFF, ...)")
    scale: int | None = Field(None, ge=2, le=16, description="upscaling factor; must be one the checkpoint supports")
    degradation: Degradation = Field("bicubic", description="how the input was downscaled; the output is held to it")
    num_samples: int = Field(1, ge=1, le=64, description="samples per input")
    antithetic: bool = Field(False, description="draw an input's samples in pairs of mirror-image paths (opposite "
                             "noise at the start and every step): their mean estimates the posterior mean with "
                             "less variance")
    self_ensemble: bool = Field(True, description="hybrid checkpoints: average the regression estimate over the 8 "
                                "flips and quarter turns of the input")
    tile_size: int = Field(512, ge=16, le=4096, description="high-res tile side (large images are tiled)")
    tile_overlap: int = Field(64, ge=0, le=1024, description="high-res pixels blended between tiles")
    checkpoint: str = Field(SR_CHECKPOINT, description="super-resolution checkpoint folder")
    device: str = Field("cpu", pattern=DEVICE_PATTERN, description="cpu, cuda or cuda:N")
    output_root: str = Field("outputs", description="run folders are created here")

    _exist = field_validator("image")(classmethod(lambda cls, v: _files_exist(v, "image file")))


class TrainSuperresParams(FlowParams):
    """``train superres``: fingerprint -> training (reused, or resumed) -> optional evaluation -> publish."""

    preset: SRPresetName = Field("tiny", description="tiny (tests), small (from scratch, CPU), small-tuned (small "
                                 "fine-tuned), small-hybrid (small-tuned plus a regression network it diffuses "
                                 "around), small-hybrid-continue (small-hybrid trained on, from --init-checkpoint), "
                                 "small-hybrid-refit (the shipped sr-x4: the same regressor training, the diffusion "
                                 "network only re-fitted), base (GPU)")
    init_checkpoint: str | None = Field(None, description="the published folder small-hybrid-continue or -refit starts from "
                                        "(e.g. data/checkpoints/sr-x4); empty for the other presets")
    max_steps: int | None = Field(None, ge=1, le=1_000_000, description="override the preset's number of steps")
    seed: int = seed_field()
    mixed_precision: MixedPrecision = "no"
    checkpoint_every: int | None = Field(None, ge=1, le=1_000_000, description="steps between resumable checkpoints")
    device: str | None = Field(None, pattern=DEVICE_PATTERN, description="cpu forces the CPU; empty: GPU if any")
    cache_root: str = Field("outputs/checkpoints/cache", description="where fingerprinted training folders live")
    publish_dir: str = Field("outputs/checkpoints/sr-x4", description="where the finished checkpoint is published")
    eval_samples: int = Field(0, ge=0, le=64, description="samples per held-out photo for the evaluation (0 skips)")
    eval_crop: int = Field(128, ge=8, le=512, description="held-out crop side for the evaluation")
    eval_steps: int = Field(20, ge=1, le=1000)
    output_root: str = Field("outputs", description="run folders are created here")


class EvaluateSuperresParams(SRSampling):
    """``evaluate superres``: PSNR / SSIM (single, mean of samples, bicubic), HF energy and consistency."""

    checkpoint: str = Field(SR_CHECKPOINT, description="super-resolution checkpoint folder")
    sampler: Sampler = Field("sde-vp", description="the README's bars are measured with sde-vp, 25 steps")
    num_inference_steps: int = Field(25, ge=1, le=1000, description="sampler steps")
    crop: int = Field(256, ge=8, le=512, description="high-res centre crop of each held-out photo")
    num_samples: int = Field(8, ge=1, le=64, description="samples per input (their mean is the posterior-mean estimate)")
    antithetic: bool = Field(True, description="draw the samples in antithetic pairs of paths; the mean of "
                             "as many iid samples is reported beside")
    self_ensemble: bool = Field(True, description="hybrid checkpoints: average the regression estimate over the 8 "
                                "flips and quarter turns of the input")
    write_metrics: bool = Field(False, description="write metrics.json into the checkpoint folder")
    device: str = Field("cpu", pattern=DEVICE_PATTERN)
    output_root: str = Field("outputs")


class GenerateCascadeParams(SRSampling):
    """``generate cascade --prompt gravel --num 4``: every stage of the cascade, as PNGs and a contact sheet."""

    prompt: list[str] = Field(..., min_length=1, max_length=64, description="prompts the cascade knows, e.g. gravel")
    num: int = Field(4, ge=1, le=256, description="images per prompt")
    guidance_scale: float = guidance_field(3.0)
    stage_guidance_scale: float = guidance_field(1.0)
    checkpoint: str = Field(CASCADE_CHECKPOINT, description="cascade folder (cascade.json + stage folders)")
    device: str = Field("cpu", pattern=DEVICE_PATTERN)
    output_root: str = Field("outputs")


class TrainCascadeParams(FlowParams):
    """``train cascade``: the base generator and every stage (each resumable), published with cascade.json."""

    preset: CascadePreset = Field("tiny", description="tiny (tests) or small (the shipped cascade, CPU)")
    max_steps: int | None = Field(None, ge=1, le=1_000_000, description="override every part's number of steps")
    seed: int = seed_field()
    mixed_precision: MixedPrecision = "no"
    checkpoint_every: int | None = Field(None, ge=1, le=1_000_000)
    device: str | None = Field(None, pattern=DEVICE_PATTERN)
    out_dir: str = Field("outputs/checkpoints/cascade", description="cascade folder (resumes part by part)")
    output_root: str = Field("outputs")


class EvaluateCascadeParams(SRSampling):
    """``evaluate cascade``: per-stage Frechet distance against real crops at that resolution."""

    checkpoint: str = Field(CASCADE_CHECKPOINT)
    classifier: str = Field(CASCADE_CLASSIFIER_CHECKPOINT, description="crop classifier folder (its features)")
    preset: CascadePreset = Field("small", description="the preset whose views the real crops are cut at")
    per_prompt: int = Field(25, ge=2, le=1000)
    guidance_scale: float = guidance_field(3.0)
    sample_prompt: str = Field("gravel", min_length=1, max_length=100, description="the report's sample row")
    write_metrics: bool = Field(False, description="write metrics.json into the cascade folder")
    device: str = Field("cpu", pattern=DEVICE_PATTERN)
    output_root: str = Field("outputs")


class TrainCascadeClassifierParams(FlowParams):
    """``train cascade-classifier``: the crop classifier whose features score the cascade."""

    preset: CascadePreset = Field("small")
    seed: int = seed_field()


class SuperresSection(FlowParams):
    """The family's section of the composed flow: x4 upscaling of earlier steps' previews, and a cascade row."""

    checkpoint: str = Field(SR_CHECKPOINT)
    images: list[str] = Field(default_factory=list, max_length=32,
                              description="images to upscale when no earlier step rendered previews")
    max_images: int = Field(6, ge=1, le=32, description="previews upscaled at most")
    held_out_photos: int = Field(2, ge=0, le=3, description="with no previews and no images: upscale centre "
                                 "crops of this many held-out photos (never trained on)")
    max_input_side: int = Field(96, ge=8, le=1024, description="larger inputs are area-downscaled to this first")
    num_inference_steps: int = Field(20, ge=1, le=1000)
    degradation: Degradation = "bicubic"
    cascade_checkpoint: str = Field(CASCADE_CHECKPOINT, description="cascade row ('' skips it)")
    cascade_prompt: str = Field("gravel", min_length=1, max_length=100)

    _exist = field_validator("images")(classmethod(lambda cls, v: _files_exist(v, "image file")))

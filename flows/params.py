"""Typed flow parameters: pydantic models with bounds and Literal choices.

Prefect turns each model into the JSON schema of its deployment, so the dashboard renders a form
with dropdowns for the Literal fields and the server rejects out-of-bounds values before a run
starts. The same models validate parameters given from Python or from a JSON file.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

ROOT = Path(__file__).resolve().parents[1]
IMAGE_CHECKPOINT = str(ROOT / "data" / "checkpoints" / "image-digits")
CLASSIFIER_CHECKPOINT = str(ROOT / "data" / "checkpoints" / "digit-classifier")
TEXT2IMG_CHECKPOINT = str(ROOT / "data" / "checkpoints" / "image-text2img")
CONTROLNET_CHECKPOINT = str(ROOT / "data" / "checkpoints" / "image-controlnet-edges")

# Literal copies of generators.core.sampling.SAMPLERS (a Literal must be static for the schema);
# tests/flows/test_params.py fails if the two ever disagree.
Sampler = Literal[
    "ddpm", "ddim", "dpmsolver++", "unipc", "euler", "heun", "sde-vp", "sde-ve",
    "pc-vp", "pc-ve", "pf-ode", "pf-ode-ve", "annealed-langevin",
]
Preset = Literal["tiny", "small", "base"]
MixedPrecision = Literal["no", "bf16", "fp16"]
TaskRunnerName = Literal["local", "ray"]
DEVICE_PATTERN = r"^(cpu|cuda(:[0-9]+)?)$"


class FlowParams(BaseModel):
    """Base: unknown fields are errors (a typo in a parameter file must not pass silently)."""

    model_config = ConfigDict(extra="forbid")


class TrainImageParams(FlowParams):
    """Parameters of ``train_image``: data -> training (resumable) -> evaluation -> publish."""

    preset: Preset = Field("tiny", description="model size: tiny (tests), small (CPU demo), base (GPU)")
    max_steps: int | None = Field(None, ge=1, le=1_000_000, description="override the preset's number of steps")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    mixed_precision: MixedPrecision = "no"
    checkpoint_every: int | None = Field(None, ge=1, le=1_000_000, description="steps between resumable checkpoints")
    num_processes: int = Field(1, ge=1, le=64, description="processes for `accelerate launch` (DDP); 1 = in-process")
    cache_root: str = Field("outputs/checkpoints/cache", description="where fingerprinted training folders live")
    publish_dir: str = Field("outputs/checkpoints/image-digits", description="where the finished checkpoint is published")
    eval_per_class: int = Field(10, ge=0, le=1000, description="digits per label for the evaluation step (0 skips it)")
    eval_steps: int = Field(25, ge=1, le=1000)
    cas_epochs: int = Field(5, ge=1, le=100)
    output_root: str = Field("outputs", description="run folders are created here")


class GenerateImageParams(FlowParams):
    """Parameters of ``generate_image``: load -> generate a batch (sharded) -> write PNGs -> report."""

    labels: list[int] = Field(default_factory=lambda: list(range(10)), min_length=1, max_length=4096,
                              description="digits 0..9, one image each")
    sampler: Sampler = "dpmsolver++"
    num_inference_steps: int = Field(25, ge=1, le=1000)
    guidance_scale: float = Field(3.0, ge=0.0, le=20.0, description="classifier-free guidance (0 = unconditional)")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    shard_size: int = Field(16, ge=1, le=4096, description="images per shard; each shard has its own derived seed")
    task_runner: TaskRunnerName = Field("local", description="local threads, or Ray (prefect-ray) for shards")
    device: str = Field("cpu", pattern=DEVICE_PATTERN, description="cpu, cuda or cuda:N")
    checkpoint: str = Field(IMAGE_CHECKPOINT, description="generator checkpoint folder")
    output_root: str = Field("outputs", description="run folders are created here")

    @field_validator("labels")
    @classmethod
    def _digits(cls, labels: list[int]) -> list[int]:
        bad = [v for v in labels if not 0 <= v <= 9]
        if bad:
            raise ValueError(f"labels must be digits 0..9; got out-of-range {bad}")
        return labels


class EvaluateImageParams(FlowParams):
    """Parameters of ``evaluate_image``: accuracy, Frechet distance and CAS against held-out digits."""

    checkpoint: str = Field(IMAGE_CHECKPOINT, description="generator checkpoint folder")
    per_class: int = Field(100, ge=1, le=1000, description="generated digits per label")
    sampler: Sampler = "dpmsolver++"
    num_inference_steps: int = Field(25, ge=1, le=1000)
    guidance_scale: float = Field(3.0, ge=0.0, le=20.0)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    cas_epochs: int = Field(15, ge=1, le=100)
    classifier: str = Field(CLASSIFIER_CHECKPOINT, description="digit classifier checkpoint folder")
    device: str = Field("cpu", pattern=DEVICE_PATTERN)
    output_root: str = Field("outputs")


class Room(FlowParams):
    """One bubble of the brief: a room with its type, rough area and a prompt for its 3D object."""

    name: str = Field(..., min_length=1, max_length=64)
    room_type: Literal["living", "kitchen", "bedroom", "bathroom", "hall", "office", "storage"] = "living"
    area_m2: float = Field(12.0, gt=0, le=500)
    object_prompt: str = Field("", max_length=200, description="prompt for the room's 3D object")


class Brief(FlowParams):
    """The composed flow's input: a bubble graph (rooms and adjacencies) and a style prompt."""

    rooms: list[Room] = Field(..., min_length=1, max_length=32)
    adjacency: list[tuple[str, str]] = Field(default_factory=list, description="pairs of room names that touch")
    style_prompt: str = Field("", max_length=300)

    @field_validator("adjacency")
    @classmethod
    def _edges_name_rooms(cls, edges: list[tuple[str, str]], info) -> list[tuple[str, str]]:
        names = {r.name for r in info.data.get("rooms", [])}
        bad = [e for e in edges if e[0] not in names or e[1] not in names]
        if bad:
            raise ValueError(f"adjacency names rooms that are not in rooms: {bad}")
        return edges


class ComposedParams(FlowParams):
    """Parameters of ``composed``: one brief -> every landed family's step -> one run folder, one report."""

    brief: Brief = Field(default_factory=lambda: Brief(
        rooms=[Room(name="living", room_type="living", area_m2=24, object_prompt="a sofa"),
               Room(name="kitchen", room_type="kitchen", area_m2=10, object_prompt="a table"),
               Room(name="bed", room_type="bedroom", area_m2=14, object_prompt="a bed")],
        adjacency=[("living", "kitchen"), ("living", "bed")],
        style_prompt="scandinavian, light wood",
    ))
    image_checkpoint: str = Field(IMAGE_CHECKPOINT)
    image_gallery: Literal["full", "quick"] = Field(
        "full", description="full: samplers, SDEdit, inpainting, denoising, prompt -> image, edge map -> image; "
                            "quick: one row of samples")
    text2img_checkpoint: str = Field(TEXT2IMG_CHECKPOINT, description="prompt -> image row ('' skips it)")
    controlnet_checkpoint: str = Field(CONTROLNET_CHECKPOINT, description="edge map -> image row ('' skips it)")
    labels: list[int] = Field(default_factory=lambda: list(range(10)), min_length=1, max_length=256)
    sampler: Sampler = "dpmsolver++"
    num_inference_steps: int = Field(25, ge=1, le=1000)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    output_root: str = Field("outputs")


P = TypeVar("P", bound=FlowParams)


def load_params(path: str | Path, model: type[P]) -> P:
    """Read a JSON parameter file and validate it; errors name the file and the field."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"parameter file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"parameter file {path} is not valid JSON ({exc})") from None
    try:
        return model.model_validate(raw)
    except ValueError as exc:
        raise ValueError(f"parameter file {path}: {exc}") from None

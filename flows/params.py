"""Typed flow parameters shared by every family: the base model, the common field types, the brief.

Prefect turns each model into the JSON schema of its deployment, so the dashboard renders a form
with dropdowns for the Literal fields and the server rejects out-of-bounds values before a run
starts. The same models validate parameters given from Python or from a JSON file.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from generators.core.validation import MAX_GUIDANCE_SCALE, MAX_SEED

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


def seed_field(default: int = 0):
    """The seed field every family's parameters share (the bounds of ``generators.core.validation``)."""
    return Field(default, ge=0, le=MAX_SEED, description="makes the run reproducible")


def guidance_field(default: float):
    """Classifier-free guidance scale: finite, 0 (unconditional) .. MAX_GUIDANCE_SCALE."""
    return Field(default, ge=0.0, le=MAX_GUIDANCE_SCALE, allow_inf_nan=False,
                 description="classifier-free guidance scale (0 = unconditional, 1 = no guidance)")


class FlowParams(BaseModel):
    """Base: unknown fields are errors (a typo in a parameter file must not pass silently)."""

    model_config = ConfigDict(extra="forbid")


class Room(FlowParams):
    """One bubble of the brief: a room with its type, rough area and a prompt for its 3D object."""

    name: str = Field(..., min_length=1, max_length=64)
    room_type: Literal["living_room", "kitchen", "bedroom", "bathroom", "balcony", "dining_room", "study_room",
                       "storage", "corridor", "entrance"] = "living_room"
    area_m2: float = Field(12.0, gt=0, le=500)
    object_prompt: str = Field("", max_length=200, description="prompt for the room's 3D object")


class Brief(FlowParams):
    """The composed flow's input: a bubble graph (rooms and adjacencies) and a style prompt."""

    rooms: list[Room] = Field(..., min_length=1, max_length=32)
    adjacency: list[tuple[str, str]] = Field(default_factory=list, description="pairs of room names that touch")
    style_prompt: str = Field("", max_length=300)
    video_prompt: str = Field("", max_length=300, description="prompt of the composed run's short video")

    @field_validator("adjacency")
    @classmethod
    def _edges_name_rooms(cls, edges: list[tuple[str, str]], info) -> list[tuple[str, str]]:
        names = {r.name for r in info.data.get("rooms", [])}
        bad = [e for e in edges if e[0] not in names or e[1] not in names]
        if bad:
            raise ValueError(f"adjacency names rooms that are not in rooms: {bad}")
        return edges


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

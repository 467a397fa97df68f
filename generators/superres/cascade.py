"""A cascade (Cascaded Diffusion Models, Ho et al. 2022; Imagen, Saharia et al. 2022): a base generator
at low resolution followed by diffusion super-resolution stages.

>>> cascade = Cascade.from_pretrained("data/checkpoints/cascade")
>>> out = cascade(prompt="gravel", num_images=4, seed=0)
>>> [s.shape for s in out.stages]        # [(4, 16, 16, 3), (4, 32, 32, 3), (4, 64, 64, 3)]

A cascade folder holds one contract checkpoint folder per stage and a small index::

    cascade/
      cascade.json   {"base": "base", "stages": ["stage1", "stage2"], "degradation": "area"}
      base/          BaseGenerator folder: config.json, diffusion.json, model/ema.safetensors, training.json
      stage1/        SuperResolver folder (x2, 16 -> 32 px)
      stage2/        SuperResolver folder (x2, 32 -> 64 px)
      metrics.json   the per-stage Frechet distances (``evaluate_cascade``)

Each stage folder loads on its own (``SuperResolver.from_pretrained("cascade/stage2")``). Every stage's
output is rounded to uint8 before the next stage sees it, so ``out.stages`` are exactly the images the
stages were conditioned on; each stage projects its output onto the images whose ``degradation``
downsampling is the previous stage's (:mod:`.degradation`), so the stages agree with one another. The
default is area (box) averaging: every low-res image is the box average of some in-range image, so the
agreement is exact even for saturated base images, where antialiased bicubic's can be out of reach.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from evaluation.superres import check_degradation
from generators.core.checkpoint import CheckpointError, atomic_write_json, read_json
from generators.core.sampling import SamplerOptions
from generators.core.validation import check_int

from .base import BaseGenerator
from .generator import SuperResolver
from .inputs import to_uint8
from .output import CascadeOutput

CASCADE_FILE = "cascade.json"
MAX_IMAGES = 256


def write_layout(folder: str | os.PathLike, base: str, stages: Sequence[str], degradation: str = "area") -> Path:
    """Write ``cascade.json``: the subfolders of the base and of each stage, and the stages' degradation."""
    path = Path(folder) / CASCADE_FILE
    atomic_write_json(path, {"base": base, "stages": list(stages), "degradation": check_degradation(degradation)})
    return path


def read_layout(folder: Path) -> dict:
    """Read and check ``cascade.json``; subfolders must be plain names inside ``folder``."""
    layout = read_json(folder / CASCADE_FILE, "cascade index")
    if not isinstance(layout, dict) or not isinstance(layout.get("base"), str) or not isinstance(layout.get("stages"), list):
        raise CheckpointError(f"{folder / CASCADE_FILE} must hold {{'base': str, 'stages': [str, ...], 'degradation': str}}")
    for name in [layout["base"], *layout["stages"]]:
        if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
            raise CheckpointError(f"{folder / CASCADE_FILE}: stage folder {name!r} must be a plain subfolder name")
    try:
        check_degradation(layout.get("degradation", "area"))
    except ValueError as exc:
        raise CheckpointError(f"{folder / CASCADE_FILE}: {exc}") from exc
    return layout


def from_uint8(images: np.ndarray) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> (B, 3, H, W) in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 127.5 - 1


class Cascade:
    """A base generator and super-resolution stages whose sizes chain (base size x scales)."""

    def __init__(self, base: BaseGenerator, stages: Sequence[SuperResolver], degradation: str = "area") -> None:
        self.base, self.stages = base, list(stages)
        self.degradation = check_degradation(degradation)
        if not self.stages:
            raise ValueError("a cascade needs at least one super-resolution stage")
        for k, stage in enumerate(self.stages, start=1):
            if stage.model.config.channels != base.model.config.channels:
                raise ValueError(f"stage {k} has {stage.model.config.channels} channels, the base "
                                 f"{base.model.config.channels}")

    @property
    def resolutions(self) -> list[int]:
        sizes = [self.base.image_size]
        for stage in self.stages:
            sizes.append(sizes[-1] * stage.scale)
        return sizes

    @property
    def prompts(self) -> list[str]:
        return self.base.prompts

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *, device: str | torch.device = "cpu",
                        dtype: torch.dtype = torch.float32, use_ema: bool = True) -> Cascade:
        """Load ``cascade.json`` and the base and stage folders it names."""
        path = Path(path)
        if not path.is_dir():
            raise CheckpointError(f"cascade folder {path} does not exist; train one with train_cascade or pass a folder")
        layout = read_layout(path)
        base = BaseGenerator.from_pretrained(path / layout["base"], device=device, dtype=dtype, use_ema=use_ema)
        stages = [SuperResolver.from_pretrained(path / name, device=device, dtype=dtype, use_ema=use_ema)
                  for name in layout["stages"]]
        return cls(base, stages, layout.get("degradation", "area"))

    def save_pretrained(self, path: str | os.PathLike) -> Path:
        """Write ``base/``, ``stage<k>/`` and ``cascade.json`` under ``path``."""
        path = Path(path)
        self.base.save_pretrained(path / "base")
        names = [f"stage{k}" for k in range(1, len(self.stages) + 1)]
        for stage, name in zip(self.stages, names):
            stage.save_pretrained(path / name)
        write_layout(path, "base", names, self.degradation)
        return path

    @torch.no_grad()
    def __call__(self, prompt: str | Sequence[str], *, num_images: int = 1, num_inference_steps: int = 20,
                 sampler: str = "dpmsolver++", guidance_scale: float = 3.0,
                 guidance_interval: tuple[float, float] | None = None, stage_guidance_scale: float = 1.0,
                 seed: int = 0, options: SamplerOptions = SamplerOptions(),
                 callback: Callable[[int, int, torch.Tensor], None] | None = None,
                 progress: bool = False) -> CascadeOutput:
        """``num_images`` images per prompt, through every stage.

        Args:
            prompt: a prompt or source name the base knows (``cascade.prompts``), or a list of them.
            num_images: images per prompt.
            num_inference_steps / sampler / options: used by every stage.
            guidance_scale / guidance_interval: classifier-free guidance of the base generator.
            stage_guidance_scale: guidance of the super-resolution stages on their low-res condition.
            seed: fixes every stage (stage k uses ``seed + k``).
        """
        check_int("num_images", num_images, 1, MAX_IMAGES)
        labels = [label for label in self.base.labels_for(prompt) for _ in range(num_images)]
        check_int("number of images", len(labels), 1, MAX_IMAGES)
        x = self.base.generate_tensor(labels, num_inference_steps=num_inference_steps, sampler=sampler,
                                      guidance_scale=guidance_scale, guidance_interval=guidance_interval, seed=seed,
                                      options=options, callback=callback, progress=progress)
        stages = [to_uint8(x, None, False)]
        for k, stage in enumerate(self.stages, start=1):
            x = stage.upscale_tensor(from_uint8(stages[-1]), num_inference_steps=num_inference_steps, sampler=sampler,
                                     guidance_scale=stage_guidance_scale, seed=seed + k, degradation=self.degradation,
                                     options=options, callback=callback, progress=progress)
            stages.append(to_uint8(x, None, False))
        return CascadeOutput(list(stages[-1]), stages=stages, prompts=[self.prompts[i] for i in labels])

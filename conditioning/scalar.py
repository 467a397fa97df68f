"""Scalar conditions (frames per second, motion strength) as one-token records with a learned null.

Stable Video Diffusion conditions on the frame rate and a motion-bucket id by embedding each
scalar sinusoidally and adding it to the time embedding (Blattmann et al. 2023, sec. 4.4 and
appendix D, "micro-conditioning"). :class:`ScalarEncoder` does that for one named scalar: the value
is scaled to [0, 1] on the encoder's range, embedded like a diffusion level (sinusoids of 1000 s
and a two-layer MLP), and returned as a :class:`ConditioningRecord` whose single token can also be
attended to; its learned null supports classifier-free guidance (Ho & Salimans 2022).
"""
from __future__ import annotations

from typing import Sequence

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .base import NullConditionMixin
from .image import LevelEmbedding
from .record import ConditioningRecord


class ScalarEncoder(NullConditionMixin, ModelMixin, ConfigMixin):
    """Values (B,) in [min_value, max_value] -> record(tokens (B, 1, D), mask (B, 1), pooled (B, D)).

    Args:
        dim: embedding width D.
        min_value, max_value: the range the encoder accepts (values outside it raise ValueError).
        name: the condition's name, used in error messages (e.g. ``"motion"``, ``"fps"``).
    """

    @register_to_config
    def __init__(self, dim: int = 128, min_value: float = 0.0, max_value: float = 1.0, name: str = "value") -> None:
        super().__init__()
        if not max_value > min_value:
            raise ValueError(f"max_value must exceed min_value, got {min_value}..{max_value}")
        self.embedding = LevelEmbedding(dim)
        self.null_pooled = nn.Parameter(torch.randn(1, dim) * 0.02)

    def check(self, values: float | Sequence[float] | torch.Tensor) -> torch.Tensor:
        """(B,) float32 values, refusing non-finite or out-of-range ones with a ValueError naming the condition."""
        c = self.config
        try:
            v = torch.as_tensor(values, dtype=torch.float32).reshape(-1)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"{c.name} must be a number or a list of numbers in "
                             f"[{c.min_value:g}, {c.max_value:g}]") from exc
        if v.numel() == 0:
            raise ValueError(f"{c.name} must not be empty")
        if not bool(torch.isfinite(v).all()) or bool(((v < c.min_value) | (v > c.max_value)).any()):
            bad = v[~torch.isfinite(v) | (v < c.min_value) | (v > c.max_value)].tolist()[:5]
            raise ValueError(f"{c.name} must be in [{c.min_value:g}, {c.max_value:g}]; got {bad}")
        return v

    def forward(self, values: float | Sequence[float] | torch.Tensor) -> ConditioningRecord:
        c = self.config
        v = self.check(values).to(self.null_pooled.device)
        level = (v - c.min_value) / (c.max_value - c.min_value)
        pooled = self.embedding(level).to(self.null_pooled.dtype)  # (B, D)
        mask = torch.ones(pooled.shape[0], 1, dtype=torch.bool, device=pooled.device)
        return ConditioningRecord(pooled[:, None], mask, pooled)

    def null(self, batch_size: int, device: torch.device | str | None = None) -> ConditioningRecord:
        """The learned null condition ("no value given")."""
        device = device or self.null_pooled.device
        pooled = self.null_pooled.expand(batch_size, -1).to(device)
        return ConditioningRecord(pooled[:, None], torch.ones(batch_size, 1, dtype=torch.bool, device=device), pooled)

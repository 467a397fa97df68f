"""Class-label encoder: an embedding table with a learned null class for classifier-free guidance."""
from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .record import ConditioningRecord


class ClassLabelEncoder(ModelMixin, ConfigMixin):
    """Labels 0..num_classes-1 -> a one-token record; index ``num_classes`` is the null class.

    Classifier-free guidance (Ho & Salimans 2022) trains one network for y and for the
    null condition by replacing labels with the null class with probability p (:meth:`drop`).
    """

    @register_to_config
    def __init__(self, num_classes: int = 10, embedding_dim: int = 128) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.embedding = nn.Embedding(num_classes + 1, embedding_dim)

    @property
    def null_label(self) -> int:
        return int(self.config.num_classes)

    def check_labels(self, labels: torch.Tensor, allow_null: bool = True) -> None:
        """Raise a ValueError naming ``labels`` if any is outside 0..num_classes-1 (or the null index)."""
        hi = self.null_label if allow_null else self.null_label - 1
        if labels.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) > hi):
            bad = labels[(labels < 0) | (labels > hi)].tolist()
            raise ValueError(f"labels must be in 0..{self.null_label - 1}; got {bad}")

    def null(self, batch_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """Null labels for the unconditional branch."""
        return torch.full((batch_size,), self.null_label, dtype=torch.long, device=device)

    def drop(self, labels: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
        """Replace each label by the null class with probability ``p``."""
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"drop probability must be in [0, 1], got {p}")
        keep = torch.rand(labels.shape, generator=generator).to(labels.device) >= p
        return torch.where(keep, labels, torch.full_like(labels, self.null_label))

    def forward(self, labels: torch.Tensor) -> ConditioningRecord:
        pooled = self.embedding(labels.long())  # (B, D)
        tokens = pooled[:, None, :]  # (B, 1, D)
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return ConditioningRecord(tokens, mask, pooled)

"""The one conditioning record every encoder returns and every denoiser network consumes."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ConditioningRecord:
    """Tokens for cross-attention plus a pooled vector (Rombach et al. 2022, sec. 3.3).

    Attributes:
        tokens: (B, L, D) token embeddings.
        mask: (B, L) bool key-padding mask, True where a token is real.
        pooled: (B, D) pooled vector, added to the time embedding or used for adaptive norm.
    """

    tokens: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor

    def __post_init__(self) -> None:
        b, length, d = self.tokens.shape
        if self.mask.shape != (b, length):
            raise ValueError(f"mask must have shape {(b, length)}, got {tuple(self.mask.shape)}")
        if self.pooled.shape[0] != b:
            raise ValueError(f"pooled batch {self.pooled.shape[0]} differs from tokens batch {b}")

    @property
    def batch_size(self) -> int:
        return int(self.tokens.shape[0])

    def pad_to(self, length: int) -> "ConditioningRecord":
        """Right-pad tokens with zeros (mask False) to ``length`` tokens."""
        extra = length - self.tokens.shape[1]
        if extra < 0:
            raise ValueError(f"length {length} is shorter than the record's {self.tokens.shape[1]} tokens")
        if extra == 0:
            return self
        b, _, d = self.tokens.shape
        tokens = torch.cat([self.tokens, self.tokens.new_zeros(b, extra, d)], dim=1)
        mask = torch.cat([self.mask, self.mask.new_zeros(b, extra)], dim=1)
        return ConditioningRecord(tokens, mask, self.pooled)

    def cat(self, other: "ConditioningRecord") -> "ConditioningRecord":
        """Batch two records (e.g. null and conditional branches of classifier-free guidance).

        Records with different token counts are right-padded (mask False) to the longer one.
        """
        length = max(self.tokens.shape[1], other.tokens.shape[1])
        a, b = self.pad_to(length), other.pad_to(length)
        return ConditioningRecord(
            torch.cat([a.tokens, b.tokens]),
            torch.cat([a.mask, b.mask]),
            torch.cat([a.pooled, b.pooled]),
        )

    def where(self, keep: torch.Tensor, other: "ConditioningRecord") -> "ConditioningRecord":
        """Per sample: this record where ``keep`` (B,) is True, else ``other`` (broadcast from batch 1).

        Used by every encoder's ``drop`` to swap in the learned null condition
        (classifier-free guidance training, Ho & Salimans 2022, Algorithm 1).
        """
        if keep.shape != (self.batch_size,):
            raise ValueError(f"keep must have shape ({self.batch_size},), got {tuple(keep.shape)}")
        length = max(self.tokens.shape[1], other.tokens.shape[1])
        a, b = self.pad_to(length), other.pad_to(length)
        k = keep.to(a.tokens.device)
        return ConditioningRecord(
            torch.where(k[:, None, None], a.tokens, b.tokens.to(a.tokens)),
            torch.where(k[:, None], a.mask, b.mask.to(a.mask.device)),
            torch.where(k[:, None], a.pooled, b.pooled.to(a.pooled)),
        )

    def to(self, *args, **kwargs) -> "ConditioningRecord":
        """Move tokens and pooled (``Tensor.to`` arguments); the mask keeps its bool dtype."""
        tokens, pooled = self.tokens.to(*args, **kwargs), self.pooled.to(*args, **kwargs)
        return ConditioningRecord(tokens, self.mask.to(tokens.device), pooled)

    def __getitem__(self, index) -> "ConditioningRecord":
        """Select samples along the batch dim (an int keeps the batch dim)."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        return ConditioningRecord(self.tokens[index], self.mask[index], self.pooled[index])


def drop_mask(batch_size: int, p: float, generator: torch.Generator | None = None,
              device: torch.device | str = "cpu") -> torch.Tensor:
    """(B,) bool, True = keep, each entry dropped independently with probability ``p``."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"drop probability p must be in [0, 1], got {p}")
    return (torch.rand((batch_size,), generator=generator) >= p).to(device)

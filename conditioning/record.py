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

    def cat(self, other: "ConditioningRecord") -> "ConditioningRecord":
        """Batch two records (e.g. null and conditional branches of classifier-free guidance)."""
        return ConditioningRecord(
            torch.cat([self.tokens, other.tokens]),
            torch.cat([self.mask, other.mask]),
            torch.cat([self.pooled, other.pooled]),
        )

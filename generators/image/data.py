"""The handwritten digits scikit-learn ships (1,797 images, 8x8, 16 grey levels), as tensors.

A fixed stratified split keeps a held-out set the generator never sees, for evaluation.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

HELD_OUT_FRACTION = 0.2
SPLIT_SEED = 0


@dataclass(frozen=True)
class DigitsSplit:
    """Images in [-1, 1], (N, 1, S, S) float32, and labels (N,) int64."""

    images: torch.Tensor
    labels: torch.Tensor


def to_unit_range(raw: np.ndarray, size: int) -> torch.Tensor:
    """(N, 64) grey levels 0..16 -> (N, 1, size, size) in [-1, 1], bilinear upsampling."""
    x = torch.from_numpy(raw.astype(np.float32)).view(-1, 1, 8, 8) / 16.0
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return (x * 2 - 1).clamp(-1, 1)


@lru_cache(maxsize=8)
def load_digits_split(split: str = "train", size: int = 16) -> DigitsSplit:
    """The ``train`` (80%) or ``test`` (held-out 20%) split at ``size`` x ``size`` pixels."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if size < 8:
        raise ValueError(f"image size must be >= 8, got {size}")
    digits = load_digits()
    idx_train, idx_test = train_test_split(
        np.arange(len(digits.target)), test_size=HELD_OUT_FRACTION, random_state=SPLIT_SEED, stratify=digits.target
    )
    idx = idx_train if split == "train" else idx_test
    return DigitsSplit(to_unit_range(digits.data[idx], size), torch.from_numpy(digits.target[idx]).long())


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) in [-1, 1] -> uint8 (B, H, W, C)."""
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def from_uint8(images: np.ndarray) -> torch.Tensor:
    """uint8 (B, H, W) or (B, H, W, C) -> (B, C, H, W) float in [-1, 1]."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise ValueError(f"images must have shape (B, H, W) or (B, H, W, C), got {arr.shape}")
    return torch.from_numpy(arr.astype(np.float32)).permute(0, 3, 1, 2) / 127.5 - 1

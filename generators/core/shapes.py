"""Shape helpers: per-sample scalars that broadcast to any trailing shape.

Images (B, C, H, W), video (B, C, T, H, W), point latents (B, N, D) and padded
polygon sets all pass through the same samplers because every per-sample
quantity goes through :func:`append_dims` (the k-diffusion idiom).
"""
from __future__ import annotations

import torch


def append_dims(x: torch.Tensor, target_ndim: int) -> torch.Tensor:
    """Append singleton dims to ``x`` until it has ``target_ndim`` dims."""
    missing = target_ndim - x.ndim
    if missing < 0:
        raise ValueError(f"append_dims: input has {x.ndim} dims, more than target {target_ndim}")
    return x[(...,) + (None,) * missing]


def batch_norm2(x: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 norm over all non-batch dims, shape (B,)."""
    return x.flatten(1).norm(dim=1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over all non-batch dims, counting only entries where ``mask`` is true.

    ``mask`` broadcasts against ``x`` (e.g. (B, N, 1) for padded point/corner sets).
    Returns shape (B,).
    """
    if mask is None:
        return x.flatten(1).mean(dim=1)
    mask = mask.to(x.dtype).expand_as(x)
    return (x * mask).flatten(1).sum(dim=1) / mask.flatten(1).sum(dim=1).clamp_min(1.0)

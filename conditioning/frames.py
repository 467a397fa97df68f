"""Known frames of a clip as a channel-wise condition: image-to-video, extension and interpolation in one.

Masked conditional video diffusion (MCVD, Voleti et al. 2022, sec. 3) trains one network for
prediction, interpolation and unconditional generation by giving it an arbitrary subset of the
clip's frames. Here the subset is a (B, T) mask: the known frames (optionally noise-augmented, as
Stable Video Diffusion does with its conditioning frame, Blattmann et al. 2023, sec. 4.4) are placed at
their time positions, unknown positions are zero, and the mask itself is one more channel; the
result (B, C + 1, T, H, W) is concatenated to the noisy video input. A first frame
(``known[:, 0]``) is image-to-video; the last k frames of a clip placed first is autoregressive
extension; every other frame known is 2x frame interpolation; no frame known is the null condition.
"""
from __future__ import annotations

import torch

from .image import _levels, noise_augment


def check_known(frames: torch.Tensor, known: torch.Tensor) -> None:
    """Raise ValueError naming the argument unless frames is (B, C, T, H, W) float and known (B, T) bool."""
    if not isinstance(frames, torch.Tensor) or frames.ndim != 5 or not frames.is_floating_point():
        got = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
        raise ValueError(f"frames must be a float tensor (B, C, T, H, W), got {got}")
    b, _, t = frames.shape[:3]
    if not isinstance(known, torch.Tensor) or known.shape != (b, t) or known.dtype != torch.bool:
        got = (tuple(known.shape), known.dtype) if isinstance(known, torch.Tensor) else type(known).__name__
        raise ValueError(f"known must be a bool tensor of shape {(b, t)} (True = frame given), got {got}")


def known_frames(frames: torch.Tensor, known: torch.Tensor, aug_level: float | torch.Tensor = 0.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, C + 1, T, H, W): the known frames (noise-augmented at ``aug_level``), zeros elsewhere, and the mask.

    Args:
        frames: (B, C, T, H, W) clip; only the frames where ``known`` is True are read.
        known: (B, T) bool, True where a frame is given.
        aug_level: s in [0, 1] of the noise augmentation z = cos(pi s / 2) x + sin(pi s / 2) eps
            (Ho et al. 2022, sec. 4.3); 0 keeps the frames exact.
        generator: for the augmentation noise.
    """
    check_known(frames, known)
    b, _, t, h, w = frames.shape
    if isinstance(aug_level, torch.Tensor) or aug_level:
        flat = frames.transpose(1, 2).reshape(b, -1, h, w)  # (B, T*C, H, W)
        flat = noise_augment(flat, _levels(aug_level, b, frames.device), generator)
        frames = flat.reshape(b, t, -1, h, w).transpose(1, 2)
    mask = known.to(frames.dtype)[:, None, :, None, None]  # (B, 1, T, 1, 1)
    return torch.cat([frames * mask, mask.expand(b, 1, t, h, w)], dim=1)


def no_known_frames(batch_size: int, channels: int, num_frames: int, height: int, width: int,
                    device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The null condition: (B, C + 1, T, H, W) zeros (no frame given)."""
    return torch.zeros(batch_size, channels + 1, num_frames, height, width, device=device, dtype=dtype)

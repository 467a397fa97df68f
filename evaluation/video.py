"""Video metrics on arrays: per-frame digit accuracy, motion direction, identity, PSNR and an FVD-style distance.

Clips are float tensors (B, T, H, W) in [-1, 1] of light digits on a dark canvas (the moving-digits
format). A digit is located by its ink centroid (image moments, Hu 1962); per-frame classification
crops a window of the digit's size around it and asks the project's digit classifier. The
Frechet distance (Heusel et al. 2017, eq. 6) is taken in the features of :class:`VideoClassifier`,
a small frame CNN with temporal convolutions trained on moving digits, as FVD does with an I3D
network (Unterthiner et al. 2018); the number is therefore not comparable with published FVD values.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from generators.core.checkpoint import load_model

from .metrics import frechet_distance


def _check_clips(videos: torch.Tensor) -> torch.Tensor:
    if not isinstance(videos, torch.Tensor) or videos.ndim != 4 or not videos.is_floating_point():
        got = tuple(videos.shape) if isinstance(videos, torch.Tensor) else type(videos).__name__
        raise ValueError(f"videos must be a float tensor (B, T, H, W) in [-1, 1], got {got}")
    return videos.float()


def ink_centroids(videos: torch.Tensor) -> torch.Tensor:
    """(B, T, 2) ink-weighted (x, y) centroid of each frame; ink = (x + 1) / 2."""
    ink = (_check_clips(videos) + 1).clamp(0, 2) / 2
    _, _, h, w = ink.shape
    mass = ink.sum((-1, -2)).clamp_min(1e-6)
    cx = (ink.sum(-2) * torch.arange(w, dtype=torch.float32)).sum(-1) / mass
    cy = (ink.sum(-1) * torch.arange(h, dtype=torch.float32)).sum(-1) / mass
    return torch.stack([cx, cy], -1)


def digit_crops(videos: torch.Tensor, size: int) -> torch.Tensor:
    """(B, T, 1, size, size) windows centred on each frame's ink centroid (bilinear, border padding)."""
    videos = _check_clips(videos)
    b, t, h, w = videos.shape
    c = ink_centroids(videos)  # (B, T, 2)
    offsets = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    gx = (c[..., 0, None] + offsets) / (w - 1) * 2 - 1  # (B, T, S)
    gy = (c[..., 1, None] + offsets) / (h - 1) * 2 - 1
    grid = torch.stack([gx[..., None, :].expand(b, t, size, size), gy[..., :, None].expand(b, t, size, size)], -1)
    crops = F.grid_sample(videos.reshape(b * t, 1, h, w), grid.reshape(b * t, size, size, 2), mode="bilinear",
                          padding_mode="border", align_corners=True)
    return crops.reshape(b, t, 1, size, size)


@torch.no_grad()
def frame_predictions(classifier: nn.Module, videos: torch.Tensor, crop_size: int, batch_size: int = 1024) -> np.ndarray:
    """(B, T) digit predicted for each frame by ``classifier`` on the crop around the digit."""
    crops = digit_crops(videos, crop_size)
    b, t = crops.shape[:2]
    flat = crops.reshape(b * t, 1, crop_size, crop_size)
    logits = torch.cat([classifier(flat[i:i + batch_size]) for i in range(0, len(flat), batch_size)])
    return logits.argmax(1).reshape(b, t).numpy()


def per_frame_accuracy(predictions: np.ndarray, digits: np.ndarray) -> float:
    """Fraction of frames whose prediction is the clip's digit; predictions (B, T), digits (B,)."""
    predictions, digits = np.asarray(predictions), np.asarray(digits)
    if predictions.ndim != 2 or digits.shape != (predictions.shape[0],):
        raise ValueError(f"predictions must be (B, T) and digits (B,), got {predictions.shape} and {digits.shape}")
    return float((predictions == digits[:, None]).mean())


def identity_consistency(predictions: np.ndarray) -> float:
    """Mean over clips of the fraction of frames predicted as the clip's most frequent digit."""
    predictions = np.asarray(predictions)
    if predictions.ndim != 2:
        raise ValueError(f"predictions must be (B, T), got {predictions.shape}")
    return float(np.mean([np.bincount(row).max() / len(row) for row in predictions]))


def motion_directions(videos: torch.Tensor, directions: np.ndarray, frames: int) -> np.ndarray:
    """(B,) index of the direction in ``directions`` (K, 2) nearest in angle to the centroid's move over ``frames``.

    Clips whose centroid moves less than half a pixel get -1 (no direction).
    """
    c = ink_centroids(videos)
    if not 1 <= frames < c.shape[1]:
        raise ValueError(f"frames must be in 1..{c.shape[1] - 1}, got {frames}")
    move = (c[:, frames] - c[:, 0]).numpy()  # (B, 2)
    dirs = np.asarray(directions, dtype=np.float64)
    dirs = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    best = (move @ dirs.T).argmax(1)
    return np.where(np.linalg.norm(move, axis=1) >= 0.5, best, -1)


def horizontal_spread_change(videos: torch.Tensor, frames: int) -> np.ndarray:
    """(B,) change of the ink's horizontal standard deviation from frame 0 to ``frames`` (> 0: digits apart)."""
    ink = (_check_clips(videos) + 1).clamp(0, 2) / 2
    col = ink.sum(-2)  # (B, T, W)
    x = torch.arange(col.shape[-1], dtype=torch.float32)
    mass = col.sum(-1).clamp_min(1e-6)
    mean = (col * x).sum(-1) / mass
    std = ((col * (x - mean[..., None]) ** 2).sum(-1) / mass).sqrt()
    return (std[:, frames] - std[:, 0]).numpy()


def psnr(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Per-sample PSNR in dB of tensors in [-1, 1] (peak-to-peak 2)."""
    if a.shape != b.shape:
        raise ValueError(f"psnr needs equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    mse = (a.float() - b.float()).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return (10 * torch.log10(4.0 / mse)).numpy()


def _conv(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.GroupNorm(min(8, cout // 2), cout), nn.GELU()]


class VideoClassifier(ModelMixin, ConfigMixin):
    """Clips (B, 1, T, H, W) -> the digits shown (multi-label logits) and the motion class; features feed FD.

    Each frame is read twice by small 2-D CNNs: the whole frame, pooled as a global max (what is drawn)
    and a coarse 4x4 average (where it is), and a ``crop_size`` window centred on the ink centroid (the
    digit's shape, as the per-frame metric reads it). Two temporal convolutions over the frames' vectors
    and a mean over time give the clip's features.
    """

    @register_to_config
    def __init__(self, num_digits: int = 10, num_motions: int = 10, width: int = 16, feature_dim: int = 64,
                 crop_size: int = 12) -> None:
        super().__init__()
        w = width
        self.frame = nn.Sequential(*_conv(1, w), *_conv(w, 2 * w, 2), *_conv(2 * w, 4 * w, 2), *_conv(4 * w, 4 * w))
        self.crop = nn.Sequential(*_conv(1, w), *_conv(w, 2 * w, 2), *_conv(2 * w, 2 * w, 2), nn.AdaptiveAvgPool2d(3),
                                  nn.Flatten())
        self.frame_proj = nn.Sequential(nn.Linear(4 * w * 17 + 2 * w * 9, feature_dim), nn.GELU())
        self.temporal = nn.Sequential(nn.Conv1d(feature_dim, feature_dim, 3, padding=1), nn.GELU(),
                                      nn.Conv1d(feature_dim, feature_dim, 3, padding=1), nn.GELU())
        self.digit_head = nn.Linear(feature_dim, num_digits)
        self.motion_head = nn.Linear(feature_dim, num_motions)

    def features(self, clips: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = clips.shape
        maps = self.frame(clips.transpose(1, 2).reshape(b * t, c, h, w))  # (B*T, 4w, h/4, w/4)
        crops = digit_crops(clips[:, 0], int(self.config.crop_size)).reshape(b * t, 1, *([self.config.crop_size] * 2))
        pooled = torch.cat([F.adaptive_max_pool2d(maps, 1).flatten(1), F.adaptive_avg_pool2d(maps, 4).flatten(1),
                            self.crop(crops)], 1)  # (B*T, 68w + 18w)
        per_frame = self.frame_proj(pooled).reshape(b, t, -1).transpose(1, 2)  # (B, F, T)
        return self.temporal(per_frame).mean(-1)  # (B, F)

    def forward(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(clips)
        return self.digit_head(f), self.motion_head(f)  # (B, num_digits), (B, num_motions)


def load_video_classifier(path: str | Path) -> VideoClassifier:
    """A trained classifier folder (EMA weights where present)."""
    return load_model(path, VideoClassifier)


@torch.no_grad()
def video_features(model: VideoClassifier, videos: torch.Tensor, batch_size: int = 64) -> np.ndarray:
    """(B, feature_dim) features of clips (B, T, H, W) in [-1, 1]."""
    x = _check_clips(videos)[:, None]
    return np.concatenate([model.features(x[i:i + batch_size]).numpy() for i in range(0, len(x), batch_size)])


def video_frechet_distance(model: VideoClassifier, videos_a: torch.Tensor, videos_b: torch.Tensor) -> float:
    """FVD-style Frechet distance between two sets of clips in ``model``'s feature space."""
    return frechet_distance(video_features(model, videos_a), video_features(model, videos_b))

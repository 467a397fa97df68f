"""Image conditioning: a low-resolution image for super-resolution and a first frame for image-to-video.

- :class:`LowResConditioner`: the low-resolution input is upsampled to the target size and
  concatenated to x_t channel-wise (SR3, Saharia et al. 2021, sec. 2.4), after Gaussian
  noise-conditioning augmentation whose level s is given to the network as an embedding
  (Cascaded Diffusion Models, Ho et al. 2022, sec. 4.3).
- :class:`FirstFrameEncoder`: the conditioning frame becomes tokens + a pooled vector for
  cross-attention / the time embedding, and a noise-augmented copy repeated over time is
  concatenated to the video latent channel-wise (Stable Video Diffusion, Blattmann et al. 2023, sec. 4.4).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import get_timestep_embedding
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .base import NullConditionMixin
from .record import ConditioningRecord, drop_mask

UPSAMPLE_MODES = ("bilinear", "bicubic", "nearest")


def _check_image(image: torch.Tensor, channels: int, name: str) -> None:
    if not isinstance(image, torch.Tensor) or image.ndim != 4:
        got = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"{name} must be a float tensor (B, C, H, W), got {got}")
    if image.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channel(s), got {image.shape[1]}")
    if not image.is_floating_point():
        raise ValueError(f"{name} must be floating point in [-1, 1], got dtype {image.dtype}")


def _levels(level: float | torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    s = torch.as_tensor(level, dtype=torch.float32, device=device)
    s = s.expand(batch_size) if s.ndim == 0 else s
    if s.shape != (batch_size,) or bool(((s < 0) | (s > 1)).any()):
        raise ValueError(f"aug_level must be a float or (B,) tensor with values in [0, 1], got {level!r}")
    return s


def noise_augment(image: torch.Tensor, level: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """z = sqrt(abar) x + sqrt(1 - abar) eps with abar = cos^2(pi s / 2) (Ho et al. 2022, sec. 4.3)."""
    abar = torch.cos(level * math.pi / 2).pow(2).view(-1, *([1] * (image.ndim - 1))).to(image)
    noise = torch.randn(image.shape, generator=generator).to(image)
    return abar.sqrt() * image + (1 - abar).sqrt() * noise


class LevelEmbedding(nn.Module):
    """Sinusoidal embedding of s in [0, 1] (scaled to 0..1000) followed by a two-layer MLP."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, level: torch.Tensor) -> torch.Tensor:
        return self.mlp(get_timestep_embedding(level * 1000, self.dim).to(self.mlp[0].weight))  # (B, D)


@dataclass(frozen=True)
class ImageCondition:
    """An image to concatenate to the network input plus a record (its pooled vector holds the level)."""

    image: torch.Tensor
    record: ConditioningRecord

    def cat(self, other: "ImageCondition") -> "ImageCondition":
        return ImageCondition(torch.cat([self.image, other.image]), self.record.cat(other.record))


class LowResConditioner(NullConditionMixin, ModelMixin, ConfigMixin):
    """Low-resolution image (B, C, h, w) -> ImageCondition(upsampled (B, C, H, W), level record).

    Args:
        channels: image channels.
        embedding_dim: width of the noise-level embedding (e.g. the U-Net's time-embedding width).
        max_aug_level: training draws s ~ U[0, max_aug_level].
        sample_aug_level: the level used at sampling time when none is given.
        mode: upsampling interpolation.
        num_degradations: how many kinds of degradation (e.g. bicubic, area downsampling) the input may
            come from; above 0, the kind's index is embedded into the record too, so the network knows
            which operator made its input (the degradation condition of BSRGAN-style blind SR made
            explicit). The embedding starts at zero, so an added kind leaves a trained network unchanged.
    """

    @register_to_config
    def __init__(self, channels: int = 1, embedding_dim: int = 128, max_aug_level: float = 0.5,
                 sample_aug_level: float = 0.1, mode: str = "bicubic", num_degradations: int = 0) -> None:
        super().__init__()
        if isinstance(num_degradations, bool) or not isinstance(num_degradations, int) or num_degradations < 0:
            raise ValueError(f"num_degradations must be an integer >= 0, got {num_degradations!r}")
        if num_degradations:
            self.degradation_embedding = nn.Embedding(num_degradations, embedding_dim)
            nn.init.zeros_(self.degradation_embedding.weight)
        if mode not in UPSAMPLE_MODES:
            raise ValueError(f"mode must be one of {UPSAMPLE_MODES}, got {mode!r}")
        for name, v in (("max_aug_level", max_aug_level), ("sample_aug_level", sample_aug_level)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        self.level_embedding = LevelEmbedding(embedding_dim)
        self.null_pooled = nn.Parameter(torch.randn(1, embedding_dim) * 0.02)

    def upsample(self, low_res: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
        size = (size, size) if isinstance(size, int) else tuple(size)
        if size[0] < low_res.shape[-2] or size[1] < low_res.shape[-1]:
            raise ValueError(f"size {size} is smaller than low_res {tuple(low_res.shape[-2:])}; SR only upsamples")
        align = None if self.config.mode == "nearest" else False
        return F.interpolate(low_res, size=size, mode=self.config.mode, align_corners=align).clamp(-1, 1)

    def forward(self, low_res: torch.Tensor, size: int | tuple[int, int], aug_level: float | torch.Tensor | None = None,
                generator: torch.Generator | None = None, degradation: int | torch.Tensor | None = None) -> ImageCondition:
        """Augment ``low_res`` at level s (random in training, ``sample_aug_level`` otherwise), then upsample.

        ``degradation``: the index (or (B,) indices) of the kind that made ``low_res``; None is kind 0.
        Only for a conditioner built with ``num_degradations`` > 0.
        """
        _check_image(low_res, self.config.channels, "low_res")
        s = self.levels(low_res.shape[0], aug_level, generator, low_res.device)
        image = self.upsample(noise_augment(low_res, s, generator), size)  # (B, C, H, W)
        return ImageCondition(image, self.record(s, degradation))

    def levels(self, batch_size: int, aug_level: float | torch.Tensor | None = None,
               generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
        """The (B,) augmentation levels: ``aug_level`` when given, else random in training and
        ``sample_aug_level`` otherwise."""
        if aug_level is None:
            if self.training:
                aug_level = torch.rand(batch_size, generator=generator) * self.config.max_aug_level
            else:
                aug_level = self.config.sample_aug_level
        return _levels(aug_level, batch_size, torch.device(device))

    def record(self, levels: torch.Tensor, degradation: int | torch.Tensor | None = None) -> ConditioningRecord:
        """The record of (B,) levels and the degradation kind(s): the level embedding plus, for a
        conditioner built with ``num_degradations``, the kind's embedding (None is kind 0)."""
        b = levels.shape[0]
        emb = self.level_embedding(levels)  # (B, D)
        n = self.config.num_degradations
        if degradation is not None and not n:
            raise ValueError("degradation was given, but this conditioner was built with num_degradations=0")
        if n:
            kinds = torch.as_tensor(0 if degradation is None else degradation, dtype=torch.long, device=emb.device)
            kinds = kinds.expand(b) if kinds.ndim == 0 else kinds
            if kinds.shape != (b,) or bool((kinds < 0).any()) or bool((kinds >= n).any()):
                raise ValueError(f"degradation must be an index in [0, {n}) or {b} of them, got {degradation!r}")
            emb = emb + self.degradation_embedding(kinds).to(emb.dtype)
        mask = torch.ones(b, 1, dtype=torch.bool, device=emb.device)
        return ConditioningRecord(emb[:, None], mask, emb)

    def null(self, batch_size: int, device: torch.device | str | None = None) -> ConditioningRecord:
        device = device or self.null_pooled.device
        pooled = self.null_pooled.expand(batch_size, -1).to(device)
        return ConditioningRecord(pooled[:, None], torch.ones(batch_size, 1, dtype=torch.bool, device=device), pooled)

    def null_condition(self, batch_size: int, size: int | tuple[int, int]) -> ImageCondition:
        """Unconditional branch for guidance: a zero image and the learned null embedding."""
        size = (size, size) if isinstance(size, int) else tuple(size)
        image = torch.zeros(batch_size, self.config.channels, *size, device=self.null_pooled.device)
        return ImageCondition(image, self.null(batch_size))

    def drop_condition(self, cond: ImageCondition, p: float, generator: torch.Generator | None = None) -> ImageCondition:
        """Replace each sample's condition (image and embedding) by the null one with probability ``p``."""
        keep = drop_mask(cond.image.shape[0], p, generator, cond.image.device)
        image = torch.where(keep.view(-1, 1, 1, 1), cond.image, torch.zeros_like(cond.image))
        return ImageCondition(image, cond.record.where(keep, self.null(1, cond.image.device)))


class FirstFrameEncoder(NullConditionMixin, ModelMixin, ConfigMixin):
    """First frame (B, C, H, W) -> tokens (B, h*w, D) from a patch CNN, mask, and mean-pooled vector.

    Args:
        channels: frame channels.
        dim: token width.
        patch_size: stride of the patchifying convolution (tokens = (H / p) * (W / p)).
    """

    @register_to_config
    def __init__(self, channels: int = 1, dim: int = 128, patch_size: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, dim // 2, 3, padding=1), nn.SiLU(),
            nn.Conv2d(dim // 2, dim, patch_size, stride=patch_size), nn.SiLU(),
            nn.Conv2d(dim, dim, 1),
        )
        self.null_tokens = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.null_pooled = nn.Parameter(torch.randn(1, dim) * 0.02)

    @staticmethod
    def position_encoding(h: int, w: int, dim: int, device: torch.device) -> torch.Tensor:
        """(h*w, dim) fixed 2-D sinusoidal encoding, half the channels per axis."""
        ys = get_timestep_embedding(torch.arange(h, device=device).float(), dim // 2)
        xs = get_timestep_embedding(torch.arange(w, device=device).float(), dim - dim // 2)
        return torch.cat([ys[:, None].expand(h, w, -1), xs[None].expand(h, w, -1)], -1).reshape(h * w, dim)

    def forward(self, frame: torch.Tensor) -> ConditioningRecord:
        _check_image(frame, self.config.channels, "frame")
        p = self.config.patch_size
        if frame.shape[-1] % p or frame.shape[-2] % p:
            raise ValueError(f"frame height and width must be multiples of patch_size={p}, got {tuple(frame.shape[-2:])}")
        f = self.net(frame.to(self.null_pooled))  # (B, D, h, w)
        b, d, h, w = f.shape
        tokens = f.flatten(2).transpose(1, 2) + self.position_encoding(h, w, d, f.device)  # (B, h*w, D)
        mask = torch.ones(b, h * w, dtype=torch.bool, device=f.device)
        return ConditioningRecord(tokens, mask, tokens.mean(1))

    def concat_frames(self, frame: torch.Tensor, num_frames: int, aug_level: float | torch.Tensor = 0.0,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, C, T, H, W): the noise-augmented frame repeated over T, to concatenate to the video input."""
        _check_image(frame, self.config.channels, "frame")
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        z = noise_augment(frame, _levels(aug_level, frame.shape[0], frame.device), generator)
        return z[:, :, None].expand(-1, -1, num_frames, -1, -1)

    def null(self, batch_size: int, device: torch.device | str | None = None) -> ConditioningRecord:
        device = device or self.null_pooled.device
        tokens = self.null_tokens.expand(batch_size, -1, -1).to(device)
        mask = torch.ones(batch_size, 1, dtype=torch.bool, device=device)
        return ConditioningRecord(tokens, mask, self.null_pooled.expand(batch_size, -1).to(device))


class FrameRecognizer(ModelMixin, ConfigMixin):
    """A frozen image encoder that maps a conditioning frame to a class-label condition.

    Stable Video Diffusion conditions image-to-video on the frozen CLIP image embedding of the given
    frame (Blattmann et al. 2023); this is the same role for a class-conditional model: a small CNN,
    translation invariant (global average pooling), trained apart from the denoiser, reads which class
    the frame shows, so a model whose identity comes from its text or label condition keeps the class of
    a given frame when no prompt comes with it. The last logit is "none of them" (e.g. two objects).

    Args:
        channels: frame channels.
        num_classes: classes (the label condition's); logit ``num_classes`` is "none".
        width: channels of the first convolution (doubled twice).
    """

    @register_to_config
    def __init__(self, channels: int = 1, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(channels, w, 3, padding=1), nn.SiLU(), nn.Conv2d(w, w, 3, padding=1), nn.SiLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.SiLU(), nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.SiLU(),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.SiLU(), nn.Conv2d(4 * w, 4 * w, 3, padding=1), nn.SiLU(),
        )
        self.head = nn.Linear(4 * w, num_classes + 1)

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes + 1) of frames (B, C, H, W) in [-1, 1]."""
        _check_image(frame, self.config.channels, "frame")
        return self.head(self.net(frame.to(self.head.weight)).mean(dim=(2, 3)))

    @torch.no_grad()
    def labels(self, frame: torch.Tensor, min_confidence: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) labels, ``num_classes`` (the null label) where "none" wins or the top probability is
        below ``min_confidence``, and (B,) the top probability."""
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
        prob = self(frame).float().softmax(-1)
        top, label = prob.max(-1)
        none = int(self.config.num_classes)
        return torch.where((label == none) | (top < min_confidence), torch.full_like(label, none), label), top

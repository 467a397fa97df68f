"""The training objective of the video denoiser: batches, cached captions, condition sampling, loss.

- :class:`VideoBatches` is the ``BatchSource``: clips rendered from the step's generator, or, on a
  share of the steps, single frames as one-frame clips (joint image-video training, Ho et al. 2022,
  sec. 3.2).
- :class:`CaptionTable` holds the frozen text encoder's output for every distinct training caption,
  encoded once (Imagen keeps its text encoder frozen, Saharia et al. 2022, sec. 2.1).
- :class:`VideoDiffusionLoss` draws which conditions each clip shows (:class:`~.presets.ConditionMix`,
  the learned nulls for classifier-free guidance, Ho & Salimans 2022, Algorithm 1), which frames are
  known (MCVD masks, Voleti et al. 2022), and takes L_simple (Ho et al. 2020, eq. 14) over the unknown
  frames only, optionally Min-SNR weighted (Hang et al. 2023), in latent space when a
  :class:`~generators.core.latent.LatentSpace` is given (Rombach et al. 2022).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from conditioning import ConditioningRecord
from conditioning.frames import known_frames
from conditioning.text import TextEncoder
from generators.core.latent import LatentSpace
from generators.core.losses import DiffusionLoss

from .data import MovingDigits
from .model import VideoCondition
from .presets import ConditionMix


@dataclass
class CaptionTable:
    """The text encoder's records of every training caption, padded to one length: (U, L, D), (U, L), (U, D)."""

    tokens: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor

    @classmethod
    def build(cls, encoder: TextEncoder, captions: Sequence[str], batch_size: int = 256) -> "CaptionTable":
        with torch.no_grad():
            records = [encoder(list(captions[i:i + batch_size])) for i in range(0, len(captions), batch_size)]
        length = max(r.tokens.shape[1] for r in records)
        records = [r.pad_to(length) for r in records]
        return cls(*(torch.cat([getattr(r, f) for r in records]).detach() for f in ("tokens", "mask", "pooled")))

    def record(self, ids: torch.Tensor) -> ConditioningRecord:
        ids = ids.to(self.tokens.device)
        return ConditioningRecord(self.tokens[ids], self.mask[ids], self.pooled[ids])


class VideoBatches:
    """``batch(generator, n)`` -> (clips (B, 1, T', H, W), caption ids, labels, motion); T' = T, or 1 for frames."""

    def __init__(self, clips: MovingDigits, mix: ConditionMix) -> None:
        self.clips, self.mix = clips, mix

    def batch(self, generator: torch.Generator, batch_size: int) -> tuple[torch.Tensor, ...]:
        frames_step = float(torch.rand((), generator=generator)) < self.mix.image_batch
        n = batch_size * self.mix.image_batch_factor if frames_step else batch_size
        b = self.clips.sample(generator, n)
        x = b.clips
        if frames_step:
            t = torch.randint(x.shape[2], (n,), generator=generator)
            x = x[torch.arange(n), :, t][:, :, None]  # (n, 1, 1, H, W)
        return x, b.caption_ids, b.labels, b.motion


def known_mask(num_frames: int, mode: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
    """(B, T) bool from per-clip modes 0 none, 1 first frame, 2 a prefix of ``prefix`` frames, 3 every other frame."""
    t = torch.arange(num_frames)[None]  # (1, T)
    mode = mode[:, None]
    return ((mode == 1) & (t == 0)) | ((mode == 2) & (t < prefix[:, None])) | ((mode == 3) & (t % 2 == 0))


class VideoDiffusionLoss:
    """``loss(net, clips, caption_ids, labels, motion, generator)`` for :class:`~.model.SpatioTemporalUNet`.

    Args:
        diffusion: the core loss (schedule, prediction type, weighting); its ``cond_dropout`` is unused.
        table: cached caption records, indexed by ``caption_ids``.
        mix: how often each condition is shown.
        latent: the frozen per-frame autoencoder space, or None for pixel space.
    """

    def __init__(self, diffusion: DiffusionLoss, table: CaptionTable, mix: ConditionMix,
                 latent: LatentSpace | None = None) -> None:
        self.diffusion, self.table, self.mix, self.latent = diffusion, table, mix, latent

    def conditions(self, x0: torch.Tensor, caption_ids: torch.Tensor, labels: torch.Tensor, motion: torch.Tensor,
                   num_classes: int, generator: torch.Generator | None) -> tuple[VideoCondition, torch.Tensor]:
        """The drawn condition of each clip and the (B, T) mask of its known frames."""
        b, _, f = x0.shape[:3]
        mix, device = self.mix, x0.device
        u = torch.rand(b, 4, generator=generator)
        cond_on = u[:, 0] >= mix.uncond
        labels = torch.where(cond_on & (labels >= 0) & (u[:, 2] < mix.label), labels, torch.full_like(labels, num_classes))
        motion_keep = cond_on & (u[:, 3] < mix.motion)
        r = torch.rand(b, generator=generator)
        edges = torch.tensor([mix.first_frame, mix.first_frame + mix.prefix, mix.first_frame + mix.prefix + mix.interleave])
        mode = torch.where(r < edges[0], 1, torch.where(r < edges[1], 2, torch.where(r < edges[2], 3, 0)))
        prefix = torch.randint(1, max(2, f // 2 + 1), (b,), generator=generator)
        mode = torch.where(cond_on & (f > 1), mode, torch.zeros_like(mode))
        known = known_mask(f, mode, prefix).to(device)
        # clips with known frames drop their text at known_text_drop: image-to-video without a prompt
        drop = torch.where(mode > 0, mix.text_drop if mix.known_text_drop is None else mix.known_text_drop, mix.text_drop)
        text_keep = cond_on & (u[:, 1] >= drop)
        cond = VideoCondition(self.table.record(caption_ids), text_keep.to(device), labels.to(device),
                              torch.where(motion_keep, motion, torch.zeros_like(motion)).to(device), motion_keep.to(device),
                              known_frames(x0, known))
        return cond, known

    def __call__(self, net: nn.Module, clips: torch.Tensor, caption_ids: torch.Tensor, labels: torch.Tensor,
                 motion: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.latent is not None:  # the network's own frozen autoencoder, on the network's device
            with torch.no_grad():
                clips = self.latent.encode(clips)  # (B, c, T, h, w)
        inner = getattr(net, "module", net)
        cond, known = self.conditions(clips, caption_ids.cpu(), labels.cpu(), motion.cpu().float(),
                                      int(inner.config.num_classes), generator)
        unknown = (~known).to(clips.dtype)[:, None, :, None, None]  # (B, 1, T, 1, 1)
        return self.diffusion(net, clips, cond, mask=unknown, generator=generator)

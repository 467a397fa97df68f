"""Named presets of the video family: clip distribution, autoencoder, denoiser and training budget.

``tiny`` runs in seconds on a CPU (tests); ``small`` is the shipped latent checkpoint, sized for
about two hours on two CPU cores (autoencoder and denoiser together); ``small-pixel`` is the same
family in pixel space with the same clips, batch and CPU budget, for the latent-versus-pixel comparison;
``base`` is for a GPU. ``latent`` is the only switch between the two kinds of model.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from .captions import DIRECTIONS
from .data import ClipSpec


@dataclass(frozen=True)
class AutoencoderPreset:
    """The per-frame ``AutoencoderKL`` (Rombach et al. 2022, sec. 3.1) and its training budget."""

    block_out_channels: tuple[int, ...]
    latent_channels: int
    layers_per_block: int
    norm_num_groups: int
    max_steps: int
    batch_size: int
    learning_rate: float
    kl_weight: float
    checkpoint_every: int

    @property
    def downsample(self) -> int:
        """Spatial factor f: H_latent = H / f."""
        return 2 ** (len(self.block_out_channels) - 1)


@dataclass(frozen=True)
class ConditionMix:
    """How often each condition is shown in training (the rest of the time it is its learned null).

    ``uncond`` nulls everything (the branch classifier-free guidance subtracts, Ho & Salimans 2022);
    otherwise the text is dropped with ``text_drop`` (``known_text_drop`` for clips with known frames,
    so that image-to-video without a prompt is trained as often as it is used), the label (one-digit clips) and motion are given
    with ``label`` / ``motion``, and known frames follow one of the MCVD masks (Voleti et al. 2022): the
    first frame, a prefix of 1..T/2 frames, or every other frame. ``image_batch`` is the share of steps
    that train on single frames as one-frame clips, ``image_batch_factor`` frames per clip of the batch
    size (joint image-video training, Ho et al. 2022, sec. 3.2).
    """

    uncond: float = 0.1
    text_drop: float = 0.1
    label: float = 0.3
    motion: float = 0.5
    first_frame: float = 0.15
    prefix: float = 0.15
    interleave: float = 0.1
    image_batch: float = 0.2
    image_batch_factor: int = 4
    known_text_drop: float | None = None  # None: text_drop

    def __post_init__(self) -> None:
        for name in ("uncond", "text_drop", "label", "motion", "first_frame", "prefix", "interleave", "image_batch"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.known_text_drop is not None and not 0.0 <= self.known_text_drop <= 1.0:
            raise ValueError(f"known_text_drop must be in [0, 1] or None, got {self.known_text_drop}")
        if self.first_frame + self.prefix + self.interleave > 1.0:
            raise ValueError("first_frame + prefix + interleave must be <= 1")
        if self.image_batch_factor < 1:
            raise ValueError(f"image_batch_factor must be >= 1, got {self.image_batch_factor}")


@dataclass(frozen=True)
class RecognizerBudget:
    """Width and training budget of the first-frame recognizer (``conditioning.image.FrameRecognizer``)."""

    width: int = 16
    max_steps: int = 1500
    batch_size: int = 64
    learning_rate: float = 2e-3
    checkpoint_every: int = 250


@dataclass(frozen=True)
class VideoPreset:
    """One named configuration: clips, latent or pixel space, the denoiser's size and its training budget."""

    clip: ClipSpec
    latent: bool
    autoencoder: AutoencoderPreset
    block_out_channels: tuple[int, ...]
    layers_per_block: int
    attention_levels: tuple[int, ...]
    temporal_levels: tuple[int, ...]
    num_heads: int
    norm_num_groups: int
    cond_dim: int
    max_steps: int
    batch_size: int
    learning_rate: float
    checkpoint_every: int
    ema_decay: float = 0.999
    prediction_type: str = "epsilon"
    weighting: str = "min_snr"
    mix: ConditionMix = field(default_factory=ConditionMix)
    max_motion: float = 4.0
    temporal_cross_attention: bool = False
    # SpatioTemporalUNet's first-frame options (tokens + pooled vector; frame 0 concatenated to every frame)
    first_frame_tokens: bool = False
    first_frame_patch: int = 2
    first_frame_concat: bool = False
    init_preset: str | None = None  # train (or reuse) this preset first and start from its weights
    # a frozen first-frame recognizer, trained before the denoiser: image-to-video without a prompt or
    # label takes its label condition from the given frame
    recognizer: bool = False
    recognizer_budget: RecognizerBudget = field(default_factory=RecognizerBudget)

    def __post_init__(self) -> None:
        if self.init_preset is not None and self.init_preset not in PRESETS:
            raise ValueError(f"init_preset must be one of {tuple(PRESETS)}, got {self.init_preset!r}")


_TINY_CLIP = ClipSpec(frame_size=16, num_frames=4, digit_size=8, min_speed=1.0, max_speed=2.0, two_digit_prob=0.0,
                      directions=tuple(DIRECTIONS)[:4], fps=4)
_TINY_AE = AutoencoderPreset((8, 16), 2, 1, 4, max_steps=4, batch_size=4, learning_rate=2e-3, kl_weight=1e-3,
                             checkpoint_every=2)
_SMALL_AE = AutoencoderPreset((32, 64, 64), 4, 1, 8, max_steps=1500, batch_size=32, learning_rate=2e-3,
                              kl_weight=1e-5, checkpoint_every=250)

PRESETS: dict[str, VideoPreset] = {
    # tests: seconds on a CPU (16x16 canvas, 4 frames, 8x8 latents)
    "tiny": VideoPreset(_TINY_CLIP, True, _TINY_AE, (8, 16), 1, (1,), (0, 1), 2, 4, 16,
                        max_steps=4, batch_size=2, learning_rate=2e-3, checkpoint_every=2, ema_decay=0.9,
                        mix=ConditionMix(image_batch_factor=2, known_text_drop=0.5), temporal_cross_attention=True,
                        prediction_type="v_prediction", weighting="none", recognizer=True,
                        recognizer_budget=RecognizerBudget(4, max_steps=4, batch_size=8, checkpoint_every=2)),
    # the shipped CPU checkpoint: 32x32 canvas, 16 frames, 8x8x4 latents. The temporal layers cross-attend
    # to the prompt (motion words reach the layers that order frames) and clips with known frames drop
    # their text half the time (image-to-video without a prompt). 3.2 M parameters: the folder stays ~8 MB.
    # v-prediction with an unweighted loss: the x0 error counts with weight SNR + 1, not min(SNR, 5) as
    # with eps + Min-SNR. The prompt's direction is only informative at high noise (below SNR ~0.3 the
    # motion is already visible in x_t), where eps + Min-SNR weighs x0 errors by SNR (~0.01): models
    # trained that way followed the digit but gave the same clip for "left" and "right" from one noise.
    # Image-to-video without a prompt takes its digit from a frozen first-frame recognizer (see
    # VideoPreset.recognizer).
    "small": VideoPreset(ClipSpec(), True, _SMALL_AE, (48, 96), 1, (1,), (0, 1), 4, 8, 128,
                         max_steps=10000, batch_size=16, learning_rate=5e-4, checkpoint_every=250,
                         prediction_type="v_prediction", weighting="none",
                         temporal_cross_attention=True, mix=ConditionMix(known_text_drop=0.5), recognizer=True),
    # for a GPU: wider, deeper, longer
    "base": VideoPreset(ClipSpec(), True, replace(_SMALL_AE, block_out_channels=(64, 128, 128), max_steps=10000,
                                                  batch_size=128), (128, 256, 256), 2, (1, 2), (0, 1, 2), 8, 32,
                        256, max_steps=50000, batch_size=64, learning_rate=2e-4, checkpoint_every=2500,
                        recognizer=True),
}
# The pixel-space variants: the same clips and batch; one more level brings 32x32 down to 8x8. small-pixel
# gets the CPU budget of the latent model at 3,000 denoiser steps (autoencoder + denoiser, ~82 CPU-minutes):
# a step costs 8.2 CPU-s against the latent denoiser's 1.5 (measured on one thread), so 600 steps.
PRESETS["tiny-pixel"] = replace(PRESETS["tiny"], latent=False)
PRESETS["small-pixel"] = replace(PRESETS["small"], latent=False, recognizer=False,
                                 block_out_channels=(32, 64, 128), attention_levels=(2,), temporal_levels=(1, 2),
                                 max_steps=600, checkpoint_every=50)
# tests of the two-stage path: tiny, then tiny's weights plus the first-frame encoder
PRESETS["tiny-staged"] = replace(PRESETS["tiny"], first_frame_tokens=True, first_frame_concat=True, init_preset="tiny",
                                 max_steps=2)


def get_preset(name: str) -> VideoPreset:
    """The preset called ``name``; a ValueError lists the known ones."""
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {name!r}")
    return PRESETS[name]

"""Moving digits: scikit-learn's handwritten digits moving on a canvas, bouncing off the walls.

Every clip is rendered from draws of one ``torch.Generator`` (digit samples, directions, speeds,
start positions, caption template), so a batch is a function of that generator alone and a resumed
training run sees the batches it would have seen (``generators/core/training.py``). The digits come
from a fixed stratified split (the same 80 / 20 split as the project's digit classifier), so
evaluation draws its real clips and first frames from digit samples no model has seen.

A clip holds one digit (moving in one of eight compass directions) or, with probability
``two_digit_prob``, two digits moving apart or toward each other horizontally. Start positions are
drawn so that no digit reaches a wall in the first half of the clip: the caption's direction is the
true direction of that half, which is what the motion metric measures.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .captions import DIRECTIONS, RELATIONS, CaptionSet

HELD_OUT_FRACTION = 0.2
SPLIT_SEED = 0
SPLITS = ("train", "test")


@dataclass(frozen=True)
class ClipSpec:
    """What a clip looks like: canvas, length, digit size, motion range and the share of two-digit clips."""

    frame_size: int = 32
    num_frames: int = 16
    digit_size: int = 12
    min_speed: float = 1.0
    max_speed: float = 2.0
    two_digit_prob: float = 0.25
    directions: tuple[str, ...] = tuple(DIRECTIONS)
    fps: int = 8

    def __post_init__(self) -> None:
        if self.digit_size < 4 or self.frame_size < self.digit_size + 4:
            raise ValueError(f"frame_size must exceed digit_size by >= 4 pixels and digit_size >= 4, got "
                             f"frame_size={self.frame_size}, digit_size={self.digit_size}")
        if self.num_frames < 2:
            raise ValueError(f"num_frames must be >= 2, got {self.num_frames}")
        if not 0 < self.min_speed <= self.max_speed:
            raise ValueError(f"speeds must satisfy 0 < min_speed <= max_speed, got {self.min_speed}, {self.max_speed}")
        if self.max_speed * (self.num_frames // 2) > self.room:
            raise ValueError(f"max_speed={self.max_speed} moves a digit {self.max_speed * (self.num_frames // 2):g} px "
                             f"in half a clip, more than the {self.room} px of room; lower max_speed or num_frames")
        if not 0.0 <= self.two_digit_prob <= 1.0:
            raise ValueError(f"two_digit_prob must be in [0, 1], got {self.two_digit_prob}")
        unknown = [d for d in self.directions if d not in DIRECTIONS]
        if unknown or not self.directions:
            raise ValueError(f"directions must be a non-empty subset of {tuple(DIRECTIONS)}, got {unknown}")

    @property
    def room(self) -> int:
        """How far a digit's corner can move along one axis."""
        return self.frame_size - self.digit_size

    @property
    def half(self) -> int:
        """The frames before any bounce: the caption's motion holds from frame 0 to frame ``half``."""
        return self.num_frames // 2


@lru_cache(maxsize=8)
def digit_sprites(split: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Ink in [0, 1] of the ``split`` digits at ``size`` x ``size`` (N, size, size), and their labels (N,).

    The split is scikit-learn's ``train_test_split(test_size=0.2, random_state=0, stratify=labels)``,
    the one the project's digit classifier was trained with.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    digits = load_digits()
    idx_train, idx_test = train_test_split(np.arange(len(digits.target)), test_size=HELD_OUT_FRACTION,
                                           random_state=SPLIT_SEED, stratify=digits.target)
    idx = idx_train if split == "train" else idx_test
    ink = torch.from_numpy(digits.data[idx].astype(np.float32)).view(-1, 1, 8, 8) / 16.0
    ink = F.interpolate(ink, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)[:, 0]
    return ink.contiguous(), torch.from_numpy(digits.target[idx]).long()


def bounce(start: torch.Tensor, velocity: torch.Tensor, frames: int, room: int) -> torch.Tensor:
    """Positions (..., T) of a point reflected off 0 and ``room``: a triangle wave of start + v t."""
    t = torch.arange(frames, dtype=torch.float32)
    free = start[..., None] + velocity[..., None] * t
    return room - (free.remainder(2 * room) - room).abs()


@dataclass(frozen=True)
class ClipBatch:
    """Rendered clips and their ground truth.

    Attributes:
        clips: (B, 1, T, H, W) in [-1, 1].
        caption_ids: (B,) index into the :class:`CaptionSet`'s training captions.
        labels: (B,) the digit of a one-digit clip, -1 for two-digit clips.
        motion: (B,) speed in pixels per frame.
        directions: (B,) index into ``DIRECTIONS`` (one digit) or ``len(DIRECTIONS) + RELATIONS`` index (two).
        digits: (B, 2) the digits shown, -1 where absent.
    """

    clips: torch.Tensor
    caption_ids: torch.Tensor
    labels: torch.Tensor
    motion: torch.Tensor
    directions: torch.Tensor
    digits: torch.Tensor


class MovingDigits:
    """Clip renderer for one split; ``batch(generator, n)`` is deterministic in the generator's state."""

    def __init__(self, spec: ClipSpec, captions: CaptionSet, split: str = "train") -> None:
        self.spec, self.captions, self.split = spec, captions, split
        self.sprites, self.sprite_labels = digit_sprites(split, spec.digit_size)
        self.by_class = [torch.nonzero(self.sprite_labels == k)[:, 0] for k in range(10)]
        self.direction_ids = torch.tensor([list(DIRECTIONS).index(d) for d in spec.directions])

    def _pick_sprite(self, digit: int, g: torch.Generator) -> torch.Tensor:
        pool = self.by_class[digit]
        return self.sprites[pool[int(torch.randint(len(pool), (1,), generator=g))]]

    def _start(self, v: float, g: torch.Generator) -> float:
        """A start coordinate from which velocity ``v`` meets no wall for ``half`` frames."""
        travel = abs(v) * self.spec.half
        lo, hi = (0.0, self.spec.room - travel) if v > 0 else (travel, float(self.spec.room))
        return lo + float(torch.rand((), generator=g)) * (hi - lo)

    def _one_digit(self, g: torch.Generator, speed: float) -> tuple[list, int, int]:
        """(digit, trajectory (2, T)) list, direction index, digit."""
        digit = int(torch.randint(10, (1,), generator=g))
        d = int(self.direction_ids[int(torch.randint(len(self.direction_ids), (1,), generator=g))])
        dx, dy = DIRECTIONS[list(DIRECTIONS)[d]]
        norm = math.hypot(dx, dy)
        vel = torch.tensor([dx, dy]) * speed / norm
        start = torch.tensor([self._start(float(v), g) if v != 0 else float(torch.rand((), generator=g)) * self.spec.room
                              for v in vel])
        path = bounce(start, vel, self.spec.num_frames, self.spec.room)
        return [(self._pick_sprite(digit, g), path)], d, digit

    def _two_digits(self, g: torch.Generator, speed: float) -> tuple[list, int, tuple[int, int], float]:
        """Left and right digits moving apart (relation 0) or toward each other (relation 1).

        Each may cover at most half the room in half a clip, so the speed is capped at room / (2 half).
        """
        a, b = (int(x) for x in torch.randint(10, (2,), generator=g))
        rel = int(torch.randint(len(RELATIONS), (1,), generator=g))
        room = self.spec.room
        speed = min(speed, room / (2 * self.spec.half))
        travel = speed * self.spec.half
        sign = -1.0 if rel == 0 else 1.0  # the left digit's x velocity
        mid = room / 2
        if rel == 0:  # apart: both start near the middle, with room to move out
            xa = travel + float(torch.rand((), generator=g)) * max(0.0, mid - travel)
            xb = mid + float(torch.rand((), generator=g)) * max(0.0, room - travel - mid)
        else:  # toward: both start near their walls
            xa = float(torch.rand((), generator=g)) * max(0.0, mid - travel)
            xb = room - float(torch.rand((), generator=g)) * max(0.0, mid - travel)
        ys = torch.rand(2, generator=g) * room
        items = []
        for digit, x, y, v in ((a, xa, ys[0], sign * speed), (b, xb, ys[1], -sign * speed)):
            path = bounce(torch.tensor([x, float(y)]), torch.tensor([v, 0.0]), self.spec.num_frames, room)
            items.append((self._pick_sprite(digit, g), path))
        return items, len(DIRECTIONS) + rel, (a, b), speed

    def render(self, items: list) -> torch.Tensor:
        """(1, T, H, W) in [-1, 1]: the sprites pasted at their rounded positions, overlaps by maximum ink."""
        spec = self.spec
        ink = torch.zeros(spec.num_frames, spec.frame_size, spec.frame_size)
        s = spec.digit_size
        for sprite, path in items:
            pos = path.round().long().clamp(0, spec.room)  # (2, T): x, y
            for t in range(spec.num_frames):
                x, y = int(pos[0, t]), int(pos[1, t])
                ink[t, y:y + s, x:x + s] = torch.maximum(ink[t, y:y + s, x:x + s], sprite)
        return (ink * 2 - 1)[None]

    def sample(self, generator: torch.Generator, batch_size: int) -> ClipBatch:
        """``batch_size`` clips drawn from ``generator`` only."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        clips, cids, labels, motion, dirs, digits = [], [], [], [], [], []
        spec = self.spec
        for _ in range(batch_size):
            speed = spec.min_speed + float(torch.rand((), generator=generator)) * (spec.max_speed - spec.min_speed)
            if float(torch.rand((), generator=generator)) < spec.two_digit_prob:
                items, d, (a, b), speed = self._two_digits(generator, speed)
                cid = self.captions.pair_id(a, b, d - len(DIRECTIONS), generator)
                labels.append(-1)
                digits.append((a, b))
            else:
                items, d, digit = self._one_digit(generator, speed)
                cid = self.captions.single_id(digit, d, generator)
                labels.append(digit)
                digits.append((digit, -1))
            clips.append(self.render(items))
            cids.append(cid)
            motion.append(speed)
            dirs.append(d)
        return ClipBatch(torch.stack(clips), torch.tensor(cids), torch.tensor(labels), torch.tensor(motion),
                         torch.tensor(dirs), torch.tensor(digits))

    def frames(self, generator: torch.Generator, batch_size: int) -> torch.Tensor:
        """(batch_size, 1, H, W) single frames, one random frame of each of ``batch_size`` clips."""
        clips = self.sample(generator, batch_size).clips  # (B, 1, T, H, W)
        t = torch.randint(self.spec.num_frames, (batch_size,), generator=generator)
        return clips[torch.arange(batch_size), :, t]


def to_uint8(videos: torch.Tensor) -> np.ndarray:
    """(B, C, T, H, W) in [-1, 1] -> uint8 (B, T, H, W, C)."""
    x = ((videos.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 4, 1).cpu().numpy()


def from_uint8(videos: np.ndarray) -> torch.Tensor:
    """uint8 (B, T, H, W) or (B, T, H, W, C) -> (B, C, T, H, W) float in [-1, 1]."""
    arr = np.asarray(videos)
    if arr.ndim == 4:
        arr = arr[..., None]
    if arr.ndim != 5:
        raise ValueError(f"videos must have shape (B, T, H, W) or (B, T, H, W, C), got {arr.shape}")
    return torch.from_numpy(arr.astype(np.float32)).permute(0, 4, 1, 2, 3) / 127.5 - 1

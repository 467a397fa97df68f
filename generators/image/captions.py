"""Captions for the digits, from the label and attributes measured from the pixels.

Three attributes, each measured on the (B, 1, H, W) image in [-1, 1] with ink w = (x + 1) / 2:
- ``thickness``: ink mass over skeleton length (mean stroke width; skeleton by Zhang & Suen 1984,
  scikit-image ``skeletonize``);
- ``slant``: -mu11 / mu02 of the ink distribution, the shear that deskewing removes
  (image moments, Hu 1962), positive when the top leans right;
- ``width``: the ink's horizontal standard deviation sqrt(mu20). The scikit-learn digits are
  scaled to a common height, so width is the size attribute that varies.

Each attribute is binned into tertiles *within its digit class* on the train split (so that
every digit has thin and thick, upright and slanted, narrow and wide examples); the low and
high tertiles name a word and the middle tertile is left unsaid. Captions therefore carry
ground truth that evaluation can re-measure on generated images.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
import torch

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ATTRIBUTES = ("thickness", "slant", "width")
# word for the low / high tertile of each attribute (the middle tertile is not mentioned)
WORDS: dict[str, tuple[str, str]] = {"thickness": ("thin", "thick"), "slant": ("upright", "slanted"), "width": ("narrow", "wide")}
LOW, MID, HIGH = 0, 1, 2

# Phrasings seen in training ...
TRAIN_TEMPLATES = (
    "a {adjs} {word}",
    "{word}, {adjs_and}",
    "a handwritten {word} that is {adjs_and}",
    "the digit {word}, {adjs}",
    "a {adjs} digit {numeral}",
)
# ... and held-out phrasings used only for evaluation (different structure and wording).
EVAL_TEMPLATES = (
    "please draw the number {numeral}; make it {adjs_and}",
    "an image showing a {adjs_and} {word}",
    "write {word} ({numeral}) in a {adjs} hand",
)


def measure_attributes(images: torch.Tensor) -> np.ndarray:
    """(B, 1, H, W) images in [-1, 1] -> (B, 3) float array of thickness, slant, width."""
    from skimage.morphology import skeletonize

    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images must be (B, 1, H, W) in [-1, 1], got {tuple(images.shape)}")
    ink = ((images[:, 0].detach().float().cpu().numpy() + 1) / 2).clip(0, 1)  # (B, H, W)
    _, h, w = ink.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    mass = ink.sum((1, 2)).clip(min=1e-6)
    cx = (ink * xx).sum((1, 2)) / mass
    cy = (ink * yy).sum((1, 2)) / mass
    dx, dy = xx[None] - cx[:, None, None], yy[None] - cy[:, None, None]
    mu20 = (ink * dx**2).sum((1, 2)) / mass
    mu02 = (ink * dy**2).sum((1, 2)) / mass
    mu11 = (ink * dx * dy).sum((1, 2)) / mass
    skeleton = np.array([skeletonize(im > 0.5).sum() for im in ink]).clip(min=1)
    thickness = mass / skeleton
    slant = -mu11 / mu02.clip(min=1e-6)
    return np.stack([thickness, slant, np.sqrt(mu20)], axis=1)


@dataclass(frozen=True)
class AttributeBins:
    """Per-class tertile edges (10, 3 attributes, 2) fitted on the train split."""

    edges: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray, labels: np.ndarray, num_classes: int = 10) -> "AttributeBins":
        edges = np.zeros((num_classes, values.shape[1], 2))
        for k in range(num_classes):
            v = values[labels == k]
            if len(v) < 3:
                raise ValueError(f"class {k} has {len(v)} examples; need >= 3 to fit tertiles")
            edges[k] = np.percentile(v, [100 / 3, 200 / 3], axis=0).T
        return cls(edges)

    def bin(self, values: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """(B, 3) values and (B,) digit labels -> (B, 3) bins in {LOW, MID, HIGH}."""
        e = self.edges[np.asarray(labels)]  # (B, 3, 2)
        return (values > e[..., 0]).astype(int) + (values > e[..., 1]).astype(int)


@lru_cache(maxsize=4)
def train_bins(size: int = 16) -> AttributeBins:
    """Tertile edges from the digits train split at ``size`` pixels."""
    from .data import load_digits_split

    data = load_digits_split("train", size)
    return AttributeBins.fit(measure_attributes(data.images), data.labels.numpy())


def _join(words: list[str], conj: str) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + f" {conj} " + words[-1]


def caption(label: int, bins: Sequence[int], template: str = TRAIN_TEMPLATES[0]) -> str:
    """Caption for a digit label and its (thickness, slant, width) bins, e.g. 'a thick, slanted seven'."""
    if not 0 <= int(label) <= 9:
        raise ValueError(f"label must be a digit 0..9, got {label}")
    words = [WORDS[a][0 if b == LOW else 1] for a, b in zip(ATTRIBUTES, bins) if b != MID]
    fields = {"word": DIGIT_WORDS[int(label)], "numeral": str(int(label)), "adjs": ", ".join(words),
              "adjs_and": _join(words, "and")}
    if not words:  # nothing notable: drop the attribute slot from the template
        fields.update(adjs="", adjs_and="ordinary")
    return " ".join(template.format(**fields).replace(" ,", ",").split()).rstrip(",")


def parse_caption_attributes(text: str) -> dict[str, int]:
    """Attribute bins named in a caption ({} for unnamed attributes); used to score prompts."""
    tokens = set(text.lower().replace(",", " ").replace(";", " ").replace("(", " ").replace(")", " ").split())
    out = {}
    for attr, (lo, hi) in WORDS.items():
        if lo in tokens:
            out[attr] = LOW
        elif hi in tokens:
            out[attr] = HIGH
    return out


def captions_for(labels: torch.Tensor, bins: np.ndarray, templates: Sequence[str] = TRAIN_TEMPLATES) -> list[list[str]]:
    """For each image, one caption per template."""
    return [[caption(int(y), b, t) for t in templates] for y, b in zip(labels.tolist(), bins)]


def eval_prompts(num_prompts: int, seed: int = 0) -> list[tuple[str, int, tuple[int, int, int]]]:
    """Held-out-phrasing prompts with random digits and attribute bins: (prompt, digit, bins)."""
    rng = random.Random(seed)
    out = []
    for i in range(num_prompts):
        digit = i % 10
        bins = tuple(rng.choice((LOW, MID, HIGH)) for _ in ATTRIBUTES)
        if all(b == MID for b in bins):
            bins = (rng.choice((LOW, HIGH)), MID, MID)
        out.append((caption(digit, bins, rng.choice(EVAL_TEMPLATES)), digit, bins))
    return out

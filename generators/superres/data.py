"""Training data from the photographs and textures scikit-image ships, and scikit-learn's two sample photos
(nothing is downloaded).

:data:`SOURCES` names every image used, with a short prompt for the cascade. :data:`HELD_OUT` photos are
never trained on (neither by a super-resolution stage nor by the cascade) and are the only ones the
evaluation uses. Batches are random crops (random position, zoom, flip / rotation, RGB or grey), drawn
only from the generator the training loop passes, so a batch depends on (seed, step) alone and a resumed
run sees the batches it would have seen (``generators.core.training.BatchSource``).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from evaluation.superres import DEGRADATIONS, check_degradation, downsample


@dataclass(frozen=True)
class Source:
    """One image of ``skimage.data``: its loader name and the short prompt that names it in the cascade."""

    name: str
    prompt: str


SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("astronaut", "an astronaut"),
    Source("coffee", "a cup of coffee"),
    Source("camera", "a cameraman"),
    Source("chelsea", "a cat's fur"),
    Source("rocket", "a rocket"),
    Source("motorcycle", "a motorcycle"),
    Source("hubble_deep_field", "galaxies"),
    Source("retina", "a retina"),
    Source("immunohistochemistry", "stained tissue"),
    Source("brick", "brick"),
    Source("grass", "grass"),
    Source("gravel", "gravel"),
    Source("coins", "coins"),
    Source("moon", "the moon's surface"),
    Source("cell", "cells"),
    Source("page", "a printed page"),
    Source("text", "text"),
    Source("clock", "a clock"),
    Source("china", "a temple"),      # sklearn.datasets.load_sample_image("china.jpg")
    Source("flower", "a flower"),     # sklearn.datasets.load_sample_image("flower.jpg")
)}
SKLEARN_PHOTOS: dict[str, str] = {"china": "china.jpg", "flower": "flower.jpg"}
# Never trained on; the evaluation uses only these (RGB portrait, RGB still life, grey photo).
HELD_OUT: tuple[str, ...] = ("astronaut", "coffee", "camera")
# The shipped "small" preset's photos (skimage only); presets may name more (``SRPreset.photos``).
SR_TRAIN: tuple[str, ...] = tuple(n for n in SOURCES if n not in HELD_OUT and n not in SKLEARN_PHOTOS)
# Every photo that may be trained on: the above and scikit-learn's two sample photos.
SR_TRAIN_ALL: tuple[str, ...] = tuple(n for n in SOURCES if n not in HELD_OUT)
# The cascade's vocabulary: textures and photo details that fill a small crop.
CASCADE_TRAIN: tuple[str, ...] = ("brick", "grass", "gravel", "chelsea", "hubble_deep_field",
                                  "immunohistochemistry", "moon", "coins")


def load_photo_uint8(name: str) -> np.ndarray:
    """The named image as stored: uint8 (H, W) grey or (H, W, 3) RGB."""
    import skimage.data

    if name not in SOURCES:
        raise ValueError(f"unknown photo {name!r}; known: {sorted(SOURCES)}")
    if name in SKLEARN_PHOTOS:
        from sklearn.datasets import load_sample_image

        return np.asarray(load_sample_image(SKLEARN_PHOTOS[name]))
    arr = skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage.data, name)()
    return np.asarray(arr)[..., :3] if np.asarray(arr).ndim == 3 else np.asarray(arr)


@lru_cache(maxsize=32)
def load_photo(name: str) -> torch.Tensor:
    """The named ``skimage.data`` image as (3, H, W) float32 in [-1, 1] (grey images repeated to RGB)."""
    arr = load_photo_uint8(name)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    x = torch.from_numpy(np.array(arr, copy=True)).permute(2, 0, 1).float() / 127.5 - 1  # writable copy
    return x.contiguous()


def _check_names(names: tuple[str, ...]) -> tuple[str, ...]:
    names = tuple(names)
    unknown = [n for n in names if n not in SOURCES]
    if not names or unknown:
        raise ValueError(f"names must be a non-empty list of {sorted(SOURCES)}; unknown: {unknown}")
    return names


def grey(x: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) RGB -> luminance (ITU-R BT.601) repeated to 3 channels."""
    w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x * w).sum(-3, keepdim=True).expand_as(x).contiguous()


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Round [-1, 1] values to the 256 levels of a uint8 image."""
    return (((x.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1)


def _uniform(generator: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=generator))


def random_crop(generator: torch.Generator, name: str, size: int, zoom: tuple[float, float],
                rotate: bool) -> torch.Tensor:
    """A (3, size, size) crop covering size * z pixels of the photo, z ~ U[zoom], resized by antialiased bicubic."""
    photo = load_photo(name)
    _, h, w = photo.shape
    region = min(h, w, max(size, round(size * _uniform(generator, *zoom))))
    top = int(torch.randint(0, h - region + 1, (), generator=generator))
    left = int(torch.randint(0, w - region + 1, (), generator=generator))
    crop = photo[:, top:top + region, left:left + region]
    if region != size:
        crop = F.interpolate(crop[None], size=(size, size), mode="bicubic", antialias=True, align_corners=False)[0]
    if bool(torch.rand((), generator=generator) < 0.5):
        crop = crop.flip(-1)
    if rotate:
        crop = torch.rot90(crop, int(torch.randint(0, 4, (), generator=generator)), dims=(-2, -1))
    return quantize(crop)


def random_crops(generator: torch.Generator, batch_size: int, size: int, names: tuple[str, ...],
                 zoom: tuple[float, float] = (1.0, 1.0), grey_prob: float = 0.0,
                 rotate: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` crops (B, 3, size, size) in [-1, 1] and their source indices into ``names`` (B,)."""
    names = _check_names(names)
    if not 1.0 <= zoom[0] <= zoom[1]:
        raise ValueError(f"zoom must be (lo, hi) with 1 <= lo <= hi, got {zoom}")
    labels = torch.randint(0, len(names), (batch_size,), generator=generator)
    crops = []
    for label in labels.tolist():
        crop = random_crop(generator, names[label], size, zoom, rotate)
        if bool(torch.rand((), generator=generator) < grey_prob):
            crop = grey(crop)
        crops.append(crop)
    return torch.stack(crops), labels


class SRPairs:
    """(high-res crops (B, 3, S, S), low-res inputs (B, 3, S / scale, S / scale)) for training a stage.

    Each low-res input is the crop downsampled by bicubic or area averaging (drawn per sample, so one
    model serves both degradations) and rounded to uint8 levels, like a user's image file; the batch
    also says which (a network built with ``num_degradations`` is told).
    """

    def __init__(self, names: tuple[str, ...], size: int, scale: int, zoom: tuple[float, float] = (1.0, 1.0),
                 grey_prob: float = 0.0, degradations: tuple[str, ...] = DEGRADATIONS, rotate: bool = True) -> None:
        if size % scale:
            raise ValueError(f"training size {size} must be a multiple of scale={scale}")
        self.names = _check_names(names)
        self.degradations = tuple(check_degradation(d) for d in degradations)
        self.size, self.scale, self.zoom, self.grey_prob, self.rotate = size, scale, zoom, grey_prob, rotate

    def batch(self, generator: torch.Generator, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(high (B, 3, S, S), low (B, 3, S / scale, S / scale), kinds (B,)): ``kinds`` index ``DEGRADATIONS``."""
        high, _ = random_crops(generator, batch_size, self.size, self.names, self.zoom, self.grey_prob, self.rotate)
        drawn = torch.randint(0, len(self.degradations), (batch_size,), generator=generator).tolist()
        low = torch.cat([downsample(h[None], self.scale, self.degradations[k]) for h, k in zip(high, drawn)])
        kinds = torch.tensor([DEGRADATIONS.index(self.degradations[k]) for k in drawn], dtype=torch.long)
        return high, quantize(low), kinds


class LabelledCrops:
    """(crops (B, 3, S, S), labels (B,)) for the cascade's base generator and the feature classifier."""

    def __init__(self, names: tuple[str, ...], size: int, zoom: tuple[float, float]) -> None:
        self.names = _check_names(names)
        self.size, self.zoom = size, zoom

    def batch(self, generator: torch.Generator, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        return random_crops(generator, batch_size, self.size, self.names, self.zoom)


def residual_std(source: SRPairs, base, num: int = 256, seed: int = 1234, chunk: int = 32) -> float:
    """Std of (high - base(low, size, kinds)) over ``num`` seeded pairs, ``chunk`` at a time: the residual's
    scale (SRDiff, Li et al. 2022). ``base`` is the upsampling, or a hybrid's regression estimate R(y)."""
    high, low, kinds = source.batch(torch.Generator().manual_seed(seed), num)
    size = tuple(high.shape[-2:])
    with torch.no_grad():
        estimate = torch.cat([base(low[i:i + chunk], size, kinds[i:i + chunk]) for i in range(0, num, chunk)])
    return float((high - estimate).std())

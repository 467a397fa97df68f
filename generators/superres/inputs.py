"""A user's image -> the network's tensors, and back: paths, PIL images and arrays; grey, RGBA, 16-bit.

The network sees RGB in [-1, 1]. A grey input is repeated to RGB and its output averaged back to one
channel; an alpha channel is kept aside and upscaled by bicubic interpolation; 16-bit inputs are
scaled from 0..65535. A missing, empty, truncated or non-image file raises a ValueError that names it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

MIN_SIDE = 2


@dataclass(frozen=True)
class InputImage:
    """One converted input: RGB (1, 3, h, w) in [-1, 1], alpha (1, 1, h, w) in [0, 1] or None, grey flag."""

    rgb: torch.Tensor
    alpha: torch.Tensor | None
    grey: bool

    @property
    def size(self) -> tuple[int, int]:
        return int(self.rgb.shape[-2]), int(self.rgb.shape[-1])

    def to_uint8(self) -> np.ndarray:
        """The input as the output format would store it: uint8 (h, w, C)."""
        return to_uint8(self.rgb, self.alpha, self.grey)[0]


def _open_path(path: Path):
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise ValueError(f"image {str(path)!r} does not exist; pass an existing image file")
    if not path.is_file():
        raise ValueError(f"image {str(path)!r} is not a file; pass an image file (PNG, JPEG, TIFF, ...)")
    if path.stat().st_size == 0:
        raise ValueError(f"image file {str(path)!r} is empty")
    try:
        img = Image.open(path)
        img.load()
    except UnidentifiedImageError:
        raise ValueError(f"{str(path)!r} is not an image file that can be read (PNG, JPEG, TIFF, BMP, WebP, ...)") from None
    except Image.DecompressionBombError as exc:
        raise ValueError(f"image {str(path)!r} is too large to open safely ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"image file {str(path)!r} is truncated or corrupted ({exc}); re-export it") from None
    return img


def _pil_to_array(img) -> np.ndarray:
    """A PIL image -> uint8 / uint16 / float array (H, W[, C]) with 1-4 channels."""
    mode = img.mode
    if mode.startswith("I;16"):
        return np.asarray(img).astype(np.uint16)
    if mode == "I":
        arr = np.asarray(img)
        if arr.min() < 0 or arr.max() > 65535:
            raise ValueError(f"32-bit integer image values must be in 0..65535, got {arr.min()}..{arr.max()}")
        return arr.astype(np.uint16)
    if mode == "F":
        return np.asarray(img).astype(np.float32)
    if mode in ("1", "L"):
        return np.asarray(img.convert("L"))
    if mode in ("LA", "La"):
        return np.asarray(img.convert("LA"))
    if mode in ("RGBA", "RGBa", "PA") or (mode == "P" and "transparency" in img.info):
        return np.asarray(img.convert("RGBA"))
    return np.asarray(img.convert("RGB"))


def _array_to_unit(arr: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / bool / float in [0, 1] -> float32 in [0, 1]."""
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    if arr.dtype == np.bool_:
        return arr.astype(np.float32)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
            raise ValueError("a float image must hold finite values in [0, 1]; scale it or pass uint8 / uint16")
        return arr.astype(np.float32)
    raise ValueError(f"image arrays must be uint8, uint16, bool or float in [0, 1]; got dtype {arr.dtype}")


def load_image(image: Any) -> InputImage:
    """Convert a path, a PIL image or an array (H, W), (H, W, 1|2|3|4) into an :class:`InputImage`."""
    from PIL import Image

    if isinstance(image, (str, os.PathLike)):
        image = _open_path(Path(image))
    if isinstance(image, Image.Image):
        arr = _pil_to_array(image)
    elif isinstance(image, np.ndarray):
        arr = image
    else:
        raise ValueError("image must be a file path, a PIL image or a uint8 / uint16 array (H, W[, C]); "
                         f"got {type(image).__name__}")
    if arr.ndim == 3 and arr.shape[-1] in (1, 2, 3, 4):
        channels = arr.shape[-1]
    elif arr.ndim == 2:
        channels, arr = 1, arr[..., None]
    else:
        raise ValueError(f"image array must be (H, W) or (H, W, C) with C in 1..4, got shape {arr.shape}")
    if min(arr.shape[:2]) < MIN_SIDE:
        raise ValueError(f"image must be at least {MIN_SIDE}x{MIN_SIDE} pixels, got {arr.shape[0]}x{arr.shape[1]}")
    unit = torch.from_numpy(np.ascontiguousarray(_array_to_unit(arr))).permute(2, 0, 1)[None]  # (1, C, h, w)
    grey = channels in (1, 2)
    colour = unit[:, :1].expand(-1, 3, -1, -1) if grey else unit[:, :3]
    alpha = unit[:, -1:] if channels in (2, 4) else None
    return InputImage((colour * 2 - 1).contiguous(), alpha, grey)


def upscale_alpha(alpha: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Alpha (B, 1, h, w) in [0, 1] -> (B, 1, H, W) by bicubic interpolation (Keys, a = -0.5), clamped."""
    return F.interpolate(alpha, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)


def to_uint8(rgb: torch.Tensor, alpha: torch.Tensor | None, grey: bool) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] (+ alpha (B | 1, 1, H, W) in [0, 1]) -> uint8 (B, H, W, C), C in 1..4."""
    colour = rgb.float().mean(1, keepdim=True) if grey else rgb.float()
    unit = (colour.clamp(-1, 1) + 1) / 2
    if alpha is not None:
        unit = torch.cat([unit, alpha.float().to(unit.device).expand(len(unit), -1, -1, -1)], dim=1)
    return (unit * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

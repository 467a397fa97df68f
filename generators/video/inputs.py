"""Checks and conversions of user inputs: prompts, labels, motion, first frames and clips.

Every problem raises a ValueError that names the keyword and says what is accepted. Frames of
another size are resized (bilinear, antialiased), colour frames become grey (ITU-R BT.601 luma),
and uint8 values map to [-1, 1].
"""
from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

LUMA = (0.299, 0.587, 0.114)


def as_list(name: str, value: Any) -> list | None:
    """None, a scalar or a sequence -> None or a list (strings and arrays of rank 0 count as scalars)."""
    if value is None:
        return None
    if isinstance(value, (str, int, float, np.integer, np.floating)) or (isinstance(value, (np.ndarray, torch.Tensor))
                                                                         and value.ndim == 0):
        return [value]
    if isinstance(value, (list, tuple, np.ndarray, torch.Tensor)):
        items = list(value)
        if not items:
            raise ValueError(f"{name} must not be an empty list")
        return items
    raise ValueError(f"{name} must be a value or a list of values, got {type(value).__name__}")


def batch_size(**lists: list | None) -> int:
    """The common length of the given lists (length-1 lists broadcast); a ValueError names the mismatch."""
    sizes = {k: len(v) for k, v in lists.items() if v is not None and len(v) != 1}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"conditions have different batch sizes {sizes}; give one value or the same number each")
    return next(iter(sizes.values()), 1)


def broadcast(values: list, size: int) -> list:
    return values * size if len(values) == 1 else values


def check_prompts(prompt: Any, size: int) -> tuple[list[str], list[bool]]:
    """Prompts and whether each is given; empty prompts sample without text (and the log says so)."""
    prompts = as_list("prompt", prompt)
    if prompts is None:
        return [""] * size, [False] * size
    bad = [type(p).__name__ for p in prompts if not isinstance(p, str)]
    if bad:
        raise ValueError(f"prompt must be a string or a list of strings, got {bad[:3]}")
    prompts = broadcast(prompts, size)
    keep = [bool(p.strip()) for p in prompts]
    if not all(keep):
        logger.warning("%d empty prompt(s): those clips are sampled without text (unconditional on text)",
                       keep.count(False))
    return [p if k else "" for p, k in zip(prompts, keep)], keep


def check_labels(labels: Any, size: int, num_classes: int) -> torch.Tensor:
    """(B,) long labels; None -> the null label ``num_classes``."""
    items = as_list("labels", labels)
    if items is None:
        return torch.full((size,), num_classes, dtype=torch.long)
    def is_int(x: Any) -> bool:
        if isinstance(x, torch.Tensor):
            return not x.is_floating_point() and x.dtype != torch.bool
        return isinstance(x, (int, np.integer)) and not isinstance(x, bool)

    bad = [x for x in items if not is_int(x)]
    if bad:
        raise ValueError(f"labels must be integers in 0..{num_classes - 1}, got {bad[:5]}")
    t = torch.tensor([int(x) for x in broadcast(items, size)], dtype=torch.long)
    if bool(((t < 0) | (t >= num_classes)).any()):
        raise ValueError(f"labels must be in 0..{num_classes - 1}; got {t[(t < 0) | (t >= num_classes)].tolist()[:5]}")
    return t


def _grey_unit(frame: np.ndarray, name: str) -> torch.Tensor:
    """One frame (H, W) or (H, W, C), uint8 or float in [0, 1] -> (H, W) float in [0, 1]."""
    arr = np.asarray(frame)
    if arr.ndim == 3 and arr.shape[-1] in (1, 3, 4):
        arr = arr[..., 0] if arr.shape[-1] == 1 else np.tensordot(arr[..., :3].astype(np.float64), LUMA, axes=([-1], [0]))
    if arr.ndim != 2:
        raise ValueError(f"{name} frames must be (H, W) or (H, W, C) with C in 1, 3, 4; got shape {np.asarray(frame).shape}")
    if np.asarray(frame).dtype == np.uint8:
        return torch.from_numpy(np.asarray(arr, dtype=np.float32) / 255.0)
    arr = np.asarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
        raise ValueError(f"{name} must be uint8, or float with values in [0, 1]")
    return torch.from_numpy(arr)


def frames_to_model(frames: Sequence[Any], size: int, name: str) -> torch.Tensor:
    """A list of frames (PIL images or arrays) -> (N, 1, size, size) in [-1, 1], resized and greyed as needed."""
    grey = [_grey_unit(np.asarray(f), name) for f in frames]
    shapes = {tuple(g.shape) for g in grey}
    if len(shapes) > 1:
        raise ValueError(f"{name} frames must all have one size, got {sorted(shapes)}")
    x = torch.stack(grey)[:, None]  # (N, 1, h, w)
    if tuple(x.shape[-2:]) != (size, size):
        logger.info("%s: resizing %s frames to %dx%d", name, tuple(x.shape[-2:]), size, size)
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return (x.clamp(0, 1) * 2 - 1).float()


def check_image(image: Any, size: int) -> torch.Tensor:
    """A first frame, or a list of them -> (B, 1, size, size) in [-1, 1].

    Accepts PIL images, arrays (H, W) / (H, W, C) (uint8, or float in [0, 1]), a list of those, or a float
    tensor (B, C, H, W) already in [-1, 1].
    """
    if isinstance(image, torch.Tensor) and image.ndim == 4 and image.is_floating_point():
        if image.shape[1] not in (1, 3):
            raise ValueError(f"image tensors must be (B, C, H, W) with C in 1, 3; got {tuple(image.shape)}")
        x = image.float()
        if x.shape[1] == 3:
            x = sum(w * x[:, i:i + 1] for i, w in enumerate(LUMA))
        if tuple(x.shape[-2:]) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        return x.clamp(-1, 1)
    single = not isinstance(image, (list, tuple))
    return frames_to_model([image] if single else list(image), size, "image")


def check_video(video: Any, size: int) -> torch.Tensor:
    """A clip (T, H, W) / (T, H, W, C) or a batch (B, T, H, W, C), uint8 or float in [0, 1] -> (B, 1, T, size, size)."""
    arr = np.asarray(getattr(video, "videos", video))
    if arr.ndim == 3:
        arr = arr[None, ..., None]
    elif arr.ndim == 4:
        if arr.shape[-1] not in (1, 3, 4):
            raise ValueError(f"video must be (T, H, W, C) with C in 1, 3, 4, or (B, T, H, W, C); got {arr.shape}")
        arr = arr[None]
    if arr.ndim != 5 or arr.shape[1] < 1:
        raise ValueError(f"video must be (T, H, W), (T, H, W, C) or (B, T, H, W, C); got shape {arr.shape}")
    clips = [frames_to_model(list(clip), size, "video") for clip in arr]  # each (T, 1, S, S)
    return torch.stack(clips).transpose(1, 2)

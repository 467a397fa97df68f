"""Outputs of the super-resolution family: lists of uint8 images, saved as PNG, JPEG, TIFF or NPZ.

``save("x.png")`` writes one image (PNG keeps grey and alpha), ``save("all.npz")`` every image in one
file, and ``save("dir/")`` one PNG per image. Every file is written atomically by the core.
"""
from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from generators.core.pipeline import GeneratorOutput, png_bytes

_PIL_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}


def encode_image(image: np.ndarray, suffix: str) -> bytes:
    """uint8 (H, W, C) -> file bytes for ``suffix``; JPEG refuses an alpha channel rather than drop it."""
    from PIL import Image

    if suffix == ".png":
        return png_bytes(image)
    fmt = _PIL_FORMATS[suffix]
    if fmt == "JPEG" and image.shape[-1] in (2, 4):
        raise ValueError("JPEG cannot store the alpha channel of this image; save it as .png or .tiff")
    arr = image[..., 0] if image.shape[-1] == 1 else image
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buf.getvalue()


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


@dataclass
class ImagesOutput(GeneratorOutput):
    """uint8 images (H, W, C) in a list (sizes may differ between inputs)."""

    images: list[np.ndarray]
    file_formats: ClassVar[tuple[str, ...]] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npz")

    def _items(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        for i, img in enumerate(self.images):
            yield f"{prefix}_{i:03d}.png", png_bytes(img)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {f"image_{i:03d}": img for i, img in enumerate(self.images)}

    def _encode(self, suffix: str) -> bytes:
        if suffix == ".npz":
            return npz_bytes(self._arrays())
        if len(self.images) != 1:
            raise ValueError(f"{len(self.images)} images cannot go into one {suffix} file; "
                             "give a folder path or a .npz file instead")
        return encode_image(self.images[0], suffix)


@dataclass
class SROutput(ImagesOutput):
    """Upscaled images, input-major (all samples of input 0, then input 1, ...), and the inputs as uint8.

    Attributes:
        images: uint8 (H * scale, W * scale, C), C = the input's channels (grey, grey + alpha, RGB, RGBA).
        inputs: the converted low-resolution inputs, uint8 (H, W, C).
        scale: the upscaling factor.
        num_samples: samples per input.
    """

    inputs: list[np.ndarray] = field(default_factory=list)
    scale: int = 4
    num_samples: int = 1

    def _arrays(self) -> dict[str, np.ndarray]:
        arrays = super()._arrays()
        arrays.update({f"input_{i:03d}": img for i, img in enumerate(self.inputs)})
        return arrays


@dataclass
class PromptImagesOutput(ImagesOutput):
    """Images generated from prompts (the cascade's base generator), with the prompt of each."""

    prompts: list[str] = field(default_factory=list)

    def _items(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        for i, img in enumerate(self.images):
            yield f"{prefix}_{i:03d}_{_slug(self.prompts[i]) if i < len(self.prompts) else ''}.png", png_bytes(img)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")[:40]


@dataclass
class CascadeOutput(ImagesOutput):
    """A cascade's final images plus every stage's images (``stages[k]``: uint8 (N, r_k, r_k, 3)).

    ``save("dir/")`` writes ``stage<k>_<r>px/<prefix>_<i>.png`` for every stage; ``save("x.png")`` writes
    a contact sheet (one row per image, one column per stage, each enlarged to the final size).
    """

    stages: list[np.ndarray] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    file_formats: ClassVar[tuple[str, ...]] = (".png", ".npz")

    def _items(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        for k, stage in enumerate(self.stages):
            for i, img in enumerate(stage):
                yield f"stage{k}_{img.shape[0]}px/{prefix}_{i:03d}.png", png_bytes(img)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {f"stage{k}_{s.shape[1]}px": s for k, s in enumerate(self.stages)}

    def contact_sheet(self) -> np.ndarray:
        """uint8 (N * R, K * R, 3): row i holds image i at every stage, nearest-enlarged to R pixels."""
        size = self.stages[-1].shape[1]
        rows = []
        for i in range(len(self.stages[-1])):
            cells = [np.kron(s[i], np.ones((size // s.shape[1], size // s.shape[1], 1), np.uint8)) for s in self.stages]
            rows.append(np.concatenate(cells, axis=1))
        return np.concatenate(rows, axis=0)

    def _encode(self, suffix: str) -> bytes:
        if suffix == ".npz":
            return npz_bytes(self._arrays())
        return png_bytes(self.contact_sheet())

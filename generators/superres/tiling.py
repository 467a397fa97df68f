"""Tiled denoising: one global noisy sample, the network run on overlapping tiles, estimates blended.

At every sampler step the x_0 estimate of the whole image is the window-weighted average of the
network's estimates on overlapping tiles, D(x) = sum_i w_i D(x|tile_i) / sum_i w_i (MultiDiffusion,
Bar-Tal et al. 2023, eq. 3-5; Mixture of Diffusers, Jimenez 2023). The sampler itself runs on the
full image, so there is one noise field and one trajectory: no tile is sampled on its own, and the
smooth window (a sin^2 ramp over the overlap, 1 inside) leaves no seam. Memory for the network is
that of one tile; the full-size tensors are the sampler's few copies of the image.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import torch

from generators.core.denoiser import DenoiseFn

Region = tuple[slice, slice]
RegionDenoiseFn = Callable[[torch.Tensor, torch.Tensor, Region], torch.Tensor]


def tile_spans(length: int, tile: int, overlap: int, multiple: int = 1) -> list[tuple[int, int]]:
    """(start, end) of tiles covering [0, length): starts on multiples of ``multiple``, neighbours
    overlapping by at least ``overlap``; the last tile runs to ``length`` (up to ``multiple`` - 1 longer)."""
    if length <= tile:
        return [(0, length)]
    stride = tile - overlap
    if stride <= 0 or stride % multiple or tile % multiple:
        raise ValueError(f"tile {tile} and stride {stride} must be positive multiples of {multiple}")
    last = (length - tile) // multiple * multiple
    starts = list(range(0, last, stride)) + [last]
    return [(s, min(s + tile, length)) if s != last else (s, length) for s in starts]


def ramp_window(length: int, overlap: int, ramp_start: bool, ramp_end: bool) -> torch.Tensor:
    """1-D weights: sin^2 ramps over ``overlap`` pixels on the sides that meet another tile, 1 elsewhere."""
    w = torch.ones(length, dtype=torch.float64)
    n = min(overlap, length // 2)
    if n > 0:
        ramp = torch.sin(0.5 * math.pi * (torch.arange(n, dtype=torch.float64) + 0.5) / n) ** 2
        if ramp_start:
            w[:n] = torch.minimum(w[:n], ramp)
        if ramp_end:
            w[length - n:] = torch.minimum(w[length - n:], ramp.flip(0))
    return w


def tiled_denoiser(denoise_region: RegionDenoiseFn, size: tuple[int, int], tile: int, overlap: int,
                   multiple: int = 1) -> DenoiseFn:
    """D(x, sigma) on (B, C, H, W) from ``denoise_region(x_tile, sigma, region)`` on overlapping tiles.

    Args:
        denoise_region: the x_0 estimate of one tile; ``region`` = (rows, cols) slices of the full image,
            for the caller to cut its conditioning the same way.
        size: (H, W) of the full image.
        tile: tile side in pixels (a multiple of ``multiple``).
        overlap: pixels shared by neighbouring tiles and blended by the window (0: hard seams).
        multiple: tile starts are multiples of this (the network's stride), so every tile sees the
            same pixel grid phase as the whole image.
    """
    rows = tile_spans(size[0], tile, overlap, multiple)
    cols = tile_spans(size[1], tile, overlap, multiple)
    if len(rows) == 1 and len(cols) == 1:
        whole = (slice(0, size[0]), slice(0, size[1]))
        return lambda x, sigma: denoise_region(x, sigma, whole)
    windows = {}
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(cols):
            wr = ramp_window(r1 - r0, overlap, i > 0, i < len(rows) - 1)
            wc = ramp_window(c1 - c0, overlap, j > 0, j < len(cols) - 1)
            windows[(r0, r1, c0, c1)] = (wr[:, None] * wc[None, :]).float()

    def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(x)
        total = torch.zeros(size, dtype=x.dtype, device=x.device)
        for (r0, r1, c0, c1), window in windows.items():
            region = (slice(r0, r1), slice(c0, c1))
            w = window.to(x)
            out[..., r0:r1, c0:c1] += denoise_region(x[..., r0:r1, c0:c1], sigma, region) * w
            total[r0:r1, c0:c1] += w
        return out / total

    return denoise

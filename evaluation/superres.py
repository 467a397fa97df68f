"""Super-resolution metrics on arrays, and the crop classifier whose features score the cascade.

- :func:`downsample`: the two degradations a user's low-resolution image comes from, antialiased
  bicubic (PIL's ``BICUBIC``, Keys' kernel with a = -0.5, widened by the factor) and area (box)
  averaging. The super-resolution family imports it, so its consistency projection and these metrics
  use one definition of the degradation.
- :func:`psnr` and :func:`ssim` (Wang et al. 2004, eq. 13) of uint8 images, with ``border`` pixels shaved
  as in the SR literature.
- :func:`high_frequency_energy`: the windowed spectral energy above the low-resolution Nyquist
  frequency 1 / (2 * scale) cycles per pixel. Bicubic upsampling has almost none, so its ratio to the
  original's is far below 1; a sharp and faithful sample is near 1.
- :func:`consistency_psnr`: the PSNR of the downsampled output against the input (the data term that
  ILVR / DDNM enforce, Choi et al. 2021, Wang et al. 2023).
- :class:`CropClassifier`: a small CNN the project trains on real crops; its penultimate features give
  the per-stage Frechet distance of the cascade (Heusel et al. 2017, eq. 6), as in
  :mod:`evaluation.digits`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from generators.core.checkpoint import load_model

DEGRADATIONS: tuple[str, ...] = ("bicubic", "area")


def check_degradation(kind: str) -> str:
    """A degradation name; a ValueError names the parameter and the choices."""
    if kind not in DEGRADATIONS:
        raise ValueError(f"degradation must be one of {DEGRADATIONS}, got {kind!r}")
    return kind


def downsample(images: torch.Tensor, scale: int, kind: str = "bicubic") -> torch.Tensor:
    """(B, C, H, W) float -> (B, C, H / scale, W / scale) by antialiased bicubic or area averaging.

    Both are linear and separable; H and W must be multiples of ``scale``.
    """
    check_degradation(kind)
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    if images.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    h, w = images.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"image size {h}x{w} is not a multiple of scale={scale}; crop it to a multiple first")
    if scale == 1:
        return images
    size = (h // scale, w // scale)
    if kind == "area":
        return F.interpolate(images, size=size, mode="area")
    return F.interpolate(images, size=size, mode="bicubic", antialias=True, align_corners=False)


def _as_float(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ValueError(f"an image must be (H, W) or (H, W, C), got shape {arr.shape}")
    return arr.astype(np.float64)


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, C) array -> (1, C, H, W) float64 tensor."""
    return torch.from_numpy(np.ascontiguousarray(_as_float(image).transpose(2, 0, 1)))[None]


def downsample_array(image: np.ndarray, scale: int, kind: str = "bicubic") -> np.ndarray:
    """uint8 (H, W[, C]) -> uint8 (H / scale, W / scale, C): how a user's low-resolution image is made."""
    low = downsample(_to_tensor(image), scale, kind)[0].permute(1, 2, 0).numpy()
    return np.clip(np.round(low), 0, 255).astype(np.uint8)


def bicubic_upsample(image: np.ndarray, scale: int) -> np.ndarray:
    """uint8 (h, w[, C]) -> uint8 (h * scale, w * scale, C): the bicubic baseline (Keys, a = -0.5)."""
    x = _to_tensor(image)
    up = F.interpolate(x, scale_factor=scale, mode="bicubic", antialias=True, align_corners=False)
    return np.clip(np.round(up[0].permute(1, 2, 0).numpy()), 0, 255).astype(np.uint8)


def _shave(a: np.ndarray, border: int) -> np.ndarray:
    return a[border:a.shape[0] - border, border:a.shape[1] - border] if border else a


def _pair(a: np.ndarray, b: np.ndarray, border: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_float(a), _as_float(b)
    if a.shape != b.shape:
        raise ValueError(f"images must have the same shape, got {a.shape} and {b.shape}")
    if border < 0 or 2 * border >= min(a.shape[:2]):
        raise ValueError(f"border={border} leaves no pixels of a {a.shape[0]}x{a.shape[1]} image")
    return _shave(a, border), _shave(b, border)


def psnr(image: np.ndarray, reference: np.ndarray, border: int = 0, data_range: float = 255.0) -> float:
    """10 log10(range^2 / MSE) in dB, over all channels; capped at 100 dB for identical images."""
    a, b = _pair(image, reference, border)
    mse = float(((a - b) ** 2).mean())
    return 100.0 if mse <= data_range**2 * 1e-10 else float(10 * np.log10(data_range**2 / mse))


def ssim(image: np.ndarray, reference: np.ndarray, border: int = 0) -> float:
    """Mean structural similarity (Wang et al. 2004, eq. 13; 7x7 windows), channels averaged."""
    from skimage.metrics import structural_similarity

    a, b = _pair(image, reference, border)
    win = min(7, *a.shape[:2]) | 1
    return float(structural_similarity(a, b, channel_axis=-1, data_range=255.0, win_size=win))


def high_frequency_energy(image: np.ndarray, scale: int) -> float:
    """Spectral energy of the (Hann-windowed, mean-removed) luminance above 1 / (2 * scale) cycles/pixel.

    A frequency counts as high when either axis exceeds the low-resolution Nyquist frequency, i.e.
    outside the band a ``scale``-times smaller image can hold.
    """
    lum = _as_float(image).mean(-1)
    h, w = lum.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    spectrum = np.abs(np.fft.fft2((lum - lum.mean()) * window)) ** 2
    fy, fx = np.abs(np.fft.fftfreq(h))[:, None], np.abs(np.fft.fftfreq(w))[None, :]
    high = (fy > 0.5 / scale) | (fx > 0.5 / scale)
    return float(spectrum[high].sum() / (h * w))


def hf_energy_ratio(image: np.ndarray, reference: np.ndarray, scale: int) -> float:
    """High-frequency energy of ``image`` over that of ``reference`` (1 = as much fine detail as the original)."""
    ref = high_frequency_energy(reference, scale)
    if ref <= 0:
        raise ValueError("the reference image has no high-frequency energy; pick a textured reference")
    return high_frequency_energy(image, scale) / ref


def consistency_psnr(output: np.ndarray, low_res: np.ndarray, scale: int, kind: str = "bicubic") -> float:
    """PSNR of ``downsample(output)`` (float, not rounded) against the low-resolution input, in dB."""
    down = downsample(_to_tensor(output), scale, kind)[0].permute(1, 2, 0).numpy()
    return psnr(down, low_res)


# ------------------------------------------------------------------ crop classifier (cascade FD features)
def resize_crops(x: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, h, w) -> (B, C, size, size) by bicubic interpolation (antialiased when shrinking)."""
    if x.shape[-2:] == (size, size):
        return x
    return F.interpolate(x, size=(size, size), mode="bicubic", antialias=True, align_corners=False)


class CropClassifier(ModelMixin, ConfigMixin):
    """Crops (B, 3, h, w) in [-1, 1], resized to ``input_size`` -> ``feature_dim`` features -> class logits.

    conv(w)-conv(2w)-pool-conv(4w)-pool-conv(4w)-global average pool-linear: translation invariant, so
    features of texture crops do not depend on where the crop was cut.
    """

    @register_to_config
    def __init__(self, num_classes: int = 8, input_size: int = 64, width: int = 24, feature_dim: int = 64) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(3, w, 3, padding=1), nn.GELU(),
            nn.Conv2d(w, 2 * w, 3, padding=1, stride=2), nn.GELU(),
            nn.Conv2d(2 * w, 4 * w, 3, padding=1, stride=2), nn.GELU(),
            nn.Conv2d(4 * w, 4 * w, 3, padding=1), nn.GELU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(4 * w, feature_dim), nn.GELU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return resize_crops(x, self.config.input_size)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.prepare(x.float()))  # (B, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, num_classes)


def fit_crop_classifier(images: torch.Tensor, labels: torch.Tensor, num_classes: int, epochs: int = 10,
                        seed: int = 0, batch_size: int = 64, lr: float = 2e-3, width: int = 24,
                        feature_dim: int = 64, input_size: int = 64) -> CropClassifier:
    """Train a fresh :class:`CropClassifier` (AdamW, one-cycle schedule, random flips), seeded."""
    if len(images) != len(labels) or len(images) < 2:
        raise ValueError(f"images and labels must be equally long (>= 2), got {len(images)} and {len(labels)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CropClassifier(num_classes=num_classes, input_size=input_size, width=width, feature_dim=feature_dim)
    g = torch.Generator().manual_seed(seed)
    x_all = model.prepare(images.float())
    n = len(x_all)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * ((n + batch_size - 1) // batch_size))
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            x = x_all[idx]
            if bool(torch.rand((), generator=g) < 0.5):
                x = x.flip(-1)
            loss = F.cross_entropy(model(x), labels[idx].long())
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.no_grad()
def crop_features(model: CropClassifier, images: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """(N, feature_dim) features of crops (N, 3, h, w) in [-1, 1]."""
    model.eval()
    return np.concatenate([model.features(images[i:i + batch_size]).numpy() for i in range(0, len(images), batch_size)])


@torch.no_grad()
def predict_crops(model: CropClassifier, images: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    model.eval()
    return np.concatenate([model(images[i:i + batch_size]).argmax(1).numpy() for i in range(0, len(images), batch_size)])


def load_crop_classifier(path: str | Path) -> CropClassifier:
    """Load a classifier folder (config.json + model.safetensors) written by ``save_model``."""
    return load_model(path, CropClassifier, use_ema=False)

"""The frozen digits U-Net steered by a ControlNet adapter: the network the edge-map generator samples.

Model code of the image family; the adapter itself (:class:`conditioning.control.ControlNetAdapter`)
is the shared control-map encoder (Zhang et al. 2023).
"""
from __future__ import annotations

from typing import Callable

import torch
from diffusers import UNet2DModel
from torch import nn

from conditioning.control import ControlNetAdapter, unet2d_forward
from generators.core.shapes import append_dims


class ControlledUNet(nn.Module):
    """A frozen base UNet2DModel plus a ControlNet adapter: net(x_t, t, cond) -> prediction.

    Args:
        unet: the base denoiser's UNet2DModel (frozen here: ``requires_grad_(False)``).
        adapter: a :class:`ControlNetAdapter` built for it.
        class_encoder: maps ``cond["labels"]`` to what the base takes as ``class_labels``
            (for the digits model, its ClassLabelEncoder's pooled vector); None if unconditional.

    ``cond`` is a dict with ``"control"`` (B, C_c, H, W), with a class encoder ``"labels"``, and
    optionally ``"scale"`` (B,), the per-sample conditioning scale (default ``conditioning_scale``).
    Classifier-free guidance batches such dicts with ``generators.core.guidance.cat_cond``; the scale
    travels in the condition, so concurrent calls with different scales never share state.
    """

    def __init__(self, unet: UNet2DModel, adapter: ControlNetAdapter,
                 class_encoder: Callable[[torch.Tensor], torch.Tensor] | nn.Module | None = None,
                 conditioning_scale: float = 1.0) -> None:
        super().__init__()
        adapter.check_base(unet)
        self.unet, self.adapter, self.class_encoder = unet, adapter, class_encoder
        self.conditioning_scale = conditioning_scale
        self.freeze_base()

    def freeze_base(self) -> None:
        """Only the adapter trains (Zhang et al. 2023, sec. 3.1: the original block is locked)."""
        self.unet.requires_grad_(False)
        if isinstance(self.class_encoder, nn.Module):
            self.class_encoder.requires_grad_(False)

    def train(self, mode: bool = True) -> "ControlledUNet":
        super().train(mode)
        self.unet.eval()
        if isinstance(self.class_encoder, nn.Module):
            self.class_encoder.eval()
        return self

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        if not isinstance(cond, dict) or "control" not in cond:
            raise ValueError("cond must be a dict with a 'control' map (and 'labels' for a class-conditional base)")
        class_labels = None
        if self.class_encoder is not None:
            if "labels" not in cond:
                raise ValueError("cond needs 'labels' for this class-conditional base (use the null label for none)")
            out = self.class_encoder(cond["labels"])
            class_labels = out.pooled if hasattr(out, "pooled") else out
        scale = cond.get("scale")
        scale = self.conditioning_scale if scale is None else append_dims(scale.to(x.dtype), x.ndim)
        down, mid = self.adapter(x, t, cond["control"], class_labels, scale)
        return unet2d_forward(self.unet, x, t, class_labels, down, mid)  # (B, C, H, W)

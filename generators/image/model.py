"""The digits denoiser: a diffusers UNet2DModel conditioned through the shared label encoder.

The class record's pooled vector is added to the U-Net's time embedding
(``class_embed_type="identity"``), as in ADM (Dhariwal & Nichol 2021).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import UNet2DModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

from conditioning import ClassLabelEncoder


def digit_unet(sample_size: int, channels: int, block_out_channels: tuple[int, ...], layers_per_block: int,
               attention_levels: tuple[int, ...], norm_num_groups: int) -> UNet2DModel:
    """The digits U-Net (Ho et al. 2020's architecture via diffusers), self-attention at ``attention_levels``;
    conditioning enters as a vector added to the time embedding (``class_embed_type="identity"``)."""
    levels = len(block_out_channels)
    down = tuple("AttnDownBlock2D" if i in attention_levels else "DownBlock2D" for i in range(levels))
    up = tuple("AttnUpBlock2D" if i in attention_levels else "UpBlock2D" for i in reversed(range(levels)))
    return UNet2DModel(
        sample_size=sample_size,
        in_channels=channels,
        out_channels=channels,
        block_out_channels=tuple(block_out_channels),
        layers_per_block=layers_per_block,
        down_block_types=down,
        up_block_types=up,
        norm_num_groups=norm_num_groups,
        attention_head_dim=8,
        class_embed_type="identity",
    )


def check_unet_config(**values: object) -> None:
    """Each value must be a positive integer (a hand-edited config.json is named, not misread)."""
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


class ClassConditionalUNet(ModelMixin, ConfigMixin):
    """eps_theta(x_t, t, y) for images (B, C, H, W) and labels (B,), null label = num_classes."""

    @register_to_config
    def __init__(
        self,
        sample_size: int = 16,
        channels: int = 1,
        block_out_channels: tuple[int, ...] = (32, 64, 64),
        layers_per_block: int = 1,
        attention_levels: tuple[int, ...] = (2,),
        norm_num_groups: int = 8,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        check_unet_config(sample_size=sample_size, channels=channels, layers_per_block=layers_per_block,
                          norm_num_groups=norm_num_groups, num_classes=num_classes)
        self.unet = digit_unet(sample_size, channels, block_out_channels, layers_per_block, attention_levels,
                               norm_num_groups)
        self.label_encoder = ClassLabelEncoder(num_classes=num_classes, embedding_dim=block_out_channels[0] * 4)

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        record = self.label_encoder(labels)
        return self.unet(x, t, class_labels=record.pooled).sample  # (B, C, H, W)


@dataclass(frozen=True)
class ImagePreset:
    """Network size and training budget for one named preset."""

    image_size: int
    block_out_channels: tuple[int, ...]
    layers_per_block: int
    attention_levels: tuple[int, ...]
    norm_num_groups: int
    max_steps: int
    batch_size: int
    learning_rate: float
    checkpoint_every: int


PRESETS: dict[str, ImagePreset] = {
    # tests: a few seconds on a CPU
    "tiny": ImagePreset(8, (8, 16), 1, (), 4, 60, 32, 2e-3, 20),
    # the shipped CPU checkpoint
    "small": ImagePreset(16, (32, 64, 64), 1, (2,), 8, 4000, 64, 2e-3, 500),
    # for a GPU: 32x32 and a wider network
    "base": ImagePreset(32, (64, 128, 256), 2, (1, 2), 32, 50000, 128, 3e-4, 2500),
}


def build_model(preset: str, num_classes: int = 10) -> ClassConditionalUNet:
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {preset!r}")
    p = PRESETS[preset]
    return ClassConditionalUNet(
        sample_size=p.image_size,
        block_out_channels=p.block_out_channels,
        layers_per_block=p.layers_per_block,
        attention_levels=p.attention_levels,
        norm_num_groups=p.norm_num_groups,
        num_classes=num_classes,
    )

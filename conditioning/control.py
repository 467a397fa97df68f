"""ControlNet for diffusers ``UNet2DModel`` denoisers (Zhang, Rao & Agrawala 2023).

A trainable copy of the denoiser's encoder half (conv_in, time embedding, down blocks, mid
block) sees x_t plus an embedding of the control map c, and its features reach the frozen
base through zero-initialised 1x1 convolutions added to the base's skip connections and mid
block output (Zhang et al. 2023, eq. 2: y_c = F(x; Theta) + Z(F(x + Z(c; Theta_z1); Theta_c); Theta_z2)).
Because every Z starts at zero, the controlled model equals the base at initialisation, and
training moves only the copy and the zero convolutions.

diffusers' ``UNet2DModel.forward`` takes no residuals (``UNet2DConditionModel`` does), so
:func:`unet2d_forward` re-runs its steps over the same submodules and adds them.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from diffusers import UNet2DModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


def unet_time_embedding(unet: UNet2DModel, sample: torch.Tensor, timestep: torch.Tensor | float | int,
                        class_labels: torch.Tensor | None = None) -> torch.Tensor:
    """The (B, D_emb) embedding of t (plus class embedding) exactly as ``UNet2DModel.forward`` builds it."""
    timesteps = timestep if torch.is_tensor(timestep) else torch.tensor([timestep], dtype=torch.long)
    timesteps = timesteps.to(sample.device)
    if timesteps.ndim == 0:
        timesteps = timesteps[None]
    timesteps = timesteps * torch.ones(sample.shape[0], dtype=timesteps.dtype, device=sample.device)
    emb = unet.time_embedding(unet.time_proj(timesteps).to(dtype=unet.dtype))
    if unet.class_embedding is not None:
        if class_labels is None:
            raise ValueError("class_labels must be given: this U-Net was built with a class embedding")
        if unet.config.class_embed_type == "timestep":
            class_labels = unet.time_proj(class_labels)
        emb = emb + unet.class_embedding(class_labels).to(dtype=unet.dtype)
    elif class_labels is not None:
        raise ValueError("class_labels were given but this U-Net has no class embedding (class_embed_type=None)")
    return emb


def unet2d_forward(
    unet: UNet2DModel,
    sample: torch.Tensor,
    timestep: torch.Tensor | float | int,
    class_labels: torch.Tensor | None = None,
    down_residuals: Sequence[torch.Tensor] | None = None,
    mid_residual: torch.Tensor | None = None,
) -> torch.Tensor:
    """``UNet2DModel.forward(...).sample`` with ControlNet residuals added to the skips and mid output.

    With no residuals it computes the same function as diffusers' forward (a test checks this).
    """
    if unet.config.center_input_sample:
        sample = 2 * sample - 1.0
    emb = unet_time_embedding(unet, sample, timestep, class_labels)
    skip_sample = sample
    h = unet.conv_in(sample)
    skips: tuple[torch.Tensor, ...] = (h,)
    for block in unet.down_blocks:
        if hasattr(block, "skip_conv"):
            h, res, skip_sample = block(hidden_states=h, temb=emb, skip_sample=skip_sample)
        else:
            h, res = block(hidden_states=h, temb=emb)
        skips += res
    if down_residuals is not None:
        if len(down_residuals) != len(skips):
            raise ValueError(f"down_residuals has {len(down_residuals)} tensors; this U-Net has {len(skips)} skips")
        skips = tuple(s + r for s, r in zip(skips, down_residuals))
    if unet.mid_block is not None:
        h = unet.mid_block(h, emb)
    if mid_residual is not None:
        h = h + mid_residual
    skip_sample = None
    for block in unet.up_blocks:
        res, skips = skips[-len(block.resnets):], skips[: -len(block.resnets)]
        if hasattr(block, "skip_conv"):
            h, skip_sample = block(h, res, emb, skip_sample)
        else:
            h = block(h, res, emb)
    h = unet.conv_out(unet.conv_act(unet.conv_norm_out(h)))
    if skip_sample is not None:
        h = h + skip_sample
    if unet.config.time_embedding_type == "fourier":
        t = torch.as_tensor(timestep, device=h.device).expand(h.shape[0])
        h = h / t.reshape(h.shape[0], *([1] * (h.ndim - 1)))
    return h  # (B, C, H, W)


def zero_module(module: nn.Module) -> nn.Module:
    """Zero every parameter: the 'zero convolution' of Zhang et al. 2023, sec. 3.1."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def skip_channels(unet_config: dict) -> list[int]:
    """Channels of each skip tensor UNet2DModel's down path emits (conv_in, every resnet, every downsampler)."""
    blocks = list(unet_config["block_out_channels"])
    channels = [blocks[0]]
    for i, c in enumerate(blocks):
        channels += [c] * int(unet_config["layers_per_block"])
        if i < len(blocks) - 1:
            channels.append(c)
    return channels


class ControlNetAdapter(ModelMixin, ConfigMixin):
    """The trainable half of ControlNet for a UNet2DModel built from ``unet_config``.

    Args:
        unet_config: the base U-Net's config (``dict(unet.config)``).
        control_channels: channels of the control map (1 for an edge map).
        embedding_channels: widths of the small convolutional control-map encoder E(c)
            (Zhang et al. 2023, sec. 3.2), whose last layer is a zero convolution.
    """

    @register_to_config
    def __init__(self, unet_config: dict, control_channels: int = 1, embedding_channels: tuple[int, ...] = (16, 32)) -> None:
        super().__init__()
        cfg = {k: v for k, v in dict(unet_config).items() if not k.startswith("_")}
        if any(t.startswith("Skip") for t in cfg.get("down_block_types", ())):
            raise ValueError("unet_config uses Skip* down blocks, which the ControlNet adapter does not copy")
        if control_channels < 1:
            raise ValueError(f"control_channels must be >= 1, got {control_channels}")
        # the trainable copy: a UNet2DModel of the same config without its decoder
        self.encoder = UNet2DModel.from_config(cfg)
        self.encoder.up_blocks = nn.ModuleList()
        self.encoder.conv_norm_out = self.encoder.conv_act = self.encoder.conv_out = None
        self._unet_config = cfg
        layers: list[nn.Module] = []
        c_in = control_channels
        for c in embedding_channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.SiLU()]
            c_in = c
        layers.append(zero_module(nn.Conv2d(c_in, cfg["block_out_channels"][0], 3, padding=1)))
        self.control_embedding = nn.Sequential(*layers)
        self.zero_convs = nn.ModuleList(zero_module(nn.Conv2d(c, c, 1)) for c in skip_channels(cfg))
        mid_c = cfg["block_out_channels"][-1]
        self.mid_zero_conv = zero_module(nn.Conv2d(mid_c, mid_c, 1))

    @classmethod
    def from_unet(cls, unet: UNet2DModel, control_channels: int = 1, embedding_channels: tuple[int, ...] = (16, 32)) -> "ControlNetAdapter":
        """A new adapter whose encoder copy starts from ``unet``'s weights (Zhang et al. 2023, sec. 3.1)."""
        if not isinstance(unet, UNet2DModel):
            raise TypeError(f"unet must be a diffusers UNet2DModel, got {type(unet).__name__}")
        adapter = cls(dict(unet.config), control_channels, tuple(embedding_channels))
        own = adapter.state_dict()
        copied = {f"encoder.{k}": v for k, v in unet.state_dict().items() if f"encoder.{k}" in own}
        missing = [k for k in own if k.startswith("encoder.") and k not in copied]
        if missing:
            raise ValueError(f"unet lacks weights the adapter copies: {missing[:5]}")
        adapter.load_state_dict(copied, strict=False)
        return adapter

    def check_base(self, unet: UNet2DModel) -> None:
        """Raise if ``unet`` is not the architecture this adapter was built for."""
        base = {k: v for k, v in dict(unet.config).items() if not k.startswith("_")}
        keys = ("block_out_channels", "layers_per_block", "down_block_types", "in_channels", "sample_size")
        diff = [k for k in keys if list(_as_list(base.get(k))) != list(_as_list(self._unet_config.get(k)))]
        if diff:
            raise ValueError(f"the base U-Net differs from the adapter's unet_config in {diff}; load the matching base")

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, control: torch.Tensor,
                class_labels: torch.Tensor | None = None, conditioning_scale: float | torch.Tensor = 1.0
                ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Residuals for the base's skips and mid block.

        Args:
            sample: x_t (B, C, H, W).
            timestep: (B,) or scalar diffusion step.
            control: control map (B, control_channels, H, W), same spatial size as ``sample``.
            class_labels: what the base receives as ``class_labels`` (e.g. a pooled record).
            conditioning_scale: multiplies every residual (0 switches the control off); a float, or a
                per-sample tensor broadcastable to the residuals, e.g. (B, 1, 1, 1).
        """
        if control.ndim != 4 or control.shape[1] != self.config.control_channels or control.shape[-2:] != sample.shape[-2:]:
            raise ValueError(
                f"control must be (B, {self.config.control_channels}, {sample.shape[-2]}, {sample.shape[-1]}) "
                f"to match the sample; got {tuple(control.shape)}"
            )
        enc = self.encoder
        emb = unet_time_embedding(enc, sample, timestep, class_labels)  # (B, D_emb)
        h = enc.conv_in(sample) + self.control_embedding(control.to(sample))  # (B, C0, H, W)
        skips: list[torch.Tensor] = [h]
        for block in enc.down_blocks:
            h, res = block(hidden_states=h, temb=emb)
            skips += list(res)
        h = enc.mid_block(h, emb)  # (B, C_last, H', W')
        down = [conv(s) * conditioning_scale for conv, s in zip(self.zero_convs, skips)]
        return down, self.mid_zero_conv(h) * conditioning_scale


def _as_list(v: Any) -> list:
    return list(v) if isinstance(v, (list, tuple)) else [v]

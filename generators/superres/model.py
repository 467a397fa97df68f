"""The super-resolution denoiser: a U-Net on the pixel-unshuffled input, conditioned on the low-res image.

The network predicts the normalised residual r = (x - up(y)) / residual_scale between the high-res
image x and the bicubic upsampling of the low-res input y (SRDiff, Li et al. 2022, sec. 3.2). Its
input is x_t concatenated channel-wise with the noise-augmented, upsampled y (SR3, Saharia et al. 2021,
sec. 2.4), both rearranged by pixel-unshuffle into ``patch_size``^2 times the channels on a grid
``patch_size`` times smaller (the patchify of DiT, Peebles & Xie 2023), which keeps the cost per pixel
low on a CPU. The timestep and the augmentation level (Ho et al. 2022, sec. 4.3; the embedding comes
from ``conditioning.image.LowResConditioner``) are added into one embedding that modulates every
residual block (scale-shift norm, Dhariwal & Nichol 2021, sec. 3). The normalisation is per pixel
over channels and there is no attention, so the output at a pixel depends only on a neighbourhood:
overlapping tiles of a large image agree with the whole-image result away from their edges.

With ``mean_config`` the network carries a frozen regression network (``mean_net``, an SRNet trained by
MSE and run once per image at x_t = 0, t = T) and the diffusion runs on the residual over its estimate
R(y) of E[x | y] instead of over up(y): the regressor takes the mean, the diffusion only the detail
(SRDiff, Li et al. 2022, sec. 3.2, with its LR encoder; ResShift, Yue et al. 2023). The denoiser sees
R(y) in place of up(y) as its condition image.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from conditioning.image import ImageCondition, LowResConditioner

# The timestep at which a regression network is run (with x_t = 0): the top of the 1000-step schedule.
REGRESSION_TIMESTEP = 999


class PixelNorm(nn.Module):
    """LayerNorm over channels at every pixel (no statistics over space, so tiles do not interact)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # (B, C, H, W)


class ResBlock(nn.Module):
    """norm-SiLU-conv, scale-shift by the embedding, SiLU-conv (zero-initialised), plus a skip."""

    def __init__(self, channels_in: int, channels_out: int, emb_dim: int) -> None:
        super().__init__()
        self.norm1 = PixelNorm(channels_in)
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * channels_out)
        self.norm2 = PixelNorm(channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(channels_in, channels_out, 1) if channels_in != channels_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, C_out, h, w)
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)  # (B, C_out, 1, 1) each
        h = self.conv2(F.silu(self.norm2(h) * (1 + scale) + shift))
        return self.skip(x) + h


class SRNet(ModelMixin, ConfigMixin):
    """r_theta(x_t, t, y): (B, C, H, W) noisy residual + ImageCondition -> (B, C, H, W) prediction.

    Args:
        channels: image channels (3; grey images are repeated).
        scale: the upscaling factor this network was trained for.
        residual_scale: std of the residual x - up(y) in the training data; the diffusion runs on
            the residual divided by it, so the noise schedule sees unit variance.
        patch_size: pixel-unshuffle factor of the input.
        block_channels: channels per U-Net level (each level halves the grid).
        blocks_per_level: residual blocks per level on the way down (one more on the way up).
        max_aug_level / sample_aug_level / upsample_mode: the ``LowResConditioner`` settings.
        num_degradations: above 0, the network is also told which degradation (an index into
            ``evaluation.superres.DEGRADATIONS``) made its input, through the conditioner's embedding.
        mean_config: the config of a regression SRNet whose estimate R(y) replaces up(y) as the base of
            the residual and as the condition image (None: up(y), the plain SR3/SRDiff network).
    """

    @register_to_config
    def __init__(self, channels: int = 3, scale: int = 4, residual_scale: float = 0.1, patch_size: int = 4,
                 block_channels: tuple[int, ...] = (64, 128), blocks_per_level: int = 2,
                 max_aug_level: float = 0.1, sample_aug_level: float = 0.02, upsample_mode: str = "bicubic",
                 num_degradations: int = 0, mean_config: dict | None = None) -> None:
        super().__init__()
        if scale < 2:
            raise ValueError(f"scale must be >= 2, got {scale}")
        if residual_scale <= 0:
            raise ValueError(f"residual_scale must be positive, got {residual_scale}")
        ch = tuple(block_channels)
        emb_dim = 4 * ch[0]
        self.conditioner = LowResConditioner(channels, emb_dim, max_aug_level, sample_aug_level, upsample_mode,
                                             num_degradations)
        self.time_proj = Timesteps(ch[0], flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embed = TimestepEmbedding(ch[0], emb_dim)
        self.conv_in = nn.Conv2d(2 * channels * patch_size**2, ch[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        prev = ch[0]
        for i, c in enumerate(ch):
            self.down.append(nn.ModuleList([ResBlock(prev if j == 0 else c, c, emb_dim) for j in range(blocks_per_level)]))
            prev = c
            if i < len(ch) - 1:
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.mid = ResBlock(prev, prev, emb_dim)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(len(ch))):
            blocks = [ResBlock(prev + ch[i], ch[i], emb_dim)] + [ResBlock(ch[i], ch[i], emb_dim) for _ in range(blocks_per_level)]
            self.up.append(nn.ModuleList(blocks))
            prev = ch[i]
            if i > 0:
                self.upsample.append(nn.Conv2d(ch[i], ch[i - 1], 3, padding=1))
                prev = ch[i - 1]
        self.norm_out = PixelNorm(ch[0])
        self.conv_out = nn.Conv2d(ch[0], channels * patch_size**2, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)
        self.mean_net: SRNet | None = None
        if mean_config:
            if mean_config.get("mean_config"):
                raise ValueError("mean_config must describe a plain SRNet (without a mean_config of its own)")
            keys = ("channels", "scale", "patch_size", "num_degradations")
            if any(mean_config.get(k) != v for k, v in zip(keys, (channels, scale, patch_size, num_degradations))):
                raise ValueError(f"mean_config must share {keys} with the network")
            self.mean_net = SRNet(**{k: v for k, v in mean_config.items() if not k.startswith("_")})
            self.mean_net.requires_grad_(False)  # trained first, by regression; frozen here

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this (patch size times the U-Net's total stride)."""
        return int(self.config.patch_size * 2 ** (len(self.config.block_channels) - 1))

    def embedding(self, t: torch.Tensor, cond: ImageCondition) -> torch.Tensor:
        """Time embedding plus the augmentation-level embedding (the record's pooled vector), (B, E)."""
        temb = self.time_embed(self.time_proj(t.reshape(-1)).to(self.conv_in.weight.dtype))
        return temb + cond.record.pooled.to(temb.dtype)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: ImageCondition) -> torch.Tensor:
        p, m = self.config.patch_size, self.size_multiple
        if x.shape[-2] % m or x.shape[-1] % m:
            raise ValueError(f"SRNet input {tuple(x.shape[-2:])} must be a multiple of {m} in height and width")
        if cond.image.shape != x.shape:
            raise ValueError(f"condition image {tuple(cond.image.shape)} must match x {tuple(x.shape)}")
        emb = self.embedding(t, cond)  # (B, E)
        h = F.pixel_unshuffle(torch.cat([x, cond.image.to(x.dtype)], dim=1), p)  # (B, 2 C p^2, H / p, W / p)
        h = self.conv_in(h)
        skips = []
        for i, blocks in enumerate(self.down):
            for block in blocks:
                h = block(h, emb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)  # (B, C_i, h / 2, w / 2)
        h = self.mid(h, emb)
        for i, blocks in enumerate(self.up):
            h = torch.cat([h, skips.pop()], dim=1)
            for block in blocks:
                h = block(h, emb)
            if i < len(self.upsample):
                h = self.upsample[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        h = self.conv_out(F.silu(self.norm_out(h)))  # (B, C p^2, H / p, W / p)
        return F.pixel_shuffle(h, p)  # (B, C, H, W)

    def regress(self, cond: ImageCondition) -> torch.Tensor:
        """This network as a regressor: its residual estimate at x_t = 0 and t = T, (B, C, H, W)."""
        t = torch.full((cond.image.shape[0],), REGRESSION_TIMESTEP, device=cond.image.device)
        return self(torch.zeros_like(cond.image), t, cond)

    def regression_image(self, upsampled: torch.Tensor, levels: torch.Tensor,
                         degradation: int | torch.Tensor | None = None) -> torch.Tensor:
        """R(y) = up(y) + residual_scale * regress(up(y)) in [-1, 1]: the estimate of E[x | y] of this
        network trained as a regressor, from the (augmented) upsampled input and its levels."""
        cond = ImageCondition(upsampled, self.conditioner.record(levels, degradation))
        return (upsampled + self.config.residual_scale * self.regress(cond)).clamp(-1, 1)

    def condition(self, low_res: torch.Tensor, size: tuple[int, int], aug_level: float | torch.Tensor | None = None,
                  generator: torch.Generator | None = None,
                  degradation: int | torch.Tensor | None = None) -> tuple[ImageCondition, torch.Tensor]:
        """(the denoiser's condition, the base image the residual is taken over) for a whole image.

        Without a mean network: the noise-augmented up(y) and the clean up(y). With one: R(y) of the
        augmented input for both (the generator computes it per tile for large images).
        """
        if self.mean_net is None:
            cond = self.conditioner(low_res, size, aug_level=aug_level, generator=generator, degradation=degradation)
            return cond, self.conditioner.upsample(low_res, size)
        levels = self.conditioner.levels(low_res.shape[0], aug_level, generator, low_res.device)
        cond = self.conditioner(low_res, size, aug_level=levels, generator=generator, degradation=degradation)
        with torch.no_grad():
            mean = self.mean_net.regression_image(cond.image, levels, degradation)
        return ImageCondition(mean, cond.record), mean


"""The spatio-temporal denoiser: a factorised space-time U-Net composed of diffusers blocks.

Each level interleaves a spatial residual block (``ResnetBlock2D``, every frame alone), spatial
self- and cross-attention to the condition tokens (``Transformer2DModel``) and attention across
frames at every pixel (``TransformerTemporalModel`` with sinusoidal frame positions): the factorised
space-time design of Video Diffusion Models (Ho et al. 2022, sec. 3, "factorized space-time
attention"), ModelScopeT2V and Stable Video Diffusion. Single images train as one-frame clips, for
which the temporal layers reduce to per-frame maps (VDM's joint image-video training).

Conditions come from ``conditioning/``: a text record (the frozen all-MiniLM-L6-v2, projected
here), a class label, a motion-strength scalar and the known frames of the clip
(:func:`conditioning.frames.known_frames`, concatenated channel-wise). Tokens of the first three
feed cross-attention (with their padding mask); their pooled vectors sum into the time embedding.
With ``first_frame_tokens`` the clip's first known frame is also encoded (``FirstFrameEncoder``) into
tokens and a pooled vector, as Stable Video Diffusion feeds the conditioning frame's image embedding to
cross-attention beside the channel-concatenated latent (Blattmann et al. 2023, the image-to-video model): the
concatenated frame only reaches the frames next to it, the tokens reach every frame.
Each has a learned null, so one network learns every subset (classifier-free guidance, Ho & Salimans 2022).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from diffusers import AutoencoderKL
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.resnet import Downsample2D, ResnetBlock2D, Upsample2D
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from diffusers.models.transformers.transformer_temporal import TransformerTemporalModel
from torch import nn

from conditioning import ClassLabelEncoder, ConditioningRecord
from conditioning.image import FirstFrameEncoder, FrameRecognizer
from conditioning.scalar import ScalarEncoder
from conditioning.text import TextEncoder


@dataclass(frozen=True)
class VideoCondition:
    """Every condition of a batch of clips, raw (encoders run inside the network).

    Attributes:
        text: the text encoder's record (B, L, D_text) before projection.
        text_keep: (B,) bool; False swaps in the text encoder's learned null.
        labels: (B,) long digit labels; ``num_classes`` is the null label.
        motion: (B,) speed in pixels per frame (any in-range value where ``motion_keep`` is False).
        motion_keep: (B,) bool; False swaps in the motion encoder's learned null.
        context: (B, C + 1, T, H, W) known frames and their mask (``conditioning.frames.known_frames``).
    """

    text: ConditioningRecord
    text_keep: torch.Tensor
    labels: torch.Tensor
    motion: torch.Tensor
    motion_keep: torch.Tensor
    context: torch.Tensor

    def __post_init__(self) -> None:
        b = self.text.batch_size
        for name in ("text_keep", "labels", "motion", "motion_keep"):
            if getattr(self, name).shape != (b,):
                raise ValueError(f"{name} must have shape ({b},), got {tuple(getattr(self, name).shape)}")
        if self.context.ndim != 5 or self.context.shape[0] != b:
            raise ValueError(f"context must be (B={b}, C + 1, T, H, W), got {tuple(self.context.shape)}")

    def cat(self, other: "VideoCondition") -> "VideoCondition":
        """Batch two conditions (the null and conditional branches of guidance)."""
        return VideoCondition(self.text.cat(other.text), torch.cat([self.text_keep, other.text_keep]),
                              torch.cat([self.labels, other.labels]), torch.cat([self.motion, other.motion]),
                              torch.cat([self.motion_keep, other.motion_keep]), torch.cat([self.context, other.context]))

    def to(self, device: torch.device | str) -> "VideoCondition":
        return VideoCondition(self.text.to(device), self.text_keep.to(device), self.labels.to(device),
                              self.motion.to(device), self.motion_keep.to(device), self.context.to(device))


class SpaceTimeLayer(nn.Module):
    """ResnetBlock2D -> [spatial self/cross-attention] -> [temporal attention]; (B*T, C, H, W) in and out.

    With ``temporal_cross`` the temporal transformer also cross-attends to the condition tokens, so the
    layers that see the frame order also see the words that describe the motion.
    """

    def __init__(self, in_channels: int, out_channels: int, temb_channels: int, groups: int, heads: int,
                 cross_dim: int, spatial: bool, temporal: bool, max_frames: int, temporal_cross: bool = False) -> None:
        super().__init__()
        self.resnet = ResnetBlock2D(in_channels=in_channels, out_channels=out_channels, temb_channels=temb_channels,
                                    groups=groups)
        head_dim = out_channels // heads
        self.spatial = None
        if spatial:
            self.spatial = Transformer2DModel(heads, head_dim, in_channels=out_channels, norm_num_groups=groups,
                                              cross_attention_dim=cross_dim, activation_fn="gelu")
        self.temporal = None
        self.temporal_cross = bool(temporal and temporal_cross)
        if temporal:
            self.temporal = TransformerTemporalModel(heads, head_dim, in_channels=out_channels, norm_num_groups=groups,
                                                     double_self_attention=False, positional_embeddings="sinusoidal",
                                                     cross_attention_dim=cross_dim if temporal_cross else None,
                                                     num_positional_embeddings=max_frames, activation_fn="gelu")

    def forward(self, h: torch.Tensor, emb: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor,
                num_frames: int, clip_tokens: torch.Tensor | None = None) -> torch.Tensor:
        """``tokens`` / ``mask`` (B*T, L, D) / (B*T, L) per frame; ``clip_tokens`` (B, L, D) per clip, padding zeroed."""
        h = self.resnet(h, emb)  # (B*T, C, H, W)
        if self.spatial is not None:
            h = self.spatial(h, encoder_hidden_states=tokens, encoder_attention_mask=mask, return_dict=False)[0]
        if self.temporal is not None:
            context = None
            if self.temporal_cross:
                if clip_tokens is None:
                    raise ValueError("this layer cross-attends across frames: pass clip_tokens")
                context = clip_tokens.repeat_interleave(h.shape[-2] * h.shape[-1], 0)  # (B*H*W, L, D)
            h = self.temporal(h, encoder_hidden_states=context, num_frames=num_frames, return_dict=False)[0]
        return h


class SpatioTemporalUNet(ModelMixin, ConfigMixin):
    """eps_theta(x_t, t, c) for clips (B, C, T, H, W) (latents or pixels) and a :class:`VideoCondition`.

    Args:
        in_channels: channels of the diffused tensor (latent channels, or 1 for grey pixels).
        block_out_channels: width per level; each level but the last halves H and W.
        layers_per_block: space-time layers per level on the way down (one more on the way up).
        attention_levels: levels with spatial self/cross-attention.
        temporal_levels: levels with temporal attention (the mid block always has both).
        num_heads: attention heads (every width must divide by it).
        norm_num_groups: GroupNorm groups.
        cond_dim: width of the condition tokens (class, motion, projected text).
        max_frames: the longest clip the frame position encoding covers.
        num_classes: digit classes (the null label is ``num_classes``).
        max_motion: the motion condition's range is [0, max_motion] pixels per frame.
        text_model_path, text_max_length: the frozen text encoder (None: the packaged all-MiniLM-L6-v2).
        autoencoder_config: the ``AutoencoderKL`` config of a latent model (None: pixel space). The
            autoencoder is a frozen submodule, so one folder (config.json + safetensors) holds both;
            the network's forward never calls it (the generator and the loss map clips to latents).
        latent_scale, latent_shift: z = (E(x) - shift) * scale (Rombach et al. 2022, sec. 4.3.2).
        temporal_cross_attention: the temporal layers cross-attend to the condition tokens too. Without
            it the text reaches only the per-frame layers, which do not know a frame's place in the
            clip, so motion words ("up", "to the left") have no direct path to the layers that order
            the frames. (The loss weighting mattered more for following them: see the video README.)
        first_frame_tokens: encode frame 0 of the known frames (when it is known) into condition tokens
            and a pooled vector (a learned null otherwise), so every frame of an image-to-video clip
            sees the given digit, not only the frames next to it.
        first_frame_patch: the patch size of that encoder (tokens = (H / p) * (W / p)).
        first_frame_concat: also concatenate frame 0 of the known frames (zeros when unknown) to every
            frame's input, as SVD concatenates the conditioning frame's latent to each frame (Blattmann
            et al. 2023): every frame sees the given digit at the same place, not only frame 0.
        recognizer_config: the ``FrameRecognizer`` config of a frozen first-frame recognizer (None: none).
            Like the autoencoder it is a frozen submodule the forward never calls: the generator asks it
            for the label of a given first frame when neither prompt nor label is given. It is built
            last, so the denoiser's seeded initialisation is the same with or without it.
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 4,
        block_out_channels: tuple[int, ...] = (64, 128),
        layers_per_block: int = 1,
        attention_levels: tuple[int, ...] = (1,),
        temporal_levels: tuple[int, ...] = (0, 1),
        num_heads: int = 4,
        norm_num_groups: int = 8,
        cond_dim: int = 128,
        max_frames: int = 32,
        num_classes: int = 10,
        max_motion: float = 4.0,
        text_model_path: str | None = None,
        text_max_length: int = 32,
        autoencoder_config: dict[str, Any] | None = None,
        latent_scale: float | None = None,
        latent_shift: float = 0.0,
        temporal_cross_attention: bool = False,
        first_frame_tokens: bool = False,
        first_frame_patch: int = 2,
        first_frame_concat: bool = False,
        recognizer_config: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        widths = tuple(block_out_channels)
        self.autoencoder: AutoencoderKL | None = None
        if autoencoder_config is not None:
            if latent_scale is None or not latent_scale > 0:
                raise ValueError(f"latent_scale must be positive with an autoencoder, got {latent_scale!r} "
                                 "(LatentSpace.estimate_scale gives it)")
            self.autoencoder = AutoencoderKL.from_config(autoencoder_config).requires_grad_(False).eval()
            if int(self.autoencoder.config.latent_channels) != in_channels:
                raise ValueError(f"in_channels={in_channels} must equal the autoencoder's latent_channels="
                                 f"{self.autoencoder.config.latent_channels}")
        if any(w % num_heads or w % norm_num_groups for w in widths):
            raise ValueError(f"every block_out_channels entry must divide by num_heads={num_heads} and "
                             f"norm_num_groups={norm_num_groups}, got {widths}")
        temb = widths[0] * 4
        self.text_encoder = TextEncoder(model_path=text_model_path, max_length=text_max_length, on_truncate="error")
        self.text_tokens = nn.Linear(self.text_encoder.dim, cond_dim)
        self.text_pooled = nn.Linear(self.text_encoder.dim, cond_dim)
        self.label_encoder = ClassLabelEncoder(num_classes=num_classes, embedding_dim=cond_dim)
        self.motion_encoder = ScalarEncoder(dim=cond_dim, min_value=0.0, max_value=max_motion, name="motion")
        self.frame_encoder = None
        if first_frame_tokens:
            self.frame_encoder = FirstFrameEncoder(channels=in_channels, dim=cond_dim, patch_size=first_frame_patch)
        self.time_proj = Timesteps(widths[0], True, 0)
        self.time_embedding = TimestepEmbedding(widths[0], temb)
        self.cond_embedding = nn.Sequential(nn.Linear(cond_dim, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.conv_in = nn.Conv2d((3 if first_frame_concat else 2) * in_channels + 1, widths[0], 3, padding=1)

        def layer(cin: int, cout: int, level: int, spatial: bool | None = None, temporal: bool | None = None):
            spatial = level in attention_levels if spatial is None else spatial
            temporal = level in temporal_levels if temporal is None else temporal
            return SpaceTimeLayer(cin, cout, temb, norm_num_groups, num_heads, cond_dim, spatial, temporal, max_frames,
                                  temporal_cross_attention)

        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        skips, ch = [widths[0]], widths[0]
        for i, w in enumerate(widths):
            self.down.append(nn.ModuleList(layer(ch if j == 0 else w, w, i) for j in range(layers_per_block)))
            ch = w
            skips += [w] * layers_per_block
            if i < len(widths) - 1:
                self.downsample.append(Downsample2D(w, use_conv=True, out_channels=w, padding=1, name="op"))
                skips.append(w)
        self.mid = nn.ModuleList([layer(ch, ch, -1, True, True), layer(ch, ch, -1, False, False)])
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i, w in reversed(list(enumerate(widths))):
            layers = nn.ModuleList()
            for _ in range(layers_per_block + 1):
                layers.append(layer(ch + skips.pop(), w, i))
                ch = w
            self.up.append(layers)
            if i > 0:
                self.upsample.append(Upsample2D(w, use_conv=True, out_channels=w))
        self.norm_out = nn.GroupNorm(norm_num_groups, ch)
        self.conv_out = nn.Conv2d(ch, in_channels, 3, padding=1)
        self.recognizer: FrameRecognizer | None = None
        if recognizer_config is not None:
            self.recognizer = FrameRecognizer.from_config(recognizer_config).requires_grad_(False).eval()

    @property
    def cond_channels(self) -> int:
        """Channels of the known-frames condition: the clip's channels plus the mask."""
        return int(self.config.in_channels) + 1

    def encode_conditions(self, cond: VideoCondition) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Tokens (B, L, D), key mask (B, L) and pooled vector (B, D) of text, class, motion [and first frame]."""
        device = self.text_tokens.weight.device
        text = cond.text.to(device).where(cond.text_keep.to(device), self.text_encoder.null(1, device))
        text = ConditioningRecord(self.text_tokens(text.tokens), text.mask, self.text_pooled(text.pooled))
        label = self.label_encoder(cond.labels.to(device))
        motion = self.motion_encoder(cond.motion).where(cond.motion_keep.to(device), self.motion_encoder.null(1, device))
        records = (text, label, motion)
        if self.frame_encoder is not None:
            records += (self.encode_first_frame(cond.context.to(device)),)
        tokens = torch.cat([r.tokens for r in records], dim=1)  # (B, L, D)
        mask = torch.cat([r.mask for r in records], dim=1)  # (B, L)
        return tokens, mask, sum(r.pooled for r in records)  # (B, D)

    def encode_first_frame(self, context: torch.Tensor) -> ConditioningRecord:
        """The first-frame record of a known-frames context (B, C + 1, T, H, W); the null where frame 0 is unknown."""
        c = int(self.config.in_channels)
        frame, known = context[:, :c, 0], context[:, c, 0].flatten(1).amax(1) > 0.5  # (B, C, H, W), (B,)
        frame = frame.to(self.frame_encoder.null_pooled.dtype)
        return self.frame_encoder(frame).where(known, self.frame_encoder.null(1, frame.device))

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: VideoCondition) -> torch.Tensor:
        if not isinstance(cond, VideoCondition):
            raise TypeError(f"cond must be a VideoCondition, got {type(cond).__name__}")
        b, c, f, h, w = x.shape
        if cond.context.shape != (b, c + 1, f, h, w):
            raise ValueError(f"cond.context must have shape {(b, c + 1, f, h, w)}, got {tuple(cond.context.shape)}")
        tokens, mask, pooled = self.encode_conditions(cond)
        temb = self.time_embedding(self.time_proj(t.reshape(-1).expand(b)).to(x.dtype))
        emb = (temb + self.cond_embedding(pooled.to(x.dtype))).repeat_interleave(f, 0)  # (B*T, E)
        clip_tokens = None
        if self.config.temporal_cross_attention:  # padding zeroed: the temporal blocks take no key mask
            clip_tokens = (tokens * mask[..., None].to(tokens.dtype)).to(x.dtype)  # (B, L, D)
        tokens, mask = tokens.to(x.dtype).repeat_interleave(f, 0), mask.repeat_interleave(f, 0)  # (B*T, L, D)
        parts = [x, cond.context.to(x.dtype)]
        if self.config.first_frame_concat:  # frame 0 where known (the context is zero elsewhere), on every frame
            parts.append(cond.context[:, :c, :1].to(x.dtype).expand(-1, -1, f, -1, -1))
        inp = torch.cat(parts, dim=1)  # (B, 2C + 1 [+ C], T, H, W)
        hid = self.conv_in(inp.transpose(1, 2).reshape(b * f, -1, h, w))  # (B*T, C0, H, W)
        skips = [hid]
        for i, layers in enumerate(self.down):
            for lay in layers:
                hid = lay(hid, emb, tokens, mask, f, clip_tokens)
                skips.append(hid)
            if i < len(self.downsample):
                hid = self.downsample[i](hid)
                skips.append(hid)
        for lay in self.mid:
            hid = lay(hid, emb, tokens, mask, f, clip_tokens)
        for i, layers in enumerate(self.up):
            for lay in layers:
                hid = lay(torch.cat([hid, skips.pop()], dim=1), emb, tokens, mask, f, clip_tokens)
            if i < len(self.upsample):
                hid = self.upsample[i](hid, output_size=skips[-1].shape[-2:])
        out = self.conv_out(nn.functional.silu(self.norm_out(hid)))  # (B*T, C, H, W)
        return out.reshape(b, f, c, h, w).transpose(1, 2)  # (B, C, T, H, W)

"""Text-to-image digits: the digits U-Net conditioned on prompts through the shared text encoder.

The frozen all-MiniLM-L6-v2 record (tokens + mask + pooled) is reduced to one vector by
attention pooling with a learned query over the tokens, concatenated with the mean-pooled
sentence vector, and added to the U-Net's time embedding through an MLP - the pooled-text
pathway of Imagen (Saharia et al. 2022, sec. 2.1 and appendix). Training starts from the
class-conditional digits checkpoint's U-Net, drops prompts to the encoder's learned null with
probability p for classifier-free guidance (Ho & Salimans 2022), and samples with guidance.

>>> gen = TextImageGenerator.from_pretrained("data/checkpoints/image-text2img")
>>> out = gen(["a thin upright two", "a thick, slanted seven"], guidance_scale=3.0, seed=0)
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from conditioning import ConditioningRecord
from conditioning.text import TextEncoder
from generators.core.checkpoint import load_model
from generators.core.denoiser import VPDenoiser
from generators.core.guidance import classifier_free_guidance
from generators.core.losses import DiffusionLoss
from generators.core.pipeline import DiffusionConfig, DiffusionGenerator
from generators.core.sampling import SamplerOptions
from generators.core.training import TrainConfig, TrainResult, seeded, train, write_train_record
from generators.core.validation import check_prompts

from .captions import TRAIN_TEMPLATES, captions_for, eval_prompts, measure_attributes, train_bins
from .data import load_digits_split, to_uint8
from .generator import DEFAULT_GUIDANCE_INTERVAL, ImageOutput
from .model import ClassConditionalUNet, check_unet_config, digit_unet


class TextPooling(nn.Module):
    """Record -> (B, E): MLP([pooled, attention-pool(W tokens; learned query, key-padding mask)])."""

    def __init__(self, text_dim: int, emb_dim: int, num_heads: int = 4) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(text_dim)
        self.token_proj = nn.Linear(text_dim, emb_dim)
        self.query = nn.Parameter(torch.randn(1, 1, emb_dim) * 0.02)
        self.attn = nn.MultiheadAttention(emb_dim, num_heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(text_dim + emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))

    def forward(self, record: ConditioningRecord) -> torch.Tensor:
        tokens = self.token_proj(self.norm(record.tokens))  # (B, L, E)
        q = self.query.expand(tokens.shape[0], -1, -1)  # (B, 1, E)
        attended = self.attn(q, tokens, tokens, key_padding_mask=~record.mask, need_weights=False)[0][:, 0]  # (B, E)
        return self.mlp(torch.cat([record.pooled, attended], dim=-1))  # (B, E)


class TextConditionalUNet(ModelMixin, ConfigMixin):
    """eps_theta(x_t, t, text record); the text encoder's learned null is part of this model."""

    @register_to_config
    def __init__(
        self,
        sample_size: int = 16,
        channels: int = 1,
        block_out_channels: tuple[int, ...] = (32, 64, 64),
        layers_per_block: int = 1,
        attention_levels: tuple[int, ...] = (2,),
        norm_num_groups: int = 8,
        text_model_path: str | None = None,
        text_max_length: int = 32,
        text_heads: int = 4,
    ) -> None:
        super().__init__()
        check_unet_config(sample_size=sample_size, channels=channels, layers_per_block=layers_per_block,
                          norm_num_groups=norm_num_groups)
        # the same U-Net the class-conditional model uses, so it can start from its weights
        self.unet = digit_unet(sample_size, channels, tuple(block_out_channels), layers_per_block,
                               tuple(attention_levels), norm_num_groups)
        self.text_encoder = TextEncoder(model_path=text_model_path, max_length=text_max_length, on_truncate="error")
        self.text_pooling = TextPooling(self.text_encoder.dim, block_out_channels[0] * 4, text_heads)

    def forward(self, x: torch.Tensor, t: torch.Tensor, record: ConditioningRecord) -> torch.Tensor:
        if not isinstance(record, ConditioningRecord):
            raise TypeError(f"cond must be a ConditioningRecord from the text encoder, got {type(record).__name__}")
        return self.unet(x, t, class_labels=self.text_pooling(record.to(x.device))).sample  # (B, C, H, W)


def build_text_model(base: ClassConditionalUNet) -> TextConditionalUNet:
    """A text model with the class model's architecture and U-Net weights."""
    c = base.config
    model = TextConditionalUNet(c.sample_size, c.channels, tuple(c.block_out_channels), c.layers_per_block,
                                tuple(c.attention_levels), c.norm_num_groups)
    model.unet.load_state_dict(base.unet.state_dict())
    return model


class TextImageGenerator(DiffusionGenerator):
    """Prompted digit generation with classifier-free guidance over any core sampler.

    The folder's ``model.safetensors`` holds the EMA weights (``store_training_weights = False``).
    """

    model_class = TextConditionalUNet
    store_training_weights = False

    def __init__(self, model: TextConditionalUNet, diffusion: DiffusionConfig, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__(model, diffusion, device, dtype)
        self.denoiser = VPDenoiser(self.model, self.schedule, diffusion.prediction_type, clip_x0=1.0)

    @torch.no_grad()
    def __call__(self, prompt: str | Sequence[str], *, num_inference_steps: int = 25, sampler: str = "dpmsolver++",
                 guidance_scale: float = 3.0, guidance_interval: tuple[float, float] | None = DEFAULT_GUIDANCE_INTERVAL,
                 seed: int = 0, options: SamplerOptions = SamplerOptions(), progress: bool = False,
                 callback: Callable[[int, int, torch.Tensor], None] | None = None) -> ImageOutput:
        """One image per prompt (``guidance_scale`` 0 = unconditional, 1 = no guidance).

        Args:
            prompt: a string or a list of strings (one image each); empty prompts are refused.
            guidance_interval: (sigma_lo, sigma_hi) where guidance applies (Kynkaanniemi et al. 2024), None for all.
            The other keywords are the contract's (``generators/README.md``).
        """
        self.check_call(num_inference_steps, sampler, guidance_scale, seed, guidance_interval)
        record = self.model.text_encoder(check_prompts(prompt))
        b = record.batch_size
        size, channels = int(self.model.config.sample_size), int(self.model.config.channels)
        generator, noise = self.noise((b, channels, size, size), seed)
        denoise = classifier_free_guidance(self.denoiser, record, self.model.text_encoder.null(b), guidance_scale,
                                           guidance_interval)
        x = self.run_sampler(denoise, noise, generator, num_inference_steps, sampler, options, callback, progress)
        return ImageOutput(to_uint8(x))


@dataclass
class CaptionTable:
    """Text encodings of every distinct training caption, padded to one length (the frozen encoder's cache)."""

    tokens: torch.Tensor  # (U, L, D)
    mask: torch.Tensor  # (U, L)
    pooled: torch.Tensor  # (U, D)

    @classmethod
    def build(cls, encoder: TextEncoder, captions: Sequence[str], batch_size: int = 256) -> "CaptionTable":
        records = [encoder(list(captions[i:i + batch_size])) for i in range(0, len(captions), batch_size)]
        length = max(r.tokens.shape[1] for r in records)
        records = [r.pad_to(length) for r in records]
        return cls(*(torch.cat([getattr(r, f) for r in records]).detach() for f in ("tokens", "mask", "pooled")))

    def record(self, ids: torch.Tensor) -> ConditioningRecord:
        ids = ids.to(self.tokens.device)
        return ConditioningRecord(self.tokens[ids], self.mask[ids], self.pooled[ids])


class CaptionDiffusionLoss:
    """L_simple with one random training caption per image and prompt dropout to the learned null."""

    def __init__(self, loss: DiffusionLoss, table: CaptionTable) -> None:
        self.loss, self.table = loss, table

    def __call__(self, net: nn.Module, x0: torch.Tensor, caption_ids: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        col = torch.randint(0, caption_ids.shape[1], (caption_ids.shape[0],), generator=generator).to(caption_ids.device)
        ids = caption_ids.gather(1, col[:, None])[:, 0]
        return self.loss(net, x0, self.table.record(ids), generator=generator)


def init_pooling_from_labels(model: TextConditionalUNet, base: ClassConditionalUNet, table: CaptionTable,
                             caption_labels: torch.Tensor, steps: int = 300, lr: float = 3e-3, seed: int = 0,
                             batch_size: int = 256) -> float:
    """Fit the text pathway to output the base's label embedding for each caption's digit.

    A warm start: the fine-tuned U-Net then begins from a model that already draws the right
    digit, and training only has to add the attributes. Returns the final mean squared error.
    """
    g = torch.Generator().manual_seed(seed)
    target = base.label_encoder(caption_labels).pooled.detach()  # (U, E)
    opt = torch.optim.Adam(model.text_pooling.parameters(), lr=lr)
    err = torch.tensor(0.0)
    for _ in range(steps):
        idx = torch.randint(0, len(caption_labels), (min(batch_size, len(caption_labels)),), generator=g)
        err = (model.text_pooling(table.record(idx)) - target[idx]).pow(2).mean()
        opt.zero_grad()
        err.backward()
        opt.step()
    return float(err.detach())


@torch.no_grad()
def label_probe_accuracy(model: TextConditionalUNet, base: ClassConditionalUNet, prompts: Sequence[str],
                         digits: Sequence[int]) -> float:
    """Fraction of prompts whose text embedding is nearest to the embedding of the prompted digit's label."""
    emb = model.text_pooling(model.text_encoder(list(prompts)))  # (B, E)
    table = base.label_encoder.embedding.weight[: base.config.num_classes]  # (10, E)
    nearest = torch.cdist(emb, table).argmin(1)
    return float((nearest == torch.as_tensor(list(digits))).float().mean())


def caption_dataset(size: int, encoder: TextEncoder) -> tuple[torch.Tensor, torch.Tensor, CaptionTable, list[str]]:
    """Train images, (N, K) caption ids (one per training template), the encoded table and its captions."""
    data = load_digits_split("train", size)
    bins = train_bins(size).bin(measure_attributes(data.images), data.labels.numpy())
    per_image = captions_for(data.labels, bins, TRAIN_TEMPLATES)
    unique = sorted({c for row in per_image for c in row})
    index = {c: i for i, c in enumerate(unique)}
    ids = torch.tensor([[index[c] for c in row] for row in per_image], dtype=torch.long)
    return data.images, ids, CaptionTable.build(encoder, unique), unique


def train_text2img(
    output_dir: str | os.PathLike,
    base_checkpoint: str | os.PathLike,
    max_steps: int = 1500,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    cond_drop_prob: float = 0.1,
    seed: int = 0,
    checkpoint_every: int = 250,
    init_steps: int = 200,
    command: str = "",
    progress: bool = True,
) -> TrainResult:
    """Fine-tune the class-conditional digits U-Net into a text-conditional one (resumable).

    ``output_dir`` holds a loadable generator after every checkpoint; ``model.safetensors``
    there holds the EMA weights (the ones sampling uses), to keep the folder small.
    """
    if not 0.0 <= cond_drop_prob < 1.0:
        raise ValueError(f"cond_drop_prob must be in [0, 1), got {cond_drop_prob}")
    base = load_model(base_checkpoint, ClassConditionalUNet, use_ema=True)
    base_diffusion = DiffusionConfig.load(base_checkpoint)
    with seeded(seed):
        model = build_text_model(base)
    size = int(base.config.sample_size)
    images, caption_ids, table, unique = caption_dataset(size, model.text_encoder)
    labels = load_digits_split("train", size).labels
    caption_labels = torch.zeros(len(unique), dtype=torch.long)
    caption_labels[caption_ids.flatten()] = labels.repeat_interleave(caption_ids.shape[1])
    init_mse = init_pooling_from_labels(model, base, table, caption_labels, init_steps, seed=seed) if init_steps else None
    probe = eval_prompts(200, seed=1)
    probe_acc = label_probe_accuracy(model, base, [p for p, _, _ in probe], [d for _, d, _ in probe])
    diffusion = DiffusionConfig(**{**asdict(base_diffusion), "cond_drop_prob": cond_drop_prob})
    encoder = model.text_encoder
    loss = CaptionDiffusionLoss(
        DiffusionLoss(diffusion.schedule(), diffusion.prediction_type,
                      cond_dropout=lambda rec, g: encoder.drop(rec, cond_drop_prob, g)),
        table,
    )
    config = TrainConfig(max_steps=max_steps, batch_size=batch_size, learning_rate=learning_rate,
                         warmup_steps=min(100, max(1, max_steps // 10)), ema_decay=0.995,
                         checkpoint_every=checkpoint_every, seed=seed)
    output_dir = Path(output_dir)

    def publish(step: int, inner: nn.Module, ema_state: dict) -> None:
        TextImageGenerator(inner, diffusion).save_pretrained(output_dir, ema_state)
        inner.train()

    result = train(model, loss, (images, caption_ids), config, output_dir, on_checkpoint=publish, progress=progress)
    root = Path(__file__).resolve().parents[2]
    base_ref = Path(base_checkpoint).resolve()
    base_ref = str(base_ref.relative_to(root)) if base_ref.is_relative_to(root) else str(base_ref)
    write_train_record(output_dir, command or f"train_text2img({str(output_dir)!r}, {str(base_checkpoint)!r})", config, result, {
        "base_checkpoint": base_ref, "weights": "model.safetensors holds the EMA weights",
        "num_distinct_captions": len(unique), "train_templates": list(TRAIN_TEMPLATES),
        "init_pooling_steps": init_steps, "init_pooling_mse": init_mse,
        "label_probe_accuracy_heldout_phrasing_after_init": probe_acc,
        "dataset": "sklearn digits train split (80%), captions from measured attributes",
    })
    return result


def attribute_scores(images: torch.Tensor, digits: Sequence[int], bins: np.ndarray) -> dict[str, float]:
    """Per attribute: tertile accuracy and side-of-median accuracy on prompted (non-middle) attributes."""
    from .captions import ATTRIBUTES, MID

    measured = measure_attributes(images)
    tb = train_bins(images.shape[-1])
    got = tb.bin(measured, np.asarray(digits))
    medians = tb.edges.mean(-1)[np.asarray(digits)]  # (B, 3) midpoint of the tertile edges
    out: dict[str, float] = {}
    for j, name in enumerate(ATTRIBUTES):
        asked = bins[:, j] != MID
        if asked.any():
            out[f"{name}_tertile_accuracy"] = float((got[asked, j] == bins[asked, j]).mean())
            side = np.where(bins[asked, j] > MID, measured[asked, j] > medians[asked, j], measured[asked, j] < medians[asked, j])
            out[f"{name}_direction_accuracy"] = float(side.mean())
            out[f"{name}_n"] = int(asked.sum())
    return out

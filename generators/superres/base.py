"""The cascade's base stage: a small prompt-conditioned image generator at low resolution.

Its vocabulary is the names and short prompts of the photos and textures it was trained on
(``data.CASCADE_TRAIN``), each a class of ``conditioning.ClassLabelEncoder`` whose pooled vector is added
to the U-Net's time embedding (ADM, Dhariwal & Nichol 2021); the extra null class gives classifier-free
guidance (Ho & Salimans 2022, eq. 6). It generates crops at the first resolution of the cascade
(Cascaded Diffusion Models, Ho et al. 2022, sec. 3).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from diffusers import UNet2DModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

from conditioning import ClassLabelEncoder
from generators.core.denoiser import VPDenoiser
from generators.core.guidance import classifier_free_guidance
from generators.core.pipeline import DiffusionConfig, DiffusionGenerator
from generators.core.sampling import SamplerOptions
from generators.core.validation import check_int

from .inputs import to_uint8
from .output import PromptImagesOutput

MAX_IMAGES = 1024


class PromptUNet(ModelMixin, ConfigMixin):
    """eps_theta(x_t, t, y): images (B, C, S, S) and prompt indices (B,); index len(prompts) is the null prompt."""

    @register_to_config
    def __init__(self, sample_size: int = 16, channels: int = 3, block_out_channels: tuple[int, ...] = (64, 128, 128),
                 layers_per_block: int = 1, attention_levels: tuple[int, ...] = (2,), norm_num_groups: int = 16,
                 names: tuple[str, ...] = ("gravel",), prompts: tuple[str, ...] = ("gravel",)) -> None:
        super().__init__()
        if len(names) != len(prompts) or not names:
            raise ValueError(f"names and prompts must be equally long and non-empty, got {len(names)} and {len(prompts)}")
        levels = len(block_out_channels)
        self.unet = UNet2DModel(
            sample_size=sample_size, in_channels=channels, out_channels=channels,
            block_out_channels=tuple(block_out_channels), layers_per_block=layers_per_block,
            down_block_types=tuple("AttnDownBlock2D" if i in attention_levels else "DownBlock2D" for i in range(levels)),
            up_block_types=tuple("AttnUpBlock2D" if i in attention_levels else "UpBlock2D" for i in reversed(range(levels))),
            norm_num_groups=norm_num_groups, attention_head_dim=8, class_embed_type="identity",
        )
        self.label_encoder = ClassLabelEncoder(num_classes=len(prompts), embedding_dim=block_out_channels[0] * 4)

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        record = self.label_encoder(labels)
        return self.unet(x, t, class_labels=record.pooled).sample  # (B, C, S, S)


class BaseGenerator(DiffusionGenerator):
    """``base(prompt="gravel", num_images=4)`` -> low-resolution images of that texture or photo."""

    model_class = PromptUNet
    store_training_weights = False  # model.safetensors holds the EMA weights
    storage_dtype = torch.float16  # as the stages: the shipped cascade stays small; loads back as float32

    def __init__(self, model: PromptUNet, diffusion: DiffusionConfig, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__(model, diffusion, device, dtype)
        self.denoiser = VPDenoiser(self._net, self.schedule, diffusion.prediction_type, clip_x0=1.0)

    @property
    def prompts(self) -> list[str]:
        return list(self.model.config.prompts)

    @property
    def image_size(self) -> int:
        return int(self.model.config.sample_size)

    def _net(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.model(x.to(self.dtype), t.to(self.dtype), labels).float()

    def labels_for(self, prompt: str | Sequence[str]) -> list[int]:
        """Prompt(s) -> class indices; a prompt matches a source's prompt or name, ignoring case."""
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise ValueError(f"prompt must be a string or a non-empty list of strings, got {prompt!r}")
        lookup = {p.casefold().strip(): i for i, p in enumerate(self.model.config.prompts)}
        lookup.update({n.casefold().replace("_", " "): i for i, n in enumerate(self.model.config.names)})
        labels = []
        for p in prompts:
            key = p.casefold().strip().replace("_", " ")
            if key not in lookup:
                raise ValueError(f"prompt {p!r} is not one this cascade knows; use one of {self.prompts}")
            labels.append(lookup[key])
        return labels

    @torch.no_grad()
    def generate_tensor(self, labels: list[int], *, num_inference_steps: int, sampler: str, guidance_scale: float,
                        guidance_interval: tuple[float, float] | None, seed: int, options: SamplerOptions = SamplerOptions(),
                        callback: Callable[[int, int, torch.Tensor], None] | None = None,
                        progress: bool = False) -> torch.Tensor:
        """(B, 3, S, S) in [-1, 1] for class indices ``labels``."""
        self.check_call(num_inference_steps, sampler, guidance_scale, seed, guidance_interval)
        y = torch.tensor(labels, dtype=torch.long, device=self.device)
        s = self.image_size
        generator, noise = self.noise((len(labels), self.model.config.channels, s, s), seed)
        null = self.model.label_encoder.null(len(labels), self.device)
        denoise = classifier_free_guidance(self.denoiser, y, null, guidance_scale, guidance_interval)
        return self.run_sampler(denoise, noise, generator, num_inference_steps, sampler, options, callback,
                                progress).clamp(-1, 1)

    @torch.no_grad()
    def __call__(self, prompt: str | Sequence[str], *, num_images: int = 1, num_inference_steps: int = 25,
                 sampler: str = "dpmsolver++", guidance_scale: float = 3.0,
                 guidance_interval: tuple[float, float] | None = None, seed: int = 0,
                 options: SamplerOptions = SamplerOptions(), callback: Callable[[int, int, torch.Tensor], None] | None = None,
                 progress: bool = False) -> PromptImagesOutput:
        """``num_images`` images per prompt (prompt-major), uint8 (S, S, 3) each."""
        check_int("num_images", num_images, 1, MAX_IMAGES)
        labels = [label for label in self.labels_for(prompt) for _ in range(num_images)]
        check_int("number of images", len(labels), 1, MAX_IMAGES)
        x = self.generate_tensor(labels, num_inference_steps=num_inference_steps, sampler=sampler,
                                 guidance_scale=guidance_scale, guidance_interval=guidance_interval, seed=seed,
                                 options=options, callback=callback, progress=progress)
        return PromptImagesOutput(list(to_uint8(x, None, False)), prompts=[self.prompts[i] for i in labels])

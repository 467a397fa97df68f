"""Diffusion super-resolution of a user's images (SR3, Saharia et al. 2021), with every core sampler.

>>> sr = SuperResolver.from_pretrained("data/checkpoints/sr-x4")
>>> out = sr(image="photo.png", scale=4, num_inference_steps=20, seed=0)   # path, PIL image or array
>>> out.images[0].shape                                                     # uint8 (4 H, 4 W, C)
>>> out.save("photo_x4.png")

The sampler runs on the normalised residual r = (x - up(y)) / residual_scale. Around the network the
generator binds, in order: the low-res condition and classifier-free guidance (``generators.core.guidance``)
per tile, the tiling (:mod:`.tiling`, one global sample whatever the image size), and the data-consistency
projection (:mod:`.degradation`): x_0 <- x_0 - A^+ (A x_0 - y) for the chosen degradation A, so the
output downsamples to the input whatever the sampler (DDNM, Wang et al. 2023, eq. 13).

A hybrid checkpoint (``SRNet.mean_net``, the shipped sr-x4) takes the residual over its regression estimate
R(y) instead of up(y): R(y) is computed once per call, per tile, and is also the condition image.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from conditioning.image import ImageCondition
from evaluation.superres import DEGRADATIONS, check_degradation
from generators.core.denoiser import DenoiseFn, VPDenoiser
from generators.core.guidance import classifier_free_guidance
from generators.core.noise import AntitheticNoise, antithetic as antithetic_pairs
from generators.core.pipeline import DiffusionConfig, DiffusionGenerator
from generators.core.sampling import SamplerOptions
from generators.core.validation import check_batch, check_finite, check_int

from .degradation import Degradation
from .inputs import InputImage, load_image, to_uint8, upscale_alpha
from .model import SRNet
from .output import SROutput
from .tiling import tiled_denoiser

DEFAULT_TILE_SIZE = 512       # high-res pixels per tile side; larger images are tiled
DEFAULT_TILE_OVERLAP = 64     # high-res pixels blended between neighbouring tiles
# Bound on the output size: the sampler keeps a few full-size float copies (about 10 x 4 bytes per
# pixel and channel), so 4096 x 4096 RGB stays under 4 GB; larger requests are refused up front.
MAX_OUTPUT_PIXELS = 4096 * 4096
MAX_SAMPLES = 64
# Alternating projections onto [-1, 1] and {x : A x = y} for the final image (Youla & Webb 1982): where
# the projection overshoots the range, a few rounds find an in-range image that still downsamples to y.
FINAL_PROJECTIONS = 10


DIHEDRAL = tuple((k, f) for k in range(4) for f in (False, True))  # quarter turns x horizontal flip


def dihedral(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """``x`` (..., H, W) turned by k quarter turns, then flipped left-right when ``flip``."""
    x = torch.rot90(x, k, (-2, -1))
    return x.flip(-1) if flip else x


def undo_dihedral(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """The inverse of :func:`dihedral`."""
    return torch.rot90(x.flip(-1) if flip else x, -k, (-2, -1))


class SuperResolver(DiffusionGenerator):
    """A trained super-resolution stage: ``sr(image=..., scale=4)`` and :meth:`upscale_tensor`."""

    model_class = SRNet
    store_training_weights = False  # model.safetensors holds the EMA weights (one copy: smaller folders)

    @property
    def storage_dtype(self) -> torch.dtype:  # type: ignore[override]
        """How the folder stores the weights (they load back as float32): float16, or for a hybrid (two
        networks) weight-only int8 with a scale per 32 weights, so the shipped sr-x4 stays a few MB."""
        return torch.int8 if self.model.config.mean_config else torch.float16

    def __init__(self, model: SRNet, diffusion: DiffusionConfig, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__(model, diffusion, device, dtype)
        self.denoiser = VPDenoiser(self._net, self.schedule, diffusion.prediction_type)

    @property
    def scale(self) -> int:
        return int(self.model.config.scale)

    @property
    def supported_scales(self) -> tuple[int, ...]:
        return (self.scale,)

    @property
    def size_multiple(self) -> int:
        return self.model.size_multiple

    def _padded(self, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor,
                image: torch.Tensor) -> torch.Tensor:
        """``fn(x, image)`` on any size: replicate-pad both to the size multiple, run in the model dtype, crop back."""
        h, w = x.shape[-2:]
        m = self.size_multiple
        pad = (0, -w % m, 0, -h % m)
        if any(pad):
            x, image = F.pad(x, pad, mode="replicate"), F.pad(image, pad, mode="replicate")
        return fn(x.to(self.dtype), image.to(self.dtype))[..., :h, :w].float()

    def _net(self, x: torch.Tensor, t: torch.Tensor, cond: ImageCondition) -> torch.Tensor:
        """The network on any size."""
        return self._padded(lambda x_, image: self.model(x_, t.to(self.dtype), ImageCondition(image, cond.record)),
                            x, cond.image)

    def _mean_image(self, upsampled: torch.Tensor, levels: torch.Tensor, kind: int | None, tile_size: int,
                    tile_overlap: int, self_ensemble: bool = True) -> torch.Tensor:
        """R(y) of the checkpoint's regression network, on overlapping tiles blended like the denoiser's.

        ``self_ensemble``: each tile's estimate is the mean over the 8 flips and quarter turns of the tile,
        each undone after the network (geometric self-ensemble, Lim et al. 2017, EDSR+; both degradations
        commute with these transforms, so every one is an equally valid view of the input).
        """
        mean_net = self.model.mean_net
        record = mean_net.conditioner.record(levels.to(self.device), kind)
        s = float(mean_net.config.residual_scale)

        def regress(image: torch.Tensor) -> torch.Tensor:
            return self._padded(lambda _, im: mean_net.regress(ImageCondition(im, record)), image, image)

        def region_mean(x: torch.Tensor, sigma: torch.Tensor, region: tuple[slice, slice]) -> torch.Tensor:
            if not self_ensemble:
                return x + s * regress(x)
            views = [undo_dihedral(regress(dihedral(x, k, f)), k, f) for k, f in DIHEDRAL]
            return x + s * torch.stack(views).mean(0)

        tiled = tiled_denoiser(region_mean, tuple(upsampled.shape[-2:]), tile_size, tile_overlap, self.size_multiple)
        return tiled(upsampled, torch.zeros(upsampled.shape[0], device=upsampled.device)).clamp(-1, 1)

    # ------------------------------------------------------------------ checks
    def check_scale(self, scale: int | None) -> int:
        """The checkpoint's scale when None; otherwise ``scale`` must be one it supports."""
        if scale is None:
            return self.scale
        if isinstance(scale, bool) or not isinstance(scale, int) or scale not in self.supported_scales:
            raise ValueError(f"scale={scale!r} is not supported by this checkpoint; supported scales: "
                             f"{', '.join(map(str, self.supported_scales))}")
        return scale

    def check_options(self, guidance_scale: float, degradation: str, aug_level: float | None, tile_size: int,
                      tile_overlap: int) -> None:
        """The family's own keywords; each error names its parameter."""
        check_degradation(degradation)
        if guidance_scale != 1.0 and self.diffusion.cond_drop_prob == 0.0:
            raise ValueError("guidance_scale must be 1.0 for this checkpoint: it was trained without condition "
                             "dropout (cond_drop_prob=0), so it has no unconditional branch to guide against")
        if aug_level is not None:
            check_finite("aug_level", aug_level, 0.0, 1.0)
        m = self.size_multiple
        check_int("tile_size", tile_size, 2 * m)
        check_int("tile_overlap", tile_overlap, 0, tile_size - m)
        if tile_size % m or tile_overlap % m:
            raise ValueError(f"tile_size and tile_overlap must be multiples of {m} for this network; "
                             f"got {tile_size} and {tile_overlap}")

    # ---------------------------------------------------------------- denoiser
    def consistent_denoiser(self, low_res: torch.Tensor, degradation: str | None, guidance_scale: float,
                            guidance_interval: tuple[float, float] | None, aug_level: float | None,
                            tile_size: int, tile_overlap: int, generator: torch.Generator,
                            self_ensemble: bool = True) -> tuple[DenoiseFn, Callable[[torch.Tensor], torch.Tensor]]:
        """D(r, sigma) on the residual with condition, guidance, tiling and projection bound; and r -> image.

        ``degradation=None`` skips the projection (an ablation: the output is then not held to the input).
        ``self_ensemble``: a hybrid checkpoint's R(y) averaged over the 8 dihedral views (no effect otherwise).
        """
        b, _, h, w = low_res.shape
        size = (h * self.scale, w * self.scale)
        conditioner = self.model.conditioner
        kind = DEGRADATIONS.index(degradation or "bicubic") if conditioner.config.num_degradations else None
        if self.model.mean_net is None:
            cond = conditioner(low_res, size, aug_level=aug_level, generator=generator, degradation=kind)  # augmented
            base = conditioner.upsample(low_res, size)  # (B, C, H, W), clean
        else:  # the residual is over the regression estimate R(y), which is also the condition image
            levels = conditioner.levels(b, aug_level, generator, low_res.device)
            cond = conditioner(low_res, size, aug_level=levels, generator=generator, degradation=kind)
            base = self._mean_image(cond.image, levels, kind, tile_size, tile_overlap, self_ensemble)
            cond = ImageCondition(base, cond.record)
        null = conditioner.null(b, low_res.device) if guidance_scale != 1.0 else None
        operator = Degradation(degradation, self.scale, size, low_res.device) if degradation else None
        s = float(self.model.config.residual_scale)

        def region_denoise(x: torch.Tensor, sigma: torch.Tensor, region: tuple[slice, slice]) -> torch.Tensor:
            c = ImageCondition(cond.image[..., region[0], region[1]], cond.record)
            n = ImageCondition(torch.zeros_like(c.image), null) if null is not None else None
            return classifier_free_guidance(self.denoiser, c, n, guidance_scale, guidance_interval)(x, sigma)

        raw = tiled_denoiser(region_denoise, size, tile_size, tile_overlap, self.size_multiple)

        def to_image(r: torch.Tensor, rounds: int = 1) -> torch.Tensor:
            x = base + s * r
            for _ in range(rounds if operator is not None else 0):  # alternating projections (POCS)
                x = operator.project(x.clamp(-1, 1), low_res)
            return x

        def denoise(r: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            return (to_image(raw(r, sigma)) - base) / s

        return denoise, lambda r: to_image(r, FINAL_PROJECTIONS).clamp(-1, 1)

    @torch.no_grad()
    def upscale_tensor(self, low_res: torch.Tensor, *, num_inference_steps: int = 20, sampler: str = "dpmsolver++",
                       guidance_scale: float = 1.0, guidance_interval: tuple[float, float] | None = None,
                       seed: int = 0, degradation: str | None = "bicubic", aug_level: float | None = None,
                       tile_size: int = DEFAULT_TILE_SIZE, tile_overlap: int = DEFAULT_TILE_OVERLAP,
                       options: SamplerOptions = SamplerOptions(), callback: Any = None,
                       progress: bool = False, antithetic: bool = False, self_ensemble: bool = True) -> torch.Tensor:
        """(B, 3, h, w) in [-1, 1] -> (B, 3, h * scale, w * scale) in [-1, 1]; the keywords as in ``__call__``.

        ``antithetic``: batch item i + ceil(B / 2) mirrors item i: minus its initial noise and, for the
        stochastic samplers, minus its noise at every step (pairs within the batch).
        """
        self.check_call(num_inference_steps, sampler, guidance_scale, seed, guidance_interval)
        self.check_options(guidance_scale, degradation or "bicubic", aug_level, tile_size, tile_overlap)
        if low_res.ndim != 4 or low_res.shape[1] != self.model.config.channels:
            raise ValueError(f"low_res must be (B, {self.model.config.channels}, h, w), got {tuple(low_res.shape)}")
        b, c, h, w = low_res.shape
        pixels = h * w * self.scale**2
        if pixels > MAX_OUTPUT_PIXELS:
            raise ValueError(f"the output would have {pixels / 1e6:.1f} megapixels; at most {MAX_OUTPUT_PIXELS / 1e6:.1f} "
                             f"per image (e.g. {int(MAX_OUTPUT_PIXELS ** 0.5) // self.scale} px square in); "
                             "crop or downscale the input")
        low_res = low_res.float().to(self.device)
        generator, noise = self.noise((b, c, h * self.scale, w * self.scale), seed)
        if antithetic:
            noise = antithetic_pairs(noise)
        denoise, to_image = self.consistent_denoiser(low_res, degradation, guidance_scale, guidance_interval,
                                                     aug_level, tile_size, tile_overlap, generator, self_ensemble)
        source = AntitheticNoise(generator) if antithetic else generator  # antithetic paths, not only starts
        r = self.run_sampler(denoise, noise, source, num_inference_steps, sampler, options, callback, progress)
        return to_image(r)

    @torch.no_grad()
    def __call__(self, image: Any = None, *, scale: int | None = None, num_inference_steps: int = 20,
                 sampler: str = "dpmsolver++", guidance_scale: float = 1.0,
                 guidance_interval: tuple[float, float] | None = None, seed: int = 0, num_samples: int = 1,
                 degradation: str = "bicubic", aug_level: float | None = None, tile_size: int = DEFAULT_TILE_SIZE,
                 tile_overlap: int = DEFAULT_TILE_OVERLAP, options: SamplerOptions = SamplerOptions(),
                 callback: Callable[[int, int, torch.Tensor], None] | None = None,
                 progress: bool = False, antithetic: bool = False, self_ensemble: bool = True) -> SROutput:
        """Upscale one image (or a list of images) by ``scale``.

        Args:
            image: a file path, a PIL image, a uint8 / uint16 array (H, W[, C]), or a list of these.
                Grey and RGBA inputs give grey and RGBA outputs; alpha is upscaled by bicubic interpolation.
            scale: the factor; must be one the checkpoint supports (None: the checkpoint's).
            num_inference_steps: sampler steps.
            sampler: any name in ``generators.core.sampling.SAMPLERS``.
            guidance_scale: classifier-free guidance w on the low-res condition (1 = none).
            guidance_interval: (sigma_lo, sigma_hi) where guidance applies; None for every level.
            seed: fixes the result; input i uses ``seed + i``.
            num_samples: samples per input (their mean estimates the posterior mean).
            antithetic: draw the samples of an input in pairs of mirror-image paths: opposite initial
                noise (eps, -eps) and, for the stochastic samplers (ddpm, sde-vp, ...), opposite noise at
                every step (``generators.core.noise.AntitheticNoise``). Each sample is still an exact draw from the model, but a pair's deviations from the
                posterior mean are strongly negatively correlated and largely cancel, so the mean of
                the samples estimates the posterior mean with far less variance (antithetic variates,
                Hammersley & Morton 1956; for diffusion models, Jia et al. 2025, arXiv 2506.06185).
                Off by default, so that a seed keeps giving the samples it gave before.
            self_ensemble: for a hybrid checkpoint (a regression network inside), average its estimate
                R(y) over the 8 flips and quarter turns of the input (geometric self-ensemble, Lim et al.
                2017): 8 regression passes per image instead of 1. No effect on other checkpoints.
            degradation: how the input was made from the high-res image, "bicubic" or "area";
                the output is projected so that this downsampling of it gives back the input, and a
                checkpoint trained with the degradation condition is told which it is.
            aug_level: noise-conditioning augmentation level in [0, 1] (None: the checkpoint's).
            tile_size / tile_overlap: high-res tile side and blended overlap (multiples of the
                network's stride); images larger than a tile are tiled, without seams.
            options, callback, progress: sampler knobs, a per-step callback and a progress bar.
        """
        self.check_scale(scale)
        check_int("num_samples", num_samples, 1, MAX_SAMPLES)
        images = list(image) if isinstance(image, (list, tuple)) else [image]
        if image is None or not images:
            raise ValueError("image is required: a file path, a PIL image or a uint8 array (or a list of them)")
        check_batch("image", len(images), 256)
        inputs: list[InputImage] = [load_image(img) for img in images]
        outputs = []
        for i, item in enumerate(inputs):
            x = self.upscale_tensor(item.rgb.expand(num_samples, -1, -1, -1), num_inference_steps=num_inference_steps,
                                    sampler=sampler, guidance_scale=guidance_scale, guidance_interval=guidance_interval,
                                    seed=seed + i, degradation=degradation, aug_level=aug_level, tile_size=tile_size,
                                    tile_overlap=tile_overlap, options=options, callback=callback, progress=progress,
                                    antithetic=antithetic, self_ensemble=self_ensemble)
            alpha = upscale_alpha(item.alpha, x.shape[-2:]) if item.alpha is not None else None
            outputs.extend(to_uint8(x, alpha, item.grey))
        return SROutput(outputs, inputs=[item.to_uint8() for item in inputs], scale=self.scale,
                        num_samples=num_samples)


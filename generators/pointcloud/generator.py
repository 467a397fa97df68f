"""LION-style point-cloud generation (Zeng et al. 2022): global latent -> latent points -> points.

>>> gen = PointCloudGenerator.from_pretrained("data/checkpoints/pointcloud-shapes")
>>> out = gen(prompt="a chair with four legs", num_points=2048, num_inference_steps=25, seed=0)  # or label="chair"
>>> out.points.shape              # float32 (1, 2048, 3)
>>> out.to_mesh()[0].export("chair.glb")

Sampling (LION sec. 3.2): z ~ p_theta(z | y) by any core sampler with classifier-free guidance on the
label and/or prompt, then h ~ p_psi(h | z) by the same sampler, then x = decoder(h, z). The folder
is one contract folder whose ``config.json`` describes :class:`~generators.pointcloud.model.LionModel`
(VAE and both priors) and whose ``model.safetensors`` holds their EMA weights.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from generators.core.denoiser import VPDenoiser, bind
from generators.core.discrete import DISCRETE_SAMPLERS, sample_discrete
from generators.core.guidance import classifier_free_guidance
from generators.core.pipeline import DiffusionConfig, DiffusionGenerator
from generators.core.sampling import SamplerOptions
from generators.core.validation import check_batch, check_finite, check_int

from .data import check_points, normalize
from .model import LionModel
from .output import PointCloudOutput
from .refine import RefineOptions

MAX_POINTS = 100_000
MAX_SHAPES = 256


def _as_list(value: Any) -> list | None:
    if value is None:
        return None
    if isinstance(value, (str, int, np.integer)):
        return [value]
    return list(value)


def voxels_to_points(voxels: np.ndarray) -> np.ndarray:
    """Centres of the surface voxels (occupied, with an empty 6-neighbour) of a (D, H, W) grid."""
    from scipy import ndimage

    occ = np.asarray(voxels).astype(bool)
    if occ.ndim != 3 or not occ.any():
        raise ValueError("voxels must be a non-empty 3-D occupancy grid (D, H, W)")
    surface = occ & ~ndimage.binary_erosion(occ, border_value=0)
    return np.argwhere(surface).astype(np.float32)


class PointCloudGenerator(DiffusionGenerator):
    """A trained LION model: generation, interpolation and guided synthesis from coarse inputs."""

    model_class = LionModel
    store_training_weights = False
    storage_dtype = torch.float16  # the shipped folder stays ~5 MB (10 in float32); weights load back as float32

    def __init__(self, model: LionModel, diffusion: DiffusionConfig, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        config = model.config
        if diffusion.prediction_type != "epsilon" or (diffusion.beta_schedule, diffusion.num_train_timesteps) != (
                config.beta_schedule, config.num_train_timesteps):
            raise ValueError(
                f"diffusion.json ({diffusion.beta_schedule}, {diffusion.num_train_timesteps} steps, "
                f"{diffusion.prediction_type}) must match the priors' epsilon networks ({config.beta_schedule}, "
                f"{config.num_train_timesteps} steps); use the diffusion.json saved with these weights")
        super().__init__(model, diffusion, device, dtype)
        self.global_denoiser = VPDenoiser(self.model.global_prior, self.schedule, diffusion.prediction_type)
        self.point_denoiser = VPDenoiser(self.model.point_prior, self.schedule, diffusion.prediction_type)

    @property
    def categories(self) -> tuple[str, ...]:
        return self.model.categories

    @property
    def num_points(self) -> int:
        """Points per training shape (``__call__`` may ask for more or fewer)."""
        return int(self.model.config.num_points)

    # --------------------------------------------------------------- conditions
    def label_ids(self, labels: Sequence[str | int]) -> torch.Tensor:
        """Category names or indices -> (B,) long; unknown ones raise a ValueError listing the categories."""
        out = []
        for lab in labels:
            if isinstance(lab, str):
                if lab not in self.categories:
                    raise ValueError(f"label must be one of {self.categories}, got {lab!r}")
                out.append(self.categories.index(lab))
            elif isinstance(lab, (int, np.integer)) and not isinstance(lab, bool) and 0 <= int(lab) < len(self.categories):
                out.append(int(lab))
            else:
                raise ValueError(f"label must be a category name {self.categories} or an index below {len(self.categories)}, got {lab!r}")
        return torch.tensor(out, dtype=torch.long, device=self.device)

    def conditions(self, label: Any = None, prompt: Any = None, num_shapes: int | None = None) -> tuple[dict, dict, int]:
        """(cond, null cond, batch size) for the global prior; a missing label or prompt is the learned null."""
        labels, prompts = _as_list(label), _as_list(prompt)
        sizes = {len(x) for x in (labels, prompts) if x is not None}
        if len(sizes) > 1:
            raise ValueError(f"label and prompt must have the same length, got {len(labels)} and {len(prompts)}")
        b = sizes.pop() if sizes else check_int("num_shapes", 1 if num_shapes is None else num_shapes, 1)
        if num_shapes is not None and num_shapes != b:
            raise ValueError(f"num_shapes={num_shapes} differs from the {b} labels/prompts given; omit num_shapes")
        check_batch("label/prompt", b, MAX_SHAPES)
        net = self.model.global_prior
        null = net.null_condition(b, self.device)
        cond = dict(null)
        if labels is not None:
            cond["labels"] = self.label_ids(labels)
        if prompts is not None:
            if net.text_encoder is None:
                raise ValueError("this checkpoint has no text prior; pass label=... instead of prompt=...")
            if any(not isinstance(p, str) or not p.strip() for p in prompts):
                raise ValueError("prompt must be a non-empty string or a list of them")
            cond["text"] = net.text_encoder(prompts)
        return cond, null, b

    # ----------------------------------------------------------------- sampling
    def _decode(self, h: torch.Tensor, z: torch.Tensor) -> np.ndarray:
        return self.model.decode_scaled(h, z).float().cpu().numpy().astype(np.float32)

    @torch.no_grad()
    def __call__(
        self,
        label: str | int | Sequence[str | int] | None = None,
        prompt: str | Sequence[str] | None = None,
        *,
        num_shapes: int | None = None,
        num_points: int = 2048,
        num_inference_steps: int = 25,
        sampler: str = "dpmsolver++",
        guidance_scale: float = 2.0,
        guidance_interval: tuple[float, float] | None = None,
        seed: int = 0,
        options: SamplerOptions = SamplerOptions(),
        progress: bool = False,
        callback: Callable[[int, int, torch.Tensor], None] | None = None,
    ) -> PointCloudOutput:
        """Generate one cloud per label and/or prompt (or ``num_shapes`` unconditional ones).

        Args:
            label: category name(s) or index(es); prompt: text(s). Given both, they pair up one to one.
            num_shapes: how many shapes when neither label nor prompt is given.
            num_points: points per cloud; the networks act per point (with a kNN graph when ``local_k > 0``),
                so any count works.
            num_inference_steps, sampler, options: as for every family (``generators.core.sampling``).
            guidance_scale: classifier-free guidance w on the global prior (0 unconditional, 1 no guidance).
            guidance_interval: (sigma_lo, sigma_hi) where guidance applies; None for every level.
            seed: makes the result reproducible.
            progress, callback: a progress bar and an (i, n, x) hook for both sampling stages.
        """
        self.check_call(num_inference_steps, sampler, guidance_scale, seed, guidance_interval)
        num_points = check_int("num_points", num_points, 1, MAX_POINTS)
        cond, null, b = self.conditions(label, prompt, num_shapes)
        generator, noise = self.noise((b, int(self.model.vae.config.latent_dim)), seed)
        guided = classifier_free_guidance(self.global_denoiser, cond, null, guidance_scale, guidance_interval)
        z = self.run_sampler(guided, noise, generator, num_inference_steps, sampler, options, callback, progress)
        h_noise = torch.randn((b, num_points, self.model.vae.point_dim), generator=generator).to(self.device)
        h = self.run_sampler(bind(self.point_denoiser, z), h_noise, generator, num_inference_steps, sampler, options,
                             callback, progress)
        names = [self.categories[i] for i in cond["labels"].tolist()] if label is not None else [None] * b
        prompts = _as_list(prompt) or [None] * b
        return PointCloudOutput(self._decode(h, z), names, prompts)

    @torch.no_grad()
    def encode(self, points: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled posterior means (z (1, Dz), h (1, N, 3 + d)) of one normalised cloud (N, 3)."""
        x = torch.as_tensor(points, dtype=torch.float32, device=self.device)[None]
        z_mu, _, h_mu, _ = self.model.vae.encode(x)
        return z_mu * self.model.z_scale, h_mu * self.model.h_scale

    @torch.no_grad()
    def reconstruct(self, clouds: np.ndarray, *, prior_points: bool = False, posterior_sample: bool = False,
                    num_inference_steps: int = 25, sampler: str = "dpmsolver++", seed: int = 0) -> PointCloudOutput:
        """Normalised clouds (B, N, 3) through the VAE: encoded to posterior means and decoded.

        With ``prior_points`` only the global latent is encoded and the point latents come from the point
        prior given it (LION's second stage alone). Against held-out shapes the two tell which part of the
        model a generated set's distance comes from: the VAE (its reconstructions already differ), the point
        prior (given a real shape's z it drifts), or the global prior (the rest).
        """
        arr = np.asarray(clouds, dtype=np.float32)
        if arr.ndim != 3 or arr.shape[-1] != 3 or not np.isfinite(arr).all():
            raise ValueError(f"clouds must be finite (B, N, 3), got shape {arr.shape}")
        check_batch("clouds", len(arr), MAX_SHAPES)
        if prior_points and posterior_sample:
            raise ValueError("prior_points and posterior_sample both choose the point latents; pass one of them")
        x = torch.from_numpy(arr).to(self.device)
        z_mu, _, h_mu, h_logvar = self.model.vae.encode(x)
        if posterior_sample:
            h_mu = h_mu + (0.5 * h_logvar).exp() * self.noise(tuple(h_mu.shape), seed)[1].to(h_mu)
        z, h = z_mu * self.model.z_scale, h_mu * self.model.h_scale
        if prior_points:
            self.check_call(num_inference_steps, sampler, 1.0, seed)
            generator, h_noise = self.noise(tuple(h.shape), seed)
            h = self.run_sampler(bind(self.point_denoiser, z), h_noise, generator, num_inference_steps, sampler)
        return PointCloudOutput(self._decode(h, z), [None] * len(arr), [None] * len(arr))

    @torch.no_grad()
    def interpolate(self, a: np.ndarray, b: np.ndarray, steps: int = 8, *, num_points: int = 2048,
                    num_inference_steps: int = 25, sampler: str = "ddim", seed: int = 0) -> PointCloudOutput:
        """Shapes along the line between the global latents of clouds ``a`` and ``b`` (LION sec. 4.4).

        The point latents come from the point prior with one shared noise for every step and a
        deterministic sampler, so consecutive shapes differ only through the global latent.
        """
        steps = check_int("steps", steps, 2, MAX_SHAPES)
        self.check_call(num_inference_steps, sampler, 1.0, seed)
        za, _ = self.encode(normalize(check_points(a, "a", num_points=self.num_points, seed=seed))[0])
        zb, _ = self.encode(normalize(check_points(b, "b", num_points=self.num_points, seed=seed))[0])
        w = torch.linspace(0, 1, steps, device=self.device)[:, None]
        z = (1 - w) * za + w * zb  # (steps, Dz)
        generator, h_noise = self.noise((1, num_points, self.model.vae.point_dim), seed)
        h = self.run_sampler(bind(self.point_denoiser, z), h_noise.expand(steps, -1, -1).contiguous(), generator,
                             num_inference_steps, sampler)
        return PointCloudOutput(self._decode(h, z), [None] * steps, [None] * steps)

    @torch.no_grad()
    def from_coarse(self, coarse: np.ndarray, strength: float = 0.5, *, label: str | int | None = None,
                    num_points: int = 2048, num_inference_steps: int = 50, sampler: str = "ddim",
                    guidance_scale: float = 1.0, seed: int = 0) -> PointCloudOutput:
        """Guided synthesis from a voxel grid (D, H, W) or a partial cloud (N, 3): SDEdit (Meng et al. 2022)
        on both latents - encode, noise to ``strength``, denoise - then decode; returned in the input's frame."""
        strength = check_finite("strength", strength, 0.0, 1.0)
        if strength == 0.0:
            raise ValueError("strength must be in (0, 1], got 0")
        if sampler not in DISCRETE_SAMPLERS:
            raise ValueError(f"from_coarse runs on the discrete samplers {DISCRETE_SAMPLERS}; got sampler={sampler!r}")
        self.check_call(num_inference_steps, sampler, guidance_scale, seed)
        arr = np.asarray(coarse)
        pts = voxels_to_points(arr) if arr.ndim == 3 else arr
        unit, norm = normalize(check_points(pts, "coarse", num_points=num_points, seed=seed))
        z0, h0 = self.encode(unit)
        cond, null, _ = self.conditions(label, None, 1)
        guided = classifier_free_guidance(self.global_denoiser, cond, null, guidance_scale)
        generator, z_noise = self.noise(tuple(z0.shape), seed)
        z = sample_discrete(sampler, guided, z_noise, self.schedule, num_inference_steps, generator,
                            start=z0, strength=strength)
        h_noise = torch.randn(h0.shape, generator=generator).to(self.device)
        h = sample_discrete(sampler, bind(self.point_denoiser, z), h_noise, self.schedule, num_inference_steps,
                            generator, start=h0, strength=strength)
        names = [self.categories[int(cond["labels"][0])]] if label is not None else [None]
        return PointCloudOutput(norm.inverse(self._decode(h, z)[0])[None], names, [None], RefineOptions())

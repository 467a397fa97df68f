"""Edge map -> digit translation: a ControlNet adapter on the frozen class-conditional digits model.

The base (``data/checkpoints/image-digits``) stays locked; :class:`conditioning.control.ControlNetAdapter`
(Zhang et al. 2023) learns to steer it with a Sobel edge map of the target digit. Labels are
replaced by the null label for half of the training samples, as ControlNet replaces half of
its prompts by empty strings (Zhang et al. 2023, sec. 3.3), so the adapter works from edges
alone and together with a label.

>>> gen = ControlNetImageGenerator.from_pretrained("data/checkpoints/image-controlnet-edges")
>>> out = gen(edge_map(images), seed=0)            # edges (B, 1, 16, 16) in {0, 1}
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from conditioning.control import ControlNetAdapter
from generators.core.checkpoint import CheckpointError, load_model, published_folder, read_json
from generators.core.denoiser import VPDenoiser
from generators.core.guidance import classifier_free_guidance
from generators.core.losses import DiffusionLoss
from generators.core.pipeline import DiffusionGenerator
from generators.core.sampling import SamplerOptions
from generators.core.training import TrainConfig, TrainResult, seeded, train, write_train_record
from generators.core.validation import check_finite

from .controlled_unet import ControlledUNet
from .data import from_uint8, load_digits_split, to_uint8
from .generator import ImageGenerator, ImageOutput, _check_labels

CONTROL_CONFIG = "control.json"
EDGE_THRESHOLD = 0.2
ROOT = Path(__file__).resolve().parents[2]


def edge_map(images: torch.Tensor, threshold: float = EDGE_THRESHOLD) -> torch.Tensor:
    """Binary edges {0, 1} (B, 1, H, W): Sobel gradient magnitude of the ink (x + 1) / 2, kernels / 8, > threshold."""
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images must be (B, 1, H, W) in [-1, 1], got {tuple(images.shape)}")
    ink = (images.float() + 1) / 2
    k = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=images.device) / 8
    padded = F.pad(ink, (1, 1, 1, 1), mode="replicate")
    gx = F.conv2d(padded, k.view(1, 1, 3, 3))
    gy = F.conv2d(padded, k.t().reshape(1, 1, 3, 3))
    return ((gx**2 + gy**2).sqrt() > threshold).float()


def edge_f1(predicted: torch.Tensor, target: torch.Tensor, tolerance: int = 0) -> np.ndarray:
    """Per-image F1 between binary edge maps (B, 1, H, W); a match may be ``tolerance`` pixels away.

    Precision = |P ∩ dilate(T)| / |P|, recall = |T ∩ dilate(P)| / |T| (the BSDS boundary
    benchmark's tolerance matching, Martin et al. 2004, approximated by dilation).
    """
    if predicted.shape != target.shape:
        raise ValueError(f"predicted {tuple(predicted.shape)} and target {tuple(target.shape)} edge maps differ in shape")
    p, t = predicted.float(), target.float()
    if tolerance > 0:
        k = 2 * tolerance + 1
        p_d, t_d = F.max_pool2d(p, k, 1, tolerance), F.max_pool2d(t, k, 1, tolerance)
    else:
        p_d, t_d = p, t
    precision = (p * t_d).flatten(1).sum(1) / p.flatten(1).sum(1).clamp(min=1)
    recall = (t * p_d).flatten(1).sum(1) / t.flatten(1).sum(1).clamp(min=1)
    return (2 * precision * recall / (precision + recall).clamp(min=1e-8)).numpy()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _resolve_base(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.is_absolute() and not p.exists() and (ROOT / p).exists():
        p = ROOT / p
    return p


class ControlNetImageGenerator(DiffusionGenerator):
    """The frozen digits generator steered by an edge-map ControlNet adapter.

    The folder holds the adapter (config.json + model.safetensors with its EMA weights) and
    ``control.json``, which names the base checkpoint and the sha256 of the base weights it was
    trained on; the base's diffusion config is the generator's.
    """

    model_class = ControlNetAdapter
    store_training_weights = False

    def __init__(self, base: ImageGenerator, adapter: ControlNetAdapter, control: dict[str, Any] | None = None) -> None:
        super().__init__(adapter, base.diffusion, base.device, base.dtype)
        self.base = base
        self.adapter = self.model
        self.control = dict(control or {"control": "edges", "edge_threshold": EDGE_THRESHOLD})
        self.edge_threshold = float(self.control.get("edge_threshold", EDGE_THRESHOLD))
        self.net = ControlledUNet(base.model.unet, self.adapter, base.model.label_encoder).eval()
        self.denoiser = VPDenoiser(self.net, base.schedule, base.diffusion.prediction_type, clip_x0=1.0)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *, device: str | torch.device = "cpu",
                        dtype: torch.dtype = torch.float32, use_ema: bool = True,
                        base_checkpoint: str | os.PathLike | None = None) -> "ControlNetImageGenerator":
        """Load the adapter folder and the base it names in control.json (or ``base_checkpoint``)."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise CheckpointError(f"checkpoint {path} is a file; pass the adapter folder that holds control.json")
        if not path.is_dir():
            raise CheckpointError(f"checkpoint folder {path} does not exist; train one or pass an existing folder")
        path = published_folder(path)
        control = read_json(path / CONTROL_CONFIG, "control config")
        if not isinstance(control, dict) or not (base_checkpoint or control.get("base_checkpoint")):
            raise CheckpointError(f"{path / CONTROL_CONFIG} must be a JSON object naming base_checkpoint")
        base_path = _resolve_base(base_checkpoint or control["base_checkpoint"])
        base = ImageGenerator.from_pretrained(base_path, device=device, dtype=dtype)
        weights = base_path / "ema.safetensors"
        if control.get("base_ema_sha256") and weights.is_file() and _sha256(weights) != control["base_ema_sha256"]:
            warnings.warn(f"the base at {base_path} is not the one this adapter was trained on; retrain the adapter "
                          "for best edge fidelity", stacklevel=2)
        adapter = load_model(path, ControlNetAdapter, use_ema=use_ema)
        return cls(base, adapter, control)

    def sidecars(self) -> dict[str, dict[str, Any]]:
        return {CONTROL_CONFIG: self.control}

    def edges_from_images(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        x = images if isinstance(images, torch.Tensor) else from_uint8(images)
        return edge_map(x, self.edge_threshold)

    def _check_control(self, control: np.ndarray | torch.Tensor) -> torch.Tensor:
        c = torch.as_tensor(np.asarray(control)) if not isinstance(control, torch.Tensor) else control
        if c.ndim == 3:
            c = c[:, None]
        size = self.base.image_size
        if c.ndim != 4 or c.shape[1] != 1 or c.shape[-2:] != (size, size):
            raise ValueError(f"control must be edge maps (B, {size}, {size}) or (B, 1, {size}, {size}); got {tuple(c.shape)}")
        if c.dtype == torch.uint8:
            c = c.float() / 255.0
        return (c.float() > 0.5).float().to(self.device)

    @torch.no_grad()
    def __call__(self, control: np.ndarray | torch.Tensor, *, labels: Sequence[int] | None = None,
                 num_inference_steps: int = 25, sampler: str = "dpmsolver++", guidance_scale: float = 3.0,
                 guidance_interval: tuple[float, float] | None = None, seed: int = 0,
                 conditioning_scale: float = 1.0, options: SamplerOptions = SamplerOptions(), progress: bool = False,
                 callback: Callable[[int, int, torch.Tensor], None] | None = None) -> ImageOutput:
        """One digit per edge map; with ``labels``, classifier-free guidance over the label too.

        Args:
            control: binary edge maps, uint8 (0/255) or float (0/1), (B, H, W) or (B, 1, H, W).
            labels: optional digits, one per map; without them the base gets the null label.
            conditioning_scale: multiplies the adapter's residuals (0 = the base alone).
            The other keywords are the contract's (``generators/README.md``).
        """
        self.check_call(num_inference_steps, sampler, guidance_scale, seed, guidance_interval)
        scale = check_finite("conditioning_scale", conditioning_scale, 0.0, 100.0)
        c = self._check_control(control)
        b, null = len(c), self.base.num_classes
        scales = torch.full((b,), scale, device=self.device)
        null_labels = torch.full((b,), null, dtype=torch.long, device=self.device)
        uncond = {"control": c, "labels": null_labels, "scale": scales}
        if labels is None:
            denoise = classifier_free_guidance(self.denoiser, uncond, None, 1.0)
        else:
            y = _check_labels(labels, null).to(self.device)
            if y.shape != (b,):
                raise ValueError(f"labels must be {b} digits in 0..{null - 1} (one per control map), got {list(labels)}")
            denoise = classifier_free_guidance(self.denoiser, {"control": c, "labels": y, "scale": scales}, uncond,
                                               guidance_scale, guidance_interval)
        generator, noise = self.noise((b, self.base.channels, self.base.image_size, self.base.image_size), seed)
        x = self.run_sampler(denoise, noise, generator, num_inference_steps, sampler, options, callback, progress)
        return ImageOutput(to_uint8(x), [] if labels is None else [int(v) for v in labels])


class ControlNetLoss:
    """L_simple of the controlled U-Net on (image, edge_map(image)), labels nulled with probability p."""

    def __init__(self, loss: DiffusionLoss, null_label: int, label_drop_prob: float, edge_threshold: float) -> None:
        self.loss, self.null_label, self.p, self.threshold = loss, null_label, label_drop_prob, edge_threshold

    def __call__(self, net: nn.Module, x0: torch.Tensor, labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        drop = (torch.rand(labels.shape, generator=generator) < self.p).to(labels.device)
        labels = torch.where(drop, torch.full_like(labels, self.null_label), labels)
        return self.loss(net, x0, {"control": edge_map(x0, self.threshold), "labels": labels}, generator=generator)


def train_controlnet(
    output_dir: str | os.PathLike,
    base_checkpoint: str | os.PathLike,
    max_steps: int = 1500,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    label_drop_prob: float = 0.5,
    seed: int = 0,
    checkpoint_every: int = 250,
    command: str = "",
    progress: bool = True,
) -> TrainResult:
    """Train an edge-map adapter on the digits train split; the base's weights never change.

    ``output_dir`` gets config.json + model.safetensors (the adapter's EMA weights) + control.json.
    """
    if not 0.0 <= label_drop_prob <= 1.0:
        raise ValueError(f"label_drop_prob must be in [0, 1], got {label_drop_prob}")
    base_path = _resolve_base(base_checkpoint)
    base = ImageGenerator.from_pretrained(base_path)
    with seeded(seed):
        adapter = ControlNetAdapter.from_unet(base.model.unet)
    net = ControlledUNet(base.model.unet, adapter, base.model.label_encoder)
    data = load_digits_split("train", base.image_size)
    loss = ControlNetLoss(DiffusionLoss(base.schedule, base.diffusion.prediction_type), base.num_classes,
                          label_drop_prob, EDGE_THRESHOLD)
    config = TrainConfig(max_steps=max_steps, batch_size=batch_size, learning_rate=learning_rate,
                         warmup_steps=min(100, max(1, max_steps // 10)), ema_decay=0.995,
                         checkpoint_every=checkpoint_every, seed=seed)
    output_dir = Path(output_dir)
    ema_file = base_path / "ema.safetensors"
    base_ref = base_path.resolve()
    base_ref = str(base_ref.relative_to(ROOT)) if base_ref.is_relative_to(ROOT) else str(base_ref)
    control = {"base_checkpoint": base_ref, "control": "edges", "edge_threshold": EDGE_THRESHOLD,
               "label_drop_prob": label_drop_prob, "base_ema_sha256": _sha256(ema_file) if ema_file.is_file() else None}

    def publish(step: int, inner: nn.Module, ema_state: dict) -> None:
        adapter_ema = {k[len("adapter."):]: v for k, v in ema_state.items() if k.startswith("adapter.")}
        ControlNetImageGenerator(base, inner.adapter, control).save_pretrained(output_dir, adapter_ema)
        inner.train()

    result = train(net, loss, (data.images, data.labels), config, output_dir, on_checkpoint=publish, progress=progress)
    write_train_record(output_dir, command or f"train_controlnet({str(output_dir)!r}, {str(base_checkpoint)!r})",
                       config, result, {"base_checkpoint": base_ref, "control": control,
                                        "weights": "model.safetensors holds the adapter's EMA weights; the base is not stored"})
    return result


"""The generator contract every family implements: a base generator, a family-neutral diffusion
config and an output base class (``generators/README.md`` documents it).

A family subclasses :class:`DiffusionGenerator`, names its network class in ``model_class`` and
its output type, and writes ``__call__`` with the shared keywords (``num_inference_steps``,
``sampler``, ``guidance_scale``, ``guidance_interval``, ``seed``, ``callback``, ``progress``) plus its
conditions as keywords (``prompt=`` for text, as in diffusers). The library path stays the one the
image family set: generator -> :func:`generators.core.sampling.sample` -> denoiser D(x, sigma), with
conditioning and guidance bound outside the sampler (Karras et al. 2022, eq. 2-3).
"""
from __future__ import annotations

import io
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, TypeVar

import torch
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import (CheckpointError, atomic_write_bytes, atomic_write_json, load_model, published_folder,
                         read_json, staged_publish, verify_manifest, write_manifest, write_model_files)
from .denoiser import DenoiseFn, PREDICTION_TYPES
from .quantize import quantize_state
from .sampling import SamplerOptions, StepCallback, check_sampler, sample
from .schedules import BETA_SCHEDULES, NoiseSchedule
from .validation import check_guidance_interval, check_guidance_scale, check_seed

DIFFUSION_CONFIG = "diffusion.json"

G = TypeVar("G", bound="DiffusionGenerator")


@dataclass(frozen=True)
class DiffusionConfig:
    """How a network was trained: its forward process (Ho et al. 2020, eq. 4) and output parameterisation.

    Family-neutral: sizes, channels and class counts belong to the network's ``config.json``.
    """

    beta_schedule: str = "linear"
    num_train_timesteps: int = 1000
    prediction_type: str = "epsilon"
    cond_drop_prob: float = 0.1

    def __post_init__(self) -> None:
        if self.beta_schedule not in BETA_SCHEDULES:
            raise ValueError(f"beta_schedule must be one of {BETA_SCHEDULES}, got {self.beta_schedule!r}")
        if not isinstance(self.num_train_timesteps, int) or self.num_train_timesteps < 2:
            raise ValueError(f"num_train_timesteps must be an integer >= 2, got {self.num_train_timesteps!r}")
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {self.prediction_type!r}")
        if not isinstance(self.cond_drop_prob, (int, float)) or not 0.0 <= self.cond_drop_prob < 1.0:
            raise ValueError(f"cond_drop_prob must be in [0, 1), got {self.cond_drop_prob!r}")

    def schedule(self) -> NoiseSchedule:
        return NoiseSchedule.create(self.beta_schedule, self.num_train_timesteps)

    def save(self, folder: str | os.PathLike) -> Path:
        path = Path(folder) / DIFFUSION_CONFIG
        atomic_write_json(path, asdict(self))
        return path

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "DiffusionConfig":
        """Read ``folder/diffusion.json``; a malformed file raises CheckpointError naming it and the field."""
        path = Path(folder) / DIFFUSION_CONFIG
        raw = read_json(path, "diffusion config")
        if not isinstance(raw, dict):
            raise CheckpointError(f"{path} must hold a JSON object, got {type(raw).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise CheckpointError(f"{path} has unknown fields {unknown}; allowed: {sorted(known)}")
        try:
            return cls(**raw)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: {exc}") from exc


class GeneratorOutput:
    """Base of every family's output: ``save(path)``, where the path's extension picks the format.

    A path without an extension is a folder: every item is written there with ``prefix``. A family
    lists its single-file formats in :attr:`file_formats` and writes them in :meth:`_encode`;
    :meth:`_items` gives the (name, bytes) pairs of the folder form. Every file is written
    atomically, so nothing half-written is left at ``path``.
    """

    file_formats: ClassVar[tuple[str, ...]] = ()

    def save(self, path: str | os.PathLike, prefix: str = "sample") -> list[Path]:
        """Write the output to ``path`` (a file whose extension names the format, or a folder)."""
        path = Path(path)
        suffix = path.suffix.lower()
        if not suffix or path.is_dir():
            return [self._write(path / name, data) for name, data in self._items(prefix)]
        if suffix not in self.file_formats:
            formats = ", ".join(self.file_formats) or "none (give a folder)"
            raise ValueError(f"cannot save {type(self).__name__} as {suffix!r}: supported extensions are {formats}, "
                             "or a folder path without an extension")
        return [self._write(path, self._encode(suffix))]

    def _items(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        raise NotImplementedError

    def _encode(self, suffix: str) -> bytes:
        raise NotImplementedError

    @staticmethod
    def _write(path: Path, data: bytes) -> Path:
        if path.exists() and path.is_dir():
            raise ValueError(f"output path {path} is a folder; give a file name or another folder")
        atomic_write_bytes(path, data)
        return path


def png_bytes(image: Any) -> bytes:
    """uint8 (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) -> PNG bytes."""
    import numpy as np
    from PIL import Image

    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


class DiffusionGenerator:
    """Base generator: loading and saving checkpoint folders, the shared checks, noise and sampling.

    Subclasses set :attr:`model_class` (a diffusers ``ModelMixin``/``ConfigMixin`` network) and write
    ``__call__``. ``from_pretrained(path, device=..., dtype=...)`` and ``save_pretrained(path)`` are
    the same for every family; a family with extra files overrides :meth:`sidecars` (written on save)
    and :meth:`_from_folder` (read on load).
    """

    model_class: ClassVar[type[nn.Module]]
    # False: model.safetensors holds the EMA weights and no ema.safetensors is written (smaller folders)
    store_training_weights: ClassVar[bool] = True
    # e.g. torch.float16: floating-point weights are stored in this dtype (half the folder) and loaded
    # back into the network's own dtype; torch.int8: weight-only int8 with per-channel scales, the rest
    # float16 (a quarter of float32, :mod:`generators.core.quantize`); None keeps them as they are
    storage_dtype: ClassVar[torch.dtype | None] = None

    def __init__(self, model: nn.Module, diffusion: DiffusionConfig, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        self.model = model.to(device).eval()
        if dtype != torch.float32:
            self.model = self.model.to(dtype)
        self.diffusion = diffusion
        self.schedule = diffusion.schedule()
        self.device = torch.device(device)
        self.dtype = dtype

    # ------------------------------------------------------------------ folders
    @classmethod
    def from_pretrained(cls: type[G], path: str | os.PathLike, *, device: str | torch.device = "cpu",
                        dtype: torch.dtype = torch.float32, use_ema: bool = True) -> G:
        """Load a checkpoint folder: config.json, diffusion.json, model/ema safetensors, family sidecars."""
        model = load_model(path, cls.model_class, use_ema=use_ema)
        folder = published_folder(path)
        verify_manifest(folder, read=(DIFFUSION_CONFIG,))
        return cls._from_folder(folder, model, DiffusionConfig.load(folder), device, dtype)

    @classmethod
    def _from_folder(cls: type[G], path: Path, model: nn.Module, diffusion: DiffusionConfig,
                     device: str | torch.device, dtype: torch.dtype) -> G:
        """Build the generator from a loaded folder; families with sidecars read them here."""
        return cls(model, diffusion, device=device, dtype=dtype)

    def sidecars(self) -> dict[str, dict[str, Any]]:
        """Family JSON files written beside the weights on save (name -> object)."""
        return {}

    def save_pretrained(self, path: str | os.PathLike, ema_state: dict[str, torch.Tensor] | None = None) -> Path:
        """Publish the checkpoint folder as a whole (``staged_publish``); ``ema_state`` (from training) becomes
        the sampling weights."""
        path = Path(path)
        with staged_publish(path) as stage:
            state = _cast(self.model.state_dict(), self.storage_dtype)
            ema = None if ema_state is None else _cast(ema_state, self.storage_dtype)
            if self.store_training_weights or ema is None:
                names = write_model_files(stage, _with_state(self.model, state), ema)
            else:
                names = write_model_files(stage, _with_state(self.model, ema))
            self.diffusion.save(stage)
            sidecars = self.sidecars()
            for name, obj in sidecars.items():
                atomic_write_json(stage / name, obj)
            write_manifest(stage, [*names, DIFFUSION_CONFIG, *sidecars])
        return path

    # ----------------------------------------------------------------- sampling
    def check_call(self, num_inference_steps: int, sampler: str, guidance_scale: float, seed: int,
                   guidance_interval: tuple[float, float] | None = None) -> None:
        """The checks every ``__call__`` shares; each error names its keyword."""
        check_sampler(sampler, num_inference_steps, self.schedule)
        check_guidance_scale(guidance_scale)
        check_seed(seed)
        check_guidance_interval(guidance_interval)

    def noise(self, shape: tuple[int, ...], seed: int) -> tuple[torch.Generator, torch.Tensor]:
        """A CPU generator seeded by ``seed`` and N(0, I) noise of ``shape`` on the device (same on every device)."""
        generator = torch.Generator().manual_seed(check_seed(seed))
        return generator, torch.randn(shape, generator=generator).to(self.device)

    def run_sampler(self, denoise: DenoiseFn, noise: torch.Tensor, generator: torch.Generator, num_inference_steps: int,
                    sampler: str, options: SamplerOptions = SamplerOptions(), callback: StepCallback | None = None,
                    progress: bool = False) -> torch.Tensor:
        """``sample(sampler, denoise, noise, ...)`` with a progress bar and the user's step callback."""
        with progress_callback(progress, callback, sampler) as cb:
            return sample(sampler, denoise, noise, self.schedule, num_inference_steps, generator, options, cb)


def _cast(state: dict[str, torch.Tensor], dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """Floating-point tensors of ``state`` in ``dtype`` (None: unchanged; int8: :func:`quantize_state`)."""
    if dtype is None:
        return state
    if dtype == torch.int8:
        return quantize_state(state)
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}


def _with_state(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """A view of ``model`` whose state_dict is ``state`` (for saving EMA weights as model.safetensors)."""

    class _Snapshot(nn.Module):
        def __init__(self) -> None:
            super().__init__()

        def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
            return dict(state)

        def to_json_string(self) -> str:
            return model.to_json_string()

    return _Snapshot()


class progress_callback:
    """Context manager giving a step callback that drives a tqdm bar and calls the user's callback."""

    def __init__(self, enabled: bool, user: Callable[[int, int, torch.Tensor], None] | None, desc: str) -> None:
        self.bar = tqdm(desc=desc, disable=not enabled)
        self.user = user

    def __enter__(self) -> Callable[[int, int, torch.Tensor], None]:
        def cb(i: int, n: int, x: torch.Tensor) -> None:
            self.bar.total = n
            self.bar.update(1)
            if self.user is not None:
                self.user(i, n, x)

        return cb

    def __exit__(self, *exc: Any) -> None:
        self.bar.close()

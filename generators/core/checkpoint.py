"""Checkpoint folders: ``config.json`` + ``model.safetensors`` (+ ``ema.safetensors``) + JSON sidecars.

Weights are only ever read with safetensors, never unpickled. Every file is written to a
temporary name and renamed into place, so a crash never leaves a half-written file under
its final name. Problems with a folder raise :class:`CheckpointError` naming the file and
the fix.
"""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
EMA_WEIGHTS_NAME = "ema.safetensors"

M = TypeVar("M", bound=nn.Module)


class CheckpointError(ValueError):
    """A checkpoint folder is missing, incomplete, corrupted or does not match its config."""


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``, else removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def atomic_save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    """safetensors file written atomically; tensors are made contiguous CPU copies."""
    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)


def read_json(path: str | os.PathLike, what: str) -> dict:
    """Read a JSON file, raising CheckpointError that names it if missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what}: {path} is missing; re-save the checkpoint or point to a complete folder")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{what}: {path} is not valid JSON ({exc})") from exc


def load_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a safetensors file, raising CheckpointError for missing or corrupted files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} is missing; the checkpoint folder is incomplete")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"weights file {path} is corrupted or not a safetensors file ({exc})") from exc


def load_state_checked(module: nn.Module, state: dict[str, torch.Tensor], source: str | os.PathLike) -> None:
    """Strictly load ``state``; mismatched keys or shapes raise CheckpointError listing them."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
        if wrong:
            parts.append("shape mismatch " + ", ".join(f"{k}: file {tuple(state[k].shape)} vs config {tuple(own[k].shape)}" for k in wrong[:3]))
        raise CheckpointError(
            f"weights in {source} do not match the model built from config.json ({'; '.join(parts)}); "
            "use the config.json saved with these weights"
        )
    module.load_state_dict(state, strict=True)


def save_model(directory: str | os.PathLike, model: nn.Module, ema_state: dict[str, torch.Tensor] | None = None) -> Path:
    """Save ``model`` (a diffusers ConfigMixin module) as config.json + model.safetensors (+ ema)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_save_tensors(directory / WEIGHTS_NAME, model.state_dict())
    if ema_state is not None:
        atomic_save_tensors(directory / EMA_WEIGHTS_NAME, ema_state)
    config = json.loads(model.to_json_string())
    atomic_write_json(directory / CONFIG_NAME, config)
    return directory


def load_model(directory: str | os.PathLike, model_cls: type[M], use_ema: bool = True) -> M:
    """Build ``model_cls`` from config.json and load weights (EMA weights when present and asked for)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint folder {directory} does not exist; train one or pass an existing folder")
    config = read_json(directory / CONFIG_NAME, "model config")
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    try:
        model = model_cls.from_config(config)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{directory / CONFIG_NAME} does not describe a {model_cls.__name__} ({exc})") from exc
    path = directory / (EMA_WEIGHTS_NAME if use_ema and (directory / EMA_WEIGHTS_NAME).is_file() else WEIGHTS_NAME)
    load_state_checked(model, load_tensors(path), path)
    return model.eval()

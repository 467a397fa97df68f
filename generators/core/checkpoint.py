"""Checkpoint folders: ``config.json`` + ``model.safetensors`` (+ ``ema.safetensors``) + JSON sidecars.

Weights are only ever read with safetensors, never unpickled. Every file is written to a
temporary name and renamed into place, so a crash never leaves a half-written file under
its final name. Problems with a folder raise :class:`CheckpointError` naming the file and
the fix.

``manifest.json``, written last and atomically, lists the files a loader needs with their sizes
and sha256. Loading checks the size of every listed file and the sha256 of every file it reads,
so a truncated, emptied or altered file is named as corrupt; :func:`verify_manifest` with
``full=True`` hashes them all (``mmdiff check``).

A folder is published as a whole (:func:`staged_publish`): the complete new version is written to
``<folder>/.staging/`` with its manifest last, then each file is hard-linked into place (manifest
last) and the staging folder removed. A process killed at any point leaves either the previous
version or the staged complete one, and loaders pick whichever is complete (:func:`published_folder`).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .quantize import dequantize_state

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
EMA_WEIGHTS_NAME = "ema.safetensors"
MANIFEST_NAME = "manifest.json"
STAGING_NAME = ".staging"

M = TypeVar("M", bound=nn.Module)


class CheckpointError(ValueError):
    """A checkpoint folder is missing, incomplete, corrupted or does not match its config."""


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``, else removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temps(path: str | os.PathLike) -> None:
    """Delete temporaries of ``path`` (``.<name>.*.tmp``) that a killed writer left behind.

    Called before each write of ``path``: one writer per path is assumed (a second process writing the
    same file at the same moment would lose its temporary and fail, never corrupt the file).
    """
    path = Path(path)
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            tmp.unlink()
        except OSError:
            continue


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
    """Read a JSON object from a file, raising CheckpointError that names it if missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what}: {path} is missing; re-save the checkpoint or point to a complete folder")
    try:
        obj = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{what}: {path} is not valid JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"{what}: {path} must hold a JSON object, got {type(obj).__name__}")
    return obj


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def weights_sha256(folder: str | os.PathLike) -> str | None:
    """The sha256 of a published folder's ``model.safetensors``, as its manifest records it."""
    manifest = read_json(Path(folder) / MANIFEST_NAME, "checkpoint manifest")
    return manifest.get("files", {}).get("model.safetensors", {}).get("sha256")


def init_checkpoint_record(folder: str | os.PathLike) -> dict[str, Any]:
    """What a continued run's training.json keeps of the folder it started from: path, weights sha256, command."""
    folder = Path(folder)
    previous = folder / "training.json"
    return {"init_checkpoint": str(folder), "init_checkpoint_sha256": weights_sha256(folder),
            "init_checkpoint_command": read_json(previous, "its training record").get("command")
            if previous.is_file() else None}


def write_manifest(directory: str | os.PathLike, names: list[str] | tuple[str, ...]) -> Path:
    """Add ``names`` (files in ``directory``) to its manifest with their sizes and sha256; written last, atomically.

    Entries of files that no longer exist are dropped; entries of other files are kept.
    """
    directory = Path(directory)
    files: dict[str, dict] = {}
    if (directory / MANIFEST_NAME).is_file():
        try:
            files = dict(read_json(directory / MANIFEST_NAME, "manifest").get("files", {}))
        except CheckpointError:
            files = {}
    for name in names:
        path = directory / name
        files[name] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
    files = {n: v for n, v in files.items() if (directory / n).is_file()}
    atomic_write_json(directory / MANIFEST_NAME, {"files": dict(sorted(files.items()))})
    return directory / MANIFEST_NAME


def verify_manifest(directory: str | os.PathLike, read: tuple[str, ...] = (), full: bool = False) -> dict[str, dict]:
    """Check ``directory`` against its manifest: every listed file's size, and the sha256 of ``read``
    (of every listed file with ``full``). Returns the manifest's entries ({} when there is none).

    Raises:
        CheckpointError: naming the missing or corrupt file and the fix.
    """
    directory = Path(directory)
    if not (directory / MANIFEST_NAME).is_file():
        return {}
    files = read_json(directory / MANIFEST_NAME, "manifest").get("files", {})
    if not isinstance(files, dict):
        raise CheckpointError(f"{directory / MANIFEST_NAME} is malformed (no 'files' object); re-save the checkpoint")
    for name, entry in files.items():
        path = directory / name
        if not path.is_file():
            raise CheckpointError(f"{path} is missing (listed in {MANIFEST_NAME}); the checkpoint folder is incomplete")
        size = path.stat().st_size
        if size != entry.get("size"):
            raise CheckpointError(f"{path} is corrupt: {size} bytes, the manifest says {entry.get('size')}; "
                                  "re-save the checkpoint or copy the folder again")
        if (full or name in read) and sha256_file(path) != entry.get("sha256"):
            raise CheckpointError(f"{path} is corrupt: its sha256 differs from the manifest's; "
                                  "re-save the checkpoint or copy the folder again")
    return files


def load_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a safetensors file (int8-stored weights dequantized, :mod:`.quantize`), raising CheckpointError
    for missing or corrupted files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} is missing; the checkpoint folder is incomplete")
    try:
        return dequantize_state(load_file(str(path)))
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


@contextmanager
def staged_publish(directory: str | os.PathLike, clean: bool = False) -> Iterator[Path]:
    """Write a complete new version of ``directory`` into the yielded staging folder, then publish it.

    The caller writes every file and the manifest (:func:`write_manifest`, last) into the staging
    folder. On leaving the block each staged file is hard-linked into ``directory`` with an atomic
    rename, then the manifest; files of the previous version that the new manifest does not list are
    removed (with ``clean``, every top-level file the new version does not have); the staging folder
    goes last. If the block raises, ``directory`` is untouched.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stage = directory / STAGING_NAME
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    new = read_json(stage / MANIFEST_NAME, "staged manifest")["files"]
    old = verify_manifest_entries(directory)
    others = sorted(p.name for p in stage.iterdir() if p.is_file() and p.name != MANIFEST_NAME)
    for name in [*others, MANIFEST_NAME]:
        with atomic_path(directory / name) as tmp:
            os.unlink(tmp)
            os.link(stage / name, tmp)
    stale = set(old) - set(new)
    if clean:
        stale |= {p.name for p in directory.iterdir() if p.is_file() and not p.name.startswith(".")} - set(others)
    for name in stale - {MANIFEST_NAME}:
        (directory / name).unlink(missing_ok=True)
    shutil.rmtree(stage, ignore_errors=True)


def verify_manifest_entries(directory: Path) -> dict[str, dict]:
    """The manifest's entries, or {} when ``directory`` has no readable manifest."""
    try:
        return dict(read_json(directory / MANIFEST_NAME, "manifest").get("files", {}))
    except CheckpointError:
        return {}


def published_folder(directory: str | os.PathLike) -> Path:
    """The complete version of a checkpoint folder: itself, or its staged copy if a publish was interrupted."""
    directory = Path(directory)
    stage = directory / STAGING_NAME
    if not (stage / MANIFEST_NAME).is_file():
        return directory
    try:
        verify_manifest(directory, full=True)
        if (directory / MANIFEST_NAME).is_file():
            return directory
    except CheckpointError:
        pass
    verify_manifest(stage, full=True)
    return stage


def write_model_files(directory: Path, model: nn.Module, ema_state: dict[str, torch.Tensor] | None = None) -> list[str]:
    """config.json + model.safetensors (+ ema.safetensors) into ``directory``; returns the names written."""
    atomic_save_tensors(directory / WEIGHTS_NAME, model.state_dict())
    if ema_state is not None:
        atomic_save_tensors(directory / EMA_WEIGHTS_NAME, ema_state)
    atomic_write_json(directory / CONFIG_NAME, json.loads(model.to_json_string()))
    return [CONFIG_NAME, WEIGHTS_NAME] + ([EMA_WEIGHTS_NAME] if ema_state is not None else [])


def save_model(directory: str | os.PathLike, model: nn.Module, ema_state: dict[str, torch.Tensor] | None = None) -> Path:
    """Publish ``model`` (a diffusers ConfigMixin module) as config.json + model.safetensors (+ ema) + manifest."""
    directory = Path(directory)
    with staged_publish(directory) as stage:
        write_manifest(stage, write_model_files(stage, model, ema_state))
    return directory


def load_model(directory: str | os.PathLike, model_cls: type[M], use_ema: bool = True) -> M:
    """Build ``model_cls`` from config.json and load weights (EMA weights when present and asked for)."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise CheckpointError(f"checkpoint {directory} is a file; pass the checkpoint folder that holds config.json")
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint folder {directory} does not exist; train one or pass an existing folder")
    if not (directory / MANIFEST_NAME).is_file() and (directory / "training_state").is_dir() \
            and not (directory / CONFIG_NAME).is_file():
        raise CheckpointError(f"checkpoint folder {directory} is incomplete: training was interrupted before its first "
                              "checkpoint was published; rerun the training command to resume it")
    directory = published_folder(directory)
    listed = verify_manifest_entries(directory)
    has_ema = (directory / EMA_WEIGHTS_NAME).is_file() and (not listed or EMA_WEIGHTS_NAME in listed)
    name = EMA_WEIGHTS_NAME if use_ema and has_ema else WEIGHTS_NAME
    verify_manifest(directory, read=(CONFIG_NAME, name))
    config = read_json(directory / CONFIG_NAME, "model config")
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    try:
        model = model_cls.from_config(config)
    except (TypeError, ValueError, AttributeError, RuntimeError) as exc:
        raise CheckpointError(f"{directory / CONFIG_NAME} does not describe a {model_cls.__name__} ({exc}); "
                              "use the config.json saved with these weights") from exc
    path = directory / name
    load_state_checked(model, load_tensors(path), path)
    return model.eval()

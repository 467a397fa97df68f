"""A per-process cache of loaded models, so the tasks of one flow run load each checkpoint once.

Tasks pass checkpoint *paths* (never models) between each other; each task then asks this cache for
the model. The first call loads it; later calls in the same process (the shards of a batch, the
checkpoint check, the scorer) get the same object. The key holds the folder's resolved path, the
device and every file's size and modification time, so a checkpoint rewritten in place (a new
training run publishing to the same folder) is loaded afresh. Loaded models are used for
inference only; their sampling state lives in each call, so threads may share them.

Only CPU models are cached. A model on a GPU is loaded inside the task that holds the GPU's
concurrency slot (:mod:`flows.gpu`) and dropped with it, so no process keeps weights on a GPU
after giving its slot to another run.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Hashable

MAX_ENTRIES = 4

_lock = threading.Lock()
_key_locks: dict[Hashable, threading.Lock] = {}
_cache: "OrderedDict[Hashable, Any]" = OrderedDict()


def folder_signature(path: str | os.PathLike) -> tuple:
    """(resolved path, (name, size, mtime_ns) of every file in the folder): changes when any file does."""
    root = Path(path).resolve()
    if not root.is_dir():
        return (str(root),)
    stats = sorted((p.name, p.stat()) for p in root.iterdir() if p.is_file())
    return (str(root), tuple((name, st.st_size, st.st_mtime_ns) for name, st in stats))


def cached(kind: str, path: str | os.PathLike, device: str, load: Callable[[], Any]) -> Any:
    """The object ``load()`` returns for (kind, folder, device), loaded at most once per folder version.

    Concurrent callers with the same key wait for one load instead of loading twice; the least
    recently used entry is dropped beyond :data:`MAX_ENTRIES`.
    """
    key = (kind, device, folder_signature(path))
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:
        with _lock:
            if key in _cache:
                return _cache[key]
        try:
            value = load()
        finally:
            with _lock:
                _key_locks.pop(key, None)
        with _lock:
            _cache[key] = value
            while len(_cache) > MAX_ENTRIES:
                _cache.popitem(last=False)
        return value


def clear() -> None:
    """Forget every cached model (tests; or to free memory)."""
    with _lock:
        _cache.clear()


def load(kind: str, path: str | os.PathLike, device: str = "cpu") -> Any:
    """The model of ``kind`` (a loader a registered family provides) for ``path``, cached on the CPU.

    On a GPU the model is loaded afresh (see the module docstring).
    """
    from .registry import loader

    load_fn = loader(kind)
    if device != "cpu":
        return load_fn(str(path), device)
    return cached(kind, path, device, lambda: load_fn(str(path), device))

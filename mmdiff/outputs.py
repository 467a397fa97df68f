"""All-or-nothing output for a CLI command: what a failed command wrote at ``--out`` is taken back.

Generators write files as they go (so a 50,000-image request never holds all of them in memory), and
every single file is written atomically (:func:`generators.core.checkpoint.atomic_write_bytes`). What
that alone does not give is a whole *set*: a full disk after 3 of 10 PNGs would leave 3 behind. The
command therefore runs inside :func:`output_transaction`, which remembers what was at ``--out`` before
and, if the command fails or is interrupted, removes every file and folder the command added. Files
that were there before are never touched.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Iterator


def _entries(folder: Path) -> set[Path]:
    """Every file and folder under ``folder`` (not following links)."""
    found: set[Path] = set()
    for root, dirs, files in os.walk(folder):
        base = Path(root)
        found.update(base / d for d in dirs)
        found.update(base / f for f in files)
    return found


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


def take_back(out: Path, existed: bool, before: set[Path]) -> list[Path]:
    """Remove what appeared at ``out`` since ``before`` was listed; returns what was removed."""
    if not out.exists() and not out.is_symlink():
        return []
    if not existed:
        _remove(out)
        return [out]
    if not out.is_dir():
        return []
    added = sorted(_entries(out) - before, key=lambda p: len(p.parts))
    removed: list[Path] = []
    for path in added:
        if any(parent in removed for parent in path.parents):
            continue
        _remove(path)
        removed.append(path)
    return removed


@contextlib.contextmanager
def output_transaction(out: Path | None) -> Iterator[None]:
    """Run a command's body; if it raises (including Ctrl-C), remove what it added at ``out``."""
    if out is None:
        yield
        return
    out = Path(out)
    existed = out.exists() or out.is_symlink()
    before = _entries(out) if existed and out.is_dir() else set()
    try:
        yield
    except BaseException:
        take_back(out, existed, before)
        raise

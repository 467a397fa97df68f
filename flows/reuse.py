"""Reusing trained checkpoints: a fingerprint of (dataset, training config, code version).

The training folder is named by the fingerprint, so a re-run with nothing changed finds a
finished checkpoint and reuses it, while a run killed mid-training finds its
``training_state/`` and resumes there (losing at most one checkpoint interval). A finished
folder carries ``fingerprint.json``, written last and atomically: its presence means "complete".
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from generators.core.checkpoint import (MANIFEST_NAME, atomic_write_json, published_folder, staged_publish,
                                        verify_manifest_entries, write_manifest)

ROOT = Path(__file__).resolve().parents[1]
MARKER = "fingerprint.json"


def code_version(packages: tuple[str, ...]) -> str:
    """sha256 over the Python sources under ``packages`` (a family's ``code_paths``)."""
    h = hashlib.sha256()
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            h.update(str(path.relative_to(ROOT)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def fingerprint(config: dict[str, Any], dataset: str, code: str) -> str:
    """One hex digest for the triple; any change gives a new training folder."""
    blob = json.dumps({"config": config, "dataset": dataset, "code": code}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def is_complete(folder: Path, digest: str) -> bool:
    """True when ``folder`` holds a finished checkpoint for ``digest``."""
    marker = folder / MARKER
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()).get("fingerprint") == digest
    except json.JSONDecodeError:
        return False


def reused_run(folder: str | Path, digest: str) -> dict[str, Any] | None:
    """The summary a training task returns when ``folder`` already holds a finished run for ``digest``, else None."""
    out = Path(folder)
    if not is_complete(out, digest):
        return None
    from .common import log

    log(f"reusing {out}: dataset, config and code version unchanged (fingerprint {digest[:16]})")
    steps = json.loads((out / MARKER).read_text())["steps"]
    return {"reused": True, "folder": str(folder), "steps": steps, "resumed_from": None, "seconds": 0.0}


def mark_complete(folder: Path, digest: str, record: dict[str, Any]) -> None:
    atomic_write_json(folder / MARKER, {"fingerprint": digest, **record})


def publish_folder(source: Path, target: Path) -> Path:
    """Publish a checkpoint folder's files (not its training state) to ``target`` as a whole; files of the
    target that the source does not have are removed.

    Uses the core's staged publish: ``target`` holds either its previous version or the new one,
    whenever the process is killed.
    """
    source, target = published_folder(Path(source)), Path(target)
    if not (source / "config.json").is_file():
        raise ValueError(f"publish: {source} is not a checkpoint folder (no config.json)")
    listed = verify_manifest_entries(source)
    with staged_publish(target, clean=True) as stage:
        names = []
        for path in sorted(source.iterdir()):
            if path.is_file() and not path.name.startswith(".") and path.name != MANIFEST_NAME:
                shutil.copy2(path, stage / path.name)
                names.append(path.name)
        write_manifest(stage, [n for n in names if n in listed] if listed else names)
    return target

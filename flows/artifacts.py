"""Prefect artifacts for every flow run: a markdown report, a per-sample table, live progress bars.

Artifact keys must be lowercase letters, digits and dashes; :func:`artifact_key` makes one.
Outside a flow or task run (e.g. a task's ``.fn()`` in a test) creating an artifact is skipped,
so the library-facing logic stays callable without a Prefect context.
"""
from __future__ import annotations

import contextvars
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.context import FlowRunContext, TaskRunContext

from .warm import raise_if_cancelled


def in_run() -> bool:
    """True inside a Prefect flow or task run (where artifacts can be attached)."""
    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def artifact_key(*parts: str) -> str:
    """A valid artifact key from free text: ``artifact_key("generate", "image")`` -> ``generate-image``."""
    key = re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")
    return re.sub(r"-{2,}", "-", key)


def _cell(value: Any) -> str:
    return f"{value:.5g}" if isinstance(value, float) else str(value).replace("|", "\\|")


def metrics_markdown(title: str, metrics: dict[str, Any], run_dir: Path, notes: list[str] | None = None) -> str:
    """Markdown with a metrics table and where the outputs are."""
    lines = [f"# {title}", "", "| metric | value |", "| --- | --- |"]
    lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in metrics.items()]
    lines += ["", f"**Outputs:** `{Path(run_dir).resolve()}`", "",
              f"**Report:** `{(Path(run_dir) / 'index.html').resolve()}`"]
    for note in notes or []:
        lines += ["", f"> {note}"]
    return "\n".join(lines) + "\n"


def publish_report(key: str, title: str, metrics: dict[str, Any], run_dir: Path,
                   rows: list[dict[str, Any]] | None = None, notes: list[str] | None = None) -> None:
    """The markdown artifact (``key``) and, when ``rows`` is given, the table artifact (``key-samples``)."""
    if not in_run():
        return
    create_markdown_artifact(metrics_markdown(title, metrics, run_dir, notes), key=key, description=title)
    if rows:
        create_table_artifact(rows, key=f"{key}-samples", description=f"{title}: one row per sample")


class Progress:
    """A progress artifact updated as work advances; a no-op outside a Prefect run.

    ``update`` may be called from any thread and never waits for the API: it records the fraction,
    and a background thread (started on demand, with the caller's Prefect context) posts the latest
    value at most once per ``min_interval`` s. A sampler that reported every step synchronously would
    wait ~16 ms per request for the server, more while the CPU is busy sampling. ``update(...,
    force=True)`` posts at once and waits (the final 100 %).
    """

    IDLE_EXIT_SECONDS = 30.0  # the poster thread ends after this long without a new value

    def __init__(self, key: str, description: str, min_interval: float = 1.0) -> None:
        self.description = description
        self.min_interval = min_interval
        self._lock = threading.Lock()
        self._post_lock = threading.Lock()  # one request at a time, so posts reach the API in order
        self._pending: float | None = None
        self._posted: float | None = None
        self._poster: threading.Thread | None = None
        self.artifact_id: UUID | None = None
        if in_run():
            self.artifact_id = create_progress_artifact(0.0, key=key, description=description)
            self._posted = 0.0

    def update(self, fraction: float, force: bool = False) -> None:
        """Set the bar to ``fraction``; also a cancellation point of warm runs (:func:`flows.warm.raise_if_cancelled`)."""
        raise_if_cancelled()
        if self.artifact_id is None:
            return
        value = round(100.0 * min(max(fraction, 0.0), 1.0), 1)
        with self._lock:
            self._pending = value
            if not force and (self._poster is None or not self._poster.is_alive()):
                self._poster = threading.Thread(target=contextvars.copy_context().run, args=(self._post_loop,),
                                                name="mmdiff-progress", daemon=True)
                self._poster.start()
        if force:
            self._post()

    def _post(self) -> None:
        with self._post_lock:
            with self._lock:
                value = self._pending
                if value is None or value == self._posted:
                    return
                self._posted = value
            update_progress_artifact(self.artifact_id, value)

    def _post_loop(self) -> None:
        idle = 0.0
        while idle < self.IDLE_EXIT_SECONDS:
            time.sleep(self.min_interval)
            before = self._posted
            try:
                self._post()
            except Exception:  # a progress bar is not worth failing the run for
                continue
            idle = idle + self.min_interval if self._posted == before else 0.0

    def step_callback(self, offset: int, total: int) -> Callable[[int, int, Any], None]:
        """A sampler callback ``(i, n, x)`` mapping step ``i`` of ``n`` within item ``offset`` of ``total``."""

        def cb(i: int, n: int, _x: Any) -> None:
            self.update((offset + (i + 1) / max(n, 1)) / max(total, 1))

        return cb

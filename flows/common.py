"""Shared orchestration plumbing for every family's flows: run folders, I/O retries, logging."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from prefect import get_run_logger, task

from .report import new_run_dir


def _not_cancelled(_task: Any, _task_run: Any, state: Any) -> bool:
    """Retry condition: retry failures, but not a run that is being cancelled (:mod:`flows.warm`)."""
    from .warm import RunCancelled

    try:
        error = state.data if isinstance(state.data, BaseException) else state.result(raise_on_failure=False)
    except Exception:
        return True
    return not isinstance(error, RunCancelled)


# Tasks that read or write files retry transient I/O errors, except in a run being cancelled.
IO_RETRIES: dict[str, Any] = dict(retries=2, retry_delay_seconds=1, retry_condition_fn=_not_cancelled)


def log(message: str) -> None:
    """Log to the current run's logger; outside a run (the CLI, ``task.fn()``) print to stderr."""
    import sys

    try:
        get_run_logger().info(message)
    except Exception:
        print(message, file=sys.stderr)


@task(name="new-run-dir", **IO_RETRIES)
def run_dir_task(output_root: str, name: str) -> str:
    """A fresh ``output_root/<timestamp>-<name>-<id>`` folder."""
    return str(new_run_dir(output_root, name).resolve())


def command_line() -> str:
    """The ``mmdiff ...`` command this process runs, for training records; '' outside the CLI."""
    import shlex
    import sys
    from pathlib import Path

    if Path(sys.argv[0]).name in ("mmdiff", "__main__.py"):
        return shlex.join(["mmdiff", *sys.argv[1:]])
    return ""


def lazy(module: str, name: str) -> Callable[..., Any]:
    """A function that imports ``module`` on its first call and forwards to its ``name``: registry records
    name their commands and steps without importing Prefect flows or torch when the CLI starts."""
    import importlib

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = name
    return call


def training_device(device: str | None = None) -> str:
    """``device`` when given, else the first GPU if there is one, else the CPU."""
    if device:
        return device
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


def form_overrides(defaults: Mapping[str, Any], family: str) -> dict[str, str]:
    """The dashboard-form defaults ``mmdiff serve`` was given for ``family``: its checkpoint and the output root."""
    from pathlib import Path

    overrides: dict[str, str] = {}
    checkpoint = (defaults.get("checkpoints") or {}).get(family)
    if checkpoint:
        overrides["checkpoint"] = str(Path(checkpoint).resolve())
    if defaults.get("output_root"):
        overrides["output_root"] = str(Path(defaults["output_root"]).resolve())
    return overrides


def nightly(cron: str, defaults: Mapping[str, Any]) -> Any:
    """A UTC cron schedule, or None when ``mmdiff serve --no-schedules``."""
    from prefect.schedules import Cron

    return Cron(cron, timezone="UTC") if defaults.get("schedules", True) else None

"""Shared orchestration plumbing for every family's flows: run folders, I/O retries, logging."""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Mapping

from prefect import flow, get_run_logger, task

from generators.core.checkpoint import atomic_write_json

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


# Run folders made by each flow run still in progress: flow-run id -> folders (see settle_run_dirs).
_RUN_DIRS: dict[str, list[str]] = {}
_RUN_DIRS_LOCK = threading.Lock()


def _flow_run_id() -> str | None:
    from prefect.context import FlowRunContext, TaskRunContext

    task_ctx = TaskRunContext.get()
    if task_ctx is not None and task_ctx.task_run.flow_run_id is not None:
        return str(task_ctx.task_run.flow_run_id)
    flow_ctx = FlowRunContext.get()
    return str(flow_ctx.flow_run.id) if flow_ctx is not None and flow_ctx.flow_run is not None else None


@task(name="new-run-dir", **IO_RETRIES)
def run_dir_task(output_root: str, name: str) -> str:
    """A fresh ``output_root/<timestamp>-<name>-<id>`` folder, settled by the flow's hooks if the run fails."""
    path = str(new_run_dir(output_root, name).resolve())
    run_id = _flow_run_id()
    if run_id is not None:
        with _RUN_DIRS_LOCK:
            _RUN_DIRS.setdefault(run_id, []).append(path)
    return path


FAILED_SUFFIX = "-failed"


def settle_failed_run_dir(path: str | Path, message: str = "") -> Path | None:
    """A failed run's folder: removed when it holds nothing; else renamed ``<folder>-failed`` with a
    ``failure.json`` inside, so a partial run is never mistaken for a finished one and nothing is lost."""
    folder = Path(path)
    if not folder.is_dir():
        return None
    if not any(folder.iterdir()):
        folder.rmdir()
        return None
    target = folder.with_name(folder.name + FAILED_SUFFIX)
    folder.rename(target)
    atomic_write_json(target / "failure.json", {"run_dir": str(folder), "message": message})
    return target


def settle_run_dirs(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow hook (failed or crashed): settle every run folder that this flow run made."""
    with _RUN_DIRS_LOCK:
        folders = _RUN_DIRS.pop(str(flow_run.id), [])
    for folder in folders:
        try:
            settled = settle_failed_run_dir(folder, getattr(state, "message", "") or "")
        except OSError as exc:
            log(f"could not settle the failed run folder {folder}: {exc}")
            continue
        log(f"run failed: {'removed the empty run folder ' + folder if settled is None else f'partial outputs kept in {settled}'}")


def forget_run_dirs(flow: Any, flow_run: Any, state: Any) -> None:
    """Flow hook (completed): the run's folders are final."""
    with _RUN_DIRS_LOCK:
        _RUN_DIRS.pop(str(flow_run.id), None)


def family_flow(name: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    """``@flow`` for every family's flows: prints logged, and run folders settled when the run fails."""
    hooks = dict(on_failure=[settle_run_dirs], on_crashed=[settle_run_dirs], on_completion=[forget_run_dirs])
    return flow(name=name, log_prints=True, **hooks, **kwargs)


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

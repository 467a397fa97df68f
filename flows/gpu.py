"""One Prefect global concurrency slot per accelerator, so two runs never load models onto one GPU at once.

Prefect's per-worker GPU concurrency pattern: the limit ``gpu-cuda-0`` (limit 1) is created on first
use, and ``concurrency(..., strict=True)`` holds its slot for the duration of the block. The context
manager releases the slot when the block raises (failure) or is interrupted (cancellation raises
inside the task); a process that dies outright stops renewing its lease, and the server frees the
slot when the lease expires (``lease_duration`` seconds).
"""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
from typing import Iterator

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from .warm import raise_if_cancelled

LEASE_SECONDS = 120.0


def slot_name(device: str) -> str | None:
    """The concurrency-limit name for ``device`` (``cuda`` means ``cuda:0``); None for the CPU.

    The name uses the physical GPU index: under ``CUDA_VISIBLE_DEVICES`` (as Ray sets it for a task
    given ``num_gpus=1``) ``cuda:0`` is the first listed device, so two workers on different GPUs
    hold different slots.
    """
    match = re.fullmatch(r"cuda(?::(\d+))?", device)
    if device == "cpu":
        return None
    if match is None:
        raise ValueError(f"device must be cpu, cuda or cuda:N; got {device!r}")
    index = int(match.group(1) or 0)
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    physical = visible[index] if index < len(visible) else str(index)
    return f"gpu-cuda-{physical}"


def ensure_limit(name: str, limit: int = 1) -> None:
    """Create the global concurrency limit ``name`` with ``limit`` slots unless it exists."""
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
            return
        except ObjectNotFound:
            pass
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
        except ObjectAlreadyExists:
            pass


@contextmanager
def device_slot(device: str, timeout_seconds: float | None = None, name: str | None = None) -> Iterator[str | None]:
    """Hold the device's slot for the block; yields the limit name (None on the CPU: no slot needed).

    Args:
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        timeout_seconds: give up waiting for the slot after this long (TimeoutError); None waits.
        name: override the limit name (tests use it to exercise the mechanism without a GPU).
    """
    raise_if_cancelled()  # a warm run being cancelled stops before it loads a model
    limit = name or slot_name(device)
    if limit is None:
        yield None
        return
    ensure_limit(limit)
    with concurrency(limit, occupy=1, timeout_seconds=timeout_seconds, strict=True, lease_duration=LEASE_SECONDS):
        yield limit

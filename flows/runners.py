"""Task runners a flow parameter can pick: local threads (default) or a Ray cluster (prefect-ray).

``RAY_ADDRESS`` in the environment points the Ray runner at an existing cluster; otherwise it
starts a local one sized by ``MMDIFF_RAY_NUM_CPUS`` (default 2).
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner


def make_task_runner(name: str, max_workers: int = 2) -> TaskRunner:
    """``local`` -> ThreadPoolTaskRunner; ``ray`` -> prefect_ray.RayTaskRunner."""
    if name == "local":
        return ThreadPoolTaskRunner(max_workers=max_workers)
    if name == "ray":
        try:
            from prefect_ray import RayTaskRunner
        except ImportError as exc:
            raise ValueError("task_runner='ray' needs prefect-ray: pip install prefect-ray") from exc
        address = os.environ.get("RAY_ADDRESS")
        init_kwargs = {"include_dashboard": False, "log_to_driver": False}
        if not address:
            init_kwargs["num_cpus"] = int(os.environ.get("MMDIFF_RAY_NUM_CPUS", "2"))
        return RayTaskRunner(address=address, init_kwargs=init_kwargs)
    raise ValueError(f"task_runner must be 'local' or 'ray', got {name!r}")


@contextlib.contextmanager
def gpu_remote_options(runner_name: str, device: str) -> Iterator[None]:
    """Inside the block, Ray tasks ask for one GPU each when the device is CUDA (``remote_options``)."""
    if runner_name == "ray" and device.startswith("cuda"):
        from prefect_ray.context import remote_options

        with remote_options(num_gpus=1):
            yield
    else:
        yield

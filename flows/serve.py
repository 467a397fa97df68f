"""Deployments for every registered family, with example schedules, served by one process (``mmdiff serve``).

Each family's record (:mod:`flows.registry`) gives its deployments, the nightly evaluation among
them; the composed flow's deployment (``composed/composed``) is added here. Two runners share the
serving process:

- inference deployments (each family's ``warm_flows`` and the composed flow) run *in* the serving
  process on a :class:`flows.warm.WarmRunner`: torch, diffusers and the models stay loaded between
  runs, and the runner hears of a new run from the server's event stream, so a run starts sampling
  within about a second of being created (one run at a time; a run with ``task_runner='ray'`` gets a
  subprocess of its own);
- the rest (training, scheduled runs whose parameters come from a file) run in a fresh subprocess
  each, on Prefect's own runner; ``limit`` caps how many of those run at once.

``mmdiff serve --isolate`` puts every deployment on Prefect's runner instead (a subprocess per run).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from prefect.client.schemas.objects import FlowRun
from prefect.deployments.runner import RunnerDeployment
from prefect.flows import Flow

from . import registry
from .composed import composed_flow
from .warm import WarmDeployment, WarmRunner

# How often the serving process asks the server for runs to start. Prefect's default (10 s) adds up
# to 10 s between pressing "Run" in the dashboard and the run starting. Used when nothing is warm
# (``--isolate``); beside a warm runner, which starts runs on events, polling is only the fallback.
QUERY_SECONDS = 1.0
COLD_QUERY_SECONDS = 10.0  # Prefect's default, for the subprocess deployments beside a warm runner
# The warm runner starts runs on the server's events; its poll is the fallback if the stream drops.
WARM_QUERY_SECONDS = 5.0


def build_deployments(defaults: Mapping[str, Any] | None = None) -> list[RunnerDeployment]:
    """Every deployment ``mmdiff serve`` registers: each family's, then the composed flow's.

    ``defaults`` (all optional): ``checkpoints`` ({family: folder}, the forms' default checkpoint),
    ``output_root`` (the forms' folder for run folders), ``params_files`` ({family: JSON file} of a
    scheduled run) and ``schedules`` (False: no cron schedules).
    """
    defaults = dict(defaults or {})
    deployments: list[RunnerDeployment] = []
    composed: dict[str, Any] = {}
    for fam in registry.families():
        if fam.deployments is not None:
            deployments.extend(fam.deployments(defaults))
        checkpoint = (defaults.get("checkpoints") or {}).get(fam.name)
        if checkpoint and fam.composed_section is not None and "checkpoint" in fam.composed_section.model_fields:
            composed[fam.name.replace("-", "_")] = {"checkpoint": str(Path(checkpoint).resolve())}
    if defaults.get("output_root"):
        composed["output_root"] = str(Path(defaults["output_root"]).resolve())
    deployments.append(composed_flow.to_deployment(
        name="composed", tags=["mmdiff", "composed"], parameters={"params": composed} if composed else None,
        description="One brief -> every registered family's steps -> one run folder and report."))
    return deployments


def warm_flows() -> dict[str, Flow[..., Any]]:
    """Flows whose deployments the warm runner executes in the serving process (by flow name)."""
    flows: dict[str, Flow[..., Any]] = {"composed": composed_flow}
    for fam in registry.families():
        for f in (fam.warm_flows() if fam.warm_flows else ()):
            flows[f.name] = f
    return flows


def preload(checkpoints: Mapping[str, str] | None = None) -> None:
    """Load every family's default models into the serving process's cache, so the first run is warm too.

    ``checkpoints`` ({family: folder}) replaces a family's first preload path. A checkpoint that does
    not load is reported here and again, with the same error, by the run.
    """
    from . import model_cache

    for fam in registry.families():
        for i, (kind, path) in enumerate(fam.preload):
            path = (checkpoints or {}).get(fam.name, path) if i == 0 else path
            try:
                model_cache.load(kind, path)
            except Exception as exc:  # the serving process keeps serving
                print(f"preload of {path} failed: {type(exc).__name__}: {exc}", flush=True)


def needs_own_process(flow_run: FlowRun) -> bool:
    """Warm-served runs that still get a subprocess: the Ray task runner starts a cluster from its driver."""
    params = (flow_run.parameters or {}).get("params")
    return isinstance(params, dict) and params.get("task_runner") == "ray"


def split_deployments(deployments: list[RunnerDeployment],
                      isolate: bool = False) -> tuple[list[WarmDeployment], list[RunnerDeployment]]:
    """(warm, subprocess) deployments: warm ones are those of :func:`warm_flows`, unless ``isolate``."""
    flows = warm_flows()
    warm = [] if isolate else [WarmDeployment(d, flows[d.flow_name]) for d in deployments if d.flow_name in flows]
    names = {(w.deployment.flow_name, w.deployment.name) for w in warm}
    return warm, [d for d in deployments if (d.flow_name, d.name) not in names]


async def aserve_all(deployments: list[RunnerDeployment], limit: int | None = 2, query_seconds: float = QUERY_SECONDS,
                     isolate: bool = False, warm_limit: int = 1, checkpoints: Mapping[str, str] | None = None) -> None:
    """Serve ``deployments``: inference ones on a :class:`WarmRunner`, the rest on Prefect's runner.

    The warm runner's default models (each family's ``preload``, ``checkpoints`` overriding) load in the background
    while it starts. Stops when either runner stops (Ctrl-C, SIGTERM); in-flight warm runs end ``Cancelled``.
    """
    import anyio

    warm, cold = split_deployments(deployments, isolate)
    runner_cls = _bounded_runner()
    # Beside a warm runner, the subprocess deployments are training runs: long, and needing no 1 s
    # start. Polling them less often halves the API's writes (each poll stamps the deployments'
    # last-polled time), which SQLite serialises.
    runner = runner_cls(limit=limit, query_seconds=max(query_seconds, COLD_QUERY_SECONDS) if warm else query_seconds)
    for deployment in cold:
        await runner.aadd_deployment(deployment)
    warm_runner = WarmRunner(warm, query_seconds=max(query_seconds, WARM_QUERY_SECONDS), limit=warm_limit,
                             isolate=needs_own_process)
    for item in warm:
        print(f"serving {item.deployment.flow_name}/{item.deployment.name} in this process (warm)", flush=True)
    for deployment in cold:
        print(f"serving {deployment.flow_name}/{deployment.name} (a subprocess per run)", flush=True)

    stopping = anyio.Event()
    _on_interrupt(stopping)
    async with anyio.create_task_group() as group:
        async def until_done(start: Any) -> None:
            try:
                await start()
            finally:
                stopping.set()

        async def stop_all() -> None:
            """On Ctrl-C (or when one runner ends) stop both runners gracefully instead of cancelling them:
            Prefect's Runner, cancelled from outside, failed its own shutdown with a traceback."""
            await stopping.wait()
            print("stopping the runners", flush=True)
            if warm:
                warm_runner.stop()
            if cold and runner.started:
                await runner.astop()

        group.start_soon(stop_all)
        if cold:
            group.start_soon(until_done, runner.start)
        if warm:
            group.start_soon(until_done, warm_runner.start)
            group.start_soon(anyio.to_thread.run_sync, preload, checkpoints)


def _on_interrupt(stopping: Any) -> None:
    """The first Ctrl-C sets ``stopping`` (a graceful stop); a second one exits at once."""
    import asyncio
    import os
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()

    def handler() -> None:
        if stopping.is_set():
            print("second Ctrl-C: exiting now", flush=True)
            os._exit(130)
        stopping.set()

    loop.add_signal_handler(signal.SIGINT, handler)


def _bounded_runner() -> type:
    """Prefect's Runner, whose shutdown pauses the schedules only while the server still answers.

    Prefect pauses every deployment on shutdown through the client, which retries with back-off;
    when the server stops at the same moment (a terminal Ctrl-C reaches both), those retries held
    ``mmdiff dashboard`` for minutes.
    """
    from prefect.runner import Runner

    from .warm import server_answers

    class BoundedRunner(Runner):
        async def _pause_schedules(self) -> None:
            if not await server_answers():
                print("the Prefect server has stopped; schedules left as they are", flush=True)
                return
            try:
                await super()._pause_schedules()
            except Exception as exc:  # the server went away meanwhile
                print(f"could not pause the schedules: {type(exc).__name__}", flush=True)

    return BoundedRunner


def _is_interrupt(exc: BaseException) -> bool:
    """Ctrl-C or SIGTERM, possibly wrapped in (nested) exception groups by the task groups."""
    import asyncio

    from prefect.exceptions import TerminationSignal

    group = getattr(exc, "exceptions", None)  # a BaseExceptionGroup (Python >= 3.11, or the backport)
    if isinstance(group, tuple) and group:
        return all(_is_interrupt(e) for e in group)
    return isinstance(exc, (KeyboardInterrupt, TerminationSignal, asyncio.CancelledError))


def serve_all(defaults: Mapping[str, Any] | None = None, limit: int | None = 2, query_seconds: float = QUERY_SECONDS,
              isolate: bool = False) -> None:
    """Register every deployment (:func:`build_deployments` with ``defaults``) on the configured Prefect API
    and serve them until interrupted.

    ``query_seconds``: how often Prefect's runner looks for runs to start (scheduled, or started from
    the dashboard) when nothing is warm; ``isolate``: run every flow run in a subprocess of its own
    (no warm runner).
    """
    import asyncio

    deployments = build_deployments(defaults)
    try:
        asyncio.run(aserve_all(deployments, limit, query_seconds, isolate,
                               checkpoints=(defaults or {}).get("checkpoints")))
    except BaseException as exc:
        if not _is_interrupt(exc):
            raise
        print("shutting down", flush=True)

"""A warm runner: serves inference deployments from the long-lived ``mmdiff serve`` process itself.

Prefect's own runner (``prefect.serve``) starts every flow run in a fresh Python subprocess. That
isolates runs, but each one pays the interpreter start, the import of torch and diffusers and the
checkpoint load again (~8-12 s on a 2-core machine) before any sampling starts, which is most of a
small batch's wall time. Generation and evaluation runs do not need the isolation: they read a
checkpoint, sample and write files. :class:`WarmRunner` therefore executes those flow runs
*in this process* (with :func:`prefect.flow_engine.run_flow`, the same engine entry point the
subprocess uses), so the imports are paid once and :mod:`flows.model_cache` keeps the models loaded
between runs. Training stays in subprocesses (``prefect.serve``).

What a served run keeps, in-process:

- claiming: a run is taken by proposing ``Pending``; a run another runner took is skipped;
- the deployment's parameters, logs, artifacts, task runs and subflows as in a subprocess run;
- cancellation from the dashboard: the runner notices ``Cancelling`` and the run stops at its next
  sampler step or model-holding task (:func:`raise_if_cancelled`, called by
  :class:`flows.artifacts.Progress` and :func:`flows.gpu.device_slot`), then ends ``Cancelled``;
- ``limit`` runs at a time (default 1: on one machine, concurrent inference runs only contend);
- prompt starts without busy polling: the runner subscribes to the server's event stream and looks
  for work as soon as one of its deployments gets a ``Scheduled`` or ``Cancelling`` flow run; the
  poll every ``query_seconds`` remains as the fallback when the stream is unavailable. Each poll
  (``get_scheduled_flow_runs_for_deployments``) also writes the deployments' ``last_polled`` on the
  server, so polling less often also means fewer writes competing for a SQLite server's lock;
- schedules paused on shutdown, like ``prefect.serve``.

Runs that need a process of their own (``isolate(flow_run)`` is true: e.g. the Ray task runner,
which starts a cluster from the driver) run in a subprocess via
:func:`prefect.flow_engine.run_flow_in_subprocess`, and cancelling one terminates that process.
"""
from __future__ import annotations

import contextvars
import datetime
import threading
from dataclasses import dataclass, field
from typing import Any, Callable
from uuid import UUID

import anyio
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.objects import FlowRun
from prefect.deployments.runner import RunnerDeployment
from prefect.exceptions import Abort, ObjectNotFound
from prefect.flows import Flow
from prefect.logging import get_logger
from prefect.states import Cancelled, Crashed, Pending
from prefect.utilities.engine import propose_state

# At most this long is spent pausing the deployments' schedules on shutdown.
SHUTDOWN_PAUSE_SECONDS = 5.0


async def server_answers(timeout: float = 1.0) -> bool:
    """True when the Prefect API's health endpoint answers within ``timeout`` (one try, no retries)."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        return False
    try:
        async with httpx.AsyncClient(timeout=timeout) as http:
            return (await http.get(f"{url.rstrip('/')}/health")).status_code == 200
    except (httpx.HTTPError, OSError):
        return False
_logger = get_logger("mmdiff.warm")

# The flow run a warm runner thread is executing. Prefect copies the context into task-runner
# threads and subflows, so every task of the run sees it.
_current_run: contextvars.ContextVar[UUID | None] = contextvars.ContextVar("mmdiff_warm_run", default=None)
_cancel_requested: set[UUID] = set()
_cancel_lock = threading.Lock()


class RunCancelled(Exception):
    """Raised inside a warm flow run whose cancellation was requested (from the dashboard or API)."""


def request_cancel(flow_run_id: UUID) -> None:
    """Ask the warm run ``flow_run_id`` to stop at its next cancellation point."""
    with _cancel_lock:
        _cancel_requested.add(flow_run_id)


def cancel_requested(flow_run_id: UUID | None = None) -> bool:
    """Whether cancellation was requested for ``flow_run_id`` (default: the warm run of this context)."""
    run = flow_run_id if flow_run_id is not None else _current_run.get()
    if run is None:
        return False
    with _cancel_lock:
        return run in _cancel_requested


def raise_if_cancelled() -> None:
    """A cancellation point: raise :class:`RunCancelled` when this warm run was asked to stop.

    A no-op outside a warm run (a subprocess run is stopped by terminating its process).
    """
    if cancel_requested():
        raise RunCancelled(f"flow run {_current_run.get()} was cancelled")


def _forget(flow_run_id: UUID) -> None:
    with _cancel_lock:
        _cancel_requested.discard(flow_run_id)


@dataclass
class WarmDeployment:
    """A deployment and the flow object that runs its flow runs in-process."""

    deployment: RunnerDeployment
    flow: Flow[..., Any]


@dataclass
class _InFlight:
    process: Any = None  # a multiprocessing process when the run was isolated
    cancelling: bool = False


def _never(_run: FlowRun) -> bool:
    return False


@dataclass
class WarmRunner:
    """Polls the API for scheduled runs of its deployments and executes them in this process.

    Args:
        deployments: the deployments to serve, each with its flow object.
        query_seconds: how often to look for runs to start and for cancellation requests, besides
            the look that each event of a scheduled or cancelling run triggers.
        limit: how many runs execute at once; more stay scheduled until a slot frees.
        isolate: ``isolate(flow_run)`` true runs that flow run in a subprocess instead.
        pause_on_shutdown: pause the deployments' schedules when the runner stops.
    """

    deployments: list[WarmDeployment]
    query_seconds: float = 1.0
    limit: int = 1
    isolate: Callable[[FlowRun], bool] = _never
    pause_on_shutdown: bool = True
    wake_on_events: bool = True
    _flows: dict[UUID, Flow[..., Any]] = field(default_factory=dict, init=False)
    _in_flight: dict[UUID, _InFlight] = field(default_factory=dict, init=False)
    started: anyio.Event | None = field(default=None, init=False)
    _wake: anyio.Event | None = field(default=None, init=False)
    _stop_requested: bool = field(default=False, init=False)
    subscribed: anyio.Event | None = field(default=None, init=False)  # set once the event stream is open
    events_seen: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"limit must be >= 1, got {self.limit}")
        if self.query_seconds <= 0:
            raise ValueError(f"query_seconds must be > 0, got {self.query_seconds}")

    @property
    def deployment_ids(self) -> list[UUID]:
        return list(self._flows)

    async def register(self) -> list[UUID]:
        """Create or update every deployment on the API (schedules included); returns their ids."""
        for item in self.deployments:
            deployment_id = await item.deployment.aapply()
            self._flows[deployment_id] = item.flow
        return self.deployment_ids

    async def start(self, run_once: bool = False) -> None:
        """Register the deployments, then poll and execute until cancelled (or one pass with ``run_once``).

        On shutdown the runs in flight are asked to stop (they end ``Cancelled``) and, with
        ``pause_on_shutdown``, the deployments' schedules are paused.
        """
        self.started = self.started or anyio.Event()
        await self.register()
        async with get_client() as client:
            try:
                async with anyio.create_task_group() as runs:
                    if self.wake_on_events and not run_once:
                        runs.start_soon(self._listen)
                    self.started.set()
                    try:
                        failures = 0
                        while not self._stop_requested:
                            self._wake = anyio.Event()
                            try:
                                await self._watch_cancellations(client)
                                await self._submit_scheduled(client, runs)
                                failures = 0
                            except Exception:  # the API was unreachable: keep serving, back off
                                failures += 1
                                _logger.warning("polling the API failed (%d in a row)", failures, exc_info=True)
                            if run_once:
                                break
                            with anyio.move_on_after(self.query_seconds * min(2 ** failures, 30)):
                                await self._wake.wait()
                    except BaseException:
                        self._stop_in_flight()
                        raise
                    if self._stop_requested:  # graceful stop: end the runs in flight and the listener
                        self._stop_in_flight()
                        runs.cancel_scope.cancel()
            finally:
                if self.pause_on_shutdown:
                    with anyio.CancelScope(shield=True):
                        await self._pause(client)

    def stop(self) -> None:
        """Stop gracefully: runs in flight are asked to end (``Cancelled``), then ``start`` returns."""
        self._stop_requested = True
        self.wake()

    def wake(self) -> None:
        """Look for runs to start or cancel now instead of at the next poll."""
        if self._wake is not None:
            self._wake.set()

    async def _listen(self, retry_seconds: float = 5.0) -> None:
        """Wake the poll loop on each ``Scheduled``/``Cancelling`` event of a served deployment's runs.

        Reconnects after ``retry_seconds`` when the stream fails; polling goes on meanwhile.
        """
        from prefect.events.clients import get_events_subscriber
        from prefect.events.filters import EventFilter, EventNameFilter, EventRelatedFilter

        self.subscribed = anyio.Event()
        while True:
            related = [f"prefect.deployment.{d}" for d in self.deployment_ids]
            event_filter = EventFilter(
                event=EventNameFilter(name=["prefect.flow-run.Scheduled", "prefect.flow-run.Cancelling"]),
                related=EventRelatedFilter(id=related),
            )
            try:
                async with get_events_subscriber(filter=event_filter, reconnection_attempts=0) as events:
                    self.subscribed.set()
                    async for _event in events:
                        self.events_seen += 1
                        self.wake()
            except Exception:  # e.g. a server without the event stream: the poll still finds runs
                _logger.debug("event stream unavailable; polling every %.1f s", self.query_seconds, exc_info=True)
            await anyio.sleep(retry_seconds)

    def _stop_in_flight(self) -> None:
        for run_id, entry in self._in_flight.items():
            entry.cancelling = True
            if entry.process is not None:
                entry.process.terminate()
            else:
                request_cancel(run_id)

    async def _pause(self, client: PrefectClient) -> None:
        # On a terminal Ctrl-C the server stops too, and the client's retries against a dead server
        # would hold the shutdown for minutes: pause only while it answers, and for a bounded time.
        if not await server_answers():
            return
        with anyio.move_on_after(SHUTDOWN_PAUSE_SECONDS):
            for deployment_id in self.deployment_ids:
                try:
                    await client.pause_deployment(deployment_id)
                except Exception:  # shutting down: the server may be gone already
                    _logger.debug("could not pause deployment %s", deployment_id, exc_info=True)

    async def _submit_scheduled(self, client: PrefectClient, runs: anyio.abc.TaskGroup) -> None:
        free = self.limit - len(self._in_flight)
        if free <= 0 or not self._flows:
            return
        scheduled = await client.get_scheduled_flow_runs_for_deployments(
            deployment_ids=self.deployment_ids,
            scheduled_before=datetime.datetime.now(datetime.timezone.utc),
        )
        scheduled.sort(key=lambda r: (r.next_scheduled_start_time is None, r.next_scheduled_start_time))
        for flow_run in scheduled:
            if free <= 0:
                break
            if flow_run.id in self._in_flight or not await self._claim(client, flow_run):
                continue
            self._in_flight[flow_run.id] = _InFlight()
            free -= 1
            runs.start_soon(self._execute, client, flow_run)

    async def _claim(self, client: PrefectClient, flow_run: FlowRun) -> bool:
        """Propose ``Pending``; False when the server refuses (another runner took it, or it was cancelled)."""
        try:
            state = await propose_state(client, Pending(), flow_run_id=flow_run.id)
        except Abort as exc:
            _logger.info("not starting flow run %s: %s", flow_run.id, exc)
            return False
        except ObjectNotFound:
            return False
        return state.is_pending()

    async def _execute(self, client: PrefectClient, flow_run: FlowRun) -> None:
        flow = self._flows[flow_run.deployment_id]
        entry = self._in_flight[flow_run.id]
        error: Exception | None = None
        try:
            if self.isolate(flow_run):
                _logger.info("flow run '%s' (%s): in a subprocess", flow_run.name, flow_run.id)
                from prefect.flow_engine import run_flow_in_subprocess

                entry.process = run_flow_in_subprocess(flow, flow_run=flow_run)
                await anyio.to_thread.run_sync(entry.process.join)
            else:
                _logger.info("flow run '%s' (%s): in the warm process", flow_run.name, flow_run.id)
                await anyio.to_thread.run_sync(_run_in_thread, flow, flow_run)
        except Exception as exc:  # the engine records the run's own failures; this is the runner's
            _logger.exception("flow run %s crashed in the warm runner", flow_run.id)
            error = exc
        finally:
            # Shielded: on shutdown the runner is being cancelled, and the run must still end Cancelled.
            with anyio.CancelScope(shield=True):
                try:
                    if error is not None:
                        final = Crashed(message=f"warm runner: {type(error).__name__}: {error}")
                    else:
                        final = await _settle(client, flow_run.id, entry.cancelling, entry.process)
                    if final is not None:
                        await propose_state(client, final, flow_run_id=flow_run.id, force=True)
                except Exception:
                    _logger.exception("could not record the end of flow run %s", flow_run.id)
                self._in_flight.pop(flow_run.id, None)
                _forget(flow_run.id)
                self.wake()  # a slot is free: start the next queued run now, not at the next poll

    async def _watch_cancellations(self, client: PrefectClient) -> None:
        """Turn ``Cancelling`` runs into stop requests (in-process) or terminated processes (isolated)."""
        for run_id, entry in list(self._in_flight.items()):
            if entry.cancelling:
                continue
            try:
                run = await client.read_flow_run(run_id)
            except ObjectNotFound:
                continue
            if run.state is not None and run.state.is_cancelling():
                entry.cancelling = True
                _logger.info("cancelling flow run %s", run_id)
                if entry.process is not None:
                    entry.process.terminate()
                else:
                    request_cancel(run_id)


def _run_in_thread(flow: Flow[..., Any], flow_run: FlowRun) -> None:
    """Run ``flow_run`` with Prefect's engine in this thread, marked as a warm run for cancellation."""
    from prefect.flow_engine import run_flow

    token = _current_run.set(flow_run.id)
    try:
        # With return_type="state" the engine records the run's own exceptions (RunCancelled included)
        # as its final state instead of raising; the runner then settles a cancelled run as Cancelled.
        run_flow(flow, flow_run=flow_run, return_type="state")
    finally:
        _current_run.reset(token)


async def _settle(client: PrefectClient, flow_run_id: UUID, cancelling: bool, process: Any = None) -> Any:
    """The state to force once a run's execution returned: Cancelled when it was being cancelled and
    did not complete (also when the request came after the runner's last look), Crashed when the engine left it
    unfinished (e.g. its subprocess died), else None (the engine has recorded the final state)."""
    run = await client.read_flow_run(flow_run_id)
    if run.state is not None and run.state.is_completed():
        return None  # it finished before the cancellation took effect
    if cancelling or (run.state is not None and run.state.is_cancelling()):
        return Cancelled(message="Cancelled from the API or dashboard, or the runner stopped.")
    if run.state is None or not run.state.is_final():
        where = f"its subprocess exited with code {process.exitcode}" if process is not None else "the engine returned"
        return Crashed(message=f"{where} while the run was {run.state.type.value if run.state else 'without a state'}")
    return None

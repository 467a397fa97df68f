"""The warm runner: deployment runs execute in the serving process, are cancellable, and can be isolated."""
from __future__ import annotations

import os
import threading
import time
from uuid import UUID

import anyio
import pytest
from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.states import Cancelling

from flows.serve import build_deployments, needs_own_process, split_deployments, warm_flows
from flows.warm import (
    RunCancelled,
    WarmDeployment,
    WarmRunner,
    _current_run,
    _forget,
    raise_if_cancelled,
    request_cancel,
)

SEEN: dict[str, object] = {}


@task
def record(tag: str) -> int:
    """Runs on the flow's task runner thread: records which process and thread executed it."""
    raise_if_cancelled()  # the warm run marker reaches task threads
    SEEN[tag] = (os.getpid(), threading.current_thread().name)
    return os.getpid()


@flow(name="warm_probe")
def probe_flow(tag: str = "x") -> int:
    return record(tag)


@flow(name="warm_sleeper")
def sleeper_flow(seconds: float = 60.0) -> str:
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        raise_if_cancelled()
        time.sleep(0.05)
    return "finished"


@flow(name="warm_failing")
def failing_flow() -> None:
    raise ValueError("boom")


async def _serve_until(runner: WarmRunner, condition) -> None:
    """Run ``runner`` in the background until ``condition()`` (async) is true, then stop it."""
    async with anyio.create_task_group() as group:
        group.start_soon(runner.start)
        with anyio.fail_after(120):
            while runner.started is None or not runner.started.is_set():
                await anyio.sleep(0.05)
            await condition()
        group.cancel_scope.cancel()


def _runner(flow_obj, name: str, **kwargs) -> WarmRunner:
    return WarmRunner([WarmDeployment(flow_obj.to_deployment(name=name), flow_obj)], query_seconds=0.2,
                      pause_on_shutdown=False, **kwargs)


async def _state(run_id: UUID) -> str:
    async with get_client() as client:
        run = await client.read_flow_run(run_id)
    return run.state.type.value


async def _wait_state(run_id: UUID, wanted: set[str], timeout: float = 60.0) -> str:
    with anyio.fail_after(timeout):
        while (state := await _state(run_id)) not in wanted:
            await anyio.sleep(0.1)
    return state


def test_deployment_run_executes_in_this_process():
    runner = _runner(probe_flow, "warm-probe")

    async def scenario():
        run = await run_deployment("warm_probe/warm-probe", parameters={"tag": "in-process"}, timeout=0)
        assert await _wait_state(run.id, {"COMPLETED", "FAILED", "CRASHED"}) == "COMPLETED"

    anyio.run(_serve_until, runner, scenario)
    pid, thread = SEEN["in-process"]
    assert pid == os.getpid()
    assert thread != threading.main_thread().name


def test_events_start_a_run_long_before_the_next_poll():
    """With a poll only every 10 minutes, the Scheduled event of a new run wakes the runner."""
    runner = WarmRunner([WarmDeployment(probe_flow.to_deployment(name="warm-probe-events"), probe_flow)],
                        query_seconds=600.0, pause_on_shutdown=False)

    async def scenario():
        with anyio.fail_after(30):  # the first poll has passed; wait until the event stream is open
            while runner.subscribed is None or not runner.subscribed.is_set():
                await anyio.sleep(0.05)
        t0 = time.monotonic()
        run = await run_deployment("warm_probe/warm-probe-events", parameters={"tag": "woken"}, timeout=0)
        assert await _wait_state(run.id, {"COMPLETED", "FAILED", "CRASHED"}, 60) == "COMPLETED"
        assert time.monotonic() - t0 < 30, "the run waited for the poll, not the event"

    anyio.run(_serve_until, runner, scenario)
    assert runner.events_seen >= 1 and "woken" in SEEN


def test_without_events_the_poll_still_finds_runs():
    runner = _runner(probe_flow, "warm-probe-poll-only", wake_on_events=False)

    async def scenario():
        run = await run_deployment("warm_probe/warm-probe-poll-only", parameters={"tag": "polled"}, timeout=0)
        assert await _wait_state(run.id, {"COMPLETED", "FAILED", "CRASHED"}) == "COMPLETED"

    anyio.run(_serve_until, runner, scenario)
    assert runner.events_seen == 0 and "polled" in SEEN


def test_cancelling_a_warm_run_stops_it_and_marks_it_cancelled():
    runner = _runner(sleeper_flow, "warm-sleeper")

    async def scenario():
        run = await run_deployment("warm_sleeper/warm-sleeper", parameters={"seconds": 60.0}, timeout=0)
        await _wait_state(run.id, {"RUNNING"})
        t0 = time.monotonic()
        async with get_client() as client:
            await client.set_flow_run_state(run.id, Cancelling(), force=True)
        assert await _wait_state(run.id, {"CANCELLED", "COMPLETED", "FAILED", "CRASHED"}, 30) == "CANCELLED"
        assert time.monotonic() - t0 < 10, "the run should stop at its next cancellation point"

    anyio.run(_serve_until, runner, scenario)


def test_stopping_the_runner_cancels_its_runs():
    runner = _runner(sleeper_flow, "warm-sleeper-shutdown")
    started: list[UUID] = []

    async def scenario():
        run = await run_deployment("warm_sleeper/warm-sleeper-shutdown", parameters={"seconds": 60.0}, timeout=0)
        started.append(run.id)
        await _wait_state(run.id, {"RUNNING"})

    t0 = time.monotonic()
    anyio.run(_serve_until, runner, scenario)  # returns once the runner has stopped and settled its run
    assert time.monotonic() - t0 < 40
    assert anyio.run(_state, started[0]) == "CANCELLED"


def test_a_failing_flow_fails_and_the_runner_keeps_serving():
    runner = WarmRunner([WarmDeployment(failing_flow.to_deployment(name="warm-failing"), failing_flow),
                         WarmDeployment(probe_flow.to_deployment(name="warm-probe-2"), probe_flow)],
                        query_seconds=0.2, pause_on_shutdown=False)

    async def scenario():
        bad = await run_deployment("warm_failing/warm-failing", timeout=0)
        assert await _wait_state(bad.id, {"COMPLETED", "FAILED", "CRASHED"}) == "FAILED"
        good = await run_deployment("warm_probe/warm-probe-2", parameters={"tag": "after-failure"}, timeout=0)
        assert await _wait_state(good.id, {"COMPLETED", "FAILED", "CRASHED"}) == "COMPLETED"

    anyio.run(_serve_until, runner, scenario)
    assert SEEN["after-failure"][0] == os.getpid()


def test_isolated_runs_get_their_own_process():
    runner = _runner(probe_flow, "warm-probe-isolated", isolate=lambda run: True)

    async def scenario():
        run = await run_deployment("warm_probe/warm-probe-isolated", parameters={"tag": "isolated"}, timeout=0)
        assert await _wait_state(run.id, {"COMPLETED", "FAILED", "CRASHED"}, 120) == "COMPLETED"

    anyio.run(_serve_until, runner, scenario)
    assert "isolated" not in SEEN  # the task ran in the child process, not here


def test_cancellation_points_raise_only_inside_the_cancelled_warm_run():
    run_id = UUID(int=1)
    request_cancel(run_id)
    try:
        raise_if_cancelled()  # not inside a warm run: nothing to cancel
        token = _current_run.set(UUID(int=2))
        raise_if_cancelled()  # another warm run: not cancelled
        _current_run.reset(token)
        token = _current_run.set(run_id)
        with pytest.raises(RunCancelled):
            raise_if_cancelled()
        _current_run.reset(token)
    finally:
        _forget(run_id)
    with pytest.raises(ValueError, match="limit"):
        WarmRunner([], limit=0)


def test_serve_splits_inference_from_training():
    deployments = build_deployments({"schedules": False})
    warm, cold = split_deployments(deployments)
    assert {w.deployment.flow_name for w in warm} == set(warm_flows()) & {d.flow_name for d in deployments}
    assert "composed" in {w.deployment.flow_name for w in warm}
    assert {"train_image", "generate_image_from_file"} <= {d.flow_name for d in cold}
    assert all(w.flow.name == w.deployment.flow_name for w in warm)
    warm, cold = split_deployments(deployments, isolate=True)
    assert warm == [] and len(cold) == len(deployments)


def test_ray_runs_are_isolated():
    class Run:
        def __init__(self, params):
            self.parameters = params

    assert needs_own_process(Run({"params": {"task_runner": "ray"}}))
    assert not needs_own_process(Run({"params": {"task_runner": "local"}}))
    assert not needs_own_process(Run({}))


def test_mmdiff_serve_is_warm_unless_isolate(monkeypatch):
    """``mmdiff serve`` serves inference runs warm; ``--isolate`` gives every run a subprocess."""
    from click.testing import CliRunner

    import flows.serve
    from mmdiff.cli import build_cli

    calls: list[bool] = []
    monkeypatch.setattr(flows.serve, "serve_all", lambda *a, isolate, **k: calls.append(isolate))
    for extra in ([], ["--warm"], ["--isolate"]):
        res = CliRunner().invoke(build_cli(), ["serve", "--no-schedules", *extra])
        assert res.exit_code == 0, res.output
    assert calls == [False, False, True]


def test_queued_runs_start_as_soon_as_a_slot_frees():
    """Eight runs queued before the runner starts, one slot, a poll only every 10 minutes and no event
    stream: each run must start when the previous one finishes (the runner wakes itself), not at a poll."""
    runner = WarmRunner([WarmDeployment(probe_flow.to_deployment(name="warm-probe-queue"), probe_flow)],
                        query_seconds=600.0, limit=1, wake_on_events=False, pause_on_shutdown=False)
    timing: dict[str, float] = {}

    async def queue_then_serve():
        await runner.register()
        ids = [(await run_deployment("warm_probe/warm-probe-queue", parameters={"tag": f"queued-{i}"},
                                     timeout=0)).id for i in range(8)]
        t0 = time.monotonic()

        async def all_done():
            for run_id in ids:
                assert await _wait_state(run_id, {"COMPLETED", "FAILED", "CRASHED"}, 120) == "COMPLETED"
            timing["seconds"] = time.monotonic() - t0

        await _serve_until(runner, all_done)

    anyio.run(queue_then_serve)
    assert all(f"queued-{i}" in SEEN for i in range(8))
    assert timing["seconds"] < 60, timing  # one poll interval is 600 s
    print(f"8 queued runs: {timing['seconds']:.1f} s")

"""Orchestration overhead: ``generate_image`` as a deployment run on a live server vs the direct library call.

    python bench/bench_orchestration.py --labels 200 1000 --steps 25 --out bench/results/orchestration.json

Measures (1) seconds until the dashboard is ready (server healthy and every deployment registered by
``mmdiff serve``); then, for each batch size, (2) the direct call in this already-warm process
(modules imported; load the checkpoint, generate the same shards with the same seeds, write the
PNGs), (3) the same call as a fresh ``python`` process (what a one-off script or ``mmdiff generate``
pays: interpreter start, imports, load, generate) and (4) ``run_deployment`` of
``generate_image/generate-image`` until it completes. ``mmdiff serve`` runs generation deployments
in its own warm process (:mod:`flows.warm`), so (4)/(2) is the orchestration overhead against a warm
Python session (issue 4's goal: <= 1.10) and (4)/(3) the comparison with a one-off script. Before
the trials one small untimed run goes each way (the first call of a process pays one-off costs on
either side); its deployment time is reported as ``first_deployment_run_s``. ``--isolate`` serves
every run in a fresh subprocess instead (Prefect's default), for comparison. The phases of each
deployment run (waiting to start, task spans) come from the server's records.
"""
from __future__ import annotations

import argparse
import os
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flows.dashboard import server_env, start_server, stop, wait_healthy  # noqa: E402
from flows.image.launch import free_port  # noqa: E402
from flows.image.params import IMAGE_CHECKPOINT  # noqa: E402
from flows.image.tasks import shard_labels, shard_seed  # noqa: E402


def direct_call(checkpoint: str, labels: list[int], steps: int, shard_size: int, out: Path) -> float:
    """The same work without Prefect: every shard with its derived seed, PNGs written."""
    from generators.image import ImageGenerator

    t0 = time.perf_counter()
    gen = ImageGenerator.from_pretrained(checkpoint)
    for index, _, chunk in shard_labels(labels, shard_size):
        gen(chunk, num_inference_steps=steps, seed=shard_seed(0, index)).save(out, prefix=f"shard{index:03d}")
    return time.perf_counter() - t0


def cold_direct_call(checkpoint: str, labels: list[int], steps: int, shard_size: int, out: Path) -> float:
    """:func:`direct_call` in a fresh interpreter, timed from launch to exit (imports included)."""
    code = ("import sys; sys.path.insert(0, 'bench'); from pathlib import Path; from bench_orchestration import direct_call; "
            f"direct_call({checkpoint!r}, {labels!r}, {steps}, {shard_size}, Path({str(out)!r}))")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    return time.perf_counter() - t0


def run_phases(client, run) -> dict[str, float]:
    """Where a deployment run's time goes: waiting to start, the process start-up, each task's span."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
        TaskRunFilter,
        TaskRunFilterFlowRunId,
    )

    run = client.read_flow_run(run.id)
    children = client.read_flow_runs(flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[run.id])))
    ids = [run.id] + [c.id for c in children]
    tasks = client.read_task_runs(task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=ids)))
    tasks = [t for t in tasks if t.start_time is not None and t.end_time is not None]
    out = {"created_to_start_s": round((run.start_time - run.created).total_seconds(), 2),
           "start_to_end_s": round((run.end_time - run.start_time).total_seconds(), 2)}
    if tasks:
        first = min(t.start_time for t in tasks)
        last = max(t.end_time for t in tasks)
        out["start_to_first_task_s"] = round((first - run.start_time).total_seconds(), 2)
        out["last_task_to_end_s"] = round((run.end_time - last).total_seconds(), 2)
        spans: dict[str, float] = {}
        for t in tasks:
            name = t.name.rsplit("-", 1)[0]
            spans[name] = spans.get(name, 0.0) + (t.end_time - t.start_time).total_seconds()
        out["task_seconds"] = {k: round(v, 2) for k, v in sorted(spans.items())}
    return out


def measure(args: argparse.Namespace, n: int, tmp: Path) -> dict:
    """One trial for ``n`` images: warm direct call, fresh-process direct call, deployment run."""
    from prefect.client.orchestration import get_client

    labels = [i % 10 for i in range(n)]
    warm = direct_call(args.checkpoint, labels, args.steps, args.shard_size, tmp / "direct")
    cold = cold_direct_call(args.checkpoint, labels, args.steps, args.shard_size, tmp / "cold")
    run, deployed = deployment_run(args, labels, tmp / "runs")
    with get_client(sync_client=True) as client:
        phases = run_phases(client, run)
    return {"images": n, "direct_warm_s": warm, "direct_fresh_process_s": cold, "deployment_run_s": deployed,
            "state": run.state.type.value, **phases}


def deployment_run(args: argparse.Namespace, labels: list[int], output_root: Path):
    """Create a ``generate_image/generate-image`` run and wait for its end; returns (run, seconds).

    The wait is Prefect's :func:`~prefect.flow_runs.wait_for_flow_run`, which listens to the server's
    event stream instead of polling the run (``run_deployment``'s own wait reads it every
    ``poll_interval`` seconds, adding up to that much to each measurement and API load to the run).
    """
    import asyncio

    from prefect.deployments import run_deployment
    from prefect.flow_runs import wait_for_flow_run

    params = {"labels": labels, "num_inference_steps": args.steps, "shard_size": args.shard_size,
              "checkpoint": args.checkpoint, "output_root": str(output_root)}
    t0 = time.perf_counter()
    run = run_deployment("generate_image/generate-image", parameters={"params": params}, timeout=0)
    run = asyncio.run(wait_for_flow_run(run.id, timeout=3600))
    return run, time.perf_counter() - t0


def warm_up(args: argparse.Namespace, tmp: Path, n: int = 10) -> float:
    """One small untimed run each way; returns the deployment run's seconds (the first run after serve)."""
    labels = list(range(n))
    direct_call(args.checkpoint, labels, args.steps, args.shard_size, tmp / "direct")
    run, seconds = deployment_run(args, labels, tmp / "runs")
    if not run.state.is_completed():
        raise RuntimeError(f"warm-up deployment run ended {run.state.type.value}: {run.state.message}")
    return seconds


def summarise(trials: list[dict]) -> dict:
    """Medians over trials of the times and of the per-trial ratios (each trial's three runs are back to back)."""
    def med(values: list[float]) -> float:
        return round(float(statistics.median(values)), 3)

    out = {"images": trials[0]["images"], "trials": len(trials), "states": sorted({t["state"] for t in trials})}
    for key in ("direct_warm_s", "direct_fresh_process_s", "deployment_run_s", "created_to_start_s"):
        out[key] = med([t[key] for t in trials if key in t])
    out["overhead_vs_fresh_process"] = med([t["deployment_run_s"] / t["direct_fresh_process_s"] for t in trials])
    out["overhead_vs_warm_call"] = med([t["deployment_run_s"] / t["direct_warm_s"] for t in trials])
    out["deployment_minus_warm_s"] = med([t["deployment_run_s"] - t["direct_warm_s"] for t in trials])
    out["check_checkpoint_task_s"] = med([t.get("task_seconds", {}).get("check-checkpoint", 0.0) for t in trials])
    out["per_trial"] = [{k: (round(v, 2) if isinstance(v, float) else v) for k, v in t.items()} for t in trials]
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--labels", type=int, nargs="+", default=[200], help="images per run (one or more sizes)")
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--shard-size", type=int, default=50)
    p.add_argument("--repeats", type=int, default=1, help="measure each size this many times; medians reported")
    p.add_argument("--checkpoint", default=IMAGE_CHECKPOINT)
    p.add_argument("--isolate", action="store_true", help="serve every run in its own subprocess (mmdiff serve --isolate)")
    p.add_argument("--out", type=Path, default=None, help="write the JSON result here")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="mmdiff-bench-"))
    port = free_port()
    t0 = time.perf_counter()
    server = start_server(port, home=str(tmp / "home"), log=tmp / "server.log")
    serve = None
    runs = []
    try:
        healthy = wait_healthy(port, proc=server)
        command = [sys.executable, "-m", "mmdiff", "serve", "--checkpoint", f"image={args.checkpoint}",
                   "--output-root", str(tmp / "runs"), "--no-schedules"] + (["--isolate"] if args.isolate else [])
        serve = subprocess.Popen(command, cwd=ROOT,
                                 env=server_env(port, str(tmp / "home")), stdout=open(tmp / "serve.log", "wb"),
                                 stderr=subprocess.STDOUT)
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: f"http://127.0.0.1:{port}/api"}):
            from prefect.client.orchestration import get_client

            with get_client(sync_client=True) as client:
                while len(client.read_deployments()) < 6:
                    time.sleep(0.5)
            ready = time.perf_counter() - t0
            first = warm_up(args, tmp / "warm-up")
            for n in args.labels:
                trials = [measure(args, n, tmp / f"{n}-{r}") for r in range(args.repeats)]
                runs.append(summarise(trials))
                print(json.dumps(runs[-1]), flush=True)
        result = {"steps": args.steps, "shard_size": args.shard_size, "sampler": "dpmsolver++", "repeats": args.repeats,
                  "server_healthy_s": round(healthy, 2), "dashboard_ready_s": round(ready, 2),
                  "first_deployment_run_s": round(first, 2), "serve": "isolated" if args.isolate else "warm", "runs": runs,
                  "command": "python bench/bench_orchestration.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    finally:
        if serve is not None:
            stop(serve)
        stop(server)
    print(json.dumps(result, indent=2))
    if args.out is not None:
        from generators.core.checkpoint import atomic_write_json

        atomic_write_json(args.out, result)
    return result


if __name__ == "__main__":
    os.chdir(ROOT)
    main(sys.argv[1:] or ["--labels", "200", "1000", "--repeats", "3", "--out", "bench/results/orchestration.json"])

"""Orchestration overhead: ``generate_image`` as a deployment run on a live server vs the direct library call.

    python -m flows.bench_orchestration --labels 200 --steps 25 --out bench/results/orchestration.json

Measures (1) seconds until the dashboard is ready (server healthy and every deployment registered by
``mmdiff serve``), (2) the direct call (load checkpoint, generate the same shards with the same seeds,
write the PNGs) and (3) ``run_deployment`` of ``generate_image/generate-image`` until it completes.
The ratio (3)/(2) is the overhead (issue 4's goal: <= 1.10).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .dashboard import ROOT, server_env, start_server, stop, wait_healthy
from .image_tasks import shard_labels, shard_seed
from .launch import free_port
from .params import IMAGE_CHECKPOINT


def direct_call(checkpoint: str, labels: list[int], steps: int, shard_size: int, out: Path) -> float:
    """The same work without Prefect: every shard with its derived seed, PNGs written."""
    from generators.image import ImageGenerator

    t0 = time.perf_counter()
    gen = ImageGenerator.from_pretrained(checkpoint)
    for index, _, chunk in shard_labels(labels, shard_size):
        gen(chunk, num_inference_steps=steps, seed=shard_seed(0, index)).save(out, prefix=f"shard{index:03d}")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--labels", type=int, default=200, help="images per run")
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--shard-size", type=int, default=50)
    p.add_argument("--checkpoint", default=IMAGE_CHECKPOINT)
    p.add_argument("--out", type=Path, default=None, help="write the JSON result here")
    args = p.parse_args(argv)
    labels = [i % 10 for i in range(args.labels)]
    tmp = Path(tempfile.mkdtemp(prefix="mmdiff-bench-"))
    port = free_port()
    t0 = time.perf_counter()
    server = start_server(port, home=str(tmp / "home"), log=tmp / "server.log")
    serve = None
    try:
        healthy = wait_healthy(port, proc=server)
        serve = subprocess.Popen([sys.executable, "-m", "flows.cli", "serve", "--checkpoint", args.checkpoint,
                                  "--output-root", str(tmp / "runs"), "--no-schedules"], cwd=ROOT,
                                 env=server_env(port, str(tmp / "home")), stdout=open(tmp / "serve.log", "wb"),
                                 stderr=subprocess.STDOUT)
        from prefect.deployments import run_deployment
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: f"http://127.0.0.1:{port}/api"}):
            from prefect.client.orchestration import get_client

            with get_client(sync_client=True) as client:
                while len(client.read_deployments()) < 6:
                    time.sleep(0.5)
            ready = time.perf_counter() - t0
            direct = direct_call(args.checkpoint, labels, args.steps, args.shard_size, tmp / "direct")
            params = {"labels": labels, "num_inference_steps": args.steps, "shard_size": args.shard_size,
                      "checkpoint": args.checkpoint, "output_root": str(tmp / "runs")}
            t1 = time.perf_counter()
            run = run_deployment("generate_image/generate-image", parameters={"params": params}, timeout=3600)
            deployed = time.perf_counter() - t1
        result = {"images": args.labels, "steps": args.steps, "shard_size": args.shard_size,
                  "server_healthy_s": round(healthy, 2), "dashboard_ready_s": round(ready, 2),
                  "direct_s": round(direct, 2), "deployment_run_s": round(deployed, 2),
                  "overhead_ratio": round(deployed / direct, 3), "state": run.state.type.value}
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
    main()

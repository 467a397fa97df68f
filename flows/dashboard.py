"""``make dashboard``: a local Prefect server (SQLite, 127.0.0.1) plus every served deployment.

``start_server`` runs ``prefect server start`` in a child process; ``PREFECT_SERVER_DATABASE_CONNECTION_URL``
in the environment switches it to PostgreSQL (see the README). ``run_dashboard`` waits until the API
answers, then serves the deployments in this process, and stops the server on exit.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def server_env(port: int, home: str | None = None) -> dict[str, str]:
    """Environment for the server and its clients: API URL on 127.0.0.1, telemetry off."""
    env = dict(os.environ)
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    env["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    if home is not None:
        env["PREFECT_HOME"] = home
    return env


def start_server(port: int = 4200, home: str | None = None, log: Path | None = None) -> subprocess.Popen:
    """``prefect server start --host 127.0.0.1 --port PORT`` as a child process (not yet ready).

    The server gets a session of its own, so a terminal's Ctrl-C reaches only the serving process,
    which stops its runners while the server still answers (they pause their schedules through it)
    and then stops the server.
    """
    out = open(log, "ab") if log is not None else subprocess.DEVNULL
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(cmd, cwd=ROOT, env=server_env(port, home), stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_healthy(port: int, timeout: float = 120.0, proc: subprocess.Popen | None = None) -> float:
    """Block until ``/api/health`` answers; returns the seconds waited.

    Raises:
        TimeoutError: not healthy within ``timeout`` seconds.
        RuntimeError: the server process exited first.
    """
    t0 = time.perf_counter()
    url = f"http://127.0.0.1:{port}/api/health"
    while time.perf_counter() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with code {proc.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return time.perf_counter() - t0
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"prefect server on port {port} not healthy after {timeout:.0f} s")


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Terminate a child process, killing it after ``grace`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_dashboard(port: int = 4200, defaults: dict | None = None) -> None:
    """Start the server, wait for it, then serve all deployments until Ctrl-C; the server stops with us."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from .serve import serve_all

    proc = start_server(port)
    try:
        seconds = wait_healthy(port, proc=proc)
        print(f"Prefect server ready after {seconds:.1f} s: http://127.0.0.1:{port}", flush=True)
        with temporary_settings(updates={PREFECT_API_URL: f"http://127.0.0.1:{port}/api"}):
            serve_all(defaults)
    finally:
        stop(proc)

"""A terminal Ctrl-C (SIGINT to ``mmdiff dashboard`` and its server together) stops everything within 15 s,
without a traceback (the reliability issue: it hung for minutes and printed an ExceptionGroup)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from flows.image.launch import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_ctrl_c_stops_the_dashboard_within_15_seconds(tmp_path):
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "OMP_NUM_THREADS": "1"}
    env.pop("PREFECT_API_URL", None)
    log = tmp_path / "dashboard.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mmdiff", "dashboard", "--port", str(port), "--no-schedules"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.time() + 300
            while "in this process (warm)" not in log.read_text(errors="replace") and time.time() < deadline:
                assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
                time.sleep(0.5)
            time.sleep(2)  # the runners are polling and listening
            t0 = time.time()
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
            proc.wait(timeout=60)
            seconds = time.time() - t0
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text(errors="replace")
    assert seconds < 15, (seconds, text[-3000:])
    assert "Traceback" not in text and "ExceptionGroup" not in text, text[-3000:]

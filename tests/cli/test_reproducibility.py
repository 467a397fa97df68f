"""``--seed`` fixes everything: two identical CLI training runs, and a SIGKILLed-then-resumed one, end bit-identical."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _train(tmp: Path, name: str, steps: int, wait: bool = True) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mmdiff", "train", "image", "--preset", "tiny", "--max-steps", str(steps),
           "--checkpoint-every", "10", "--seed", "3", "--cache-root", str(tmp / name / "cache"),
           "--publish-dir", str(tmp / name / "published")]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    if wait:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()[-2000:]
        proc.summary = json.loads(out)  # type: ignore[attr-defined]
    return proc


def _weights(tmp: Path, name: str) -> dict[str, torch.Tensor]:
    folder = tmp / name / "published"
    return {**load_file(folder / "model.safetensors"), **{f"ema.{k}": v for k, v in load_file(folder / "ema.safetensors").items()}}


def _identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_two_identical_cli_runs_and_a_killed_and_resumed_one_end_bit_identical(tmp_path):
    steps = 200
    _train(tmp_path, "a", steps)
    _train(tmp_path, "b", steps)
    assert _identical(_weights(tmp_path, "a"), _weights(tmp_path, "b"))

    proc = _train(tmp_path, "killed", steps, wait=False)
    states = list((tmp_path / "killed" / "cache").glob("*/training_state/state.json"))
    deadline = time.time() + 300
    while not states and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
        states = list((tmp_path / "killed" / "cache").glob("*/training_state/state.json"))
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(states[0].read_text())["step"]
    assert killed_at < steps
    resumed = _train(tmp_path, "killed", steps)
    assert resumed.summary["resumed_from"] >= killed_at and not resumed.summary["reused"]
    assert _identical(_weights(tmp_path, "a"), _weights(tmp_path, "killed"))
    assert not list((tmp_path / "killed").rglob("*.tmp"))

"""Video benchmark of the shipped latent model: seconds and peak memory for one 16-frame clip on CPU, by step count.

    python -m bench.bench_video          # -> bench/results/video.json

Each row runs in a fresh process (so its peak resident memory is its own): the model loads, one 2-step
warm-up clip, then three timed text-to-video clips (one prompt, 16 frames, 32x32, dpmsolver++,
guidance 4, so two network passes per step); the median is reported. The issue's goal: a 16x32x32 clip
in under 10 s at 25 steps, in under 2 GB. The shipped model makes one resolution (32x32); a model of
another resolution is benchmarked by passing its folder.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generators.core.checkpoint import atomic_write_json  # noqa: E402

CHECKPOINT = ROOT / "data" / "checkpoints" / "video-moving-digits"
STEPS = (10, 25, 50)
PROMPT = "the digit 3 moves to the right"


def _once(folder: str, steps: int, repeats: int = 3) -> dict:
    """Time ``repeats`` clips of the model in ``folder`` in this process and report its peak RSS."""
    from generators.video import VideoGenerator

    gen = VideoGenerator.from_pretrained(folder)
    gen(prompt=PROMPT, num_inference_steps=2)  # warm-up
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        out = gen(prompt=PROMPT, num_inference_steps=steps, seed=r)
        times.append(time.perf_counter() - t0)
    frames = out.frames
    return {"steps": steps, "frames": int(frames.shape[0]), "size": list(frames.shape[1:3]),
            "latent": gen.latent is not None, "seconds_median": round(statistics.median(times), 2),
            "seconds_all": [round(t, 2) for t in times],
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main(folder: Path = CHECKPOINT) -> dict:
    import torch

    rows = []
    for steps in STEPS:
        res = subprocess.run([sys.executable, "-m", "bench.bench_video", "_once", str(folder), str(steps)],
                             cwd=ROOT, capture_output=True, text=True, check=True)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    at25 = next(r for r in rows if r["steps"] == 25)
    result = {"machine": platform.machine(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
              "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
              "checkpoint": str(Path(folder).resolve().relative_to(ROOT)) if Path(folder).resolve().is_relative_to(ROOT)
              else str(folder), "prompt": PROMPT, "sampler": "dpmsolver++", "guidance_scale": 4.0, "results": rows,
              "goal_25_steps_under_10s_and_2gb": at25["seconds_median"] < 10 and at25["peak_rss_mb"] < 2048}
    atomic_write_json(ROOT / "bench" / "results" / "video.json", result)
    return result


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_once":
        print(json.dumps(_once(sys.argv[2], int(sys.argv[3]))))
    else:
        main(Path(sys.argv[1]) if len(sys.argv) > 1 else CHECKPOINT)

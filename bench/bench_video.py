"""Video benchmark of the shipped latent model: seconds and peak memory for one 16-frame clip on CPU, by step count.

    python -m bench.bench_video          # -> bench/results/video.json

Each row runs in a fresh process (so its peak resident memory is its own): the model loads, one 2-step
warm-up clip, then three timed text-to-video clips (one prompt, 16 frames, 32x32, dpmsolver++,
guidance 4, so two network passes per step); the median is reported. The issue's goal: a 16x32x32 clip
in under 10 s at 25 steps, in under 2 GB.

The shipped model makes one resolution (32x32). For the cost at other resolutions, the same
architecture (the shipped folder's config, autoencoder included) is built with untrained weights for
48x48 and 64x64 canvases and saved to a temporary folder: the time and memory of a sampling step do
not depend on the weights, only the pictures would. Those rows say ``"weights": "untrained"``.
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
SIZES = (48, 64)  # extra canvas sizes, untrained weights, at 25 steps
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


def resized_copy(folder: Path, size: int, out: Path) -> Path:
    """The architecture of the model in ``folder`` for a ``size`` x ``size`` canvas, untrained, saved to ``out``."""
    from dataclasses import replace

    import torch

    from generators.video import VideoGenerator
    from generators.video.model import SpatioTemporalUNet

    gen = VideoGenerator.from_pretrained(folder)
    config = {k: v for k, v in gen.model.config.items() if not k.startswith("_")}
    torch.manual_seed(0)
    model = SpatioTemporalUNet.from_config(config)
    clip = replace(gen.clip, frame_size=size, digit_size=max(gen.clip.digit_size, size * 3 // 8))
    VideoGenerator(model, gen.diffusion, "cpu", clip=clip).save_pretrained(out)
    return out


def _run(folder: Path | str, steps: int) -> dict:
    res = subprocess.run([sys.executable, "-m", "bench.bench_video", "_once", str(folder), str(steps)],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    row = json.loads(res.stdout.strip().splitlines()[-1])
    print(json.dumps(row), flush=True)
    return row


def main(folder: Path = CHECKPOINT) -> dict:
    import tempfile

    import torch

    rows = [{**_run(folder, steps), "weights": "trained"} for steps in STEPS]
    with tempfile.TemporaryDirectory() as tmp:
        for size in SIZES:
            rows.append({**_run(resized_copy(folder, size, Path(tmp) / f"s{size}"), 25), "weights": "untrained"})
    at25 = next(r for r in rows if r["steps"] == 25 and r["weights"] == "trained")
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

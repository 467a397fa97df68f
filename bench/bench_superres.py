"""Super-resolution benchmark of the shipped ``sr-x4``: speed by step count, peak memory with tiling, quality by steps.

    python -m bench.bench_superres          # -> bench/results/superres.json

- ``speed``: seconds to upscale one 256x256 photo crop x4 (to 1024x1024; four 512-px tiles), median of
  three runs, by sampler step count;
- ``memory``: peak resident memory of a fresh process that upscales a 1024x1024 input x4 (to 4096x4096,
  81 tiles) with two sampler steps (the peak does not grow with steps: the sampler keeps a fixed number
  of full-size tensors); the issue's goal is under 4 GB;
- ``quality``: ``evaluate_superres`` on the held-out photos (bicubic degradation, 4 samples per photo, in
  antithetic pairs, and 4 iid beside) by step count: PSNR / SSIM of one sample and of the mean, beside bicubic.
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

CHECKPOINT = ROOT / "data" / "checkpoints" / "sr-x4"
STEPS = (5, 10, 20, 25)
QUALITY_STEPS = (5, 10, 20, 50)


def _machine() -> dict:
    import torch

    return {"machine": platform.machine(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
            "checkpoint": str(CHECKPOINT.relative_to(ROOT))}


def _photo(size: int):
    """A centre crop of a held-out photo (astronaut), resized to ``size`` x ``size`` when the photo is smaller."""
    import numpy as np
    from PIL import Image

    from generators.superres.data import load_photo_uint8

    photo = load_photo_uint8("astronaut")
    image = Image.fromarray(photo).resize((size, size), Image.BICUBIC) if min(photo.shape[:2]) < size else \
        Image.fromarray(photo[:size, :size])
    return np.asarray(image)


def speed(repeats: int = 3) -> dict:
    from generators.superres import SuperResolver

    sr = SuperResolver.from_pretrained(CHECKPOINT)
    image = _photo(256)
    sr(image, num_inference_steps=2)  # warm-up
    rows = []
    for steps in STEPS:
        times = []
        for r in range(repeats):
            t0 = time.perf_counter()
            sr(image, num_inference_steps=steps, seed=r)
            times.append(time.perf_counter() - t0)
        rows.append({"steps": steps, "sampler": "dpmsolver++", "seconds_median": round(statistics.median(times), 2),
                     "seconds_all": [round(t, 2) for t in times]})
        print("speed", json.dumps(rows[-1]), flush=True)
    return {"input": [256, 256], "output": [1024, 1024], "repeats": repeats, "results": rows}


def _memory_once(size: int, steps: int) -> dict:
    """One run in this (fresh) process: upscale a ``size`` x ``size`` input and report the peak RSS."""
    from generators.superres import SuperResolver

    sr = SuperResolver.from_pretrained(CHECKPOINT)
    image = _photo(size)
    t0 = time.perf_counter()
    out = sr(image, num_inference_steps=steps)
    seconds = time.perf_counter() - t0
    return {"input": [size, size], "output": list(out.images[0].shape[:2]), "steps": steps,
            "seconds": round(seconds, 1), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def memory(size: int = 1024, steps: int = 2) -> dict:
    res = subprocess.run([sys.executable, "-m", "bench.bench_superres", "_memory_once", str(size), str(steps)],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    row = json.loads(res.stdout.strip().splitlines()[-1])
    row["goal_under_4gb"] = row["peak_rss_mb"] < 4096
    print("memory", json.dumps(row), flush=True)
    return row


def quality(num_samples: int = 4) -> dict:
    from generators.superres import SuperResolver
    from generators.superres.evaluate import evaluate_superres

    sr = SuperResolver.from_pretrained(CHECKPOINT)
    rows = []
    for steps in QUALITY_STEPS:
        m = evaluate_superres(sr, num_samples=num_samples, num_inference_steps=steps, degradations=("bicubic",))
        b = m["bicubic"]
        rows.append({"steps": steps, "psnr_single": b["psnr_single"], "psnr_mean": b["psnr_mean"],
                     "psnr_mean_iid": b.get("psnr_mean_iid"),
                     "psnr_bicubic": b["psnr_bicubic"], "ssim_single": b["ssim_single"], "ssim_mean": b["ssim_mean"],
                     "ssim_bicubic": b["ssim_bicubic"], "hf_single": b["hf_single"],
                     "seconds_per_sample": m["seconds_per_sample"]})
        print("quality", json.dumps(rows[-1]), flush=True)
    return {"photos": m["photos"], "crop": m["crop"], "degradation": "bicubic", "num_samples": num_samples,
            "antithetic": m["antithetic"], "self_ensemble": m["self_ensemble"],
            "sampler": m["sampler"], "results": rows}


def main() -> dict:
    result = {**_machine(), "speed": speed(), "memory": memory(), "quality": quality()}
    atomic_write_json(ROOT / "bench" / "results" / "superres.json", result)
    return result


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_memory_once":
        print(json.dumps(_memory_once(int(sys.argv[2]), int(sys.argv[3]))))
    else:
        main()

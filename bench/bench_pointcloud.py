"""Point-cloud benchmark of the shipped ``pointcloud-shapes``: generation and refinement apart, and the 1-NNA cost.

    python -m bench.bench_pointcloud          # -> bench/results/pointcloud.json

- ``generation``: seconds per shape (2,048 points, dpmsolver++ 25 steps, a batch of 8 chairs), median of
  three batches, and the peak resident memory of that fresh process;
- ``refinement``: seconds per cloud of ``refine`` (the default closing method), median over one
  generated cloud per category, in the same process after generation (its peak is reported too);
- ``one_nna``: seconds of the 1-NNA evaluation for 200 x 200 shapes (held-out procedural shapes
  against validation shapes): Chamfer at 2,048 points, and exact EMD at 128 points of each cloud.
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

CHECKPOINT = ROOT / "data" / "checkpoints" / "pointcloud-shapes"


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _generation_once() -> dict:
    """Generation then refinement in this fresh process."""
    from generators.pointcloud import PointCloudGenerator, refine

    gen = PointCloudGenerator.from_pretrained(CHECKPOINT)
    gen(label="chair", num_points=256, num_inference_steps=2)  # warm-up
    batch, times = 8, []
    for r in range(3):
        t0 = time.perf_counter()
        gen(label=["chair"] * batch, num_points=2048, num_inference_steps=25, seed=r)
        times.append((time.perf_counter() - t0) / batch)
    generation = {"seconds_per_shape_median": round(statistics.median(times), 3),
                  "seconds_per_shape_all": [round(t, 3) for t in times], "batch": batch, "num_points": 2048,
                  "sampler": "dpmsolver++", "steps": 25, "peak_rss_mb": _rss_mb()}
    clouds = gen(label=list(gen.categories), num_points=2048, num_inference_steps=25, seed=0).points
    refine_times = []
    for cloud in clouds:
        t0 = time.perf_counter()
        refine(cloud)
        refine_times.append(time.perf_counter() - t0)
    refinement = {"seconds_per_cloud_median": round(statistics.median(refine_times), 3),
                  "seconds_per_cloud_max": round(max(refine_times), 3), "clouds": len(refine_times),
                  "method": "closing", "peak_rss_mb_after": _rss_mb()}
    return {"generation": generation, "refinement": refinement}


def one_nna(count: int = 200) -> dict:
    import numpy as np

    from evaluation.pointcloud import chamfer_matrix, emd_matrix, set_metrics
    from generators.pointcloud.data import procedural_split

    ref = procedural_split("test", count // 11 + 1, 2048, 0).points[:count]
    other = procedural_split("val", count // 11 + 1, 2048, 0).points[:count]
    t0 = time.perf_counter()
    cd = set_metrics(chamfer_matrix(other, ref), chamfer_matrix(other), chamfer_matrix(ref))
    t_cd = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    a = np.stack([c[rng.choice(len(c), 128, replace=False)] for c in other])
    b = np.stack([c[rng.choice(len(c), 128, replace=False)] for c in ref])
    t0 = time.perf_counter()
    emd = set_metrics(emd_matrix(a, b), emd_matrix(a), emd_matrix(b))
    t_emd = time.perf_counter() - t0
    return {"shapes": [count, count], "pair": "validation vs test procedural shapes", "cd_points": 2048,
            "cd_seconds": round(t_cd, 1), "cd_metrics": {k: round(v, 4) for k, v in cd.items()}, "emd_points": 128,
            "emd_exact_seconds": round(t_emd, 1), "emd_metrics": {k: round(v, 4) for k, v in emd.items()}}


def main() -> dict:
    import torch

    res = subprocess.run([sys.executable, "-m", "bench.bench_pointcloud", "_generation_once"], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    rows = json.loads(res.stdout.strip().splitlines()[-1])
    print(json.dumps(rows), flush=True)
    nna = one_nna()
    print(json.dumps(nna), flush=True)
    result = {"machine": platform.machine(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
              "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
              "checkpoint": str(CHECKPOINT.relative_to(ROOT)), **rows, "one_nna": nna}
    atomic_write_json(ROOT / "bench" / "results" / "pointcloud.json", result)
    return result


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_generation_once":
        print(json.dumps(_generation_once()))
    else:
        main()

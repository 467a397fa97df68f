"""Floorplan benchmark: seconds per plan on CPU by room count and step count, sampling and refinement apart.

    python -m bench.bench_floorplan        # -> bench/results/floorplan_speed.json
"""
from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generators.core.checkpoint import atomic_write_json  # noqa: E402
from generators.floorplan import benchmark_floorplan  # noqa: E402

CHECKPOINT = ROOT / "data" / "checkpoints" / "floorplan"


def main() -> dict:
    import torch

    rows = benchmark_floorplan(CHECKPOINT)
    result = {"machine": platform.machine(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
              "load_average_at_start": list(os.getloadavg()), "checkpoint": str(CHECKPOINT.relative_to(ROOT)),
              "guidance_scale": "generator default", "results": rows}
    atomic_write_json(ROOT / "bench" / "results" / "floorplan_speed.json", result)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

"""Orchestration overhead of ``generate_image`` as a deployment run (see :mod:`flows.bench_orchestration`).

    python bench/bench_orchestration.py      # 200 and 1000 images, 3 trials each -> bench/results/orchestration.json
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flows.bench_orchestration import main  # noqa: E402

if __name__ == "__main__":
    os.chdir(ROOT)
    main(sys.argv[1:] or ["--labels", "200", "1000", "--repeats", "3", "--out", "bench/results/orchestration.json"])

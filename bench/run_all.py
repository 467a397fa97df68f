"""`make bench`: run every benchmark script (``bench/bench_*.py``); each writes JSON under bench/results/."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    for script in sorted((ROOT / "bench").glob("bench_*.py")):
        subprocess.run([sys.executable, "-m", f"bench.{script.stem}"], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()

"""`make bench`: run every benchmark; each writes JSON under bench/results/."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    subprocess.run([sys.executable, "-m", "bench.bench_image", "all"], cwd=ROOT, check=True)
    for script in sorted((ROOT / "bench").glob("bench_*.py")):
        if script.name != "bench_image.py":
            subprocess.run([sys.executable, str(script)], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()

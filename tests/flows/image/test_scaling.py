"""Beyond one process: Ray shards (prefect-ray) and DDP training (accelerate launch, 2 CPU gloo processes)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from flows.image.flows import generate_image_flow, train_image_flow


def _pixels(rows: list[dict]) -> list[np.ndarray]:
    return [np.asarray(Image.open(r["path"])) for r in rows]


def test_ray_shards_match_the_local_run(tiny_checkpoint, tmp_path):
    pytest.importorskip("prefect_ray")
    common = {"labels": [0, 1, 2, 3, 4, 5, 6], "num_inference_steps": 4, "sampler": "dpmsolver++", "seed": 5,
              "shard_size": 2, "checkpoint": str(tiny_checkpoint)}
    local = generate_image_flow({**common, "task_runner": "local", "output_root": str(tmp_path / "local")})
    ray = generate_image_flow({**common, "task_runner": "ray", "output_root": str(tmp_path / "ray")})
    assert [r["seed"] for r in ray["samples"]] == [r["seed"] for r in local["samples"]]
    assert len({r["seed"] for r in ray["samples"]}) == 4  # 4 shards, 4 derived seeds
    for a, b in zip(_pixels(local["samples"]), _pixels(ray["samples"])):
        assert np.array_equal(a, b)
    assert ray["metrics"]["task_runner"] == "ray"


def test_accelerate_launch_two_gloo_processes_trains_a_loadable_checkpoint(tmp_path):
    from generators.image import ImageGenerator

    result = train_image_flow({"max_steps": 6, "num_processes": 2, "eval_per_class": 0, "eval_steps": 2,
                               "cache_root": str(tmp_path / "cache"), "publish_dir": str(tmp_path / "pub"),
                               "output_root": str(tmp_path / "runs")})
    folder = next((tmp_path / "cache").iterdir())
    summary = json.loads((folder / "launch_summary.json").read_text())
    assert summary["num_processes"] == 2 and summary["backend"] == "gloo" and summary["steps"] == 6
    gen = ImageGenerator.from_pretrained(result["checkpoint"])
    assert gen([1], num_inference_steps=2).images.shape == (1, 8, 8, 1)
    assert Path(result["report"]).is_file()

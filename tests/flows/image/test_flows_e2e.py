"""End-to-end flow runs with a tiny model: train (resume, reuse, publish) -> generate -> evaluate -> composed."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

from flows.composed import composed_flow
from flows.image.flows import evaluate_image_flow, generate_image_flow, train_image_flow
from flows.image.params import TrainImageParams
from flows.image.tasks import fingerprint_task, shard_seed


def artifacts(flow_run_id: str | None = None, key: str | None = None) -> list:
    flt = ArtifactFilter(
        flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]) if flow_run_id else None,
        key=ArtifactFilterKey(any_=[key]) if key else None,
    )
    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=flt)


def test_train_resumes_then_reuses_and_publishes(tmp_path):
    from generators.image import ImageGenerator
    from generators.image.train import train_image

    params = TrainImageParams(max_steps=20, checkpoint_every=10, cache_root=str(tmp_path / "cache"),
                              publish_dir=str(tmp_path / "published"), output_root=str(tmp_path / "runs"),
                              eval_per_class=2, eval_steps=3, cas_epochs=1)
    folder = fingerprint_task.fn(params)["folder"]
    train_image(folder, "tiny", max_steps=10, progress=False)  # a run "killed" after its step-10 checkpoint
    first = train_image_flow(params)
    assert first["metrics"]["resumed_from"] == 10 and first["metrics"]["steps"] == 20
    assert not first["metrics"]["reused"]
    assert 0.0 <= first["metrics"]["accuracy"] <= 1.0
    ImageGenerator.from_pretrained(first["checkpoint"])  # the published folder loads
    assert not (Path(first["checkpoint"]) / "training_state").exists()
    assert Path(first["report"]).is_file()
    found = artifacts(first["flow_run_id"])
    assert {"markdown", "table", "progress"} <= {a.type for a in found}
    assert [a.data for a in found if a.key == "train-image-progress"] == [100.0]

    second = train_image_flow(params)
    assert second["metrics"]["reused"] and second["metrics"]["train_seconds"] == 0.0


def test_generate_flow_writes_pngs_report_and_artifacts(tiny_checkpoint, tmp_path):
    from generators.image import ImageGenerator

    result = generate_image_flow({"labels": [0, 1, 2, 3, 9], "num_inference_steps": 4, "sampler": "ddim",
                                  "shard_size": 2, "seed": 3, "checkpoint": str(tiny_checkpoint),
                                  "output_root": str(tmp_path)})
    rows = result["samples"]
    assert [r["label"] for r in rows] == [0, 1, 2, 3, 9] and [r["shard"] for r in rows] == [0, 0, 1, 1, 2]
    gen = ImageGenerator.from_pretrained(tiny_checkpoint)
    direct = gen([3, 9][1:], num_inference_steps=4, sampler="ddim", guidance_scale=3.0, seed=shard_seed(3, 2))
    assert np.array_equal(np.asarray(Image.open(rows[4]["path"])), direct.images[0, ..., 0])
    run_dir = Path(result["run_dir"])
    assert (run_dir / "index.html").is_file() and len(list((run_dir / "images").glob("*.png"))) == 5
    found = artifacts(result["flow_run_id"])
    markdown = [a for a in found if a.type == "markdown"]
    table = [a for a in found if a.type == "table"]
    assert markdown and str(run_dir) in markdown[0].data and "| images | 5 |" in markdown[0].data
    assert table and "confidence" in table[0].data
    assert 100.0 in [a.data for a in artifacts(key="generate-shard-2-progress")]


def test_flow_rejects_bad_parameters_before_running(tmp_path):
    with pytest.raises(Exception, match="sampler"):
        generate_image_flow({"sampler": "plms", "output_root": str(tmp_path)})
    assert not list(tmp_path.iterdir())


def test_evaluate_flow(tiny_checkpoint, tmp_path):
    result = evaluate_image_flow({"checkpoint": str(tiny_checkpoint), "per_class": 2, "num_inference_steps": 3,
                                  "cas_epochs": 1, "output_root": str(tmp_path)})
    metrics = result["metrics"]
    assert {"accuracy", "fd", "fd_real_baseline", "cas"} <= set(metrics) and metrics["n_generated"] == 20
    assert Path(result["report"]).is_file()
    assert any(a.type == "markdown" for a in artifacts(result["flow_run_id"]))


def test_composed_flow_runs_the_image_step(tiny_checkpoint, tmp_path):
    result = composed_flow({"image": {"checkpoint": str(tiny_checkpoint), "labels": [1, 2], "num_inference_steps": 3,
                                      "gallery": "quick"},
                            "steps": ["image-gallery"], "output_root": str(tmp_path)})
    status = {s["step"]: s["status"] for s in result["steps"]}
    assert status["image-gallery"] == "ran"
    html = Path(result["report"]).read_text()
    assert "digits: dpmsolver++" in html and "scandinavian" in html
    pngs = list((Path(result["run_dir"]) / "images").glob("*.png"))
    assert len(pngs) == 2 and all(p.resolve().is_relative_to(Path(result["run_dir"]).resolve()) for p in pngs)


def test_demo_runs_the_composed_flow_on_the_shipped_checkpoints(tmp_path):
    """``make demo``: the composed flow's report shows every registered family's rows."""
    from flows.demo import run_demo

    report = run_demo(tmp_path, seed=0)
    html = report.read_text()
    for title in ("dpmsolver++, 25 steps", "SDEdit", "inpainting", "denoised", "text -&gt; image",
                  "edge map -&gt; image (ControlNet"):
        assert title in html, title
    images = list((report.parent / "images").glob("*.png"))
    assert len(images) >= 10 * 9 + 5 and all(i.stat().st_size > 0 for i in images)
    assert any(a.type == "markdown" for a in artifacts(key="composed-report"))

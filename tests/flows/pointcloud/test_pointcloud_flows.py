"""The point-cloud family through Prefect with the tiny preset: train -> generate -> evaluate, the composed
steps, and the CLI cells (``generate pointcloud``, ``refine``) built from its registry record."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from click.testing import CliRunner
from PIL import Image

from flows import registry
from flows.params import Brief, Room
from flows.pointcloud import FAMILY
from flows.pointcloud.flows import evaluate_pointcloud_flow, generate_pointcloud_flow, train_pointcloud_flow
from flows.pointcloud.gallery import room_requests
from flows.pointcloud.params import (EvaluatePointCloudParams, GeneratePointCloudParams, PointCloudSection,
                                     TrainPointCloudParams)
from generators.pointcloud.data import procedural_shape


@pytest.fixture(scope="module")
def registered():
    """The family joins the registry for these tests only (its registry line is added by the integrator)."""
    registry.register(FAMILY)
    yield FAMILY
    registry.unregister("pointcloud")


@pytest.fixture(scope="module")
def trained(registered, tmp_path_factory):
    root = tmp_path_factory.mktemp("pointcloud-flows")
    params = TrainPointCloudParams(preset="tiny", max_steps=4, checkpoint_every=2, out_dir=str(root / "ckpt"),
                                   output_root=str(root / "runs"))
    return train_pointcloud_flow(params), root


def test_train_flow_publishes_a_checkpoint_and_report(trained):
    result, _ = trained
    assert result["metrics"]["steps"] == 4 and Path(result["report"]).is_file()
    assert (Path(result["checkpoint"]) / "training.json").is_file()
    html = Path(result["report"]).read_text()
    assert "refined meshes" in html and ".png" in html


def test_generate_and_evaluate_flows(trained):
    result, root = trained
    gen = generate_pointcloud_flow(GeneratePointCloudParams(
        label=["chair", "mug"], prompt=["a chair", "a wide mug"], num_points=256, num_inference_steps=2,
        checkpoint=result["checkpoint"], output_root=str(root / "runs"), refine_resolution=48))
    rows = gen["shapes"]
    assert [r["caption"] for r in rows] == ["chair / a chair", "mug / a wide mug"]
    for r in rows:
        assert len(trimesh.load(r["points"]).vertices) == 256
        assert trimesh.load(r["glb"], force="mesh").faces.shape[0] > 0
        assert np.asarray(Image.open(r["preview"])).std() > 0
    metrics = evaluate_pointcloud_flow(EvaluatePointCloudParams(
        checkpoint=result["checkpoint"], per_category=2, num_points=48, emd_points=16, refine_per_category=0,
        num_inference_steps=2, output_root=str(root / "runs")))["metrics"]
    assert set(metrics["per_category"]) == {"chair", "table", "mug"}
    assert all(0 <= v["1-nna-cd"] <= 1 and 0 <= v["cov-emd"] <= 1 for v in metrics["per_category"].values())


def test_train_flow_keeps_stages_and_evaluate_flow_breaks_down(trained, tmp_path):
    """--init-checkpoint/--keep-stages/--finetune-stages and --breakdown reach the family's functions through the flows."""
    result, root = trained
    params = TrainPointCloudParams(preset="tiny", max_steps=2, out_dir=str(tmp_path / "prior"), output_root=str(root / "runs"),
                                   init_checkpoint=result["checkpoint"], keep_stages=["vae", "global_prior"],
                                   finetune_stages=["point_prior"])
    again = train_pointcloud_flow(params)
    record = json.loads((Path(again["checkpoint"]) / "training.json").read_text())
    assert record["stages"]["global_prior"] == {"kept_from": result["checkpoint"]}
    assert record["stages"]["point_prior"]["steps"] == 2
    assert record["stages"]["point_prior"]["finetuned_from"] == result["checkpoint"]
    metrics = evaluate_pointcloud_flow(EvaluatePointCloudParams(
        checkpoint=again["checkpoint"], per_category=2, num_points=48, emd_points=0, refine_per_category=0,
        num_inference_steps=2, breakdown=True, output_root=str(root / "runs")))["metrics"]
    assert set(metrics["breakdown"]) == {"chair", "table", "mug"}
    assert set(metrics["breakdown_mean"]) == {"real", "reconstruction", "posterior_sample", "point_prior"}
    with pytest.raises(ValueError, match="keep_stages"):
        TrainPointCloudParams(keep_stages=["decoder"])
    with pytest.raises(ValueError, match="finetune_stages"):
        TrainPointCloudParams(finetune_stages=["decoder"])


def test_composed_steps_make_room_objects_and_previews(trained, tmp_path):
    result, _ = trained
    brief = Brief(rooms=[Room(name="bed 1", room_type="bedroom"), Room(name="kitchen", room_type="kitchen",
                                                                        object_prompt="a round table"),
                         Room(name="hall", room_type="corridor")])
    section = PointCloudSection(checkpoint=result["checkpoint"], num_points=256, num_inference_steps=2, preview_size=48,
                                refine_resolution=48)
    assert room_requests(brief, section, ("chair", "table", "mug")) == [("kitchen", "table", "a round table")]
    steps = {s.name: s for s in FAMILY.composed_steps}
    context = registry.StepContext(str(tmp_path), brief, 0, {})
    objects = steps["room-objects"].run(section, context)
    assert objects.outputs["rooms"] == ["kitchen"] and Path(objects.outputs["meshes"][0]).is_file()
    assert objects.rows[0]["kind"] == "mesh"
    context = registry.StepContext(str(tmp_path), brief, 0, {"room-objects": objects.outputs})
    previews = steps["previews"].run(section, context)
    image = np.asarray(Image.open(previews.outputs["images"][0]))
    assert image.shape == (48, 144, 3) and (image < 250).any()


def test_cli_cells_generate_and_refine(trained, tmp_path):
    from mmdiff.cli import build_cli

    result, _ = trained
    cli = build_cli([FAMILY])
    runner = CliRunner()
    out = runner.invoke(cli, ["generate", "pointcloud", "--checkpoint", result["checkpoint"], "--label", "mug",
                              "--num-points", "256", "--num-inference-steps", "2", "--out", str(tmp_path / "mug.glb")])
    assert out.exit_code == 0, out.output
    assert trimesh.load(tmp_path / "mug.glb", force="mesh").faces.shape[0] > 0
    cloud = procedural_shape("lamp", "test", 0, 2048)[0]
    np.save(tmp_path / "lamp.npy", cloud)
    out = runner.invoke(cli, ["refine", str(tmp_path / "lamp.npy"), "--resolution", "48",
                              "--out", str(tmp_path / "lamp.obj")])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["watertight"] is True
    bad = tmp_path / "bad.xyz"
    bad.write_text("1 2 3\nnan 0 0\n" * 20)
    out = runner.invoke(cli, ["refine", str(bad), "--out", str(tmp_path / "bad.obj")])
    assert out.exit_code != 0 and "NaN or inf" in out.output and not (tmp_path / "bad.obj").exists()

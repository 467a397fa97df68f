"""The floorplan family's flows end to end with the tiny preset: train (resume, reuse, publish) -> generate ->
evaluate, the composed step on the brief, and the CLI command functions' bad input."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from prefect import flow

from flows.composed import composed_params_model, run_composed
from flows.floorplan import FAMILY
from flows.floorplan.commands import generate_floorplan
from flows.floorplan.flows import evaluate_floorplan_flow, generate_floorplan_flow, train_floorplan_flow
from flows.floorplan.params import FloorplanSection, GenerateFloorplanParams, TrainFloorplanParams
from flows.floorplan.tasks import fingerprint_task


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A tiny model trained through the flow (after a "killed" first run), then published."""
    from generators.floorplan import train_floorplan

    root = tmp_path_factory.mktemp("floorplan-flows")
    params = TrainFloorplanParams(preset="tiny", max_steps=4, checkpoint_every=2, cache_root=str(root / "cache"),
                                  publish_dir=str(root / "published"), output_root=str(root / "runs"), eval_steps=2)
    folder = fingerprint_task.fn(params)["folder"]
    train_floorplan(folder, "tiny", max_steps=2, checkpoint_every=2, progress=False)  # killed after step 2
    first = train_floorplan_flow(params)
    second = train_floorplan_flow(params)
    return root, first, second


def test_train_flow_resumes_reuses_and_publishes(published):
    from generators.floorplan import FloorplanGenerator

    _, first, second = published
    assert first["metrics"]["resumed_from"] == 2 and first["metrics"]["steps"] == 4 and not first["metrics"]["reused"]
    assert second["metrics"]["reused"] and second["metrics"]["train_seconds"] == 0.0
    folder = Path(first["checkpoint"])
    assert not (folder / "training_state").exists()
    assert FloorplanGenerator.from_pretrained(folder).model.config.max_rooms == 8
    html = Path(first["report"]).read_text()
    assert "class='svg'" in html and "plan_000.svg" in html


def test_generate_flow_writes_plans_and_report(published, tmp_path):
    _, first, _ = published
    result = generate_floorplan_flow({"num": 2, "num_inference_steps": 2, "checkpoint": first["checkpoint"],
                                      "output_root": str(tmp_path)})
    plans = Path(result["run_dir"]) / "plans"
    assert sorted(p.suffix for p in plans.iterdir()) == [".json"] * 2 + [".png"] * 2 + [".svg"] * 2
    assert result["metrics"]["plans"] == 2 and result["metrics"]["max_overlap"] == 0
    assert json.loads((plans / "plan_000.json").read_text())["requested_graph"]["name"] == "two-bedroom flat"
    assert "plan_001.svg" in Path(result["report"]).read_text()


def test_evaluate_flow(published, tmp_path):
    from generators.floorplan import train_floorplan_classifier

    _, first, _ = published
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_floorplan_classifier(tmp_path / "clf", steps=3, num_plans=16, num_test=4, batch_size=8, width=4)
        result = evaluate_floorplan_flow({"checkpoint": first["checkpoint"], "num_graphs": 2, "samples_per_graph": 2,
                                          "num_inference_steps": 2, "classifier": str(tmp_path / "clf"),
                                          "output_root": str(tmp_path)})
    m = result["metrics"]
    assert m["overlap"] == 0 and m["rooms_match"] == 1 and 0 <= m["door_feasibility"] <= 1 and m["fd"] >= 0
    assert Path(result["report"]).is_file()


def test_composed_floorplan_step_uses_the_brief(published, tmp_path):
    _, first, _ = published
    Params = composed_params_model([FAMILY])
    params = Params(output_root=str(tmp_path), floorplan=FloorplanSection(checkpoint=first["checkpoint"],
                                                                          num_samples=2, num_inference_steps=2))

    @flow(name="composed-floorplan-test")
    def composed() -> dict:
        return run_composed(params, [FAMILY])

    result = composed()
    assert [s["status"] for s in result["steps"]] == ["ran"]
    run = Path(result["run_dir"])
    html = Path(result["report"]).read_text()
    assert "floorplan/plan.svg" in html and "candidate_001.svg" in html
    kept = json.loads((run / "floorplan" / "plan.json").read_text())
    assert sorted(r["room_type"] for r in kept["rooms"]) == sorted(r.room_type for r in params.brief.rooms)


def test_generate_command_refuses_bad_input_and_leaves_nothing(published, tmp_path):
    _, first, _ = published
    params = GenerateFloorplanParams(num=1, num_inference_steps=2, checkpoint=first["checkpoint"])
    with pytest.raises(ValueError, match=r"\.svg, \.png or \.json"):
        generate_floorplan(params, tmp_path / "plans.gif")
    assert list(tmp_path.iterdir()) == []
    bad = tmp_path / "g.json"
    bad.write_text(json.dumps({"rooms": [{"id": 0, "room_type": "ballroom"}], "doors": []}))
    with pytest.raises(ValueError, match="unknown room_type"):
        GenerateFloorplanParams(graph=str(bad))
    written = generate_floorplan(params, tmp_path / "one.svg")
    assert len(written) == 1 and (tmp_path / "one.svg").read_text().startswith("<svg")


def test_cli_generate_and_its_error_boundary(published, tmp_path):
    from click.testing import CliRunner

    from mmdiff.cli import build_cli

    _, first, _ = published
    cli = build_cli([FAMILY])
    assert "--graph" in CliRunner().invoke(cli, ["generate", "floorplan", "--help"]).output
    ok = CliRunner().invoke(cli, ["generate", "floorplan", "--num", "2", "--num-inference-steps", "2", "--checkpoint",
                                  first["checkpoint"], "--out", str(tmp_path / "plans")])
    assert ok.exit_code == 0, ok.output
    assert len(list((tmp_path / "plans").glob("plan_*.svg"))) == 2
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    err = CliRunner().invoke(cli, ["generate", "floorplan", "--graph", str(bad), "--out", str(tmp_path / "x")])
    assert err.exit_code == 2 and "not valid JSON" in err.output and len(err.output.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
    gif = CliRunner().invoke(cli, ["generate", "floorplan", "--out", str(tmp_path / "p.gif")])
    assert gif.exit_code == 2 and not (tmp_path / "p.gif").exists()

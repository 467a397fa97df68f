"""Training the tiny preset end to end, resuming it exactly, and evaluating it."""
import json

import pytest
from safetensors.torch import load_file

from generators.floorplan import FloorplanGenerator, evaluate_floorplan, train_floorplan


def test_train_tiny_resume_and_exactness(tmp_path):
    out = tmp_path / "run"
    first = train_floorplan(out, "tiny", max_steps=4, checkpoint_every=2, progress=False)
    assert (first.steps, first.resumed_from, len(first.losses)) == (4, 0, 4)
    assert json.loads((out / "training_state" / "state.json").read_text())["step"] == 4
    record = json.loads((out / "training.json").read_text())
    assert record["preset"] == "tiny" and record["steps"] == 4 and "procedural" in record["dataset"]
    assert FloorplanGenerator.from_pretrained(out).model.config.max_rooms == 8
    more = train_floorplan(out, "tiny", max_steps=8, checkpoint_every=2, progress=False)
    assert (more.steps, more.resumed_from, len(more.losses)) == (8, 4, 4)
    straight = train_floorplan(tmp_path / "straight", "tiny", max_steps=8, checkpoint_every=2, progress=False)
    assert straight.losses[4:] == pytest.approx(more.losses, rel=1e-5)
    a, b = load_file(str(out / "ema.safetensors")), load_file(str(tmp_path / "straight" / "ema.safetensors"))
    assert all((a[k] - b[k]).abs().max() < 1e-5 for k in a)


def test_train_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="preset must be one of"):
        train_floorplan(tmp_path, "huge")
    with pytest.raises(ValueError, match="device must be one of"):
        train_floorplan(tmp_path, "tiny", device="tpu")
    with pytest.raises(ValueError, match="max_steps"):
        train_floorplan(tmp_path, "tiny", max_steps=0)


@pytest.mark.filterwarnings("ignore:Matrix is singular")  # 4 plans give a singular feature covariance
def test_evaluate_tiny_model(tiny_gen, tiny_classifier):
    m = evaluate_floorplan(tiny_gen, num_graphs=2, samples_per_graph=2, num_inference_steps=2,
                           classifier_path=tiny_classifier)
    assert m["compatibility"] >= 0 and m["overlap"] == 0 and m["rooms_match"] == 1.0
    assert 0 <= m["door_feasibility"] <= 1 and 0 <= m["diversity"] <= 1
    assert 0 <= m["overlap_unrefined"] <= 1 and 0 <= m["door_feasibility_unrefined"] <= 1
    assert m["fd"] >= 0 and m["fd_real_baseline"] >= 0 and m["n_graphs"] == 2 and m["seconds_per_plan"] > 0
    assert m["rooms"] == [5, 8]
    with pytest.raises(ValueError, match="no plan classifier"):
        evaluate_floorplan(tiny_gen, num_graphs=1, samples_per_graph=1, num_inference_steps=2,
                           classifier_path=tiny_classifier.parent / "missing")

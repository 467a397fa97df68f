"""Checkpoint folders: round trip, EMA preference, and clear errors for broken folders."""
import json

import pytest
import torch

from generators.core.checkpoint import CheckpointError, load_model, save_model
from generators.image.model import build_model


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(0)
    model = build_model("tiny")
    ema = {k: v + 1.0 if v.is_floating_point() else v for k, v in model.state_dict().items()}
    save_model(tmp_path / "ckpt", model, ema)
    return model, ema, tmp_path / "ckpt"


def test_round_trip_and_ema(saved):
    model, ema, path = saved
    raw = load_model(path, type(model), use_ema=False)
    x, t, y = torch.randn(2, 1, 8, 8), torch.tensor([3.0, 400.0]), torch.tensor([1, 10])
    with torch.no_grad():
        assert torch.equal(raw(x, t, y), model.eval()(x, t, y))
    with_ema = load_model(path, type(model))
    name = next(iter(dict(model.named_parameters())))
    assert torch.equal(with_ema.state_dict()[name], ema[name])
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "ema.safetensors", "model.safetensors"]


def test_missing_files(saved, tmp_path):
    model, _, path = saved
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nowhere", type(model))
    (path / "ema.safetensors").unlink()
    (path / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors is missing"):
        load_model(path, type(model))
    (path / "config.json").unlink()
    with pytest.raises(CheckpointError, match="config.json is missing"):
        load_model(path, type(model))


def test_weights_that_do_not_match_the_config(saved):
    model, _, path = saved
    config = json.loads((path / "config.json").read_text())
    config["block_out_channels"] = [16, 32]
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="do not match the model built from config.json"):
        load_model(path, type(model))


def test_corrupted_safetensors(saved):
    model, _, path = saved
    (path / "ema.safetensors").write_bytes(b"\x00" * 64 + b"garbage")
    with pytest.raises(CheckpointError, match="corrupted"):
        load_model(path, type(model))
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupted"):
        load_model(path, type(model), use_ema=False)

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
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "ema.safetensors", "manifest.json",
                                                      "model.safetensors"]


def test_missing_files(saved, tmp_path):
    model, _, path = saved
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "nowhere", type(model))
    (path / "ema.safetensors").unlink()
    with pytest.raises(CheckpointError, match="ema.safetensors is missing \\(listed in manifest.json\\)"):
        load_model(path, type(model))
    (path / "manifest.json").unlink()  # a folder without a manifest (written by hand or by an older version)
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
    with pytest.raises(CheckpointError, match="config.json is corrupt"):  # edited after the manifest was written
        load_model(path, type(model))
    (path / "manifest.json").unlink()
    with pytest.raises(CheckpointError, match="do not match the model built from config.json"):
        load_model(path, type(model))
    (path / "config.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="must hold a JSON object"):
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


def test_a_damaged_file_is_named_even_when_it_is_not_read(saved):
    """The reliability issue: a truncated model.safetensors passed because only the EMA weights were read."""
    from generators.core.checkpoint import verify_manifest

    model, _, path = saved
    data = (path / "model.safetensors").read_bytes()
    (path / "model.safetensors").write_bytes(data[:100])
    with pytest.raises(CheckpointError, match="model.safetensors is corrupt"):
        load_model(path, type(model))  # reads ema.safetensors, checks every listed file's size
    (path / "model.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="model.safetensors is corrupt"):
        load_model(path, type(model))
    (path / "model.safetensors").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size, one bit flipped
    load_model(path, type(model))  # the EMA weights it reads are intact
    with pytest.raises(CheckpointError, match="sha256"):
        verify_manifest(path, full=True)  # ``mmdiff check`` hashes every file


def test_stale_temporaries_of_a_killed_writer_are_removed(saved):
    model, ema, path = saved
    (path / ".model.safetensors.abc123.tmp").write_bytes(b"")
    save_model(path, model, ema)
    assert not list(path.glob("*.tmp"))


def test_a_publish_killed_at_any_point_leaves_a_loadable_folder(tmp_path, monkeypatch):
    """Every file operation of a publish over an existing checkpoint is a possible kill point: afterwards the
    folder loads, with the old weights or the new ones, never a mix and never an error."""
    import os

    import generators.core.checkpoint as ck

    torch.manual_seed(0)
    old, new = build_model("tiny"), build_model("tiny")
    old_ema = {k: v + 1.0 if v.is_floating_point() else v for k, v in old.state_dict().items()}
    new_ema = {k: v - 1.0 if v.is_floating_point() else v for k, v in new.state_dict().items()}
    name = next(iter(dict(old.named_parameters())))

    def count_ops() -> int:
        calls = []
        with monkeypatch.context() as m:
            real_replace, real_link = os.replace, os.link
            m.setattr(ck.os, "replace", lambda *a: calls.append(1) or real_replace(*a))
            m.setattr(ck.os, "link", lambda *a: calls.append(1) or real_link(*a))
            save_model(tmp_path / "count", new, new_ema)
        return len(calls)

    save_model(tmp_path / "count", old, old_ema)
    total = count_ops()
    assert total >= 8
    for kill_at in range(1, total + 1):
        folder = tmp_path / f"k{kill_at}"
        save_model(folder, old, old_ema)
        calls = []
        with monkeypatch.context() as m:
            real_replace, real_link = os.replace, os.link

            def op(real):
                def wrapped(*args):
                    calls.append(1)
                    if len(calls) == kill_at:
                        raise KeyboardInterrupt("killed")
                    return real(*args)
                return wrapped

            m.setattr(ck.os, "replace", op(real_replace))
            m.setattr(ck.os, "link", op(real_link))
            with pytest.raises(KeyboardInterrupt):
                save_model(folder, new, new_ema)
        loaded = load_model(folder, type(old)).state_dict()[name]
        assert torch.equal(loaded, old_ema[name]) or torch.equal(loaded, new_ema[name]), kill_at

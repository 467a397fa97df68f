"""Crash safety of the training state: a crash at every write boundary of ``_save_state`` loses at most one
checkpoint interval, and the resumed run ends with exactly the weights of an uninterrupted one."""
from __future__ import annotations

import os
import shutil

import pytest
import torch
from torch import nn

import generators.core.training as training
from generators.core.checkpoint import CheckpointError
from generators.core.training import TrainConfig, train


class Crash(Exception):
    pass


def _run(out, steps: int = 30):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 4))
    data = (torch.randn(64, 4, generator=torch.Generator().manual_seed(1)),)

    def loss_fn(net, x, generator=None):
        return (net(x) - x.flip(-1)).pow(2).mean()

    config = TrainConfig(max_steps=steps, batch_size=16, learning_rate=1e-2, warmup_steps=2, checkpoint_every=10)
    return model, train(model, loss_fn, data, config, out, progress=False)


def _boundaries(monkeypatch, crash_at: int) -> list[str]:
    """Make the ``crash_at``-th file operation of a checkpoint save raise (the process 'dies' there)."""
    calls: list[str] = []
    real_save, real_json, real_replace = training.atomic_save_tensors, training.atomic_write_json, os.replace

    def hook(name, fn):
        def wrapped(*args, **kwargs):
            calls.append(name)
            if len(calls) == crash_at:
                raise Crash(name)
            return fn(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(training, "atomic_save_tensors", hook("tensors", real_save))
    monkeypatch.setattr(training, "atomic_write_json", hook("json", real_json))
    monkeypatch.setattr(training.os, "replace", hook("replace", real_replace))
    return calls


def test_a_crash_at_any_write_boundary_resumes_from_the_last_complete_state(tmp_path, monkeypatch):
    reference, _ = _run(tmp_path / "reference")
    counts = []
    for steps in (10, 20):  # how many file operations the first save, and the first two saves, make
        with monkeypatch.context() as m:
            calls = _boundaries(m, crash_at=-1)
            _run(tmp_path / f"count{steps}", steps=steps)
        counts.append(len(calls))
    assert counts[1] - counts[0] >= 7  # 5 files written (each a temp file and a rename) + 2 folder renames
    for crash_at in range(counts[0] + 1, counts[1] + 1):  # every operation of the step-20 save
        out = tmp_path / f"crash{crash_at}"
        with monkeypatch.context() as m:
            calls = _boundaries(m, crash_at)
            with pytest.raises(Crash):
                _run(out)
        assert len(calls) == crash_at
        model, result = _run(out)
        assert result.resumed_from in (10, 20), (crash_at, result.resumed_from)
        for p, q in zip(model.parameters(), reference.parameters()):
            assert torch.equal(p, q), crash_at
        assert not (out / "training_state.tmp").exists() and not (out / "training_state.old").exists()


def test_the_newer_complete_state_wins_after_a_crash_between_the_renames(tmp_path):
    out = tmp_path / "run"
    _run(out, steps=20)
    state = out / "training_state"
    # the crash the reliability issue rebuilt: the old state moved aside, the new one complete but not renamed
    shutil.copytree(state, out / "training_state.tmp")
    os.replace(state, out / "training_state.old")
    _, result = _run(out, steps=30)
    assert result.resumed_from == 20


def test_no_pickle_and_a_damaged_optimizer_state_is_named(tmp_path):
    out = tmp_path / "run"
    _run(out, steps=10)
    files = sorted(p.name for p in (out / "training_state").iterdir())
    assert files == ["ema.safetensors", "model.safetensors", "optimizer.json", "optimizer.safetensors", "state.json"]
    path = out / "training_state" / "optimizer.safetensors"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="optimizer.safetensors"):
        _run(out, steps=20)

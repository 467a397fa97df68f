"""The accelerate training loop: the loss falls, and a crashed run resumes to the same weights."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from generators.core.checkpoint import load_tensors
from generators.core.training import TrainConfig, train
from generators.image.train import train_image

ROOT = Path(__file__).resolve().parents[3]


def test_tiny_model_loss_falls(tmp_path):
    result = train_image(tmp_path / "run", "tiny", max_steps=60, progress=False)
    first, last = sum(result.losses[:10]) / 10, sum(result.losses[-10:]) / 10
    assert last < 0.6 * first
    assert (tmp_path / "run" / "model.safetensors").is_file()
    assert (tmp_path / "run" / "training.json").is_file()


class Crash(RuntimeError):
    pass


def _toy_run(out, steps, crash_at=None):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    data = (torch.randn(256, 2),)

    def loss_fn(net, x, generator=None):
        return ((net(x) - x.flip(1)) ** 2).mean()

    def on_checkpoint(step, inner, ema):
        if crash_at is not None and step == crash_at:
            raise Crash()

    config = TrainConfig(max_steps=steps, batch_size=32, learning_rate=1e-2, warmup_steps=5, checkpoint_every=10)
    return model, train(model, loss_fn, data, config, out, on_checkpoint=on_checkpoint, progress=False)


def test_resume_after_crash_reaches_the_same_weights(tmp_path):
    with pytest.raises(Crash):
        _toy_run(tmp_path / "a", 40, crash_at=20)
    model, result = _toy_run(tmp_path / "a", 40)
    assert result.resumed_from == 20
    reference, _ = _toy_run(tmp_path / "b", 40)
    for p, q in zip(model.parameters(), reference.parameters()):
        assert torch.allclose(p, q, atol=1e-6)


def test_killed_process_resumes_losing_at_most_one_interval(tmp_path):
    out = tmp_path / "killed"
    code = (
        "from generators.image.train import train_image;"
        f"train_image({str(out)!r}, 'tiny', max_steps=400, checkpoint_every=10, progress=False)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, start_new_session=True)
    state = out / "training_state" / "state.json"
    deadline = time.time() + 120
    while not state.is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert state.is_file(), "no checkpoint was written before the kill"
    import json
    saved_step = json.loads(state.read_text())["step"]
    load_tensors(out / "training_state" / "model.safetensors")  # not half-written
    result = train_image(out, "tiny", max_steps=saved_step + 20, checkpoint_every=10, progress=False)
    assert result.resumed_from == saved_step
    assert len(result.losses) == 20


def test_bf16_autocast_and_gradient_accumulation_run(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    config = TrainConfig(max_steps=30, batch_size=32, learning_rate=1e-2, warmup_steps=1, grad_accum_steps=2,
                         mixed_precision="bf16", checkpoint_every=15)
    result = train(model, lambda net, x, generator=None: ((net(x).float() - x.flip(1)) ** 2).mean(),
                   (torch.randn(256, 2),), config, tmp_path, progress=False)
    assert len(result.losses) == 30 and all(torch.isfinite(torch.tensor(result.losses)))
    assert sum(result.losses[-5:]) < sum(result.losses[:5])
    with pytest.raises(ValueError, match="mixed_precision"):
        TrainConfig(mixed_precision="fp8")


class _OnTheFly(torch.utils.data.Dataset):
    """A procedural dataset: item i is generated from i alone (data that never sits in memory)."""

    def __len__(self) -> int:
        return 10_000

    def __getitem__(self, i: int) -> tuple[torch.Tensor]:
        g = torch.Generator().manual_seed(i)
        return (torch.randn(2, generator=g) * torch.tensor([1.0, 0.1]),)


@pytest.mark.parametrize("kind", ["dataset", "generated"])
def test_data_beyond_memory_resumes_exactly(tmp_path, kind):
    from generators.core.training import DatasetBatches, GeneratedBatches

    def source():
        if kind == "dataset":
            return DatasetBatches(_OnTheFly())
        return GeneratedBatches(lambda g, n: (torch.randn(n, 2, generator=g) * torch.tensor([1.0, 0.1]),))

    def run(out, steps, crash_at=None):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))

        def loss_fn(net, x, generator=None):
            return (net(x) - x.flip(-1)).pow(2).mean()

        def on_checkpoint(step, inner, ema):
            if step == crash_at:
                raise RuntimeError("crash")

        config = TrainConfig(max_steps=steps, batch_size=16, learning_rate=1e-2, warmup_steps=1, checkpoint_every=10)
        return model, train(model, loss_fn, source(), config, out, on_checkpoint=on_checkpoint, progress=False)

    with pytest.raises(RuntimeError, match="crash"):
        run(tmp_path / "a", 30, crash_at=10)
    resumed, result = run(tmp_path / "a", 30)
    assert result.resumed_from == 10
    reference, _ = run(tmp_path / "b", 30)
    for p, q in zip(resumed.parameters(), reference.parameters()):
        assert torch.equal(p, q)


def test_needs_train_record_when_steps_ran_or_the_record_is_missing(tmp_path):
    from generators.core.training import TrainResult, needs_train_record

    ran, none_left = TrainResult(10, 5, [], 1.0, 1.0, None), TrainResult(10, 10, [], 0.0, 0.0, None)
    assert needs_train_record(ran, tmp_path) and needs_train_record(none_left, tmp_path)
    (tmp_path / "training.json").write_text("{}")
    assert needs_train_record(ran, tmp_path) and not needs_train_record(none_left, tmp_path)


def test_learning_rate_warm_up_then_constant_or_cosine():
    from generators.core.training import learning_rate_at
    const = TrainConfig(max_steps=100, learning_rate=1.0, warmup_steps=10)
    assert learning_rate_at(const, 0) == pytest.approx(0.1) and learning_rate_at(const, 9) == 1.0
    assert learning_rate_at(const, 99) == 1.0
    cos = TrainConfig(max_steps=110, learning_rate=2.0, warmup_steps=10, lr_schedule="cosine", min_lr_ratio=0.1)
    rates = [learning_rate_at(cos, s) for s in range(110)]
    assert rates[10] == pytest.approx(2.0) and rates[60] == pytest.approx(2.0 * (0.1 + 0.9 * 0.5))
    assert rates[-1] == pytest.approx(0.2, rel=1e-2) and all(a >= b for a, b in zip(rates[10:], rates[11:]))
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")
    with pytest.raises(ValueError, match="min_lr_ratio"):
        TrainConfig(min_lr_ratio=1.5)


def test_init_weights_copy_matching_tensors_and_keep_added_ones():
    from generators.core.training import load_init_weights
    torch.manual_seed(0)
    small = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), torch.nn.Linear(4, 4))
    grown = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    added = load_init_weights(grown, small)
    assert added == ["2.bias", "2.weight"]
    assert torch.equal(grown[0].weight[:, :2], small[0].weight) and not grown[0].weight[:, 2:].any()
    assert torch.equal(grown[1].weight, small[1].weight)
    with pytest.raises(ValueError, match="does not fit"):
        load_init_weights(torch.nn.Sequential(torch.nn.Conv2d(2, 5, 3)), small)


def test_steps_done_and_run_finished_read_the_state_and_the_record(tmp_path):
    from generators.core.training import run_finished, steps_done
    assert steps_done(tmp_path) == 0 and not run_finished(tmp_path, 1)
    model = torch.nn.Linear(2, 1)
    data = [torch.randn(8, 2)]
    result = train(model, lambda m, x, generator=None: m(x).pow(2).mean(), data,
                   TrainConfig(max_steps=3, batch_size=4, checkpoint_every=2), tmp_path, progress=False)
    assert steps_done(tmp_path) == result.steps == 3
    assert not run_finished(tmp_path, 3)  # no training.json yet: the run has not recorded itself
    (tmp_path / "training.json").write_text("{}")
    assert run_finished(tmp_path, 3) and not run_finished(tmp_path, 4)


def test_losses_read_in_groups_are_the_same_losses_in_the_same_order(tmp_path, monkeypatch):
    """On an accelerator the loop reads losses back every LOSS_READ_EVERY steps; grouping loses none."""
    from generators.core import training

    def run(out):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
        config = TrainConfig(max_steps=23, batch_size=16, learning_rate=1e-2, warmup_steps=1, checkpoint_every=10)
        return train(model, lambda net, x, generator=None: ((net(x) - x.flip(1)) ** 2).mean(),
                     (torch.randn(128, 2, generator=torch.Generator().manual_seed(1)),), config, out, progress=False)

    every_step = run(tmp_path / "a").losses
    monkeypatch.setattr(training, "CPU_LOSS_READ_EVERY", 7)  # reads at 7, 10 (checkpoint), 17, 20, 23
    grouped = run(tmp_path / "b").losses
    assert len(grouped) == 23 and grouped == every_step


def test_train_record_keeps_the_earlier_runs_of_a_folder(tmp_path):
    """A folder resumed under another command keeps the first command under previous_runs; a rerun adds nothing."""
    import json

    from generators.core.training import TrainResult, write_train_record

    def result(steps: int) -> TrainResult:
        return TrainResult(steps=steps, resumed_from=0, losses=[1.0], seconds=2.0, samples_per_second=1.0,
                           peak_memory_mb=None)

    config = TrainConfig(max_steps=10)
    write_train_record(tmp_path, "train --preset short", config, result(6), {"preset": "short", "other": 1})
    first = json.loads((tmp_path / "training.json").read_text())
    assert "previous_runs" not in first
    write_train_record(tmp_path, "train --preset long", config, result(10), {"preset": "long"})
    write_train_record(tmp_path, "train --preset long", config, result(10), {"preset": "long"})  # same run again
    record = json.loads((tmp_path / "training.json").read_text())
    assert record["command"] == "train --preset long" and record["steps"] == 10
    assert record["previous_runs"] == [{"command": "train --preset short", "steps": 6, "seconds_this_run": 2.0,
                                        "preset": "short"}]
    (tmp_path / "training.json").write_text("{broken")  # an unreadable old record is replaced, not fatal
    write_train_record(tmp_path, "train --preset long", config, result(10))
    assert "previous_runs" not in json.loads((tmp_path / "training.json").read_text())

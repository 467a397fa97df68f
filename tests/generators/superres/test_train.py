"""Training: the tiny preset end to end, exact resumption, published folders, and the data's determinism."""
import json

import pytest
import torch
from safetensors.torch import load_file

from generators.superres import SuperResolver
from generators.superres.data import (CASCADE_TRAIN, HELD_OUT, SOURCES, SR_TRAIN, SR_TRAIN_ALL, LabelledCrops,
                                      SRPairs, load_photo_uint8)
from generators.superres.presets import SR_PRESETS, SRPreset, _check_init
from generators.superres.train import train_superres


def test_tiny_training_publishes_a_loadable_folder(tiny_sr_path):
    names = {p.name for p in tiny_sr_path.iterdir()}
    assert {"config.json", "diffusion.json", "model.safetensors", "training.json", "training_state"} <= names
    assert "ema.safetensors" not in names  # model.safetensors holds the EMA weights
    record = json.loads((tiny_sr_path / "training.json").read_text())
    assert record["steps"] == 6 and record["preset"] == "tiny"
    assert record["command"].startswith("mmdiff train superres --preset tiny")
    assert set(record["train_photos"]).isdisjoint(HELD_OUT)
    sr = SuperResolver.from_pretrained(tiny_sr_path)
    assert sr.scale == 4 and 0.02 < sr.model.config.residual_scale < 0.5


def test_resume_continues_and_matches_an_uninterrupted_run(tmp_path):
    straight = train_superres(tmp_path / "straight", "tiny", max_steps=6, checkpoint_every=3, progress=False)
    first = train_superres(tmp_path / "resumed", "tiny", max_steps=3, checkpoint_every=3, progress=False)
    second = train_superres(tmp_path / "resumed", "tiny", max_steps=6, checkpoint_every=3, progress=False)
    assert (straight.resumed_from, first.resumed_from, second.resumed_from) == (0, 0, 3)
    assert len(second.losses) == 3 and second.losses == straight.losses[3:]
    for name in ("model.safetensors", "training_state/model.safetensors", "training_state/ema.safetensors"):
        a, b = load_file(tmp_path / "straight" / name), load_file(tmp_path / "resumed" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    other_seed = train_superres(tmp_path / "seed1", "tiny", max_steps=3, seed=1, progress=False)
    assert other_seed.losses != first.losses


def test_bad_training_arguments(tmp_path):
    with pytest.raises(ValueError, match="preset must be one of"):
        train_superres(tmp_path, "huge")
    with pytest.raises(ValueError, match="device must be"):
        train_superres(tmp_path, "tiny", device="tpu")


def test_batches_depend_only_on_the_generator():
    source = SRPairs(SR_TRAIN, 16, 4, (1.0, 1.5), grey_prob=0.5)
    a = source.batch(torch.Generator().manual_seed(7), 6)
    b = source.batch(torch.Generator().manual_seed(7), 6)
    c = source.batch(torch.Generator().manual_seed(8), 6)
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and not torch.equal(a[0], c[0])
    high, low, kinds = a
    assert kinds.dtype == torch.long and set(kinds.tolist()) <= {0, 1}  # indices into DEGRADATIONS
    assert high.shape == (6, 3, 16, 16) and low.shape == (6, 3, 4, 4)
    assert high.min() >= -1 and high.max() <= 1
    assert torch.equal(low, ((low + 1) * 127.5).round() / 127.5 - 1)  # uint8 levels, like an image file
    crops = LabelledCrops(CASCADE_TRAIN, 16, (8.0, 12.0))
    x1, y1 = crops.batch(torch.Generator().manual_seed(3), 5)
    x2, y2 = crops.batch(torch.Generator().manual_seed(3), 5)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and int(y1.max()) < len(CASCADE_TRAIN)


def test_held_out_photos_are_never_trained_on():
    assert set(HELD_OUT) <= set(SOURCES)
    assert set(HELD_OUT).isdisjoint(SR_TRAIN_ALL) and set(HELD_OUT).isdisjoint(CASCADE_TRAIN)
    assert set(SR_TRAIN) < set(SR_TRAIN_ALL)
    with pytest.raises(ValueError, match="unknown"):
        SRPairs(("astronaut", "nope"), 16, 4)


def test_each_degradation_kind_is_reported_with_its_pair():
    from evaluation.superres import DEGRADATIONS, downsample
    from generators.superres.data import quantize
    for kind in DEGRADATIONS:
        high, low, kinds = SRPairs(SR_TRAIN, 16, 4, degradations=(kind,)).batch(torch.Generator().manual_seed(0), 3)
        assert kinds.tolist() == [DEGRADATIONS.index(kind)] * 3
        assert torch.equal(low, quantize(downsample(high, 4, kind)))


def test_scikit_learn_sample_photos_load():
    for name in ("china", "flower"):
        photo = load_photo_uint8(name)
        assert photo.shape == (427, 640, 3) and photo.dtype.name == "uint8"


def test_a_fine_tune_starts_from_its_init_preset_and_is_told_the_degradation(tmp_path):
    result = train_superres(tmp_path / "tuned", "tiny-tuned", progress=False)
    init = tmp_path / "tuned" / "init_training"
    record = json.loads((tmp_path / "tuned" / "training.json").read_text())
    assert result.steps == SR_PRESETS["tiny-tuned"].max_steps and (init / "training_state").is_dir()
    assert record["init_preset"] == "tiny" and record["init_steps"] == SR_PRESETS["tiny"].max_steps
    assert record["init_new_modules"] == ["conditioner.degradation_embedding"]
    assert record["train_config"]["lr_schedule"] == "cosine"
    first, tuned = SuperResolver.from_pretrained(init), SuperResolver.from_pretrained(tmp_path / "tuned")
    assert first.model.config.residual_scale == tuned.model.config.residual_scale  # the outputs mean the same
    assert tuned.model.config.num_degradations == 2 and first.model.config.num_degradations == 0
    # the sampler tells the conditioner which degradation the caller named
    seen = []
    forward = tuned.model.conditioner.forward
    tuned.model.conditioner.forward = lambda *a, **k: seen.append(k.get("degradation")) or forward(*a, **k)
    low = torch.zeros(1, 3, 4, 4)
    tuned.upscale_tensor(low, num_inference_steps=1, degradation="area")
    tuned.upscale_tensor(low, num_inference_steps=1, degradation="bicubic")
    assert seen == [1, 0]
    # a second call reuses the finished first stage and resumes nothing
    again = train_superres(tmp_path / "tuned", "tiny-tuned", progress=False)
    assert again.resumed_from == again.steps


def test_a_fine_tune_must_keep_its_init_network():
    bad = SRPreset(scale=4, size=16, patch_size=2, block_channels=(8, 16), blocks_per_level=1, max_steps=2,
                   batch_size=2, learning_rate=1e-3, warmup_steps=1, checkpoint_every=1, init_preset="tiny")
    with pytest.raises(ValueError, match="must keep"):
        _check_init("bad", bad)
    with pytest.raises(ValueError, match="init_preset must name"):
        _check_init("bad", SRPreset(**{**bad.__dict__, "patch_size": 4, "init_preset": "no-such-preset"}))
    with pytest.raises(ValueError, match="is a hybrid"):
        _check_init("bad", SRPreset(**{**bad.__dict__, "patch_size": 4, "init_preset": "tiny-hybrid"}))
    _check_init("chained", SRPreset(**{**bad.__dict__, "patch_size": 4, "init_preset": "tiny-tuned"}))


def _stored_alike(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal up to storage: a hybrid folder keeps its weights in int8 (half a step of max|w| / 127)."""
    return torch.allclose(a.float(), b.float(), atol=float(b.float().abs().max()) / 254 + 1e-3 * float(b.float().abs().max()) + 1e-8)


def test_a_hybrid_trains_its_regressor_then_diffuses_around_it(tmp_path):
    """tiny-hybrid: tiny -> tiny-tuned (init), a regression copy (mean_training), then the diffusion stage
    with that regressor frozen inside it and the residual scale re-estimated for x - R(y)."""
    result = train_superres(tmp_path / "hybrid", "tiny-hybrid", progress=False)
    p = SR_PRESETS["tiny-hybrid"]
    mean_dir, init_dir = tmp_path / "hybrid" / "mean_training", tmp_path / "hybrid" / "init_training"
    record = json.loads((tmp_path / "hybrid" / "training.json").read_text())
    mean_record = json.loads((mean_dir / "training.json").read_text())
    assert result.steps == p.max_steps and mean_record["steps"] == p.mean_steps
    assert (record["objective"], mean_record["objective"]) == ("diffusion", "regression")
    assert record["mean_steps"] == p.mean_steps and record["init_preset"] == "tiny-tuned"
    assert (init_dir / "init_training" / "training.json").is_file()  # tiny-tuned's own first stage
    hybrid = SuperResolver.from_pretrained(tmp_path / "hybrid")
    regressor = SuperResolver.from_pretrained(mean_dir).model
    init = SuperResolver.from_pretrained(init_dir).model
    # the regressor started from the init weights and moved; inside the hybrid it is frozen, unchanged
    moved = [k for k, v in regressor.state_dict().items() if not torch.equal(v, init.state_dict()[k])]
    assert moved
    inner = hybrid.model.mean_net.state_dict()
    assert all(_stored_alike(inner[k], v) for k, v in regressor.state_dict().items())
    assert regressor.config.residual_scale == init.config.residual_scale
    assert hybrid.model.config.residual_scale != init.config.residual_scale
    # the condition image and the base are R(y), not up(y)
    low = torch.rand(2, 3, 4, 4) * 2 - 1
    cond, base = hybrid.model.eval().condition(low, (16, 16), aug_level=0.0)
    up = hybrid.model.conditioner.upsample(low, (16, 16))
    assert torch.equal(cond.image, base) and not torch.allclose(base, up)
    again = train_superres(tmp_path / "hybrid", "tiny-hybrid", progress=False)
    assert again.resumed_from == again.steps  # every stage reused


def test_a_continued_hybrid_trains_on_both_of_its_networks(tmp_path):
    """tiny-hybrid-continue from a published hybrid: its regressor trains on as the regression stage, its
    diffusion network as the diffusion stage over the new regressor; training.json names where it started."""
    train_superres(tmp_path / "first", "tiny-hybrid", progress=False)
    first = SuperResolver.from_pretrained(tmp_path / "first").model
    with pytest.raises(ValueError, match="init_checkpoint"):
        train_superres(tmp_path / "next", "tiny-hybrid-continue", progress=False)
    with pytest.raises(ValueError, match="tiny-hybrid-continue"):
        train_superres(tmp_path / "next", "tiny-hybrid", progress=False, init_checkpoint=tmp_path / "first")
    train_superres(tmp_path / "next", "tiny-hybrid-continue", progress=False, init_checkpoint=tmp_path / "first")
    record = json.loads((tmp_path / "next" / "training.json").read_text())
    manifest = json.loads((tmp_path / "first" / "manifest.json").read_text())
    assert record["init_checkpoint"] == str(tmp_path / "first")
    assert record["init_checkpoint_sha256"] == manifest["files"]["model.safetensors"]["sha256"]
    assert record["init_checkpoint_command"] == json.loads((tmp_path / "first" / "training.json").read_text())["command"]
    regressor = SuperResolver.from_pretrained(tmp_path / "next" / "mean_training").model
    assert regressor.config.residual_scale == first.mean_net.config.residual_scale
    # the regression stage began at the old regressor (resuming at step 0 would give its weights back)
    mean_state = json.loads((tmp_path / "next" / "mean_training" / "training.json").read_text())
    assert mean_state["init_new_modules"] == []
    nxt = SuperResolver.from_pretrained(tmp_path / "next").model
    inner = nxt.mean_net.state_dict()
    assert all(_stored_alike(inner[k], v) for k, v in regressor.state_dict().items())  # the new regressor, frozen
    assert any(not torch.equal(inner[k], v) for k, v in first.mean_net.state_dict().items())
    own = {k: v for k, v in nxt.state_dict().items() if not k.startswith("mean_net.")}
    assert any(not torch.equal(v, first.state_dict()[k]) for k, v in own.items())  # the diffusion net trained on


def test_the_regression_objective_fits_the_mean(tmp_path):
    """SRRegressionLoss is the MSE of the net at (x_t = 0, t = T) against the residual over up(y_aug)."""
    from generators.superres.model import REGRESSION_TIMESTEP, SRNet
    from generators.superres.train import SRRegressionLoss
    torch.manual_seed(0)
    net = SRNet(residual_scale=0.1, patch_size=2, block_channels=(8, 16), blocks_per_level=1, max_aug_level=0.0)
    seen = []
    forward = net.forward
    net.forward = lambda x, t, cond: seen.append((x.abs().max().item(), t.tolist())) or forward(x, t, cond)
    high = torch.rand(2, 3, 16, 16) * 2 - 1
    low = torch.nn.functional.avg_pool2d(high, 4)
    loss = SRRegressionLoss()(net, high, low, generator=torch.Generator().manual_seed(0))
    target = (high - net.conditioner.upsample(low, (16, 16))) / 0.1
    assert seen == [(0.0, [REGRESSION_TIMESTEP] * 2)]
    # conv_out starts at zero, so the first prediction is 0 and the loss is the target's mean square
    assert loss.item() == pytest.approx(float((target ** 2).mean()), rel=1e-5)

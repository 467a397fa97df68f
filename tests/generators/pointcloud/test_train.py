"""Training the three stages of the tiny preset: the folder, the record, and an exact resume after a crash."""
import json
import typing
from dataclasses import replace

import numpy as np
import pytest
import torch

import generators.pointcloud.train as train_module
from flows.pointcloud.params import PointCloudPresetName, StageName
from generators.core.checkpoint import load_tensors
from generators.pointcloud import PointCloudGenerator, train_pointcloud
from generators.pointcloud.presets import PRESETS, get_preset


def test_tiny_training_publishes_a_loadable_folder(tiny_checkpoint):
    record = json.loads((tiny_checkpoint / "training.json").read_text())
    assert set(record["stages"]) == {"vae", "global_prior", "point_prior"}
    assert all(s["steps"] == 6 and s["resumed_from"] == 0 for s in record["stages"].values())
    assert record["command"].startswith("mmdiff train pointcloud --preset tiny")
    for stage in ("vae", "global_prior", "point_prior"):
        assert (tiny_checkpoint / "stages" / stage / "training_state" / "state.json").is_file()
    gen = PointCloudGenerator.from_pretrained(tiny_checkpoint)
    # the folder holds the EMA weights of every stage, stored in float16 (PointCloudGenerator.storage_dtype)
    ema = load_tensors(tiny_checkpoint / "stages" / "point_prior" / "training_state" / "ema.safetensors")
    name, value = next(iter(ema.items()))
    assert torch.equal(gen.model.point_prior.state_dict()[name], value.half().float())


def test_resume_after_a_crash_is_exact(tmp_path, monkeypatch):
    straight = tmp_path / "straight"
    train_pointcloud(straight, "tiny", max_steps=4, checkpoint_every=2, progress=False)

    real_train = train_module.train

    def crashing(module, loss, data, config, stage_dir, **kwargs):
        if stage_dir.name == "point_prior":  # stop after the point prior's first checkpoint
            real_train(module, loss, data, type(config)(**{**config.__dict__, "max_steps": 2}), stage_dir, **kwargs)
            raise RuntimeError("simulated crash")
        return real_train(module, loss, data, config, stage_dir, **kwargs)

    crashed = tmp_path / "crashed"
    monkeypatch.setattr(train_module, "train", crashing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_pointcloud(crashed, "tiny", max_steps=4, checkpoint_every=2, progress=False)
    assert (crashed / "config.json").is_file()  # the folder was already published at the checkpoint
    monkeypatch.setattr(train_module, "train", real_train)
    result = train_pointcloud(crashed, "tiny", max_steps=4, checkpoint_every=2, progress=False)
    assert result.resumed_from == 2 and result.steps == 4
    record = json.loads((crashed / "training.json").read_text())
    assert record["stages"]["vae"]["resumed_from"] == 4  # finished stages are not trained again
    a = load_tensors(straight / "model.safetensors")
    b = load_tensors(crashed / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_presets_and_bad_arguments(tmp_path):
    assert {"tiny", "small", "base"} <= set(PRESETS)
    small = get_preset("small")
    assert len(small.categories) == 11 and small.text
    with pytest.raises(ValueError, match="preset must be one of"):
        train_pointcloud(tmp_path, "huge")


def test_local_context_preset_trains_and_generates(tmp_path, monkeypatch):
    """The tiny preset with local_k (kNN context in the VAE and the point prior), two steps per stage."""
    monkeypatch.setitem(PRESETS, "tiny-local", replace(PRESETS["tiny"], local_k=4, text=False))
    out = tmp_path / "local"
    train_pointcloud(out, "tiny-local", max_steps=2, progress=False)
    record = json.loads((out / "training.json").read_text())
    assert record["preset_config"]["local_k"] == 4
    gen = PointCloudGenerator.from_pretrained(out)
    assert gen.model.vae.config.local_k == 4 and gen.model.point_prior.config.local_k == 4
    assert gen.model.vae.decoder.blocks[0].local is not None
    cloud = gen(label="mug", num_points=100, num_inference_steps=2, seed=0).points[0]
    assert cloud.shape == (100, 3) and np.isfinite(cloud).all()


def test_small_local_preset_and_the_flow_parameter():
    local, wide = get_preset("small-local"), get_preset("small-fixed-h-wide")
    assert local.local_k == 16 and replace(local, local_k=0) == wide
    assert all(p.local_k == 0 for name, p in PRESETS.items() if name != "small-local")
    prior_only = get_preset("small-local-prior")
    assert prior_only.point_local_k == 16 and prior_only.local_k == 0 and replace(prior_only, point_local_k=None) == wide
    assert set(typing.get_args(PointCloudPresetName)) == set(PRESETS)  # every preset can be asked for
    assert typing.get_args(StageName) == train_module.STAGES  # and every stage kept


def test_kept_stages_come_from_the_folder_and_only_the_rest_train(tiny_checkpoint, tmp_path, monkeypatch):
    """--keep-stages vae global_prior: those weights and latent scales are the folder's; the point prior trains."""
    monkeypatch.setitem(PRESETS, "tiny-local-prior", replace(PRESETS["tiny"], point_local_k=4))
    out = tmp_path / "prior-only"
    train_pointcloud(out, "tiny-local-prior", max_steps=2, progress=False, init_checkpoint=tiny_checkpoint,
                     keep_stages=("vae", "global_prior"))
    assert sorted(p.name for p in (out / "stages").iterdir()) == ["point_prior"]  # nothing else trained
    record = json.loads((out / "training.json").read_text())
    assert record["stages"]["vae"] == {"kept_from": str(tiny_checkpoint)}
    assert record["stages"]["point_prior"]["steps"] == 2
    manifest = json.loads((tiny_checkpoint / "manifest.json").read_text())
    assert record["init_checkpoint_sha256"] == manifest["files"]["model.safetensors"]["sha256"]
    old, new = PointCloudGenerator.from_pretrained(tiny_checkpoint).model, PointCloudGenerator.from_pretrained(out).model
    assert new.point_prior.config.local_k == 4 and new.vae.config.local_k == 0
    for stage in ("vae", "global_prior"):
        a, b = getattr(old, stage).state_dict(), getattr(new, stage).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert float(new.h_scale) == float(old.h_scale) and float(new.z_scale) == float(old.z_scale)


def test_finetuned_stages_start_from_the_folder_and_train(tiny_checkpoint, tmp_path, monkeypatch):
    """--finetune-stages vae point_prior: those start from the folder's weights and train; the global prior from the seed."""
    started: dict[str, dict[str, torch.Tensor]] = {}
    run_stage = train_module._run_stage

    def spy(name, model, module, *args, **kwargs):
        started[name] = {k: v.clone() for k, v in module.state_dict().items()}
        return run_stage(name, model, module, *args, **kwargs)

    monkeypatch.setattr(train_module, "_run_stage", spy)
    out = tmp_path / "finetuned"
    train_pointcloud(out, "tiny", max_steps=2, progress=False, init_checkpoint=tiny_checkpoint,
                     finetune_stages=("vae", "point_prior"))
    old, new = PointCloudGenerator.from_pretrained(tiny_checkpoint).model, PointCloudGenerator.from_pretrained(out).model
    for stage in ("vae", "point_prior"):
        theirs = getattr(old, stage).state_dict()
        assert all(torch.equal(started[stage][k], theirs[k]) for k in theirs)  # started from the folder
        mine = getattr(new, stage).state_dict()
        assert not all(torch.equal(mine[k], theirs[k]) for k in theirs)  # and trained
    theirs = old.global_prior.state_dict()
    assert not all(torch.equal(started["global_prior"][k], theirs[k]) for k in theirs)  # from the seed
    record = json.loads((out / "training.json").read_text())
    assert record["stages"]["vae"]["finetuned_from"] == str(tiny_checkpoint)
    assert record["stages"]["point_prior"]["finetuned_from"] == str(tiny_checkpoint)
    assert record["stages"]["vae"]["steps"] == 2 and "finetuned_from" not in record["stages"]["global_prior"]
    assert sorted(p.name for p in (out / "stages").iterdir()) == ["global_prior", "point_prior", "vae"]


def test_bad_finetune_stages(tiny_checkpoint, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="finetune_stages needs init_checkpoint"):
        train_pointcloud(tmp_path / "a", "tiny", finetune_stages=("vae",), progress=False)
    with pytest.raises(ValueError, match="finetune_stages must name stages"):
        train_pointcloud(tmp_path / "b", "tiny", init_checkpoint=tiny_checkpoint, finetune_stages=("decoder",))
    with pytest.raises(ValueError, match="both name \\['vae'\\]"):
        train_pointcloud(tmp_path / "c", "tiny", init_checkpoint=tiny_checkpoint, keep_stages=("vae",),
                         finetune_stages=("vae",))
    # a prior kept over a VAE that is fine-tuned would model latents that have moved
    with pytest.raises(ValueError, match="retrains the VAE"):
        train_pointcloud(tmp_path / "d", "tiny", init_checkpoint=tiny_checkpoint, keep_stages=("global_prior",),
                         finetune_stages=("vae",))
    # a fine-tune preset's short budgets are refused for a stage that would train from scratch, naming it
    monkeypatch.setitem(PRESETS, "tiny-ft", replace(PRESETS["tiny"], finetune_of="tiny"))
    with pytest.raises(ValueError, match="fine-tune of a finished 'tiny' folder.*\\['global_prior'\\]"):
        train_pointcloud(tmp_path / "e", "tiny-ft", init_checkpoint=tiny_checkpoint, keep_stages=("vae",),
                         finetune_stages=("point_prior",), progress=False)
    with pytest.raises(ValueError, match="pass --init-checkpoint"):
        train_pointcloud(tmp_path / "f", "tiny-ft", progress=False)
    assert not (tmp_path / "e").exists() and not (tmp_path / "f").exists()
    train_pointcloud(tmp_path / "g", "tiny-ft", max_steps=1, init_checkpoint=tiny_checkpoint,
                     finetune_stages=train_module.STAGES, progress=False)  # every stage fine-tuned: accepted
    assert json.loads((tmp_path / "g" / "training.json").read_text())["stages"]["vae"]["finetuned_from"]
    # scratch_stages: a stage with a full budget inside a fine-tune preset may train from scratch
    monkeypatch.setitem(PRESETS, "tiny-ft-g", replace(PRESETS["tiny"], finetune_of="tiny", scratch_stages=("global_prior",)))
    train_pointcloud(tmp_path / "h", "tiny-ft-g", max_steps=1, init_checkpoint=tiny_checkpoint, keep_stages=("vae",),
                     finetune_stages=("point_prior",), progress=False)
    stages = json.loads((tmp_path / "h" / "training.json").read_text())["stages"]
    assert "finetuned_from" not in stages["global_prior"] and stages["global_prior"]["steps"] == 1
    with pytest.raises(ValueError, match="fine-tune of a finished 'tiny' folder.*\\['point_prior'\\]"):
        train_pointcloud(tmp_path / "i", "tiny-ft-g", init_checkpoint=tiny_checkpoint, keep_stages=("vae",),
                         progress=False)
    with pytest.raises(ValueError, match="scratch_stages names stages of a fine-tune preset"):
        replace(PRESETS["tiny"], scratch_stages=("global_prior",))  # without finetune_of
    with pytest.raises(ValueError, match="scratch_stages names stages"):
        replace(PRESETS["tiny"], finetune_of="tiny", scratch_stages=("decoder",))


def test_bad_keep_stages(tiny_checkpoint, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="keep_stages needs init_checkpoint"):
        train_pointcloud(tmp_path / "a", "tiny", keep_stages=("vae",), progress=False)
    with pytest.raises(ValueError, match="retrains the VAE"):
        train_pointcloud(tmp_path / "b", "tiny", init_checkpoint=tiny_checkpoint, keep_stages=("point_prior",))
    with pytest.raises(ValueError, match="keep_stages must name stages"):
        train_pointcloud(tmp_path / "c", "tiny", init_checkpoint=tiny_checkpoint, keep_stages=("decoder",))
    with pytest.raises(ValueError, match="nothing to train"):
        train_pointcloud(tmp_path / "g", "tiny", init_checkpoint=tiny_checkpoint, keep_stages=train_module.STAGES)
    with pytest.raises(ValueError, match="name the stages to keep"):
        train_pointcloud(tmp_path / "d", "tiny", init_checkpoint=tiny_checkpoint)
    # a kept stage whose configuration differs from the preset's is refused, naming the difference
    monkeypatch.setitem(PRESETS, "tiny-wider", replace(PRESETS["tiny"], vae_hidden=24))
    with pytest.raises(ValueError, match="differs from the preset's.*'hidden': \\(16, 24\\)"):
        train_pointcloud(tmp_path / "e", "tiny-wider", init_checkpoint=tiny_checkpoint, keep_stages=("vae",),
                         max_steps=1, progress=False)
    monkeypatch.setitem(PRESETS, "tiny-other", replace(PRESETS["tiny"], categories=("chair", "bed", "mug")))
    with pytest.raises(ValueError, match="categories .* differ from the training data's"):
        train_pointcloud(tmp_path / "f", "tiny-other", init_checkpoint=tiny_checkpoint, keep_stages=("vae",),
                         max_steps=1, progress=False)


def test_point_prior_subsets_are_random_per_step_and_cover_every_stored_point():
    """points_per_shape: each shape's batch holds that many of its latent points, drawn afresh by the generator."""
    from generators.core.schedules import NoiseSchedule
    from generators.pointcloud.losses import PointPriorLoss

    seen: list[torch.Tensor] = []

    def net(h, t, z):  # records the noisy latents it is given; predicts zero noise
        seen.append(h.detach().clone())
        return torch.zeros_like(h)

    schedule = NoiseSchedule.create("linear", 1000)
    b, n = 3, 40
    h_mu = torch.arange(b * n, dtype=torch.float32).view(b, n, 1).expand(b, n, 4).contiguous()
    h_logvar = torch.full_like(h_mu, -60.0)  # std ~1e-13: the means themselves
    z = torch.zeros(b, 8)
    loss = PointPriorLoss(schedule, 1.0, 1.0, points_per_shape=10)
    for step in range(2):
        loss(net, h_mu, h_logvar, z, z.clone(), generator=torch.Generator().manual_seed(step))
    assert seen[0].shape == (b, 10, 4)
    assert not torch.equal(seen[0], seen[1])  # a new draw each step
    again: list[torch.Tensor] = []
    PointPriorLoss(schedule, 1.0, 1.0, points_per_shape=10)(lambda h, t, z: again.append(h) or torch.zeros_like(h),
                                                            h_mu, h_logvar, z, z.clone(), generator=torch.Generator().manual_seed(0))
    assert torch.equal(again[0], seen[0])  # the same generator, the same subsets and noise
    full: list[torch.Tensor] = []
    PointPriorLoss(schedule, 1.0, 1.0, points_per_shape=n)(lambda h, t, z: full.append(h) or torch.zeros_like(h),
                                                           h_mu, h_logvar, z, z.clone(), generator=torch.Generator().manual_seed(0))
    assert full[0].shape == (b, n, 4)  # asking for every point keeps them all
    with pytest.raises(ValueError, match="points_per_shape must be >= 0"):
        PointPriorLoss(schedule, 1.0, 1.0, points_per_shape=-1)


def test_subsets_preset_trains_its_point_prior_on_every_stored_point(tiny_checkpoint, tmp_path, monkeypatch):
    """point_prior_points and a cosine schedule, with the VAE and global prior kept: the record shows both."""
    seen: list[int] = []
    original = train_module.PointPriorLoss.__call__

    def spy(self, net, h_mu, *args, **kwargs):
        seen.append(h_mu.shape[1])
        return original(self, net, h_mu, *args, **kwargs)

    monkeypatch.setattr(train_module.PointPriorLoss, "__call__", spy)
    tiny = PRESETS["tiny"]
    monkeypatch.setitem(PRESETS, "tiny-subsets", replace(tiny, point_prior_points=16, point_prior=replace(
        tiny.point_prior, lr_schedule="cosine")))
    out = tmp_path / "subsets"
    train_pointcloud(out, "tiny-subsets", max_steps=2, progress=False, init_checkpoint=tiny_checkpoint,
                     keep_stages=("vae", "global_prior"))
    assert seen == [2 * tiny.num_points] * 2  # latents of all stored points reach the loss, which subsamples them
    record = json.loads((out / "training.json").read_text())
    assert record["preset_config"]["point_prior_points"] == 16
    assert record["stages"]["point_prior"]["train_config"]["lr_schedule"] == "cosine"
    cloud = PointCloudGenerator.from_pretrained(out)(label="chair", num_points=50, num_inference_steps=2).points[0]
    assert cloud.shape == (50, 3) and np.isfinite(cloud).all()


def test_sharp_long_and_subsets_presets_differ_from_sharp_only_in_the_point_prior():
    sharp, long, subsets = (get_preset(f"small-fixed-h-sharp{s}") for s in ("", "-long", "-subsets"))
    assert long.point_prior.max_steps == 14000 and long.point_prior.lr_schedule == "cosine"
    assert replace(long, point_prior=sharp.point_prior) == sharp  # a finished sharp folder resumes into it
    assert subsets.point_prior_points == 128 and subsets.point_prior.batch_size == 64
    assert replace(subsets, point_prior=sharp.point_prior, point_prior_points=0) == sharp
    stretched = get_preset("small-fixed-h-sharp-subsets-long")  # a finished subsets folder resumes into it
    assert stretched.point_prior.max_steps == 30000
    assert replace(stretched, point_prior=subsets.point_prior) == subsets
    again = get_preset("small-fixed-h-sharp-subsets-xlong")  # and a finished subsets-long folder into this
    assert again.point_prior.max_steps == 50000 and replace(again, point_prior=subsets.point_prior) == subsets


def test_annealed_preset_is_a_finetune_of_xlong_with_the_same_networks():
    """Only budgets change, so every stage of a finished xlong folder can be fine-tuned into it."""
    xlong, annealed = get_preset("small-fixed-h-sharp-subsets-xlong"), get_preset("small-fixed-h-sharp-annealed")
    assert annealed.finetune_of == "small-fixed-h-sharp-subsets-xlong" and xlong.finetune_of is None
    same_budgets = replace(annealed, vae=xlong.vae, global_prior=xlong.global_prior, point_prior=xlong.point_prior,
                           finetune_of=None)
    assert same_budgets == xlong
    for stage in ("vae", "global_prior", "point_prior"):
        budget = getattr(annealed, stage)
        assert budget.lr_schedule == "cosine" and budget.learning_rate < getattr(xlong, stage).learning_rate
    assert build_model_configs(annealed) == build_model_configs(xlong)


def test_point_prior_target_mean_trains_on_the_posterior_means(monkeypatch):
    """target="mean": the clean latents the diffusion loss noises are h_mu * h_scale; "sample": posterior draws."""
    import generators.pointcloud.losses as losses_module
    from generators.core.schedules import NoiseSchedule

    clean: list[torch.Tensor] = []

    class RecordingLoss:  # stands in for the core DiffusionLoss and records its clean input x0
        def __init__(self, *args, **kwargs):
            pass

        def __call__(self, net, x0, cond, generator=None):
            clean.append(x0)
            return x0.sum() * 0

    monkeypatch.setattr(losses_module, "DiffusionLoss", RecordingLoss)
    schedule = NoiseSchedule.create("linear", 1000)
    h_mu = torch.randn(2, 30, 4, generator=torch.Generator().manual_seed(0))
    h_logvar = torch.zeros_like(h_mu)  # std 1: a sample lies far from its mean
    z = torch.zeros(2, 8)
    for target in ("mean", "sample"):
        losses_module.PointPriorLoss(schedule, 1.0, 2.0, target=target)(
            None, h_mu, h_logvar, z, z.clone(), generator=torch.Generator().manual_seed(1))
    assert torch.equal(clean[0], h_mu * 2.0)
    assert (clean[1] - h_mu * 2.0).abs().mean() > 1.0  # a posterior draw, scaled: about 2 * 0.8 away
    with pytest.raises(ValueError, match="target must be one of"):
        losses_module.PointPriorLoss(schedule, 1.0, 1.0, target="median")
    with pytest.raises(ValueError, match="point_prior_target must be one of"):
        replace(PRESETS["tiny"], point_prior_target="median")


def test_the_preset_target_reaches_the_point_prior_loss(tiny_checkpoint, tmp_path, monkeypatch):
    targets: list[str] = []
    original = train_module.PointPriorLoss.__call__

    def spy(self, *args, **kwargs):
        targets.append(self.target)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(train_module.PointPriorLoss, "__call__", spy)
    monkeypatch.setitem(PRESETS, "tiny-means", replace(PRESETS["tiny"], point_prior_target="mean"))
    out = tmp_path / "means"
    train_pointcloud(out, "tiny-means", max_steps=1, progress=False, init_checkpoint=tiny_checkpoint,
                     keep_stages=("vae", "global_prior"))
    assert targets == ["mean"]
    assert json.loads((out / "training.json").read_text())["preset_config"]["point_prior_target"] == "mean"


def test_means_preset_is_a_finetune_of_annealed_with_a_full_global_prior():
    """The annealed networks: an annealed folder's VAE is kept, its point prior fine-tuned on the means, and the
    global prior trains from scratch at the full budget of "small"."""
    annealed, means = get_preset("small-fixed-h-sharp-annealed"), get_preset("small-fixed-h-sharp-means")
    assert means.finetune_of == "small-fixed-h-sharp-annealed" and means.point_prior_target == "mean"
    assert means.scratch_stages == ("global_prior",) and means.global_prior == PRESETS["small"].global_prior
    assert replace(means, finetune_of=annealed.finetune_of, point_prior_target="sample", scratch_stages=(),
                   global_prior=annealed.global_prior) == annealed
    assert build_model_configs(means) == build_model_configs(annealed)


def build_model_configs(preset):
    model = train_module.build_model(preset)
    return {stage: dict(getattr(model, stage).config) for stage in train_module.STAGES}


def test_a_deeper_finetuned_point_prior_is_grown_from_the_folders(tiny_checkpoint, tmp_path, monkeypatch):
    """A fine-tuned stage one block deeper than the folder's: its first block is copied, the added one is the identity,
    so training starts from exactly the folder's predictions; the record names the folder's depth."""
    started: dict[str, torch.Tensor] = {}
    run_stage = train_module._run_stage
    old = PointCloudGenerator.from_pretrained(tiny_checkpoint).model
    h, t, z = torch.randn(2, 16, 4), torch.tensor([10, 700]), torch.randn(2, 8)

    def spy(name, model, module, *args, **kwargs):
        with torch.no_grad():
            started[name] = module(h, t, z)
        return run_stage(name, model, module, *args, **kwargs)

    monkeypatch.setattr(train_module, "_run_stage", spy)
    monkeypatch.setitem(PRESETS, "tiny-deep", replace(PRESETS["tiny"], point_depth=2))
    out = tmp_path / "deep"
    train_pointcloud(out, "tiny-deep", max_steps=2, progress=False, init_checkpoint=tiny_checkpoint,
                     keep_stages=("vae", "global_prior"), finetune_stages=("point_prior",))
    with torch.no_grad():
        assert torch.equal(started["point_prior"], old.point_prior(h, t, z))  # the folder's network, to the bit
    new = PointCloudGenerator.from_pretrained(out).model
    assert new.point_prior.config.depth == 2 and len(new.point_prior.net.blocks) == 2
    assert new.point_prior.net.blocks[1].fc2.weight.abs().sum() > 0  # the added block trained
    record = json.loads((out / "training.json").read_text())
    assert record["stages"]["point_prior"]["grown_from_depth"] == 1
    assert "grown_from_depth" not in record["stages"]["vae"]


def test_only_a_finetuned_stage_grows_and_only_in_depth(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setitem(PRESETS, "tiny-deep", replace(PRESETS["tiny"], point_depth=2))
    with pytest.raises(ValueError, match="keep_stages: the point_prior .* differs.*'depth': \\(1, 2\\)"):
        train_pointcloud(tmp_path / "a", "tiny-deep", init_checkpoint=tiny_checkpoint, progress=False,
                         keep_stages=("vae", "point_prior"))  # a kept stage cannot grow
    monkeypatch.setitem(PRESETS, "tiny-deep-wide", replace(PRESETS["tiny"], point_depth=2, point_hidden=24))
    with pytest.raises(ValueError, match="finetune_stages: the point_prior .* differs.*'hidden': \\(16, 24\\)"):
        train_pointcloud(tmp_path / "b", "tiny-deep-wide", init_checkpoint=tiny_checkpoint, progress=False,
                         keep_stages=("vae", "global_prior"), finetune_stages=("point_prior",))
    big = tmp_path / "big"
    train_pointcloud(big, "tiny-deep", max_steps=1, init_checkpoint=tiny_checkpoint, progress=False,
                     keep_stages=("vae", "global_prior"), finetune_stages=("point_prior",))
    with pytest.raises(ValueError, match="may only be deeper"):  # shallower than the folder: refused
        train_pointcloud(tmp_path / "c", "tiny", init_checkpoint=big, progress=False,
                         keep_stages=("vae", "global_prior"), finetune_stages=("point_prior",))


def test_deep_preset_is_means_with_a_deeper_point_prior():
    means, deep = get_preset("small-fixed-h-sharp-means"), get_preset("small-fixed-h-sharp-deep")
    assert deep.finetune_of == "small-fixed-h-sharp-means" and deep.point_depth == 6 > means.point_depth
    assert replace(deep, finetune_of=means.finetune_of, point_depth=means.point_depth, scratch_stages=means.scratch_stages,
                   point_prior=means.point_prior) == means


def test_growing_refuses_a_state_that_is_not_the_first_blocks(tiny_checkpoint):
    """Only the added blocks may be missing from the folder's state: any other missing or extra key is an error."""
    old = PointCloudGenerator.from_pretrained(tiny_checkpoint).model.point_prior
    deeper = train_module.build_model(replace(PRESETS["tiny"], point_depth=2)).point_prior
    state = dict(old.state_dict())
    train_module._load_grown(deeper, state, 1, "point_prior")  # the folder's block and the rest: accepted
    assert torch.equal(deeper.net.inp.weight, old.net.inp.weight)
    without_inp = {k: v for k, v in state.items() if k != "net.inp.weight"}
    with pytest.raises(ValueError, match="first 1 blocks.*missing \\['net.inp.weight'\\]"):
        train_module._load_grown(deeper, without_inp, 1, "point_prior")
    with pytest.raises(ValueError, match="unexpected \\['extra'\\]"):
        train_module._load_grown(deeper, {**state, "extra": torch.zeros(1)}, 1, "point_prior")

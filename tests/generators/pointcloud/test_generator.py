"""The point-cloud generator: every sampler, conditions, folders, editing, outputs and bad inputs."""
import json

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from generators.core.checkpoint import CheckpointError
from generators.core.sampling import SAMPLERS
from generators.pointcloud import PointCloudGenerator, PointCloudOutput, RefineOptions
from generators.pointcloud.data import procedural_shape


# The core's VP Langevin corrector uses alpha = 1 - beta(t) dt, negative when dt > 1 / beta_max (fewer
# than ~20 steps), and its step size's square root is then NaN for any denoiser (reported; strict, so
# this turns red when the core is fixed). With 25 steps pc-vp works on this family's tensors.


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_by_name(tiny_gen, sampler):
    out = tiny_gen(label=["chair", "mug"], num_points=32, num_inference_steps=2, sampler=sampler, seed=0)
    assert out.points.shape == (2, 32, 3) and out.points.dtype == np.float32
    assert np.isfinite(out.points).all() and out.labels == ["chair", "mug"]


def test_pc_vp_with_enough_steps(tiny_gen):
    out = tiny_gen(label="chair", num_points=16, num_inference_steps=25, sampler="pc-vp", seed=0)
    assert np.isfinite(out.points).all()


def test_seed_reproducible_and_conditions(tiny_gen):
    a = tiny_gen(label="table", num_points=48, num_inference_steps=3, seed=4)
    b = tiny_gen(label="table", num_points=48, num_inference_steps=3, seed=4)
    c = tiny_gen(label="table", num_points=48, num_inference_steps=3, seed=5)
    assert np.array_equal(a.points, b.points) and not np.allclose(a.points, c.points)
    text = tiny_gen(prompt=["a chair with four legs", "a wide mug"], num_points=40, num_inference_steps=2)
    assert text.points.shape == (2, 40, 3) and text.prompts == ["a chair with four legs", "a wide mug"]
    both = tiny_gen(label=[0, 2], prompt=["a chair", "a mug"], num_points=16, num_inference_steps=2, guidance_scale=3.0)
    assert both.labels == ["chair", "mug"]
    uncond = tiny_gen(num_shapes=3, num_points=16, num_inference_steps=2)
    assert uncond.points.shape == (3, 16, 3)


def test_guidance_changes_the_sample(tiny_gen):
    kw = dict(label="chair", num_points=32, num_inference_steps=3, sampler="ddim", seed=1)
    assert not np.allclose(tiny_gen(guidance_scale=1.0, **kw).points, tiny_gen(guidance_scale=4.0, **kw).points)


def test_bad_inputs_name_the_parameter(tiny_gen):
    with pytest.raises(ValueError, match="label must be one of"):
        tiny_gen(label="spaceship")
    with pytest.raises(ValueError, match="label must be a category name"):
        tiny_gen(label=7)
    with pytest.raises(ValueError, match="same length"):
        tiny_gen(label=["chair"], prompt=["a", "b"])
    with pytest.raises(ValueError, match="prompt must be a non-empty string"):
        tiny_gen(prompt="  ")
    with pytest.raises(ValueError, match="num_points"):
        tiny_gen(label="chair", num_points=0)
    with pytest.raises(ValueError, match="sampler must be one of"):
        tiny_gen(label="chair", sampler="nope")
    with pytest.raises(ValueError, match="guidance_scale"):
        tiny_gen(label="chair", guidance_scale=float("nan"))
    with pytest.raises(ValueError, match="num_shapes"):
        tiny_gen(label=["chair"], num_shapes=2)


def test_save_load_round_trip(tiny_gen, tmp_path):
    folder = tiny_gen.save_pretrained(tmp_path / "copy")
    names = sorted(p.name for p in folder.iterdir())
    assert {"config.json", "diffusion.json", "model.safetensors"} <= set(names) and "ema.safetensors" not in names
    config = json.loads((folder / "config.json").read_text())
    assert config["_class_name"] == "LionModel" and config["categories"] == ["chair", "table", "mug"]
    again = PointCloudGenerator.from_pretrained(folder)
    kw = dict(label=["mug"], num_points=24, num_inference_steps=2, seed=2)
    assert np.array_equal(again(**kw).points, tiny_gen(**kw).points)
    assert float(again.model.z_scale) == float(tiny_gen.model.z_scale) != 1.0
    (folder / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        PointCloudGenerator.from_pretrained(folder)


def test_interpolation_and_coarse_input(tiny_gen):
    a = procedural_shape("chair", "test", 0, 64)[0]
    b = procedural_shape("mug", "test", 0, 64)[0]
    path = tiny_gen.interpolate(a, b, steps=4, num_points=32, num_inference_steps=2)
    assert path.points.shape == (4, 32, 3) and np.isfinite(path.points).all()
    offset = a * 50 + 1000.0
    out = tiny_gen.from_coarse(offset, strength=0.3, num_points=64, num_inference_steps=4, label="chair")
    assert out.points.shape == (1, 64, 3)
    assert np.abs(out.points.mean(axis=1) - offset.mean(0)).max() < 60  # returned in the input's frame
    voxels = np.zeros((8, 8, 8), bool)
    voxels[2:6, 2:6, 1:7] = True
    assert tiny_gen.from_coarse(voxels, strength=0.5, num_points=32, num_inference_steps=2).points.shape == (1, 32, 3)
    with pytest.raises(ValueError, match="strength"):
        tiny_gen.from_coarse(a, strength=0.0)
    with pytest.raises(ValueError, match="NaN or inf"):
        tiny_gen.from_coarse(np.full((64, 3), np.nan))
    with pytest.raises(ValueError, match="discrete samplers"):
        tiny_gen.from_coarse(a, sampler="pc-vp")


@pytest.fixture(scope="module")
def chair_output():
    pts = procedural_shape("chair", "test", 1, 2048)[0]
    return PointCloudOutput(pts[None], ["chair"], [None], RefineOptions(resolution=48))


@pytest.mark.parametrize("suffix", [".ply", ".npy", ".obj", ".glb", ".stl", ".png"])
def test_output_save_formats(chair_output, tmp_path, suffix):
    path = chair_output.save(tmp_path / f"chair{suffix}")[0]
    assert path.is_file() and not list(tmp_path.glob(".*.tmp"))
    if suffix == ".ply":
        assert np.allclose(np.asarray(trimesh.load(path).vertices), chair_output.points[0], atol=1e-5)
    elif suffix == ".npy":
        assert np.array_equal(np.load(path), chair_output.points[0])
    elif suffix == ".png":
        img = np.asarray(Image.open(path))
        assert img.shape == (192, 576, 3) and len(np.unique(img.reshape(-1, 3), axis=0)) > 20
    else:
        mesh = trimesh.load(path, force="mesh")
        assert len(mesh.faces) > 100 and np.allclose(mesh.bounds, chair_output.to_mesh()[0].bounds, atol=1e-3)


def test_output_folder_and_errors(chair_output, tmp_path):
    names = sorted(p.name for p in chair_output.save(tmp_path / "out"))
    assert names == ["sample_000.png", "sample_000_mesh.ply", "sample_000_points.ply"]
    assert trimesh.load(tmp_path / "out" / "sample_000_mesh.ply").is_watertight
    with pytest.raises(ValueError, match="supported extensions"):
        chair_output.save(tmp_path / "x.fbx")
    two = PointCloudOutput(np.repeat(chair_output.points, 2, axis=0))
    with pytest.raises(ValueError, match="give a folder"):
        two.save(tmp_path / "two.ply")
    assert not (tmp_path / "two.ply").exists()


def test_point_prior_runs_on_any_point_count(tiny_gen):
    z = torch.zeros(2, tiny_gen.model.vae.config.latent_dim)
    for n in (7, 300):
        h = torch.randn(2, n, tiny_gen.model.vae.point_dim)
        assert tiny_gen.model.point_prior(h, torch.tensor([10.0, 500.0]), z).shape == (2, n, 4)


def test_mixed_score_starts_at_the_gaussian_noise_prediction():
    from generators.core.schedules import NoiseSchedule
    from generators.pointcloud.model import PointPriorNet

    net = PointPriorNet(point_dim=4, latent_dim=8, hidden=16, depth=1)  # residual initialised at zero
    x, t = torch.randn(3, 10, 4), torch.tensor([0.0, 500.0, 999.0])
    abar = NoiseSchedule.create("linear", 1000).alphas_cumprod[t.long()].float()
    assert torch.allclose(net(x, t, torch.zeros(3, 8)), (1 - abar).sqrt()[:, None, None] * x, atol=1e-4)


def test_generator_refuses_a_mismatched_diffusion_config(tiny_gen):
    from generators.core.pipeline import DiffusionConfig

    with pytest.raises(ValueError, match="must match the priors"):
        PointCloudGenerator(tiny_gen.model, DiffusionConfig(beta_schedule="cosine"))

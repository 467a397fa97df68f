"""SuperResolver: the call, every sampler, consistency, inputs of every kind, files, save/load and bad input."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from evaluation.superres import consistency_psnr
from generators.core.checkpoint import CheckpointError
from generators.core.sampling import SAMPLERS
from generators.superres import SROutput, SuperResolver


def test_call_on_array_pil_and_path_gives_x4_uint8(tiny_sr, photo_crop, tmp_path):
    _, low = photo_crop
    arr = low["bicubic"]
    path = tmp_path / "in.png"
    Image.fromarray(arr).save(path)
    outs = [tiny_sr(image=x, scale=4, num_inference_steps=2, seed=0) for x in (arr, Image.fromarray(arr), path, str(path))]
    for out in outs:
        assert isinstance(out, SROutput)
        assert out.images[0].shape == (64, 64, 3) and out.images[0].dtype == np.uint8
        assert np.array_equal(out.images[0], outs[0].images[0])
    assert np.array_equal(outs[0].inputs[0], arr)


def test_seed_reproducible_and_samples_differ(tiny_sr, photo_crop):
    arr = photo_crop[1]["area"]
    a = tiny_sr(image=arr, num_inference_steps=2, sampler="ddpm", seed=3, num_samples=2, degradation="area")
    b = tiny_sr(image=arr, num_inference_steps=2, sampler="ddpm", seed=3, num_samples=2, degradation="area")
    c = tiny_sr(image=arr, num_inference_steps=2, sampler="ddpm", seed=4, num_samples=2, degradation="area")
    assert len(a.images) == 2 and a.num_samples == 2
    assert all(np.array_equal(x, y) for x, y in zip(a.images, b.images))
    assert not np.array_equal(a.images[0], c.images[0])
    assert not np.array_equal(a.images[0], a.images[1])


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_by_name(tiny_sr, sampler):
    low = np.random.default_rng(0).integers(60, 200, (6, 5, 3), dtype=np.uint8)  # odd sizes: padded inside
    out = tiny_sr(image=low, num_inference_steps=2, sampler=sampler, guidance_scale=2.0, seed=0)
    assert out.images[0].shape == (24, 20, 3) and out.images[0].dtype == np.uint8


@pytest.mark.parametrize("kind", ["bicubic", "area"])
def test_projection_makes_the_output_consistent_with_the_input(tiny_sr, photo_crop, kind):
    low = photo_crop[1][kind]
    out = tiny_sr(image=low, num_inference_steps=3, sampler="dpmsolver++", seed=0, degradation=kind)
    assert consistency_psnr(out.images[0], low, 4, kind) > 45.0
    # the same sampler without the projection is not held to the input
    x = tiny_sr.upscale_tensor(_tensor(low), num_inference_steps=3, seed=0, degradation=None)
    free = ((x[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
    assert consistency_psnr(free, low, 4, kind) < consistency_psnr(out.images[0], low, 4, kind) - 10


def _tensor(arr):
    import torch

    return torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 127.5 - 1


def test_grey_rgba_and_16bit_inputs_are_converted(tiny_sr):
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    out = tiny_sr(image=grey, num_inference_steps=2)
    assert out.images[0].shape == (32, 32, 1)
    rgba = rng.integers(0, 256, (8, 8, 4), dtype=np.uint8)
    rgba[..., 3] = 0
    rgba[:4, :, 3] = 255  # top half opaque
    out = tiny_sr(image=Image.fromarray(rgba, "RGBA"), num_inference_steps=2)
    alpha = out.images[0][..., 3]
    assert out.images[0].shape == (32, 32, 4)
    assert alpha[:12].min() == 255 and alpha[-12:].max() == 0  # kept and upscaled
    sixteen = (grey.astype(np.uint16) * 257)
    a = tiny_sr(image=sixteen, num_inference_steps=2, seed=0).images[0]
    b = tiny_sr(image=grey, num_inference_steps=2, seed=0).images[0]
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    buf = io.BytesIO()
    Image.fromarray(sixteen).save(buf, format="PNG")  # a 16-bit grey PNG (mode I;16)
    buf.seek(0)
    c = tiny_sr(image=Image.open(buf), num_inference_steps=2, seed=0).images[0]
    assert np.abs(c.astype(int) - b.astype(int)).max() <= 1


def test_save_in_every_format(tiny_sr, photo_crop, tmp_path):
    out = tiny_sr(image=photo_crop[1]["bicubic"], num_inference_steps=2)
    for ext in (".png", ".jpg", ".jpeg", ".tif", ".tiff"):
        (path,) = out.save(tmp_path / f"x4{ext}")
        img = np.asarray(Image.open(path))
        assert img.shape == (64, 64, 3)
        if ext in (".png", ".tif", ".tiff"):
            assert np.array_equal(img, out.images[0])
    (npz,) = out.save(tmp_path / "x4.npz")
    data = np.load(npz)
    assert np.array_equal(data["image_000"], out.images[0]) and np.array_equal(data["input_000"], out.inputs[0])
    many = tiny_sr(image=photo_crop[1]["area"], num_inference_steps=2, num_samples=2)
    paths = many.save(tmp_path / "folder")
    assert [p.name for p in paths] == ["sample_000.png", "sample_001.png"]
    with pytest.raises(ValueError, match="give a folder path"):
        many.save(tmp_path / "two.png")
    with pytest.raises(ValueError, match="supported extensions"):
        out.save(tmp_path / "x.gif")
    rgba = tiny_sr(image=np.zeros((4, 4, 4), np.uint8), num_inference_steps=2)
    with pytest.raises(ValueError, match="alpha"):
        rgba.save(tmp_path / "alpha.jpg")
    assert not (tmp_path / "alpha.jpg").exists()


def test_save_and_load_round_trip(tiny_sr, photo_crop, tmp_path):
    tiny_sr.save_pretrained(tmp_path / "copy")
    assert {"config.json", "diffusion.json", "model.safetensors"} <= {p.name for p in (tmp_path / "copy").iterdir()}
    again = SuperResolver.from_pretrained(tmp_path / "copy")
    low = photo_crop[1]["bicubic"]
    a = tiny_sr(image=low, num_inference_steps=2, seed=5).images[0]
    b = again(image=low, num_inference_steps=2, seed=5).images[0]
    assert np.array_equal(a, b)
    assert again.model.config.residual_scale == tiny_sr.model.config.residual_scale


def test_bad_files_give_clear_errors(tiny_sr, tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.png").write_text("not an image at all")
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, format="PNG")
    (tmp_path / "cut.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    cases = {"empty.png": "is empty", "notes.png": "not an image file", "cut.png": "truncated or corrupted",
             "missing.png": "does not exist"}
    for name, message in cases.items():
        with pytest.raises(ValueError, match=message):
            tiny_sr(image=tmp_path / name, num_inference_steps=2)
    with pytest.raises(ValueError, match="not a file"):
        tiny_sr(image=tmp_path, num_inference_steps=2)


def test_bad_arguments_name_the_parameter(tiny_sr, tmp_path):
    img = np.zeros((8, 8, 3), np.uint8)
    cases = [
        (dict(scale=3), "scale=3 is not supported by this checkpoint; supported scales: 4"),
        (dict(scale=2), "supported scales: 4"),
        (dict(degradation="nearest"), "degradation must be one of"),
        (dict(sampler="ddpm2"), "sampler must be one of"),
        (dict(num_inference_steps=0), "num_inference_steps"),
        (dict(seed=-1), "seed must be >= 0"),
        (dict(num_samples=0), "num_samples must be >= 1"),
        (dict(tile_size=60, tile_overlap=8), "multiples of 8"),
        (dict(tile_size=64, tile_overlap=64), "tile_overlap must be <="),
        (dict(aug_level=1.5), "aug_level must be <= 1"),
        (dict(guidance_scale=-1.0), "guidance_scale must be >= 0"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            tiny_sr(image=img, **{"num_inference_steps": 2, **kwargs})
    for bad, message in [(None, "image is required"), (np.zeros((8, 8, 5), np.uint8), "C in 1..4"),
                         (np.zeros((8, 8), np.int32), "uint8, uint16"), (np.full((8, 8), 2.0), r"\[0, 1\]"),
                         (np.zeros((1, 8), np.uint8), "at least 2x2"), (12, "file path, a PIL image")]:
        with pytest.raises(ValueError, match=message):
            tiny_sr(image=bad, num_inference_steps=2)
    with pytest.raises(ValueError, match="megapixels"):
        tiny_sr(image=np.zeros((1100, 1100), np.uint8), num_inference_steps=2)


def test_guidance_refused_without_condition_dropout(tiny_sr, tmp_path):
    from generators.core.pipeline import DiffusionConfig

    no_null = SuperResolver(tiny_sr.model, DiffusionConfig(prediction_type="v_prediction", cond_drop_prob=0.0))
    with pytest.raises(ValueError, match="guidance_scale must be 1.0 for this checkpoint"):
        no_null(image=np.zeros((4, 4, 3), np.uint8), guidance_scale=2.0, num_inference_steps=2)


def test_missing_checkpoint_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        SuperResolver.from_pretrained(tmp_path / "nothing")


def test_antithetic_samples_come_in_opposite_noise_pairs(tiny_sr, photo_crop):
    from generators.core.noise import AntitheticNoise
    arr = photo_crop[1]["bicubic"]
    seen, sources = [], []
    sample = tiny_sr.run_sampler
    tiny_sr.run_sampler = lambda denoise, noise, source, *a, **k: (seen.append(noise.clone()), sources.append(source)) \
        and sample(denoise, noise, source, *a, **k)
    try:
        plain = tiny_sr(image=arr, num_samples=4, num_inference_steps=2, seed=3)
        paired = tiny_sr(image=arr, num_samples=4, num_inference_steps=2, seed=3, antithetic=True)
    finally:
        del tiny_sr.run_sampler
    assert torch.equal(seen[1][:2], seen[0][:2]) and torch.equal(seen[1][2:], -seen[0][:2])
    assert isinstance(sources[1], AntitheticNoise) and not isinstance(sources[0], AntitheticNoise)  # whole paths
    assert np.array_equal(paired.images[0], plain.images[0]) and np.array_equal(paired.images[1], plain.images[1])
    assert not np.array_equal(paired.images[2], plain.images[2])


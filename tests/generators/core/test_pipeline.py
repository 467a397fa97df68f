"""The generator contract: the family-neutral diffusion config, the shared checks, the output's save()."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from generators.core.checkpoint import CheckpointError
from generators.core.pipeline import DiffusionConfig, GeneratorOutput, png_bytes
from generators.core.sampling import check_sampler
from generators.core.schedules import NoiseSchedule
from generators.core.validation import (MAX_CONTINUOUS_STEPS, check_guidance_interval, check_guidance_scale,
                                        check_seed)


def test_diffusion_config_round_trip_and_clear_errors(tmp_path):
    cfg = DiffusionConfig(prediction_type="v_prediction", cond_drop_prob=0.2)
    cfg.save(tmp_path)
    assert DiffusionConfig.load(tmp_path) == cfg
    (tmp_path / "diffusion.json").write_text(json.dumps({**json.loads((tmp_path / "diffusion.json").read_text()),
                                                         "image_size": 16}))
    with pytest.raises(CheckpointError, match="unknown fields \\['image_size'\\]"):
        DiffusionConfig.load(tmp_path)
    (tmp_path / "diffusion.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="JSON object"):
        DiffusionConfig.load(tmp_path)
    (tmp_path / "diffusion.json").write_text(json.dumps({"prediction_type": "noise"}))
    with pytest.raises(CheckpointError, match="prediction_type"):
        DiffusionConfig.load(tmp_path)


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0, 1e308, "3", None, True])
def test_guidance_scale_must_be_a_finite_number_in_range(value):
    with pytest.raises(ValueError, match="guidance_scale"):
        check_guidance_scale(value)


def test_seed_and_interval_checks():
    assert check_seed(0) == 0
    for bad in (-1, 1.5, "1", True, 2**63):
        with pytest.raises(ValueError, match="seed"):
            check_seed(bad)
    assert check_guidance_interval(None) is None and check_guidance_interval((0.1, 2)) == (0.1, 2.0)
    for bad in ((2, 1), (0.1, math.nan), (1,), "ab"):
        with pytest.raises(ValueError, match="guidance_interval"):
            check_guidance_interval(bad)


def test_unbounded_samplers_have_a_step_limit():
    schedule = NoiseSchedule.create("linear", 1000)
    for sampler in ("sde-vp", "pc-ve", "annealed-langevin", "pf-ode"):
        with pytest.raises(ValueError, match="beyond the"):
            check_sampler(sampler, MAX_CONTINUOUS_STEPS + 1, schedule)
        check_sampler(sampler, MAX_CONTINUOUS_STEPS, schedule)


class _Frames(GeneratorOutput):
    file_formats = (".png",)

    def __init__(self, images: np.ndarray) -> None:
        self.images = images

    def _items(self, prefix):
        for i, img in enumerate(self.images):
            yield f"{prefix}_{i}.png", png_bytes(img)

    def _encode(self, suffix):
        return png_bytes(self.images[0])


def test_output_save_picks_the_format_by_extension(tmp_path):
    out = _Frames(np.zeros((2, 4, 4), np.uint8))
    assert [p.name for p in out.save(tmp_path / "dir")] == ["sample_0.png", "sample_1.png"]
    assert out.save(tmp_path / "one.png")[0].is_file()
    with pytest.raises(ValueError, match="supported extensions are .png"):
        out.save(tmp_path / "clip.mp4")
    assert not (tmp_path / "clip.mp4").exists()
    (tmp_path / "d.v2").mkdir()
    assert len(out.save(tmp_path / "d.v2")) == 2  # an existing folder with a dot is still a folder
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("stored, ratio", [("float16", 0.6), ("int8", 0.4)])
def test_storage_dtype_shrinks_the_folder_and_loads_back_as_float32(tmp_path, stored, ratio):
    """float16 halves the weights; int8 (per-channel, generators/core/quantize.py) quarters the big ones (the
    tiny model has many small tensors, kept in float16). Both load back as float32, each weight within
    half a step of its stored precision."""
    import torch

    from generators.core.pipeline import DiffusionGenerator
    from generators.image.model import build_model

    class Full(DiffusionGenerator):
        model_class = type(build_model("tiny"))

    class Small(Full):
        storage_dtype = getattr(torch, stored)

    torch.manual_seed(0)
    model = build_model("tiny")
    Full(model, DiffusionConfig()).save_pretrained(tmp_path / "full")
    Small(model, DiffusionConfig()).save_pretrained(tmp_path / "small")
    full, small = ((tmp_path / k / "model.safetensors").stat().st_size for k in ("full", "small"))
    assert small < ratio * full
    loaded = Small.from_pretrained(tmp_path / "small").model.state_dict()
    for name, value in model.state_dict().items():
        assert loaded[name].dtype == torch.float32
        if stored == "float16" or value.ndim < 2:  # int8 keeps biases and norms in float16 too
            assert torch.equal(loaded[name], value.half().float())
        assert torch.allclose(loaded[name], value, atol=float(value.abs().max()) / 254 + 1e-3 * float(value.abs().max()))

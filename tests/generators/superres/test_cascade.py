"""The cascade: training the tiny preset, every stage in the output, stage agreement, folders and bad input."""
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from evaluation.superres import consistency_psnr
from generators.core.checkpoint import CheckpointError
from generators.superres import Cascade, CascadeOutput, SuperResolver
from generators.superres.train import train_cascade


def test_folder_layout_and_stage_folders_load_alone(tiny_cascade_path):
    layout = json.loads((tiny_cascade_path / "cascade.json").read_text())
    assert layout == {"base": "base", "stages": ["stage1", "stage2"], "degradation": "area"}
    for name in ("base", "stage1", "stage2"):
        assert (tiny_cascade_path / name / "config.json").is_file()
        assert (tiny_cascade_path / name / "training.json").is_file()
    assert SuperResolver.from_pretrained(tiny_cascade_path / "stage2").scale == 2


def test_cascade_gives_every_stage_and_stages_agree(tiny_cascade):
    out = tiny_cascade(prompt="gravel", num_images=2, num_inference_steps=2, seed=0)
    assert isinstance(out, CascadeOutput)
    assert [s.shape for s in out.stages] == [(2, 8, 8, 3), (2, 16, 16, 3), (2, 32, 32, 3)]
    assert out.images[0].shape == (32, 32, 3) and out.prompts == ["gravel", "gravel"]
    for low, high in zip(out.stages, out.stages[1:]):  # each stage downsamples to the one before
        for lo, hi in zip(low, high):
            assert consistency_psnr(hi, lo, 2, "area") > 35
    again = tiny_cascade(prompt=["GRAVEL"], num_images=2, num_inference_steps=2, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(out.stages, again.stages))
    two = tiny_cascade(prompt=["brick", "grass"], num_images=1, num_inference_steps=2, seed=1)
    assert two.prompts == ["brick", "grass"]


def test_cascade_save_and_round_trip(tiny_cascade, tmp_path):
    out = tiny_cascade(prompt="brick", num_images=2, num_inference_steps=2, seed=2)
    paths = out.save(tmp_path / "dir")
    assert sorted(p.relative_to(tmp_path / "dir").as_posix() for p in paths)[:2] == [
        "stage0_8px/sample_000.png", "stage0_8px/sample_001.png"]
    (sheet,) = out.save(tmp_path / "sheet.png")
    assert np.asarray(Image.open(sheet)).shape == (2 * 32, 3 * 32, 3)
    (npz,) = out.save(tmp_path / "all.npz")
    assert np.array_equal(np.load(npz)["stage2_32px"], out.stages[2])
    tiny_cascade.save_pretrained(tmp_path / "copy")
    copy = Cascade.from_pretrained(tmp_path / "copy")
    same = copy(prompt="brick", num_images=2, num_inference_steps=2, seed=2)
    assert all(np.array_equal(a, b) for a, b in zip(out.stages, same.stages))


def test_cascade_bad_input(tiny_cascade, tiny_cascade_path, tmp_path):
    with pytest.raises(ValueError, match="not one this cascade knows; use one of"):
        tiny_cascade(prompt="a dragon", num_inference_steps=2)
    with pytest.raises(ValueError, match="num_images must be >= 1"):
        tiny_cascade(prompt="gravel", num_images=0)
    with pytest.raises(ValueError, match="prompt must be a string"):
        tiny_cascade(prompt=[], num_inference_steps=2)
    with pytest.raises(CheckpointError, match="does not exist"):
        Cascade.from_pretrained(tmp_path / "none")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "cascade.json").write_text(json.dumps({"base": "../base", "stages": []}))
    with pytest.raises(CheckpointError, match="plain subfolder name"):
        Cascade.from_pretrained(bad)


def test_cascade_training_resumes_part_by_part(tiny_cascade_path, tmp_path):
    folder = tmp_path / "cascade"
    shutil.copytree(tiny_cascade_path, folder)
    results = train_cascade(folder, "tiny", progress=False)  # every part already done
    assert results == {"base": None, "stage1": None, "stage2": None}
    more = train_cascade(folder, "tiny", max_steps=6, checkpoint_every=6, progress=False)
    assert [r.resumed_from for r in more.values()] == [4, 4, 4]

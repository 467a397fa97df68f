"""``mmdiff generate|train|evaluate image|text2img|controlnet``: PNGs, and one clear line for bad input."""
import json

import numpy as np
from click.testing import CliRunner
from PIL import Image

from mmdiff.cli import build_cli

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(build_cli(), list(args))


def test_generate_writes_pngs(tiny_checkpoint, tmp_path):
    res = invoke("generate", "image", "--labels", "3,7", "--num-inference-steps", "4", "--sampler", "ddim",
                 "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "out"))
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sample_000_label3.png", "sample_001_label7.png"]


def test_bad_input_is_one_clear_line(tiny_checkpoint, tmp_path):
    ck = ["--checkpoint", str(tiny_checkpoint)]
    res = invoke("generate", "image", "--labels", "3,x", *ck)
    assert res.exit_code == 2 and "must be comma-separated integers" in res.output
    res = invoke("generate", "image", "--sampler", "nope", *ck)
    assert res.exit_code == 2 and "nope" in res.output and "Traceback" not in res.output
    res = invoke("generate", "image", "--checkpoint", str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert res.exit_code == 2 and "does not exist" in res.output
    for value in ("nan", "inf", "1e308"):
        res = invoke("generate", "image", "--guidance-scale", value, *ck, "--out", str(tmp_path / "g"))
        assert res.exit_code == 2 and "--guidance-scale" in res.output, (value, res.output)
    assert not (tmp_path / "g").exists()
    res = invoke("generate", "image", "--seed", "-1", *ck)
    assert res.exit_code == 2 and "--seed" in res.output
    res = invoke("generate", "image", "--labels", "", *ck)
    assert res.exit_code == 2 and "--labels" in res.output
    (tmp_path / "file").write_text("x")
    res = invoke("generate", "image", *ck, "--out", str(tmp_path / "file"))
    assert res.exit_code == 2 and "is a file" in res.output
    res = invoke("generate", "image", *ck, "--out", str(tmp_path / "file" / "sub"))
    assert res.exit_code == 2 and "is a file" in res.output
    res = invoke("generate", "image", *ck, "--out", "/proc/mmdiff-test")
    assert res.exit_code == 2 and "cannot write" in res.output


def test_a_checkpoint_that_is_a_file_is_named_as_such(tmp_path):
    (tmp_path / "ck").write_text("x")
    res = invoke("generate", "image", "--checkpoint", str(tmp_path / "ck"), "--out", str(tmp_path / "o"))
    assert res.exit_code == 2 and "is a file" in res.output


def test_generate_with_control_maps(tiny_checkpoint, tmp_path):
    """``generate controlnet --control edges.png``: an untrained (zero-conv) adapter gives the base's own digits."""
    from conditioning.control import ControlNetAdapter
    from generators.image import ImageGenerator
    from generators.image.controlnet import CONTROL_CONFIG

    base = ImageGenerator.from_pretrained(tiny_checkpoint)
    adapter = ControlNetAdapter.from_unet(base.model.unet)
    from generators.core.checkpoint import save_model

    folder = save_model(tmp_path / "adapter", adapter, ema_state=adapter.state_dict())
    (folder / CONTROL_CONFIG).write_text(json.dumps({"base_checkpoint": str(tiny_checkpoint), "control": "edges"}))
    edges = np.zeros((8, 8), np.uint8)
    edges[2:6, 3] = 255
    Image.fromarray(edges).save(tmp_path / "edges.png")
    res = invoke("generate", "controlnet", "--control", str(tmp_path / "edges.png"), "--num-inference-steps", "3",
                 "--sampler", "ddim", "--checkpoint", str(folder), "--out", str(tmp_path / "out"))
    assert res.exit_code == 0, res.output
    (png,) = sorted((tmp_path / "out").iterdir())
    expected = base([0], num_inference_steps=3, sampler="ddim", guidance_scale=0.0, seed=0).images[0]
    assert np.array_equal(np.asarray(Image.open(png)), expected.squeeze())
    res = invoke("generate", "controlnet", "--control", str(tmp_path / "nope.png"), "--checkpoint", str(folder))
    assert res.exit_code == 2 and "--control file not found" in res.output
    res = invoke("generate", "controlnet", "--control", str(tmp_path / "edges.png"), "--labels", "1,2",
                 "--checkpoint", str(folder))
    assert res.exit_code == 2 and "labels must be 1 digits" in res.output
    frames = [Image.fromarray(edges), Image.fromarray(255 - edges)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    res = invoke("generate", "controlnet", "--control", str(tmp_path / "anim.gif"), "--checkpoint", str(folder))
    assert res.exit_code == 2 and "frames" in res.output


def test_train_image_reuses_and_never_defaults_onto_a_shipped_checkpoint(tmp_path):
    args = ["train", "image", "--preset", "tiny", "--max-steps", "4", "--checkpoint-every", "2",
            "--cache-root", str(tmp_path / "cache"), "--publish-dir", str(tmp_path / "pub")]
    first = runner.invoke(build_cli(), args)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["reused"] is False
    second = runner.invoke(build_cli(), args)
    assert json.loads(second.stdout)["reused"] is True
    assert (tmp_path / "pub" / "config.json").is_file()
    from flows.image.params import IMAGE_CHECKPOINT, TrainImageParams

    assert TrainImageParams().publish_dir != IMAGE_CHECKPOINT and "data/checkpoints" not in TrainImageParams().publish_dir

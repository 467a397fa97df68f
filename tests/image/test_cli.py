"""The mmdiff console script: generate PNGs, and one clear line for bad input."""
from typer.testing import CliRunner

from flows.cli import app

runner = CliRunner()


def test_generate_writes_pngs(tiny_checkpoint, tmp_path):
    res = runner.invoke(app, ["generate", "image", "--labels", "3,7", "--steps", "4", "--sampler", "ddim",
                              "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sample_000_label3.png", "sample_001_label7.png"]


def test_bad_input_is_one_clear_line(tiny_checkpoint, tmp_path):
    res = runner.invoke(app, ["generate", "image", "--labels", "3,x", "--checkpoint", str(tiny_checkpoint)])
    assert res.exit_code == 2 and "--labels must be comma-separated integers" in res.output
    res = runner.invoke(app, ["generate", "image", "--sampler", "nope", "--checkpoint", str(tiny_checkpoint)])
    assert res.exit_code == 2 and "sampler must be one of" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["generate", "image", "--checkpoint", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "does not exist" in res.output


def test_generate_with_control_maps(tiny_checkpoint, tmp_path):
    """``generate image --control edges.png``: an untrained (zero-conv) adapter gives the base's own digits."""
    import json

    import numpy as np
    from PIL import Image

    from conditioning.control import ControlNetAdapter
    from generators.core.checkpoint import save_model
    from generators.image import ImageGenerator
    from generators.image.controlnet import CONTROL_CONFIG

    base = ImageGenerator.from_pretrained(tiny_checkpoint)
    adapter = ControlNetAdapter.from_unet(base.model.unet)
    folder = save_model(tmp_path / "adapter", adapter, ema_state=adapter.state_dict())
    (folder / CONTROL_CONFIG).write_text(json.dumps({"base_checkpoint": str(tiny_checkpoint), "control": "edges"}))
    edges = np.zeros((8, 8), np.uint8)
    edges[2:6, 3] = 255
    Image.fromarray(edges).save(tmp_path / "edges.png")
    res = runner.invoke(app, ["generate", "image", "--control", str(tmp_path / "edges.png"), "--steps", "3",
                              "--sampler", "ddim", "--checkpoint", str(folder), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    (png,) = sorted((tmp_path / "out").iterdir())
    expected = base([0], num_inference_steps=3, sampler="ddim", guidance_scale=0.0, seed=0).images[0]
    assert np.array_equal(np.asarray(Image.open(png)), expected.squeeze())
    res = runner.invoke(app, ["generate", "image", "--control", str(tmp_path / "nope.png"), "--checkpoint", str(folder)])
    assert res.exit_code == 2 and "--control file(s) not found" in res.output
    res = runner.invoke(app, ["generate", "image", "--control", str(tmp_path / "edges.png"), "--labels", "1,2",
                              "--checkpoint", str(folder)])
    assert res.exit_code == 2 and "labels must be 1 digits" in res.output

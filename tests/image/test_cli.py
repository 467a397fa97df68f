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

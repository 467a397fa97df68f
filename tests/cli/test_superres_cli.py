"""``mmdiff upscale photo.png --out x4.png``: a positional image argument; bad files and formats refused up front."""
import numpy as np
from click.testing import CliRunner
from PIL import Image

from mmdiff.cli import build_cli


def test_upscale_takes_images_as_arguments(tmp_path):
    from generators.core.pipeline import DiffusionConfig
    from generators.superres import SuperResolver
    from generators.superres.model import SRNet
    from generators.superres.presets import sr_preset

    p = sr_preset("tiny")
    net = SRNet(channels=3, scale=p.scale, patch_size=p.patch_size, block_channels=p.block_channels,
                blocks_per_level=p.blocks_per_level)
    checkpoint = SuperResolver(net, DiffusionConfig()).save_pretrained(tmp_path / "sr")
    Image.fromarray((np.random.default_rng(0).random((6, 5, 3)) * 255).astype(np.uint8)).save(tmp_path / "a.png")
    res = CliRunner().invoke(build_cli(), ["upscale", str(tmp_path / "a.png"), "--checkpoint", str(checkpoint),
                                           "--num-inference-steps", "2", "--out", str(tmp_path / "a_x4.png")])
    assert res.exit_code == 0, res.output
    assert np.asarray(Image.open(tmp_path / "a_x4.png")).shape == (24, 20, 3)
    res = CliRunner().invoke(build_cli(), ["upscale", str(tmp_path / "a.png"), "--checkpoint", str(checkpoint),
                                           "--out", str(tmp_path / "a_x4.gifx")])
    assert res.exit_code == 2 and "not supported" in res.output
    (tmp_path / "empty.png").write_bytes(b"")
    res = CliRunner().invoke(build_cli(), ["upscale", str(tmp_path / "empty.png"), "--checkpoint", str(checkpoint),
                                           "--out", str(tmp_path / "e.png")])
    assert res.exit_code == 2 and "error:" in res.output and not (tmp_path / "e.png").exists()

"""The fuzz test of :mod:`tests.cli.test_fuzz`, over the commands of the super-resolution, video and
point-cloud families: any options give success or one ``error:`` line (exit 2), never a traceback, and a
failed run leaves nothing at ``--out``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mmdiff.cli import build_cli

from .test_fuzz import NUMBERS, STEPS, TEXT, _check, _paths

SETTINGS = dict(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
SMALL_INTS = st.sampled_from(["1", "2", "0", "-1", "1000000", "x", "nan", ""])


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz-families")


def _image_files(folder: Path) -> list[str]:
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((6, 5, 3)) * 255).astype(np.uint8)).save(folder / "rgb.png")
    Image.fromarray((rng.random((5, 4, 4)) * 255).astype(np.uint8)).save(folder / "rgba.png")
    Image.fromarray((rng.random((4, 4)) * 65535).astype(np.uint16)).save(folder / "grey16.png")
    (folder / "empty.png").write_bytes(b"")
    (folder / "truncated.png").write_bytes((folder / "rgb.png").read_bytes()[:40])
    (folder / "text.png").write_text("not an image")
    return [str(folder / n) for n in ("rgb.png", "rgba.png", "grey16.png", "empty.png", "truncated.png",
                                      "text.png", "missing.png")] + [str(folder)]


def _options(data, valid: dict[str, str], hostile: dict[str, st.SearchStrategy[str]]) -> list[str]:
    """Valid options, with up to two of them replaced by hostile values: every case reaches the code
    behind the option parser, and the errors come one or two at a time."""
    bad = data.draw(st.lists(st.sampled_from(sorted(hostile)), max_size=2, unique=True))
    args: list[str] = []
    for name, value in valid.items():
        args += [name, data.draw(hostile[name]) if name in bad else value]
    return args


@settings(**SETTINGS)
@given(data=st.data())
def test_upscale_never_crashes(tiny_sr_checkpoint, fuzz_dir, data):
    images = data.draw(st.lists(st.sampled_from(_image_files(fuzz_dir)), min_size=1, max_size=2))
    out = data.draw(_paths(fuzz_dir))
    existed = Path(out).exists()
    args = ["upscale", *images, "--checkpoint", str(tiny_sr_checkpoint), "--out", out, *_options(data, {
        "--num-inference-steps": "2", "--seed": "0", "--scale": "4", "--num-samples": "1", "--tile-size": "32",
        "--tile-overlap": "8", "--degradation": "bicubic"}, {
        "--num-inference-steps": STEPS, "--seed": NUMBERS, "--scale": st.sampled_from(["2", "3", "0", "-4", "x"]),
        "--num-samples": SMALL_INTS, "--tile-size": SMALL_INTS, "--tile-overlap": st.sampled_from(["4", "16", "-1", "99"]),
        "--degradation": st.sampled_from(["area", "gauss", ""])})]
    _check(CliRunner().invoke(build_cli(), args), out, existed)


@settings(**SETTINGS)
@given(data=st.data())
def test_generate_cascade_never_crashes(tiny_cascade_checkpoint, fuzz_dir, data):
    out = data.draw(_paths(fuzz_dir))
    existed = Path(out).exists()
    args = ["generate", "cascade", "--checkpoint", str(tiny_cascade_checkpoint), "--out", out, *_options(data, {
        "--prompt": "gravel", "--num": "1", "--num-inference-steps": "2", "--guidance-scale": "2",
        "--stage-guidance-scale": "1", "--seed": "0"}, {
        "--prompt": st.one_of(st.sampled_from(["brick", "GRASS", "a cat"]), TEXT), "--num": SMALL_INTS,
        "--num-inference-steps": STEPS, "--guidance-scale": NUMBERS, "--stage-guidance-scale": NUMBERS,
        "--seed": NUMBERS})]
    _check(CliRunner().invoke(build_cli(), args), out, existed)


@settings(**SETTINGS)
@given(data=st.data())
def test_generate_video_never_crashes(tiny_video_checkpoint, fuzz_dir, data):
    out = data.draw(st.one_of(_paths(fuzz_dir), st.sampled_from([str(fuzz_dir / "c.mp4"), str(fuzz_dir / "c.gif")])))
    existed = Path(out).exists()
    args = ["generate", "video", "--checkpoint", str(tiny_video_checkpoint), "--out", out, *_options(data, {
        "--prompt": "the digit 3 moves to the right", "--frames": "4", "--num-inference-steps": "2",
        "--guidance-scale": "2", "--seed": "0"}, {
        "--prompt": TEXT, "--frames": st.sampled_from(["8", "0", "-1", "100000", "x"]),
        "--num-inference-steps": STEPS, "--guidance-scale": NUMBERS, "--seed": NUMBERS})]
    if data.draw(st.booleans()):
        args += ["--image", data.draw(st.sampled_from(_image_files(fuzz_dir)))]
    if data.draw(st.booleans()):
        args += ["--motion", data.draw(NUMBERS)]
    _check(CliRunner().invoke(build_cli(), args), out, existed)


@settings(**SETTINGS)
@given(data=st.data())
def test_generate_pointcloud_never_crashes(tiny_pointcloud_checkpoint, fuzz_dir, data):
    out = data.draw(st.one_of(_paths(fuzz_dir), st.sampled_from([str(fuzz_dir / f"s{e}")
                                                                 for e in (".ply", ".glb", ".obj", ".npy")])))
    existed = Path(out).exists()
    args = ["generate", "pointcloud", "--checkpoint", str(tiny_pointcloud_checkpoint), "--out", out, *_options(data, {
        "--num-points": "64", "--num-inference-steps": "2", "--guidance-scale": "2", "--seed": "0"}, {
        "--num-points": st.sampled_from(["16", "0", "-1", "100000000", "x"]), "--num-inference-steps": STEPS,
        "--guidance-scale": NUMBERS, "--seed": NUMBERS})]
    for _ in range(data.draw(st.integers(0, 2))):
        args += data.draw(st.sampled_from([["--label", "chair"], ["--label", "spaceship"], ["--prompt", "a chair"],
                                           ["--prompt", ""], ["--label", "\udcff"]]))
    _check(CliRunner().invoke(build_cli(), args), out, existed)


def test_generate_video_writes_the_formats_its_help_names(tiny_video_checkpoint, tmp_path):
    """``--out clip.mp4`` and ``clip.gif`` (the formats ``--help`` names) are accepted and written."""
    for name in ("clip.mp4", "clip.gif"):
        res = CliRunner().invoke(build_cli(), ["generate", "video", "--checkpoint", str(tiny_video_checkpoint),
                                               "--prompt", "the digit 3 moves to the right", "--frames", "4",
                                               "--num-inference-steps", "2", "--out", str(tmp_path / name)])
        assert res.exit_code == 0, res.output
        assert (tmp_path / name).stat().st_size > 0


def test_check_verifies_every_part_of_a_cascade(tiny_cascade_checkpoint, tmp_path):
    """``mmdiff check`` hashes the files of the parts (base, stages), each listed in its own manifest."""
    import shutil

    folder = tmp_path / "cascade"
    shutil.copytree(tiny_cascade_checkpoint, folder)
    res = CliRunner().invoke(build_cli(), ["check", str(folder), "--kind", "cascade"])
    assert res.exit_code == 0 and "stage2/model.safetensors" in res.output, res.output
    weights = folder / "stage2" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    res = CliRunner().invoke(build_cli(), ["check", str(folder), "--kind", "cascade"])
    assert res.exit_code == 2 and "model.safetensors" in res.output and "Traceback" not in res.output, res.output

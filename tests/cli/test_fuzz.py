"""Property-based fuzzing of the CLI (hypothesis): whatever the options, a run either succeeds or ends with one
``error:`` line and exit code 2, never a traceback, and a failed run leaves nothing at ``--out``.

Every family that lands adds its commands to :data:`CASES` (through a fixture that gives a tiny checkpoint).
"""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmdiff.cli import build_cli

NUMBERS = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "1e308", "-1", "0", "1e-300", "3", "2.5", "", "x", "١"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)
STEPS = st.one_of(st.sampled_from(["0", "-3", "1", "2", "1001", "100000000", "nan", "2.5", ""]), NUMBERS)
TEXT = st.one_of(
    st.sampled_from(["", " ", "a thin upright two", "x" * 5000, "\udcff\udcfe", "名字", "\x00"]),
    st.text(max_size=40),
)
LABELS = st.one_of(
    st.sampled_from(["", ",", "3", "3,7", "10", "-1", "3,x", "1.5", ",".join(["3"] * 50_001)]),
    st.lists(st.integers(-5, 15), min_size=0, max_size=3).map(lambda v: ",".join(map(str, v))),
)
SAMPLER = st.one_of(st.sampled_from(["ddim", "dpmsolver++", "sde-vp", "annealed-langevin", "plms", ""]), TEXT)


def _paths(tmp: Path) -> st.SearchStrategy[str]:
    (tmp / "a-file").write_text("x")
    return st.sampled_from([
        str(tmp / "fresh"), str(tmp / "a-file"), str(tmp / "a-file" / "below"), "/proc/mmdiff-fuzz",
        str(tmp / "deep" / "er" / "out"), str(tmp / "x.png"), str(tmp / "x.unknown"),
    ])


def _check(result, out: str | None, existed: bool) -> None:
    """Exit 0, or exit 2 with one ``error:`` (or usage) line; no traceback; a failed run leaves no new ``--out``."""
    assert result.exit_code in (0, 2), (result.exit_code, result.output[-2000:], repr(result.exception))
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert "error:" in result.output or "Usage:" in result.output, result.output[-500:]
        if out is not None and not existed:
            assert not Path(out).exists(), (out, result.output[-500:])


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_generate_image_never_crashes(tiny_checkpoint, fuzz_dir, data):
    out = data.draw(_paths(fuzz_dir))
    existed = Path(out).exists()
    args = ["generate", "image", "--checkpoint", str(tiny_checkpoint), "--out", out,
            "--labels", data.draw(LABELS), "--num-inference-steps", data.draw(STEPS),
            "--guidance-scale", data.draw(NUMBERS), "--seed", data.draw(NUMBERS), "--sampler", data.draw(SAMPLER),
            "--batch-size", data.draw(st.sampled_from(["1", "2", "0", "-1", "100000", "x"]))]
    result = CliRunner().invoke(build_cli(), args)
    _check(result, out, existed)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_checkpoint_options_never_crash(tiny_checkpoint, fuzz_dir, data):
    """Checkpoint paths that are files, missing, unreadable JSON or another family's folder."""
    broken = fuzz_dir / "broken"
    broken.mkdir(exist_ok=True)
    (broken / "config.json").write_text(data.draw(st.sampled_from(["[1]", "{", '"x"', '{"sample_size": "16x"}', ""])))
    checkpoint = data.draw(st.sampled_from([str(broken), str(fuzz_dir / "missing"), str(fuzz_dir / "a-file"),
                                            "/proc", str(tiny_checkpoint)]))
    (fuzz_dir / "a-file").write_text("x")
    verb = data.draw(st.sampled_from([["generate", "image"], ["evaluate", "image", "--per-class", "1",
                                                              "--num-inference-steps", "1", "--cas-epochs", "1"]]))
    out = str(fuzz_dir / "o")
    args = [*verb, "--checkpoint", checkpoint, "--num-inference-steps", "1"]
    if verb[0] == "generate":
        args += ["--out", out, "--labels", "1"]
    result = CliRunner().invoke(build_cli(), args)
    _check(result, None, True)
    result = CliRunner().invoke(build_cli(), ["check", checkpoint])
    _check(result, None, True)


def test_values_the_reliability_issue_named_are_refused(tiny_checkpoint, tmp_path):
    ck = ["--checkpoint", str(tiny_checkpoint)]
    for args in (["--guidance-scale", "nan"], ["--guidance-scale", "inf"], ["--guidance-scale", "1e308"],
                 ["--seed", "-1"], ["--labels", ""], ["--num-inference-steps", "1000000", "--sampler", "sde-vp"]):
        result = CliRunner().invoke(build_cli(), ["generate", "image", *ck, "--out", str(tmp_path / "o"), *args])
        assert result.exit_code == 2 and result.output.startswith("error: "), (args, result.output)
        assert not (tmp_path / "o").exists()


FLOORPLAN = Path(__file__).resolve().parents[2] / "data" / "checkpoints" / "floorplan"
GRAPHS = st.one_of(
    st.sampled_from([
        '{"rooms": [{"id": "a", "room_type": "kitchen"}, {"id": "b", "room_type": "bedroom"}], "doors": [["a", "b"]]}',
        '{"rooms": [{"id": "a", "room_type": "spaceship"}], "doors": []}',
        '{"rooms": [{"id": "a", "room_type": "kitchen"}], "doors": [["a", "a"]]}',
        '{"rooms": [{"id": "a", "room_type": "kitchen"}, {"id": "a", "room_type": "bedroom"}], "doors": []}',
        '{"rooms": [], "doors": []}', "[1, 2]", "{", "", "\\u0000",
        '{"rooms": [{"id": "r%d", "room_type": "bedroom"}], "doors": []}' % 1,
        '{"rooms": [' + ",".join('{"id": "r%d", "room_type": "bedroom"}' % i for i in range(40)) + '], "doors": []}',
        '{"rooms": [{"id": "a", "room_type": "kitchen", "area": -3}], "doors": []}',
    ]),
    st.text(max_size=60),
)


@pytest.mark.skipif(not (FLOORPLAN / "config.json").is_file(), reason="no shipped floorplan checkpoint")
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_generate_floorplan_never_crashes(fuzz_dir, data):
    graph = fuzz_dir / "graph.json"
    graph.write_text(data.draw(GRAPHS), errors="surrogateescape")
    out = data.draw(_paths(fuzz_dir))
    existed = Path(out).exists()
    args = ["generate", "floorplan", "--checkpoint", str(FLOORPLAN), "--graph", data.draw(
        st.sampled_from([str(graph), str(graph), str(fuzz_dir / "missing.json"), str(fuzz_dir)])),
        "--out", out, "--num", data.draw(st.sampled_from(["1", "2", "0", "-1", "1000000", "x"])),
        "--num-inference-steps", data.draw(st.sampled_from(["2", "0", "nan", "100000000"])),
        "--guidance-scale", data.draw(NUMBERS), "--seed", data.draw(NUMBERS)]
    result = CliRunner().invoke(build_cli(), args)
    _check(result, out, existed)

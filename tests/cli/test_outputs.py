"""``mmdiff/outputs.py``: a failed command takes back what it wrote at ``--out``; chunks stream to disk."""
import errno

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import generators.core.pipeline as pipeline
from mmdiff.cli import build_cli
from mmdiff.outputs import output_transaction

runner = CliRunner()


def _disk_full_after(monkeypatch, n: int) -> list[str]:
    """Make the n+1-th output file fail as a full disk would."""
    real = pipeline.atomic_write_bytes
    written: list[str] = []

    def write(path, data):
        if len(written) >= n:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)
        written.append(str(path))

    monkeypatch.setattr(pipeline, "atomic_write_bytes", write)
    return written


@pytest.mark.parametrize("existing", [False, True])
def test_a_full_disk_leaves_no_partial_set(tiny_checkpoint, tmp_path, monkeypatch, existing):
    out = tmp_path / "out"
    if existing:
        out.mkdir()
        (out / "mine.txt").write_text("kept")
    written = _disk_full_after(monkeypatch, 3)
    res = runner.invoke(build_cli(), ["generate", "image", "--labels", "0,1,2,3,4,5,6,7,8,9", "--batch-size", "2",
                                      "--num-inference-steps", "2", "--sampler", "ddim",
                                      "--checkpoint", str(tiny_checkpoint), "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert "No space left on device" in res.output and "Traceback" not in res.output
    assert len(written) == 3                                  # three PNGs were on disk when it failed ...
    if existing:                                              # ... and none of them is left
        assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
        assert (out / "mine.txt").read_text() == "kept"
    else:
        assert not out.exists()


def test_chunks_are_written_as_one_request_would_be(tiny_checkpoint, tiny_gen, tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(build_cli(), ["generate", "image", "--labels", "3,1,4,1,5", "--batch-size", "2",
                                      "--num-inference-steps", "3", "--sampler", "ddim", "--seed", "5",
                                      "--checkpoint", str(tiny_checkpoint), "--out", str(out)])
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["sample_000_label3.png", "sample_001_label1.png", "sample_002_label4.png",
                     "sample_003_label1.png", "sample_004_label5.png"]
    whole = tiny_gen([3, 1, 4, 1, 5], num_inference_steps=3, sampler="ddim", seed=5, batch_size=2)
    for i, name in enumerate(names):
        np.testing.assert_array_equal(np.asarray(Image.open(out / name)).reshape(whole.images[i].shape),
                                      whole.images[i])


def test_chunks_check_every_argument_before_the_first_chunk(tiny_gen):
    chunks = tiny_gen.chunks([1, 2], guidance_scale=float("nan"))
    with pytest.raises(ValueError, match="guidance_scale"):
        next(chunks)


def test_only_train_commands_keep_a_failed_runs_out(tmp_path):
    """``train`` commands resume from --out, so nothing there is taken back (Command.all_or_nothing);
    every generate command's output is all or nothing."""
    from flows import registry

    trains = [c for f in registry.families() for c in f.commands if c.verb == "train"]
    assert trains and not any(c.all_or_nothing for c in trains)
    assert all(c.all_or_nothing for f in registry.families() for c in f.commands if c.verb == "generate")


def test_the_transaction_keeps_what_was_there(tmp_path):
    out = tmp_path / "o"
    (out / "old").mkdir(parents=True)
    (out / "old" / "a.png").write_bytes(b"x")
    with pytest.raises(KeyboardInterrupt), output_transaction(out):
        (out / "old" / "b.png").write_bytes(b"y")
        (out / "new" / "deep").mkdir(parents=True)
        (out / "new" / "deep" / "c.png").write_bytes(b"z")
        raise KeyboardInterrupt
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["old", "old/a.png"]
    with output_transaction(out):
        (out / "kept.png").write_bytes(b"k")
    assert (out / "kept.png").exists()

"""Training: the tiny preset end to end, exact resume, the autoencoder and the video classifier."""
import json

import pytest
import torch

from evaluation.video import load_video_classifier
from generators.core.checkpoint import load_tensors
from generators.video import VideoGenerator, train_video, train_video_autoencoder, train_video_classifier
from generators.video.autoencoder import load_autoencoder


def test_resume_continues_exactly(tiny_checkpoint, tmp_path):
    """2 steps, then a second call to 4 steps, equals one 4-step run (the session fixture)."""
    out = tmp_path / "run"
    first = train_video(out, "tiny", max_steps=2, progress=False)
    assert first.resumed_from == 0 and len(first.losses) == 2
    second = train_video(out, "tiny", max_steps=4, progress=False)
    assert second.resumed_from == 2 and len(second.losses) == 2
    a, b = load_tensors(out / "model.safetensors"), load_tensors(tiny_checkpoint / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    record = json.loads((out / "training.json").read_text())
    assert record["steps"] == 4 and record["resumed_from"] == 2 and record["preset"] == "tiny"
    assert record["latent_scale"] > 0 and "train_video" in record["command"]
    gen = VideoGenerator.from_pretrained(out)
    assert gen.latent is not None and gen(num_inference_steps=1).frames.shape == (4, 16, 16, 1)


def test_pixel_preset_trains_without_an_autoencoder(tmp_path):
    train_video(tmp_path / "px", "tiny-pixel", max_steps=1, progress=False)
    assert not (tmp_path / "px" / "autoencoder_training").exists()
    gen = VideoGenerator.from_pretrained(tmp_path / "px")
    assert gen.latent is None and gen.model.autoencoder is None


def test_autoencoder_training_records_its_quality(tmp_path):
    result = train_video_autoencoder(tmp_path / "ae", "tiny", progress=False)
    assert len(result.losses) == 4
    record = json.loads((tmp_path / "ae" / "training.json").read_text())
    assert 0 < record["held_out_psnr_db"] < 100
    ae = load_autoencoder(tmp_path / "ae")
    assert ae.encode(torch.zeros(1, 1, 16, 16)).latent_dist.mode().shape == (1, 2, 8, 8)
    again = train_video_autoencoder(tmp_path / "ae", "tiny", progress=False)  # complete: runs nothing, keeps the record
    assert again.resumed_from == 4 and json.loads((tmp_path / "ae" / "training.json").read_text()) == record


def test_video_classifier_training(tmp_path):
    train_video_classifier(tmp_path / "clf", "tiny", progress=False)
    record = json.loads((tmp_path / "clf" / "training.json").read_text())
    assert 0 <= record["digit_accuracy_one_digit"] <= 1 and 0 <= record["motion_accuracy"] <= 1
    metrics = json.loads((tmp_path / "clf" / "metrics.json").read_text())
    assert metrics["motion_accuracy"] == record["motion_accuracy"] and metrics["n_held_out"] == 512
    digits, motion = load_video_classifier(tmp_path / "clf")(torch.zeros(2, 1, 4, 16, 16))
    assert digits.shape == (2, 10) and motion.shape == (2, 10)


def test_unknown_preset_lists_the_presets(tmp_path):
    with pytest.raises(ValueError, match="tiny"):
        train_video(tmp_path, "huge")

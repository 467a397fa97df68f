"""Training: the tiny preset end to end, exact resume, the autoencoder and the video classifier."""
import json
from dataclasses import replace

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
    assert 0 <= record["recognizer_accuracy"] <= 1 and (out / "recognizer_training" / "training.json").is_file()
    gen = VideoGenerator.from_pretrained(out)
    assert gen.latent is not None and gen(num_inference_steps=1).frames.shape == (4, 16, 16, 1)


def test_staged_preset_starts_from_its_first_stage(tmp_path):
    """tiny-staged trains tiny in init_training, copies its weights and adds the first-frame encoder."""
    out = tmp_path / "staged"
    result = train_video(out, "tiny-staged", progress=False)
    assert result.resumed_from == 0 and len(result.losses) == 2
    first = VideoGenerator.from_pretrained(out / "init_training").model
    record = json.loads((out / "training.json").read_text())
    assert record["init_preset"] == "tiny" and record["init_steps"] == 4 and record["init_new_modules"] == ["frame_encoder"]
    assert record["latent_scale"] == first.config.latent_scale
    gen = VideoGenerator.from_pretrained(out)
    assert gen.model.frame_encoder is not None and first.frame_encoder is None
    ae_a, ae_b = gen.model.autoencoder.state_dict(), first.autoencoder.state_dict()
    assert all(torch.allclose(ae_a[k].float(), ae_b[k].float()) for k in ae_a)  # the frozen autoencoder is stage 1's
    frame = torch.full((16, 16), 200, dtype=torch.uint8).numpy()
    assert gen(image=frame, num_inference_steps=1).frames.shape == (4, 16, 16, 1)
    again = train_video(out, "tiny-staged", progress=False)  # both stages done: nothing runs
    assert again.resumed_from == 2 and not again.losses


def test_a_finished_run_gains_the_recognizer_its_preset_now_has(tmp_path, monkeypatch):
    """A run published before its preset had a recognizer: resumed with no step left, it trains the
    recognizer and republishes the same denoiser weights with it, keeping the denoiser's record inside."""
    from generators.video import presets

    out = tmp_path / "run"
    monkeypatch.setitem(presets.PRESETS, "tiny", replace(presets.PRESETS["tiny"], recognizer=False))
    train_video(out, "tiny", progress=False)
    before = load_tensors(out / "model.safetensors")
    assert json.loads((out / "config.json").read_text()).get("recognizer_config") is None
    monkeypatch.undo()
    again = train_video(out, "tiny", progress=False, command="again")
    assert not again.losses
    after = load_tensors(out / "model.safetensors")
    assert all(torch.equal(after[k], v) for k, v in before.items())
    assert any(k.startswith("recognizer.") for k in after)
    record = json.loads((out / "training.json").read_text())
    assert record["command"] == "again" and record["denoiser_record"]["steps"] == 4
    assert 0 <= record["recognizer_accuracy_one_digit"] <= 1
    assert VideoGenerator.from_pretrained(out).model.recognizer is not None


def test_init_weights_must_fit(tmp_path):
    from generators.video.presets import get_preset
    from generators.core.training import load_init_weights
    from generators.video.train import build_model
    small, wide = build_model(get_preset("tiny-pixel")), build_model(replace(get_preset("tiny-pixel"), cond_dim=32))
    with pytest.raises(ValueError, match="does not fit"):
        load_init_weights(small, wide)
    staged = build_model(replace(get_preset("tiny-pixel"), first_frame_tokens=True, first_frame_patch=4,
                                 first_frame_concat=True))
    assert {k.split(".")[0] for k in load_init_weights(staged, small)} == {"frame_encoder"}
    # conv_in gained the concatenated first frame's channels: the old ones copied, the new ones zero
    old = small.conv_in.weight.shape[1]
    assert staged.conv_in.weight.shape[1] == old + 1
    assert torch.equal(staged.conv_in.weight[:, :old], small.conv_in.weight)
    assert not staged.conv_in.weight[:, old:].any()


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

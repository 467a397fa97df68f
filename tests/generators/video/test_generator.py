"""VideoGenerator: every sampler, conditions, image-to-video, long clips, interpolation, folders, bad input."""
import json
import logging

import numpy as np
import torch
import pytest

from generators.core.checkpoint import CheckpointError
from generators.core.sampling import SAMPLERS
from generators.video import VideoGenerator, VideoOutput
from generators.video.model import SpatioTemporalUNet


def test_call_gives_uint8_clips(tiny_gen):
    out = tiny_gen(prompt="the digit 3 moves to the right", num_inference_steps=2, seed=0)
    assert isinstance(out, VideoOutput)
    assert out.frames.shape == (4, 16, 16, 1) and out.frames.dtype == np.uint8
    assert out.fps == tiny_gen.clip.fps and out.prompts == ["the digit 3 moves to the right"]
    again = tiny_gen(prompt="the digit 3 moves to the right", num_inference_steps=2, seed=0)
    other = tiny_gen(prompt="the digit 3 moves to the right", num_inference_steps=2, seed=1)
    assert np.array_equal(out.frames, again.frames) and not np.array_equal(out.frames, other.frames)
    batch = tiny_gen(prompt=["a two moving up", "digit 5 goes down"], labels=[2, 5], motion=1.5, num_inference_steps=2)
    assert batch.frames.shape == (2, 4, 16, 16, 1)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_runs_on_video_tensors(tiny_gen, pixel_gen, sampler):
    for gen in (tiny_gen, pixel_gen):
        out = gen(prompt="a two moving up", num_inference_steps=2, sampler=sampler, guidance_scale=2.0, seed=0)
        assert out.frames.shape == (4, 16, 16, 1)


def test_image_to_video_keeps_the_given_frame(pixel_gen, tiny_gen):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    out = pixel_gen(image=image, prompt="a two moving up", num_inference_steps=2)
    assert np.abs(out.frames[0, ..., 0].astype(int) - image).max() <= 1
    # another size and channel count is converted, for the latent model too
    rgb = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    assert tiny_gen(image=rgb, num_inference_steps=2).frames.shape == (4, 16, 16, 1)
    pair = pixel_gen(image=[image, image[::-1]], num_inference_steps=2)
    assert np.abs(pair.frames[1, 0, ..., 0].astype(int) - image[::-1]).max() <= 1


def test_image_to_video_without_a_prompt_takes_the_recognized_label(tiny_gen, caplog, monkeypatch):
    """Clips given a first frame but neither prompt nor label take the frozen recognizer's label; a
    prompt or a label of the caller is kept; an unsure recognizer leaves the null label."""
    from generators.video import generator as gmod

    assert tiny_gen.model.recognizer is not None  # the tiny preset trains one
    seen = []
    real = gmod.VideoGenerator._rollout

    def spy(self, req, *args, **kwargs):
        seen.append(req.labels.clone())
        return real(self, req, *args, **kwargs)

    monkeypatch.setattr(gmod.VideoGenerator, "_rollout", spy)
    monkeypatch.setattr(type(tiny_gen.model.recognizer), "labels",
                        lambda self, frame, min_confidence=0.5: (torch.tensor([3, 10][:len(frame)]), torch.tensor([0.9, 0.2][:len(frame)])))
    frame = np.full((16, 16), 200, dtype=np.uint8)
    with caplog.at_level("INFO", logger="generators.video.generator"):
        tiny_gen(image=[frame, frame], num_inference_steps=1)
    assert seen[-1].tolist() == [3, 10] and "reads as the digit 3" in caplog.text and "no single digit" in caplog.text
    tiny_gen(image=[frame, frame], prompt="a two moving up", num_inference_steps=1)
    assert seen[-1].tolist() == [10, 10]  # the prompt carries the digit: no recognized label
    tiny_gen(image=[frame, frame], labels=[5, 6], num_inference_steps=1)
    assert seen[-1].tolist() == [5, 6]
    tiny_gen.extend(np.stack([np.stack([frame] * 4)] * 2)[..., None], 6, num_inference_steps=1)
    assert seen[-1].tolist() == [3, 10]  # extending a clip reads its first frame too


def test_long_clips_are_extended_and_keep_given_frames(pixel_gen, tiny_gen):
    out = tiny_gen(prompt="a two moving up", num_frames=11, num_inference_steps=2)
    assert out.frames.shape == (11, 16, 16, 1)
    short = pixel_gen(prompt="a two moving up", num_inference_steps=2, seed=3)
    longer = pixel_gen.extend(short, 9, prompt="a two moving up", num_inference_steps=2, context_frames=2)
    assert longer.frames.shape == (9, 16, 16, 1)
    assert np.abs(longer.frames[:4].astype(int) - short.frames.astype(int)).max() <= 1


def test_interpolation_doubles_the_frame_rate(pixel_gen):
    clip = pixel_gen(prompt="a two moving up", num_inference_steps=2, num_frames=7, seed=2)
    out = pixel_gen.interpolate(clip, num_inference_steps=2)
    assert out.frames.shape == (13, 16, 16, 1) and out.fps == 2 * clip.fps
    assert np.abs(out.frames[::2].astype(int) - clip.frames.astype(int)).max() <= 1


def test_empty_prompt_is_unconditional_and_logged(tiny_gen, caplog):
    with caplog.at_level(logging.WARNING):
        a = tiny_gen(prompt="", num_inference_steps=2, seed=4)
    assert "unconditional" in caplog.text
    b = tiny_gen(num_inference_steps=2, seed=4)
    assert np.array_equal(a.frames, b.frames)


@pytest.mark.parametrize("kwargs, word", [
    (dict(sampler="nope"), "sampler"),
    (dict(num_inference_steps=0), "num_inference_steps"),
    (dict(guidance_scale=-1.0), "guidance_scale"),
    (dict(seed=-1), "seed"),
    (dict(labels=10), "labels"),
    (dict(labels=[1.5]), "labels"),
    (dict(labels=True), "labels"),
    (dict(motion=99.0), "motion"),
    (dict(prompt=[1]), "prompt"),
    (dict(prompt=["a", "b"], labels=[1, 2, 3]), "batch sizes"),
    (dict(num_frames=0), "num_frames"),
    (dict(context_frames=4), "context_frames"),
    (dict(image=np.zeros((2, 3, 4, 5), np.uint8)), "image"),
    (dict(image=np.full((8, 8), 2.0)), "image"),
])
def test_bad_inputs_name_the_parameter(tiny_gen, kwargs, word):
    with pytest.raises(ValueError, match=word):
        tiny_gen(**{"num_inference_steps": 2, **kwargs})


def test_bad_videos_are_refused(tiny_gen):
    with pytest.raises(ValueError, match="at least 2 frames"):
        tiny_gen.interpolate(np.zeros((1, 16, 16, 1), np.uint8))
    with pytest.raises(ValueError, match="video"):
        tiny_gen.extend(np.zeros((4, 16, 16, 7), np.uint8), 8)
    with pytest.raises(ValueError, match="num_frames"):
        tiny_gen.extend(np.zeros((4, 16, 16, 1), np.uint8), 3)


@pytest.mark.parametrize("which", ["tiny_gen", "pixel_gen"])
def test_save_and_load_round_trip(request, tmp_path, which):
    gen = request.getfixturevalue(which)
    folder = gen.save_pretrained(tmp_path / "ckpt")
    config = json.loads((folder / "config.json").read_text())
    assert (folder / "video.json").is_file() and (config["autoencoder_config"] is not None) == (gen.latent is not None)
    loaded = VideoGenerator.from_pretrained(folder)
    assert (loaded.latent is None) == (gen.latent is None) and loaded.clip == gen.clip
    # the weights are stored in storage_dtype (float16) and load back as float32: the originals, rounded
    stored = VideoGenerator.storage_dtype
    for name, value in gen.model.state_dict().items():
        expected = value.to(stored).to(value.dtype) if value.is_floating_point() else value
        assert torch.equal(loaded.model.state_dict()[name], expected), name
    again = VideoGenerator.from_pretrained(loaded.save_pretrained(tmp_path / "again"))
    kwargs = dict(prompt="the digit 4 moves down", num_inference_steps=2, seed=5)
    assert np.array_equal(loaded(**kwargs).frames, again(**kwargs).frames)


def test_malformed_sidecar_is_a_checkpoint_error(tiny_checkpoint, tmp_path):
    gen = VideoGenerator.from_pretrained(tiny_checkpoint)
    folder = gen.save_pretrained(tmp_path / "bad")
    (folder / "video.json").write_text(json.dumps({"latent": True}))
    with pytest.raises(CheckpointError, match="video.json"):
        VideoGenerator.from_pretrained(folder)


def test_latent_model_needs_its_scale(tiny_gen):
    config = dict(tiny_gen.model.config)
    with pytest.raises(ValueError, match="latent_scale"):
        SpatioTemporalUNet(**{k: v for k, v in config.items() if not k.startswith("_")} | {"latent_scale": None})

"""The video family's flows end to end with the tiny preset: train (resume, reuse, publish) -> generate -> evaluate,
the composed step, and the CLI command functions' bad input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from prefect import flow

from flows.composed import composed_params_model, run_composed
from flows.video import FAMILY
from flows.video.commands import generate_video
from flows.video.flows import evaluate_video_flow, generate_video_flow, train_video_flow
from flows.video.gallery import video_gallery_task
from flows.video.params import GenerateVideoParams, TrainVideoParams, VideoSection
from flows.video.tasks import fingerprint_task


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A tiny model trained through the flow (after a "killed" first run), then published."""
    from generators.video.train import train_video

    root = tmp_path_factory.mktemp("video-flows")
    params = TrainVideoParams(preset="tiny", max_steps=4, checkpoint_every=2, cache_root=str(root / "cache"),
                              publish_dir=str(root / "published"), output_root=str(root / "runs"), eval_steps=2)
    folder = fingerprint_task.fn(params)["folder"]
    train_video(folder, "tiny", max_steps=2, checkpoint_every=2, progress=False)  # killed after step 2
    first = train_video_flow(params)
    second = train_video_flow(params)
    return root, first, second


def test_train_flow_resumes_reuses_and_publishes(published):
    from generators.video import VideoGenerator

    _, first, second = published
    assert first["metrics"]["resumed_from"] == 2 and first["metrics"]["steps"] == 4 and not first["metrics"]["reused"]
    assert second["metrics"]["reused"] and second["metrics"]["train_seconds"] == 0.0
    folder = Path(first["checkpoint"])
    assert not (folder / "training_state").exists() and not (folder / "autoencoder_training").exists()
    assert VideoGenerator.from_pretrained(folder).latent is not None
    assert Path(first["report"]).is_file() and "sample.gif" in Path(first["report"]).read_text()


def test_generate_flow_writes_gif_mp4_and_report(published, tmp_path):
    _, first, _ = published
    frame = tmp_path / "first.png"
    Image.fromarray(np.full((20, 20, 3), 40, np.uint8)).save(frame)
    result = generate_video_flow({"prompt": "the digit 3 moves to the right", "image": str(frame), "frames": 6,
                                  "num_inference_steps": 2, "checkpoint": first["checkpoint"],
                                  "output_root": str(tmp_path)})
    assert sorted(Path(m).suffix for m in result["media"]) == [".gif", ".mp4"]
    assert all(Path(m).stat().st_size > 0 for m in result["media"])
    html = Path(result["report"]).read_text()
    assert "clip.gif" in html and "<video" in html


def test_evaluate_flow(published, tmp_path):
    from generators.video import train_video_classifier

    _, first, _ = published
    train_video_classifier(tmp_path / "clf", "tiny", progress=False)
    result = evaluate_video_flow({"checkpoint": first["checkpoint"], "num_prompts": 3, "num_i2v": 1, "num_long": 1,
                                  "long_frames": 6, "num_inference_steps": 2, "batch_size": 4,
                                  "video_classifier": str(tmp_path / "clf"), "output_root": str(tmp_path)})
    m = result["metrics"]
    assert 0 <= m["digit_accuracy"] <= 1 and 0 <= m["direction_accuracy"] <= 1 and m["fd"] >= 0
    assert Path(result["report"]).is_file()


def test_composed_video_step_uses_the_brief(published, tmp_path):
    _, first, _ = published
    Params = composed_params_model([FAMILY])
    params = Params(output_root=str(tmp_path), video=VideoSection(checkpoint=first["checkpoint"], frames=4,
                                                                  num_inference_steps=2))

    @flow(name="composed-video-test")
    def composed() -> dict:
        return run_composed(params, [FAMILY])

    result = composed()
    assert [s["status"] for s in result["steps"]] == ["ran"]
    html = Path(result["report"]).read_text()
    assert "text2video.gif" in html and "image2video.gif" in html and params.brief.video_prompt in html


def test_gallery_task_logic(published, tmp_path):
    _, first, _ = published
    rows = video_gallery_task.fn(VideoSection(checkpoint=first["checkpoint"], frames=5, num_inference_steps=2,
                                              image_to_video=False), "a two moving up", str(tmp_path), 0)
    assert len(rows) == 1 and rows[0]["kind"] == "gif" and (tmp_path / rows[0]["images"][0][0]).is_file()


def test_generate_command_refuses_bad_output_and_leaves_nothing(published, tmp_path):
    _, first, _ = published
    params = GenerateVideoParams(prompt="a two moving up", frames=4, num_inference_steps=2,
                                 checkpoint=first["checkpoint"])
    with pytest.raises(ValueError, match=r"\.mp4, \.gif"):
        generate_video(params, tmp_path / "clip.avi")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="image file not found"):
        GenerateVideoParams(image=str(tmp_path / "missing.png"))

"""Evaluation: the metric functions on known inputs, and evaluate_video on the tiny model."""
import numpy as np
import pytest
import torch

from evaluation.digits import load_digit_classifier
from evaluation.video import (digit_crops, frame_predictions, horizontal_spread_change, identity_consistency,
                              ink_centroids, per_frame_accuracy, psnr)
from generators.video import evaluate_video, train_video_classifier
from generators.video.captions import CaptionSet
from generators.video.data import ClipSpec, MovingDigits
from generators.video.evaluate import DEFAULT_DIGIT_CLASSIFIER


def test_centroids_and_crops_of_a_known_blob():
    v = -torch.ones(1, 2, 16, 16)
    v[0, 0, 4:6, 2:4] = 1
    v[0, 1, 10:12, 8:10] = 1
    c = ink_centroids(v)
    assert torch.allclose(c[0, 0], torch.tensor([2.5, 4.5])) and torch.allclose(c[0, 1], torch.tensor([8.5, 10.5]))
    crops = digit_crops(v, 4)
    assert torch.allclose(crops[0, 0], crops[0, 1]) and crops[0, 0, 0, 1:3, 1:3].min() > 0.999


def test_digit_classifier_reads_real_clips():
    """The per-frame metric's ceiling: held-out real clips are read correctly."""
    spec = ClipSpec(two_digit_prob=0.0)
    real = MovingDigits(spec, CaptionSet(spec.directions, False), "test").sample(torch.Generator().manual_seed(0), 12)
    preds = frame_predictions(load_digit_classifier(DEFAULT_DIGIT_CLASSIFIER), real.clips[:, 0], spec.digit_size)
    assert per_frame_accuracy(preds, real.labels.numpy()) > 0.9
    assert identity_consistency(preds) > 0.9


def test_small_metrics():
    assert per_frame_accuracy(np.array([[1, 1, 2]]), np.array([1])) == pytest.approx(2 / 3)
    assert identity_consistency(np.array([[3, 3, 3, 5], [1, 2, 2, 2]])) == 0.75
    x = torch.rand(2, 1, 4, 4) * 2 - 1
    assert psnr(x, x)[0] > 90 and psnr(x, -x)[0] < 10
    apart = -torch.ones(1, 3, 8, 16)
    apart[0, 0, :, 6:10] = 1
    apart[0, 2, :, [0, 1, 14, 15]] = 1
    assert horizontal_spread_change(apart, 2)[0] > 0
    with pytest.raises(ValueError, match="videos"):
        ink_centroids(torch.zeros(2, 3, 4))


def test_evaluate_video_on_the_tiny_model(tiny_gen, tmp_path):
    train_video_classifier(tmp_path / "clf", "tiny", progress=False)
    m = evaluate_video(tiny_gen, num_prompts=4, steps=2, num_i2v=2, num_long=1, long_frames=6, batch_size=4,
                       video_classifier=tmp_path / "clf")
    for key in ("digit_accuracy", "digit_accuracy_real", "direction_accuracy", "identity_consistency",
                "i2v_digit_accuracy", "long_identity"):
        assert 0.0 <= m[key] <= 1.0, key
    assert m["fd"] >= 0 and m["fd_real_baseline"] >= 0 and m["i2v_psnr_frame0"] > 0
    assert m["seconds_per_clip"] > 0 and m["latent"] is True and m["long_frames"] == 6

"""The evaluation pipeline: metrics for generated digits, and that they tell real from junk."""
from pathlib import Path

import pytest
import torch

from evaluation.digits import load_digit_classifier
from generators.image.data import load_digits_split
from generators.image.evaluate import digit_metrics, evaluate_image_generator

CLASSIFIER = Path(__file__).resolve().parents[3] / "data" / "checkpoints" / "digit-classifier"


@pytest.fixture(scope="module")
def classifier():
    return load_digit_classifier(CLASSIFIER)


def test_real_digits_score_like_real_and_noise_does_not(classifier):
    test = load_digits_split("test", 16)
    real = digit_metrics(test.images[:200], test.labels[:200], classifier, cas_epochs=3)
    assert real["accuracy"] > 0.97
    noise = digit_metrics(torch.rand(200, 1, 16, 16) * 2 - 1, test.labels[:200], classifier, cas_epochs=3)
    assert noise["accuracy"] < 0.3
    assert noise["fd"] > 5 * real["fd"]
    assert noise["cas"] < 0.3 < real["cas"]


def test_evaluate_generator_reports_every_metric(tiny_gen):
    m = evaluate_image_generator(tiny_gen, per_class=2, sampler="ddim", steps=3, cas_epochs=1, classifier_path=CLASSIFIER)
    for key in ("accuracy", "fd", "fd_real_baseline", "fd_ratio_to_baseline", "cas", "cas_real_baseline", "seconds_per_image"):
        assert key in m
    assert m["n_generated"] == 20 and 0.0 <= m["accuracy"] <= 1.0

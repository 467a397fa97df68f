"""Train the evaluation digit classifier (``mmdiff train digit-classifier``) on the digits train split.

The network and its metrics live in :mod:`evaluation.digits` (they work on arrays); the training
data is the image family's, so the training lives here.
"""
from __future__ import annotations

from pathlib import Path

from evaluation.digits import INPUT_SIZE, fit_classifier, predict
from generators.core.checkpoint import save_model

from .data import load_digits_split


def train_digit_classifier(output_dir: str | Path, epochs: int = 30, seed: int = 0) -> dict:
    """Train on the digits train split, save a checkpoint folder, return the held-out accuracy."""
    train, test = load_digits_split("train", INPUT_SIZE), load_digits_split("test", INPUT_SIZE)
    model = fit_classifier(train.images, train.labels, epochs=epochs, seed=seed)
    acc = float((predict(model, test.images) == test.labels.numpy()).mean())
    save_model(output_dir, model)
    return {"held_out_accuracy": acc, "n_train": len(train.labels), "n_test": len(test.labels)}

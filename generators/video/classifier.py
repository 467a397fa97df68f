"""Train the moving-digits video classifier whose features give the FVD-style distance (``evaluation.video``).

The classifier (``evaluation.video.VideoClassifier``) learns which digits a clip shows (multi-label,
binary cross-entropy) and its motion class (eight directions, or apart / together for two digits;
cross-entropy) from train-split clips rendered on the fly; its penultimate features then serve the
Frechet distance, as the I3D features do for FVD (Unterthiner et al. 2018).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from evaluation.video import VideoClassifier, load_video_classifier
from generators.core.checkpoint import atomic_write_json, save_model
from generators.core.training import (GeneratedBatches, TrainConfig, TrainResult, needs_train_record, seeded, train,
                                     write_train_record)

from .captions import DIRECTIONS, RELATIONS, CaptionSet
from .data import ClipBatch, MovingDigits
from .presets import get_preset

NUM_MOTIONS = len(DIRECTIONS) + len(RELATIONS)
HELD_OUT_CLIPS = 512  # clips of the test-split digits for the classifier's held-out accuracy


@dataclass(frozen=True)
class ClassifierPreset:
    """Width and training budget of the video classifier."""

    width: int
    feature_dim: int
    max_steps: int
    batch_size: int
    learning_rate: float
    checkpoint_every: int


CLASSIFIER_PRESETS: dict[str, ClassifierPreset] = {
    "tiny": ClassifierPreset(4, 16, max_steps=4, batch_size=4, learning_rate=2e-3, checkpoint_every=2),
    # 64 features: fewer than the ~125 clips an evaluation compares, so the covariances are full rank
    "small": ClassifierPreset(16, 64, max_steps=1500, batch_size=32, learning_rate=2e-3, checkpoint_every=250),
}


def clip_targets(batch: ClipBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 10) multi-hot digits shown and (B,) motion class of a rendered batch."""
    digits = torch.zeros(len(batch.digits), 10)
    for j in range(batch.digits.shape[1]):
        present = batch.digits[:, j] >= 0
        digits[present, batch.digits[present, j]] = 1.0
    return digits, batch.directions


def classifier_loss(model: VideoClassifier, clips: torch.Tensor, digits: torch.Tensor, motion: torch.Tensor,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Binary cross-entropy of each digit (shown or not) plus cross-entropy of the motion class."""
    digit_logits, motion_logits = model(clips)
    # summed over the ten digits (a mean over them would scale the identity signal down tenfold)
    bce = F.binary_cross_entropy_with_logits(digit_logits.float(), digits.float(), reduction="none").sum(1).mean()
    return bce + F.cross_entropy(motion_logits.float(), motion)


@torch.no_grad()
def held_out_accuracy(model: VideoClassifier, clips: MovingDigits, n: int = HELD_OUT_CLIPS, seed: int = 0) -> dict[str, float]:
    """Digit accuracy on one-digit clips and motion-class accuracy, on held-out clips."""
    batch = clips.sample(torch.Generator().manual_seed(seed), n)
    digit_logits, motion_logits = model(batch.clips)
    single = batch.labels >= 0
    return {"digit_accuracy_one_digit": float((digit_logits[single].argmax(1) == batch.labels[single]).float().mean()),
            "motion_accuracy": float((motion_logits.argmax(1) == batch.directions).float().mean())}


def train_video_classifier(
    output_dir: str | os.PathLike,
    preset: str = "small",
    max_steps: int | None = None,
    seed: int = 0,
    mixed_precision: str = "no",
    checkpoint_every: int | None = None,
    device: str | None = None,
    command: str = "",
    progress: bool = True,
) -> TrainResult:
    """Train the classifier on clips of video preset ``preset`` (resumable); ``training.json`` has held-out accuracy."""
    clip = get_preset(preset).clip
    cp = CLASSIFIER_PRESETS["tiny" if preset.startswith("tiny") else "small"]
    captions = CaptionSet(clip.directions, clip.two_digit_prob > 0)
    train_clips = MovingDigits(clip, captions, "train")

    def batches(g: torch.Generator, n: int) -> tuple[torch.Tensor, ...]:
        batch = train_clips.sample(g, n)
        return (batch.clips, *clip_targets(batch))

    with seeded(seed):
        model = VideoClassifier(num_motions=NUM_MOTIONS, width=cp.width, feature_dim=cp.feature_dim,
                                crop_size=clip.digit_size)
    steps = max_steps or cp.max_steps
    config = TrainConfig(max_steps=steps, batch_size=cp.batch_size, learning_rate=cp.learning_rate,
                         warmup_steps=min(100, max(1, steps // 10)), ema_decay=0.99, mixed_precision=mixed_precision,
                         checkpoint_every=checkpoint_every or cp.checkpoint_every, seed=seed, cpu=device == "cpu")
    output_dir = Path(output_dir)
    result = train(model, classifier_loss, GeneratedBatches(batches), config, output_dir,
                   on_checkpoint=lambda step, inner, ema: save_model(output_dir, inner, ema), progress=progress)
    if needs_train_record(result, output_dir):
        command = command or f"train_video_classifier({str(output_dir)!r}, preset={preset!r})"
        scores = write_classifier_metrics(output_dir, preset, seed, command)
        write_train_record(output_dir, command, config, result, {
            "preset": preset, "classifier": asdict(cp), **scores,
            "dataset": "moving digits: train-split digits; held-out split for accuracy"})
    return result


def write_classifier_metrics(folder: str | os.PathLike, preset: str = "small", seed: int = 0,
                             command: str = "", n: int = HELD_OUT_CLIPS) -> dict[str, float]:
    """Held-out accuracy of the classifier in ``folder`` (``n`` clips of the test-split digits), kept
    in its ``metrics.json`` like every shipped checkpoint's evaluation."""
    clip = get_preset(preset).clip
    clips = MovingDigits(clip, CaptionSet(clip.directions, clip.two_digit_prob > 0), "test")
    scores = held_out_accuracy(load_video_classifier(folder), clips, n=n, seed=seed)
    atomic_write_json(Path(folder) / "metrics.json", {"command": command, "preset": preset, "n_held_out": n,
                                                      "seed": seed, **scores})
    return scores

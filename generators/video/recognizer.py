"""Train the first-frame recognizer (``conditioning.image.FrameRecognizer``) on moving-digit frames.

Image-to-video without a prompt takes its label condition from this frozen recognizer: the denoiser
keeps a digit's identity through its text or label condition, and reading the identity from the given
frame alone (the concatenated known frame, or first-frame tokens) was not learned at the CPU budget
(see the video README). Frames of train-split clips at random times; one-digit clips are labelled
with their digit, two-digit clips with "none". Held-out accuracy on test-split digits goes in
``training.json``.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

from conditioning.image import FrameRecognizer
from generators.core.checkpoint import load_model, save_model
from generators.core.training import (GeneratedBatches, TrainConfig, TrainResult, needs_train_record, seeded, train,
                                     write_train_record)

from .captions import CaptionSet
from .data import MovingDigits
from .presets import get_preset

HELD_OUT_FRAMES = 1024


def frame_batch(clips: MovingDigits, generator: torch.Generator, n: int, num_classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 1, H, W) frames at random times of rendered clips and (n,) labels (``num_classes``: two digits)."""
    batch = clips.sample(generator, n)
    t = torch.randint(batch.clips.shape[2], (n,), generator=generator)
    frames = batch.clips[torch.arange(n), :, t]  # (n, C, H, W)
    return frames, torch.where(batch.labels >= 0, batch.labels, torch.full_like(batch.labels, num_classes))


def recognizer_loss(model: FrameRecognizer, frames: torch.Tensor, labels: torch.Tensor,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    return F.cross_entropy(model(frames).float(), labels)


@torch.no_grad()
def held_out_accuracy(model: FrameRecognizer, clips: MovingDigits, n: int = HELD_OUT_FRAMES, seed: int = 0) -> dict:
    """Accuracy on frames of test-split clips: all, one-digit, and the share of one-digit frames given a label."""
    frames, labels = frame_batch(clips, torch.Generator().manual_seed(seed), n, int(model.config.num_classes))
    pred = model(frames).argmax(-1)
    chosen, _ = model.labels(frames)
    one = labels < int(model.config.num_classes)
    return {"recognizer_accuracy": float((pred == labels).float().mean()),
            "recognizer_accuracy_one_digit": float((pred[one] == labels[one]).float().mean()),
            "recognizer_confident_correct_one_digit": float((chosen[one] == labels[one]).float().mean()),
            "recognizer_n_held_out": n}


def train_recognizer(output_dir: str | os.PathLike, preset: str = "small", seed: int = 0, mixed_precision: str = "no",
                     device: str | None = None, command: str = "", progress: bool = True) -> TrainResult:
    """Train (or resume) the recognizer of video preset ``preset`` in ``output_dir`` (resumable, EMA, seeded)."""
    p = get_preset(preset)
    r = p.recognizer_budget
    clip = p.clip
    captions = CaptionSet(clip.directions, clip.two_digit_prob > 0)
    train_clips = MovingDigits(clip, captions, "train")
    with seeded(seed):
        model = FrameRecognizer(channels=1, num_classes=10, width=r.width)
    config = TrainConfig(max_steps=r.max_steps, batch_size=r.batch_size, learning_rate=r.learning_rate,
                         warmup_steps=min(100, max(1, r.max_steps // 10)), ema_decay=0.99,
                         mixed_precision=mixed_precision, checkpoint_every=r.checkpoint_every, seed=seed,
                         cpu=device == "cpu")
    output_dir = Path(output_dir)
    result = train(model, recognizer_loss, GeneratedBatches(lambda g, n: frame_batch(train_clips, g, n)), config,
                   output_dir, on_checkpoint=lambda step, inner, ema: save_model(output_dir, inner, ema),
                   progress=progress)
    if needs_train_record(result, output_dir):
        scores = held_out_accuracy(load_recognizer(output_dir), MovingDigits(clip, captions, "test"), seed=seed)
        write_train_record(output_dir, command or f"train_recognizer({str(output_dir)!r}, preset={preset!r})", config,
                           result, {"preset": preset, **scores,
                                    "dataset": "frames of moving-digit clips: train-split digits; test split held out"})
    return result


def load_recognizer(folder: str | os.PathLike) -> FrameRecognizer:
    """The recognizer in ``folder`` (EMA weights), frozen and in eval mode."""
    return load_model(folder, FrameRecognizer).requires_grad_(False).eval()

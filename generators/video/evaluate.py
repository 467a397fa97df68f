"""Evaluate a video model on held-out phrasings and held-out digits (``evaluate_video``).

Metrics (all from ``evaluation.video``, on clips the model makes at a fixed sampler and step count):
- ``digit_accuracy``: per-frame accuracy of the prompted digit (one-digit prompts, held-out phrasings),
  by the project's digit classifier on a crop around the digit; ``digit_accuracy_real`` is the same
  measurement on held-out real clips (the classifier's ceiling here);
- ``direction_accuracy``: the centroid's move over the first half of the clip against the prompt's
  direction (eight compass directions); ``relation_accuracy``: two-digit prompts, apart vs together
  from the change of the ink's horizontal spread;
- ``identity_consistency``: frames predicted as the clip's most frequent digit;
- ``fd`` (FVD-style, in the features of the project's video classifier; not comparable with published
  FVD) against held-out real clips, beside ``fd_real_baseline`` (train-split real clips vs held-out);
- image-to-video from held-out first frames without a prompt: ``i2v_psnr_frame0`` (dB) and
  ``i2v_digit_accuracy`` (the given digit continued);
- long clips (``long_frames`` frames, extended autoregressively): ``long_identity``, the share of frames
  showing the prompted digit.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from evaluation.digits import load_digit_classifier
from evaluation.video import (frame_predictions, horizontal_spread_change, identity_consistency, load_video_classifier,
                              motion_directions, per_frame_accuracy, psnr, video_frechet_distance)
from generators.core.sampling import SamplerOptions

from .captions import DIRECTIONS, CaptionSet, eval_prompts
from .data import MovingDigits, from_uint8
from .generator import VideoGenerator

CHECKPOINTS = Path(__file__).resolve().parents[2] / "data" / "checkpoints"
DEFAULT_DIGIT_CLASSIFIER = CHECKPOINTS / "digit-classifier"
DEFAULT_VIDEO_CLASSIFIER = CHECKPOINTS / "video-classifier"


def _generate(gen: VideoGenerator, batch_size: int, **kwargs) -> torch.Tensor:
    """Clips (N, T, H, W) in [-1, 1] for the lists in ``kwargs`` (prompt / image), ``batch_size`` per call."""
    key = "prompt" if "prompt" in kwargs else "image"
    items, rest = kwargs.pop(key), kwargs
    seed = rest.pop("seed")
    out = []
    for i in range(0, len(items), batch_size):
        videos = gen(**{key: items[i:i + batch_size]}, seed=seed + i, **rest).videos
        out.append(from_uint8(videos)[:, 0])
    return torch.cat(out)


def evaluate_video(
    generator: VideoGenerator | str | os.PathLike,
    num_prompts: int = 100,
    sampler: str = "dpmsolver++",
    steps: int = 25,
    guidance_scale: float = 4.0,
    seed: int = 0,
    num_i2v: int = 20,
    num_long: int = 10,
    long_frames: int = 64,
    batch_size: int = 16,
    digit_classifier: str | os.PathLike = DEFAULT_DIGIT_CLASSIFIER,
    video_classifier: str | os.PathLike = DEFAULT_VIDEO_CLASSIFIER,
    options: SamplerOptions = SamplerOptions(),
) -> dict:
    """Generate held-out-prompt, image-to-video and long clips and measure them (see the module docstring)."""
    gen = generator if isinstance(generator, VideoGenerator) else VideoGenerator.from_pretrained(generator)
    spec = gen.clip
    classifier = load_digit_classifier(digit_classifier)
    fvd_model = load_video_classifier(video_classifier)
    common = dict(num_inference_steps=steps, sampler=sampler, guidance_scale=guidance_scale, options=options)
    singles = eval_prompts(num_prompts, spec.directions, seed=seed)
    pairs = eval_prompts(max(2, num_prompts // 4), spec.directions, True, seed) if spec.two_digit_prob > 0 else []
    t0 = time.perf_counter()
    clips = _generate(gen, batch_size, prompt=[p.prompt for p in singles + pairs], seed=seed, **common)
    seconds = (time.perf_counter() - t0) / len(clips)
    one, two = clips[:len(singles)], clips[len(singles):]
    digits = np.array([p.digits[0] for p in singles])
    preds = frame_predictions(classifier, one, spec.digit_size)
    names = list(DIRECTIONS)
    moved = motion_directions(one, np.array([DIRECTIONS[n] for n in names]), spec.half)
    real = MovingDigits(spec, CaptionSet(spec.directions, spec.two_digit_prob > 0), "test").sample(
        torch.Generator().manual_seed(seed), len(clips))
    real_train = MovingDigits(spec, CaptionSet(spec.directions, spec.two_digit_prob > 0), "train").sample(
        torch.Generator().manual_seed(seed + 1), len(clips))
    real_one = real.clips[:, 0][real.labels >= 0]
    metrics = {
        "digit_accuracy": per_frame_accuracy(preds, digits),
        "digit_accuracy_real": per_frame_accuracy(frame_predictions(classifier, real_one, spec.digit_size),
                                                  real.labels[real.labels >= 0].numpy()),
        "direction_accuracy": float((moved == np.array([p.direction for p in singles])).mean()),
        "identity_consistency": identity_consistency(preds),
        "fd": video_frechet_distance(fvd_model, clips, real.clips[:, 0]),
        "fd_real_baseline": video_frechet_distance(fvd_model, real_train.clips[:, 0], real.clips[:, 0]),
        "seconds_per_clip": seconds,
    }
    if pairs:
        apart = horizontal_spread_change(two, spec.half) > 0
        want = np.array([p.direction == len(DIRECTIONS) for p in pairs])
        metrics["relation_accuracy"] = float((apart == want).mean())
    metrics.update(_image_to_video(gen, classifier, real, num_i2v, batch_size, seed, common))
    metrics.update(_long_clips(gen, classifier, singles[:num_long], long_frames, batch_size, seed, common))
    metrics.update({"sampler": sampler, "steps": steps, "guidance_scale": guidance_scale, "seed": seed,
                    "num_prompts": len(singles), "num_pair_prompts": len(pairs), "latent": gen.latent is not None})
    return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in metrics.items()}


def _image_to_video(gen: VideoGenerator, classifier, real, n: int, batch_size: int, seed: int, common: dict) -> dict:
    """Image-to-video from held-out one-digit first frames, no prompt: PSNR of frame 0 and the digit continued."""
    one = (real.labels >= 0).nonzero()[:, 0][:n]
    if len(one) == 0:
        return {}
    first = real.clips[one, 0, 0]  # (n, H, W)
    images = [((f.numpy() + 1) * 127.5).round().astype(np.uint8) for f in first]
    clips = _generate(gen, batch_size, image=images, seed=seed, **common)
    preds = frame_predictions(classifier, clips, gen.clip.digit_size)
    return {"i2v_psnr_frame0": float(np.mean(psnr(clips[:, 0], first))),
            "i2v_digit_accuracy": per_frame_accuracy(preds, real.labels[one].numpy())}


def _long_clips(gen: VideoGenerator, classifier, prompts: list, frames: int, batch_size: int, seed: int,
                common: dict) -> dict:
    """Clips of ``frames`` frames (autoregressive extension) for one-digit prompts: the prompted digit's share of frames."""
    if not prompts or frames <= 0:
        return {}
    clips = _generate(gen, batch_size, prompt=[p.prompt for p in prompts], seed=seed, num_frames=frames, **common)
    preds = frame_predictions(classifier, clips, gen.clip.digit_size)
    return {"long_identity": per_frame_accuracy(preds, np.array([p.digits[0] for p in prompts])),
            "long_frames": frames}

"""Evaluate the digits generator against held-out real digits (``mmdiff evaluate image``).

Metrics, all in the feature space of the project's digit classifier:
- ``accuracy``: fraction of generated digits the classifier assigns to their requested label;
- ``fd`` (Frechet distance) generated vs held-out real, beside ``fd_real_baseline``, train-split
  real vs held-out real with the same number of samples;
- ``cas``: classification accuracy score (Ravuri & Vinyals 2019), a classifier trained only on
  generated digits, tested on held-out real ones; beside ``cas_real_baseline`` trained on real
  train digits of the same count.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from evaluation.digits import DigitClassifier, features, fit_classifier, load_digit_classifier, predict
from evaluation.metrics import accuracy, frechet_distance
from generators.core.sampling import SamplerOptions

from .data import from_uint8, load_digits_split
from .generator import DEFAULT_GUIDANCE_INTERVAL, ImageGenerator

DEFAULT_CLASSIFIER = Path(__file__).resolve().parents[2] / "data" / "checkpoints" / "digit-classifier"


def generate_balanced(gen: ImageGenerator, per_class: int, sampler: str, steps: int, guidance_scale: float,
                      seed: int, batch_size: int = 250, options: SamplerOptions = SamplerOptions(),
                      guidance_interval: tuple[float, float] | None = DEFAULT_GUIDANCE_INTERVAL) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` images of each label, as (N, 1, S, S) in [-1, 1] and labels (N,)."""
    labels = torch.arange(gen.num_classes).repeat_interleave(per_class)
    out = []
    for i in tqdm(range(0, len(labels), batch_size), desc=f"generate {sampler}-{steps}", leave=False):
        chunk = labels[i:i + batch_size]
        res = gen(chunk, num_inference_steps=steps, sampler=sampler, guidance_scale=guidance_scale,
                  seed=seed + i, options=options, guidance_interval=guidance_interval)
        out.append(from_uint8(res.images))
    return torch.cat(out), labels


def digit_metrics(images: torch.Tensor, labels: torch.Tensor, classifier: DigitClassifier,
                  cas_epochs: int = 15, seed: int = 0) -> dict[str, float]:
    """Accuracy, FD with its real-vs-real baseline, and CAS with its real baseline for given images."""
    train = load_digits_split("train", 16)
    test = load_digits_split("test", 16)
    n = len(images)
    g = torch.Generator().manual_seed(seed)
    real_idx = torch.randperm(len(train.labels), generator=g)[: min(n, len(train.labels))]
    f_test = features(classifier, test.images)
    f_gen = features(classifier, images)
    f_real = features(classifier, train.images[real_idx])
    cas_model = fit_classifier(images, labels, epochs=cas_epochs, seed=seed)
    real_model = fit_classifier(train.images[real_idx], train.labels[real_idx], epochs=cas_epochs, seed=seed)
    return {
        "accuracy": accuracy(predict(classifier, images), labels.numpy()),
        "fd": frechet_distance(f_gen, f_test),
        "fd_real_baseline": frechet_distance(f_real, f_test),
        "cas": accuracy(predict(cas_model, test.images), test.labels.numpy()),
        "cas_real_baseline": accuracy(predict(real_model, test.images), test.labels.numpy()),
        "n_generated": n,
        "n_held_out": len(test.labels),
    }


def evaluate_image_generator(gen: ImageGenerator, per_class: int = 100, sampler: str = "dpmsolver++",
                             steps: int = 25, guidance_scale: float = 3.0, seed: int = 0,
                             classifier_path: str | Path = DEFAULT_CLASSIFIER, cas_epochs: int = 15,
                             options: SamplerOptions = SamplerOptions(),
                             guidance_interval: tuple[float, float] | None = DEFAULT_GUIDANCE_INTERVAL) -> dict:
    """Generate ``per_class`` digits per label and measure them against the held-out split."""
    classifier = load_digit_classifier(classifier_path)
    t0 = time.perf_counter()
    images, labels = generate_balanced(gen, per_class, sampler, steps, guidance_scale, seed, options=options,
                                       guidance_interval=guidance_interval)
    seconds = time.perf_counter() - t0
    metrics = digit_metrics(images, labels, classifier, cas_epochs=cas_epochs, seed=seed)
    metrics.update({
        "sampler": sampler, "steps": steps, "guidance_scale": guidance_scale, "seed": seed,
        "guidance_interval": list(guidance_interval) if guidance_interval else None,
        "seconds_per_image": seconds / len(images),
        "fd_ratio_to_baseline": metrics["fd"] / max(metrics["fd_real_baseline"], 1e-12),
    })
    return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in metrics.items()}

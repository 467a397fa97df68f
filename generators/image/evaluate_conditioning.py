"""Evaluate text-to-image digits and the edge-map ControlNet against their baselines.

- Text-to-image: prompts in held-out phrasings (``captions.EVAL_TEMPLATES``) naming a digit and
  attribute bins; digit accuracy by the project's digit classifier, attribute accuracy by
  re-measuring the generated pixels (tertile bin and side of the class median). Baseline: the
  class-conditional model given only the digit, whose attribute scores show the chance level.
- ControlNet: edge maps of held-out test digits; F1 between the output's edges and the input
  map (exact and 1-pixel tolerance), beside the base without control (null label, and true label).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from evaluation.digits import features, load_digit_classifier, predict
from evaluation.metrics import accuracy, frechet_distance

from .captions import TRAIN_TEMPLATES, caption, eval_prompts
from .controlnet import ControlNetImageGenerator, edge_f1, edge_map
from .data import from_uint8, load_digits_split
from .evaluate import DEFAULT_CLASSIFIER
from .generator import DEFAULT_GUIDANCE_INTERVAL, ImageGenerator
from .text2img import TextImageGenerator, attribute_scores


def _batched(fn, items: list, batch_size: int) -> torch.Tensor:
    return torch.cat([fn(items[i:i + batch_size], i) for i in range(0, len(items), batch_size)])


def evaluate_text2img(checkpoint: str | Path, base_checkpoint: str | Path, num_prompts: int = 200, steps: int = 25,
                      guidance_scale: float = 3.0, seed: int = 0, classifier_path: str | Path = DEFAULT_CLASSIFIER,
                      batch_size: int = 100,
                      guidance_interval: tuple[float, float] | None = DEFAULT_GUIDANCE_INTERVAL) -> dict:
    """Digit and attribute accuracy on held-out phrasings; the same on training phrasings and for the label-only base.

    Both models guide only inside ``guidance_interval`` (None: at every noise level).
    """
    gen = TextImageGenerator.from_pretrained(checkpoint)
    base = ImageGenerator.from_pretrained(base_checkpoint)
    classifier = load_digit_classifier(classifier_path)
    items = eval_prompts(num_prompts, seed)
    prompts = [p for p, _, _ in items]
    digits = [d for _, d, _ in items]
    bins = np.array([b for _, _, b in items])
    t0 = time.perf_counter()
    run = lambda chunk, i: from_uint8(gen(chunk, num_inference_steps=steps, guidance_scale=guidance_scale,  # noqa: E731
                                          guidance_interval=guidance_interval, seed=seed + i).images)
    images = _batched(run, prompts, batch_size)
    seconds = time.perf_counter() - t0
    train_prompts = [caption(d, b, TRAIN_TEMPLATES[0]) for d, b in zip(digits, bins)]
    images_train = _batched(run, train_prompts, batch_size)
    base_run = lambda chunk, i: from_uint8(base(chunk, num_inference_steps=steps, guidance_scale=guidance_scale,  # noqa: E731
                                                guidance_interval=guidance_interval, seed=seed + i).images)
    images_base = _batched(base_run, digits, batch_size)
    target = np.asarray(digits)
    size = images.shape[-1]
    train_images = load_digits_split("train", size).images
    real = train_images[torch.randperm(len(train_images), generator=torch.Generator().manual_seed(seed))[:len(images)]]
    f_test = features(classifier, load_digits_split("test", size).images)
    metrics = {
        "fd_heldout_phrasing": frechet_distance(features(classifier, images), f_test),
        "fd_label_only_baseline": frechet_distance(features(classifier, images_base), f_test),
        "fd_real_baseline": frechet_distance(features(classifier, real), f_test),
        "heldout_phrasing": {"digit_accuracy": accuracy(predict(classifier, images), target),
                             **attribute_scores(images, digits, bins)},
        "train_phrasing": {"digit_accuracy": accuracy(predict(classifier, images_train), target),
                           **attribute_scores(images_train, digits, bins)},
        "label_only_baseline": {"digit_accuracy": accuracy(predict(classifier, images_base), target),
                                **attribute_scores(images_base, digits, bins)},
        "num_prompts": num_prompts, "steps": steps, "sampler": "dpmsolver++", "guidance_scale": guidance_scale,
        "seed": seed, "seconds_per_image_heldout": round(seconds / num_prompts, 4),
        "guidance_interval": list(guidance_interval) if guidance_interval else None,
        "example_prompts": prompts[:6],
    }
    return metrics


def evaluate_controlnet(checkpoint: str | Path, num_images: int = 200, steps: int = 25, seed: int = 0,
                        classifier_path: str | Path = DEFAULT_CLASSIFIER, batch_size: int = 100,
                        base_checkpoint: str | Path | None = None) -> dict:
    """Edge F1 of ControlNet outputs vs their input edge maps, beside the base without control.

    ``base_checkpoint`` overrides the base named in the adapter's control.json.
    """
    gen = ControlNetImageGenerator.from_pretrained(checkpoint, base_checkpoint=base_checkpoint)
    classifier = load_digit_classifier(classifier_path)
    test = load_digits_split("test", gen.base.image_size)
    n = min(num_images, len(test.labels))
    edges, labels = edge_map(test.images[:n], gen.edge_threshold), test.labels[:n]
    idx = list(range(n))

    def controlled(chunk, i, with_labels: bool):
        out = gen(edges[chunk[0]:chunk[-1] + 1], labels=labels[chunk[0]:chunk[-1] + 1].tolist() if with_labels else None,
                  num_inference_steps=steps, seed=seed + i)
        return from_uint8(out.images)

    def base_only(chunk, i, with_labels: bool):
        y = labels[chunk[0]:chunk[-1] + 1].tolist()
        out = gen.base(y, num_inference_steps=steps, guidance_scale=3.0 if with_labels else 0.0, seed=seed + i)
        return from_uint8(out.images)

    results = {}
    for name, fn, lab in (("controlnet_edges_only", controlled, False), ("controlnet_edges_and_label", controlled, True),
                          ("baseline_unconditional", base_only, False), ("baseline_label_only", base_only, True)):
        t0 = time.perf_counter()
        images = _batched(lambda c, i: fn(c, i, lab), idx, batch_size)
        out_edges = edge_map(images, gen.edge_threshold)
        results[name] = {"edge_f1": float(edge_f1(out_edges, edges).mean()),
                         "edge_f1_tol1": float(edge_f1(out_edges, edges, tolerance=1).mean()),
                         "digit_accuracy_vs_source": accuracy(predict(classifier, images), labels.numpy()),
                         "seconds_per_image": round((time.perf_counter() - t0) / n, 4)}
    metrics = {**results, "num_images": n, "steps": steps, "sampler": "dpmsolver++", "seed": seed,
               "source": "edge maps of the held-out digits test split"}
    return metrics

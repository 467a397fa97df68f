"""Evaluate super-resolution on the held-out photos and the cascade per stage (``mmdiff evaluate superres``).

``evaluate_superres``: for every held-out photo (a centre crop) and every degradation (bicubic, area), the
input is the crop downsampled by that degradation; the model draws ``num_samples`` samples (by default in
antithetic pairs, and as many iid samples beside). Reported, beside bicubic upsampling of the same input:
PSNR and SSIM of one sample and of the mean of the samples (the posterior-mean estimate; ``_iid`` for the
iid draws), the high-frequency energy ratio of one sample, and the consistency (PSNR of the downsampled
output against the input). ``targets`` checks the issue's bars.

``evaluate_cascade``: Frechet distance (Heusel et al. 2017, eq. 6) per stage between generated images and
real crops at that stage's resolution, in the features of the project's crop classifier, beside the
real-vs-real distance of two independent sets of real crops.
"""
from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from evaluation.metrics import accuracy, frechet_distance
from evaluation.superres import (
    DEGRADATIONS,
    bicubic_upsample,
    check_degradation,
    consistency_psnr,
    crop_features,
    downsample_array,
    fit_crop_classifier,
    hf_energy_ratio,
    load_crop_classifier,
    predict_crops,
    psnr,
    resize_crops,
    ssim,
)
from generators.core.checkpoint import atomic_write_json, read_json, save_model
from generators.core.sampling import SamplerOptions

from .cascade import Cascade
from .data import HELD_OUT, load_photo_uint8, random_crops
from .generator import SuperResolver
from .presets import cascade_preset

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CLASSIFIER = ROOT / "data" / "checkpoints" / "cascade-classifier"
CLASSES_FILE = "classes.json"
# The bars for the shipped x4 model, under each degradation.
TARGET_PSNR_GAIN, TARGET_HF, TARGET_CONSISTENCY = 1.5, (0.8, 1.2), 35.0


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    if size > min(h, w):
        raise ValueError(f"crop={size} is larger than the photo ({h}x{w})")
    top, left = (h - size) // 2, (w - size) // 2
    return image[top:top + size, left:left + size]


def _photo_metrics(sr: SuperResolver, high: np.ndarray, kind: str, num_samples: int, seed: int,
                   antithetic: bool = False, **call) -> dict:
    """Every metric of one photo crop under one degradation.

    With ``antithetic`` the samples come in antithetic pairs and the mean of iid samples (another
    ``num_samples`` draws, seed + 1) is reported beside theirs, as ``psnr_mean_iid`` / ``ssim_mean_iid``.
    """
    s = sr.scale
    low = downsample_array(high, s, kind)
    out = sr(image=low, num_samples=num_samples, degradation=kind, seed=seed, antithetic=antithetic, **call)
    samples = np.stack(out.images).astype(np.float64)
    single, mean = out.images[0], samples.mean(0)
    bicubic = bicubic_upsample(low, s)
    ref = high if high.ndim == 3 else high[..., None]
    metrics = {
        "psnr_single": psnr(single, ref, s), "psnr_mean": psnr(mean, ref, s), "psnr_bicubic": psnr(bicubic, ref, s),
        "ssim_single": ssim(single, ref, s), "ssim_mean": ssim(mean, ref, s), "ssim_bicubic": ssim(bicubic, ref, s),
        "hf_single": hf_energy_ratio(single, ref, s), "hf_bicubic": hf_energy_ratio(bicubic, ref, s),
        "consistency_single": consistency_psnr(single, low, s, kind),
        "consistency_bicubic": consistency_psnr(bicubic, low, s, kind),
    }
    if antithetic and num_samples > 1:
        iid = sr(image=low, num_samples=num_samples, degradation=kind, seed=seed + 1, **call)
        iid_mean = np.stack(iid.images).astype(np.float64).mean(0)
        metrics.update(psnr_mean_iid=psnr(iid_mean, ref, s), ssim_mean_iid=ssim(iid_mean, ref, s))
    return metrics


def _targets(summary: dict) -> dict:
    gain = summary["psnr_mean"] - summary["psnr_bicubic"]
    checks = {"psnr_mean_gain_db": round(gain, 3), "psnr_mean_gain_ok": gain >= TARGET_PSNR_GAIN,
              "hf_single_ok": TARGET_HF[0] <= summary["hf_single"] <= TARGET_HF[1],
              "consistency_ok": summary["consistency_single"] >= TARGET_CONSISTENCY}
    checks["met"] = checks["psnr_mean_gain_ok"] and checks["hf_single_ok"] and checks["consistency_ok"]
    return checks


def evaluate_superres(generator_or_path: SuperResolver | str | os.PathLike, *, photos: Sequence[str] = HELD_OUT,
                      crop: int = 256, num_samples: int = 8, num_inference_steps: int = 25,
                      sampler: str = "sde-vp", degradations: Sequence[str] = DEGRADATIONS, seed: int = 0,
                      options: SamplerOptions = SamplerOptions(), device: str = "cpu", antithetic: bool = True,
                      self_ensemble: bool = True) -> dict:
    """Metrics of a super-resolution checkpoint on centre crops of the held-out photos (never trained on).

    Args:
        generator_or_path: a loaded :class:`SuperResolver` or its checkpoint folder.
        photos: held-out photo names (a subset of ``data.HELD_OUT``).
        crop: side of the high-res centre crop (a multiple of the scale); the input is crop / scale.
        num_samples: samples per input for the mean-of-samples metrics.
        num_inference_steps, sampler, options: the sampler used. The default, sde-vp with 25 steps and
            antithetic paths, is the one the README's bars are measured with: its fresh noise at every step
            keeps single samples sharp, and the antithetic paths keep their mean accurate.
        degradations: how inputs are made ("bicubic", "area"); each is reported separately.
        antithetic: draw the samples in antithetic pairs (``SuperResolver.__call__``), the estimator of the
            posterior mean the README names; the mean of as many iid samples is reported beside it.
        self_ensemble: a hybrid checkpoint's regression estimate over the 8 dihedral views of the input.
    """
    sr = generator_or_path if isinstance(generator_or_path, SuperResolver) else \
        SuperResolver.from_pretrained(generator_or_path, device=device)
    bad = [p for p in photos if p not in HELD_OUT]
    if bad or not photos:
        raise ValueError(f"photos must be held-out photos {HELD_OUT} (the others were trained on); got {list(photos)}")
    if crop % sr.scale:
        raise ValueError(f"crop={crop} must be a multiple of the scale {sr.scale}")
    kinds = [check_degradation(k) for k in degradations]
    call = dict(num_inference_steps=num_inference_steps, sampler=sampler, options=options,
                self_ensemble=self_ensemble)
    t0 = time.perf_counter()
    per_photo = {k: {p: _photo_metrics(sr, centre_crop(load_photo_uint8(p), crop), k, num_samples, seed, antithetic,
                                       **call)
                     for p in photos} for k in kinds}
    seconds = time.perf_counter() - t0
    draws = 2 if antithetic and num_samples > 1 else 1  # the iid samples drawn beside the antithetic ones
    result: dict = {"scale": sr.scale, "photos": list(photos), "crop": crop, "num_samples": num_samples,
                    "sampler": sampler, "steps": num_inference_steps, "seed": seed, "antithetic": antithetic,
                    "self_ensemble": self_ensemble if sr.model.mean_net is not None else None,
                    "seconds_per_sample": round(seconds / (len(kinds) * len(photos) * num_samples * draws), 3)}
    for k in kinds:
        summary = {m: round(float(np.mean([v[m] for v in per_photo[k].values()])), 4)
                   for m in next(iter(per_photo[k].values()))}
        result[k] = {**summary, "targets": _targets(summary),
                     "per_photo": {p: {m: round(v, 4) for m, v in vals.items()} for p, vals in per_photo[k].items()}}
    result["targets_met"] = all(result[k]["targets"]["met"] for k in kinds)
    return result


# ------------------------------------------------------------------ cascade
def _real_crops(names: Sequence[str], size: int, zoom: tuple[float, float], per_class: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.cat([random_crops(g, per_class, size, (n,), zoom)[0] for n in names])


def train_crop_classifier(output_dir: str | os.PathLike, preset: str = "small", seed: int = 0,
                          command: str = "") -> dict:
    """Train the cascade's feature classifier on real crops at every stage resolution; save it with its metrics."""
    p = cascade_preset(preset)
    t0 = time.perf_counter()
    per_class = max(1, p.classifier_crops // len(p.names))
    labels = torch.arange(len(p.names)).repeat_interleave(per_class)
    final = p.resolutions[-1]
    train_x = torch.cat([resize_crops(_real_crops(p.names, r, p.zoom_at(r), per_class, seed + i), final)
                         for i, r in enumerate(p.resolutions)])
    model = fit_crop_classifier(train_x, labels.repeat(len(p.resolutions)), len(p.names), epochs=p.classifier_epochs,
                                seed=seed, input_size=final)
    metrics: dict = {"classes": list(p.names), "n_train": len(train_x), "epochs": p.classifier_epochs,
                     "command": command or f"mmdiff train cascade-classifier --preset {preset} --out {output_dir}"}
    for i, r in enumerate(p.resolutions):
        test = _real_crops(p.names, r, p.zoom_at(r), per_class, seed + 1000 + i)
        metrics[f"held_out_accuracy_{r}px"] = round(accuracy(predict_crops(model, test), labels.numpy()), 4)
    metrics["seconds"] = round(time.perf_counter() - t0, 1)
    save_model(output_dir, model)
    atomic_write_json(Path(output_dir) / CLASSES_FILE, {"classes": list(p.names), "preset": preset})
    atomic_write_json(Path(output_dir) / "metrics.json", metrics)
    return metrics


def evaluate_cascade(cascade_or_path: Cascade | str | os.PathLike, classifier_path: str | os.PathLike = DEFAULT_CLASSIFIER,
                     *, preset: str = "small", per_prompt: int = 25, num_inference_steps: int = 20,
                     sampler: str = "dpmsolver++", guidance_scale: float = 3.0, seed: int = 0,
                     device: str = "cpu") -> dict:
    """Per-stage Frechet distance and prompt accuracy of the cascade against real crops at each resolution.

    ``preset`` names the cascade preset whose views (zoom) the real crops are cut at.
    """
    cascade = cascade_or_path if isinstance(cascade_or_path, Cascade) else \
        Cascade.from_pretrained(cascade_or_path, device=device)
    classifier = load_crop_classifier(classifier_path)
    classes = read_json(Path(classifier_path) / CLASSES_FILE, "classifier classes")["classes"]
    names = list(cascade.base.model.config.names)
    if names != classes:
        raise ValueError(f"the classifier's classes {classes} differ from the cascade's {names}; train one for it")
    p = cascade_preset(preset)
    t0 = time.perf_counter()
    out = cascade(cascade.prompts, num_images=per_prompt, num_inference_steps=num_inference_steps, sampler=sampler,
                  guidance_scale=guidance_scale, seed=seed)
    seconds = time.perf_counter() - t0
    labels = np.repeat(np.arange(len(names)), per_prompt)
    result: dict = {"resolutions": cascade.resolutions, "per_prompt": per_prompt, "sampler": sampler,
                    "steps": num_inference_steps, "guidance_scale": guidance_scale, "seed": seed,
                    "seconds_per_image": round(seconds / len(labels), 3)}
    for k, (images, r) in enumerate(zip(out.stages, cascade.resolutions)):
        gen = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
        real_a = _real_crops(names, r, p.zoom_at(r), per_prompt, seed + 2000 + k)
        real_b = _real_crops(names, r, p.zoom_at(r), per_prompt, seed + 3000 + k)
        f_gen, f_a, f_b = (crop_features(classifier, x) for x in (gen, real_a, real_b))
        result[f"stage{k}_{r}px"] = {
            "fd": round(frechet_distance(f_gen, f_a), 4), "fd_real_baseline": round(frechet_distance(f_b, f_a), 4),
            "prompt_accuracy": round(accuracy(predict_crops(classifier, gen), labels), 4),
            "real_accuracy": round(accuracy(predict_crops(classifier, real_a), labels), 4)}
    return result

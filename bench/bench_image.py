"""Benchmark the digits generator: sample quality against network evaluations, training
throughput and peak memory, and sampling speed. Writes bench/results/image_*.json.

    python -m bench.bench_image quality   [--per-class 30]
    python -m bench.bench_image throughput
    python -m bench.bench_image sampling

Reference (issue #2, measured on this 2-core machine): denoising-diffusion-pytorch
Unet(dim=32, dim_mults=(1, 2, 2)), 1.4 M parameters, 16x16, batch 64: 198 training images/s
and 0.063 s per image with 25 DDIM steps.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CHECKPOINT = ROOT / "data" / "checkpoints" / "image-digits"
# Measured once on 2026-11-25 on this 2-core CPU machine kind by the session that wrote this bench
# (commit a37f3f3); not re-run here: a dated figure from elsewhere, not a same-run comparison.
REFERENCE = {"name": "denoising-diffusion-pytorch Unet(dim=32, dim_mults=(1,2,2))", "parameters": 1.4e6,
             "measured": "2026-11-25, 2-core CPU, not re-run by this bench",
             "train_images_per_second": 198.0, "seconds_per_image_ddim25": 0.063}

# (label, sampler, steps, network evaluations per sample before CFG doubling)
QUALITY_CONFIGS = [
    ("DDPM-1000", "ddpm", 1000, 1000),
    ("DDIM-10", "ddim", 10, 10),
    ("DDIM-25", "ddim", 25, 25),
    ("DDIM-50", "ddim", 50, 50),
    ("DPM-Solver++-10", "dpmsolver++", 10, 10),
    ("DPM-Solver++-20", "dpmsolver++", 20, 20),
    ("DPM-Solver++-25", "dpmsolver++", 25, 25),
    ("UniPC-20", "unipc", 20, 20),
    ("PF-ODE-Heun-25", "pf-ode", 25, 51),
    ("PC-VP-100", "pc-vp", 100, 201),
]


def _machine() -> dict:
    return {"machine": platform.machine(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "load_average_at_start": list(os.getloadavg()), "torch": torch.__version__}


def _write(name: str, payload: dict) -> Path:
    from generators.core.checkpoint import atomic_write_json

    path = RESULTS / f"{name}.json"
    atomic_write_json(path, payload)
    return path


def quality(per_class: int, guidance: float) -> dict:
    """Accuracy / FD / CAS of each sampler configuration on the shipped checkpoint."""
    from generators.image import ImageGenerator
    from generators.image.evaluate import evaluate_image_generator

    gen = ImageGenerator.from_pretrained(CHECKPOINT)
    rows = {}
    for label, sampler, steps, nfe in QUALITY_CONFIGS:
        m = evaluate_image_generator(gen, per_class, sampler, steps, guidance, seed=0)
        rows[label] = {"nfe": nfe, **{k: m[k] for k in ("accuracy", "fd", "fd_real_baseline", "fd_ratio_to_baseline",
                                                         "cas", "cas_real_baseline", "seconds_per_image")}}
        print(label, json.dumps(rows[label]), flush=True)
    ref = rows["DDPM-1000"]
    dpm = rows["DPM-Solver++-20"]
    goal = {
        "accuracy_within_5pct": dpm["accuracy"] >= 0.95 * ref["accuracy"],
        "fd_within_5pct": dpm["fd"] <= 1.05 * ref["fd"],
        "cas_within_5pct": dpm["cas"] >= 0.95 * ref["cas"],
    }
    return {**_machine(), "per_class": per_class, "guidance_scale": guidance, "checkpoint": str(CHECKPOINT.relative_to(ROOT)),
            "results": rows, "goal_dpmsolver20_within_5pct_of_ddpm1000": goal}


def _train_once(preset: str, steps: int) -> dict:
    """One training measurement in this process (run in a fresh subprocess for clean peak memory).

    The loop runs ``2 * steps`` steps with a checkpoint after the first ``steps`` (the warm-up) and at
    the end; the rate counts only the ``steps`` after the warm-up (start-up, first-step allocation and
    the warm-up checkpoint are outside the timed window; the final checkpoint is inside it).
    """
    import generators.core.training as training
    from generators.image.model import PRESETS, build_model
    from generators.image.train import train_image

    marks: list[float] = []
    save_state = training._save_state

    def timed_save(*args, **kwargs):
        save_state(*args, **kwargs)
        marks.append(time.perf_counter())

    training._save_state = timed_save
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            train_image(Path(tmp) / "run", preset, max_steps=2 * steps, checkpoint_every=steps, progress=False)
            wall = time.perf_counter() - t0
    finally:
        training._save_state = save_state
    params = sum(p.numel() for p in build_model(preset).parameters())
    rate = steps * PRESETS[preset].batch_size / (marks[-1] - marks[0])
    return {"images_per_second": rate, "wall_seconds": wall, "parameters": params, "timed_steps": steps,
            "warmup_steps": steps, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def throughput(repeats: int = 3) -> dict:
    out = {}
    for preset, steps in (("tiny", 200), ("small", 200)):
        runs = []
        for _ in range(repeats):
            res = subprocess.run([sys.executable, "-m", "bench.bench_image", "_train_once", preset, str(steps)],
                                 cwd=ROOT, capture_output=True, text=True, check=True)
            runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
        rates = [r["images_per_second"] for r in runs]
        out[preset] = {"steps_per_run": steps, "runs": repeats, "parameters": runs[0]["parameters"],
                       "images_per_second_median": round(statistics.median(rates), 1),
                       "images_per_second_all": [round(r, 1) for r in rates],
                       "peak_rss_mb_median": round(statistics.median(r["peak_rss_mb"] for r in runs), 1)}
        print(preset, json.dumps(out[preset]), flush=True)
    small = out["small"]["images_per_second_median"]
    return {**_machine(), "batch_size": 64, "image_size": {"tiny": 8, "small": 16}, "presets": out, "reference": REFERENCE,
            "ratio_small_to_reference": round(small / REFERENCE["train_images_per_second"], 3)}


def sampling(repeats: int = 3, batch: int = 64) -> dict:
    """Seconds per image with 25 DDIM steps, without guidance (like the unconditional reference) and with CFG."""
    from generators.image import ImageGenerator

    gen = ImageGenerator.from_pretrained(CHECKPOINT)
    labels = [i % 10 for i in range(batch)]
    out = {}
    for name, guidance in (("ddim25_no_guidance", 1.0), ("ddim25_cfg3", 3.0), ("dpmsolver++25_cfg3", 3.0)):
        sampler = "dpmsolver++" if name.startswith("dpm") else "ddim"
        gen(labels[:4], num_inference_steps=2, sampler=sampler, guidance_scale=guidance)
        times = []
        for r in range(repeats):
            t0 = time.perf_counter()
            gen(labels, num_inference_steps=25, sampler=sampler, guidance_scale=guidance, seed=r)
            times.append((time.perf_counter() - t0) / batch)
        out[name] = {"seconds_per_image_median": round(statistics.median(times), 4), "all": [round(t, 4) for t in times]}
        print(name, json.dumps(out[name]), flush=True)
    return {**_machine(), "batch_size": batch, "results": out, "reference": REFERENCE,
            "ratio_reference_to_ours_ddim25": round(REFERENCE["seconds_per_image_ddim25"] / out["ddim25_no_guidance"]["seconds_per_image_median"], 3)}


def samplers(per_class: int = 20, guidance: float = 3.0) -> dict:
    """Every sampler by name at its documented default steps (``DEFAULT_STEPS``): label accuracy by the
    digit classifier and the Frechet distance to held-out digits, beside the real-vs-real baseline."""
    from evaluation.digits import features, load_digit_classifier, predict
    from evaluation.metrics import frechet_distance
    from generators.core.sampling import DEFAULT_STEPS, SAMPLERS
    from generators.image import ImageGenerator
    from generators.image.data import from_uint8, load_digits_split

    gen = ImageGenerator.from_pretrained(CHECKPOINT)
    clf = load_digit_classifier(CHECKPOINT.parent / "digit-classifier")
    labels = [i % 10 for i in range(10 * per_class)]
    test, train = load_digits_split("test", 16), load_digits_split("train", 16)
    f_test = features(clf, test.images)
    baseline = frechet_distance(features(clf, train.images[: len(labels)]), f_test)
    rows = {}
    for sampler in SAMPLERS:
        steps = DEFAULT_STEPS[sampler]
        t0 = time.perf_counter()
        images = from_uint8(gen(labels, num_inference_steps=steps, sampler=sampler, guidance_scale=guidance,
                                seed=0).images)
        seconds = (time.perf_counter() - t0) / len(labels)
        fd = frechet_distance(features(clf, images), f_test)
        rows[sampler] = {"steps": steps, "accuracy": float((predict(clf, images) == np.array(labels)).mean()),
                         "fd": round(fd, 2), "fd_ratio_to_baseline": round(fd / baseline, 3),
                         "seconds_per_image": round(seconds, 4)}
        print(sampler, json.dumps(rows[sampler]), flush=True)
    return {**_machine(), "images": len(labels), "guidance_scale": guidance, "fd_real_baseline": round(baseline, 2),
            "checkpoint": str(CHECKPOINT.relative_to(ROOT)), "results": rows}


def langevin(per_class: int = 20, steps: int = 100) -> dict:
    """Annealed Langevin's step size eps (``SamplerOptions.step_lr``) against label accuracy and FD, at w = 3 and 1."""
    from evaluation.digits import features, load_digit_classifier, predict
    from evaluation.metrics import frechet_distance
    from generators.core.sampling import SamplerOptions
    from generators.image import ImageGenerator
    from generators.image.data import from_uint8, load_digits_split

    gen = ImageGenerator.from_pretrained(CHECKPOINT)
    clf = load_digit_classifier(CHECKPOINT.parent / "digit-classifier")
    labels = [i % 10 for i in range(10 * per_class)]
    f_test = features(clf, load_digits_split("test", 16).images)
    rows = []
    for step_lr in (2e-5, 3e-5, 5e-5, 1e-4, 2e-4):
        for guidance in (3.0, 1.0):
            out = gen(labels, num_inference_steps=steps, sampler="annealed-langevin", guidance_scale=guidance,
                      options=SamplerOptions(step_lr=step_lr), seed=0)
            images = from_uint8(out.images)
            rows.append({"step_lr": step_lr, "guidance_scale": guidance,
                         "accuracy": float((predict(clf, images) == np.array(labels)).mean()),
                         "fd": round(frechet_distance(features(clf, images), f_test), 2)})
            print(json.dumps(rows[-1]), flush=True)
    return {**_machine(), "images": len(labels), "steps": steps, "results": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", default="all",
                        choices=["quality", "throughput", "sampling", "samplers", "langevin", "all", "_train_once"])
    parser.add_argument("args", nargs="*")
    parser.add_argument("--per-class", type=int, default=30)
    parser.add_argument("--guidance", type=float, default=3.0)
    ns = parser.parse_args(argv)
    if ns.what == "_train_once":
        print(json.dumps(_train_once(ns.args[0], int(ns.args[1]))))
        return
    if ns.what in ("throughput", "all"):
        print(_write("image_throughput", throughput()))
    if ns.what in ("sampling", "all"):
        print(_write("image_sampling", sampling()))
    if ns.what in ("langevin", "all"):
        print(_write("image_langevin", langevin()))
    if ns.what in ("samplers", "all"):
        print(_write("image_samplers", samplers()))
    if ns.what in ("quality", "all"):
        print(_write("image_quality", quality(ns.per_class, ns.guidance)))


if __name__ == "__main__":
    main()

"""The GPU path of every family: training steps, generation speed, and CPU-vs-device agreement.

    python -m bench.bench_gpu --device cuda --mixed-precision bf16   # -> bench/results/gpu_cuda.json
    python -m bench.bench_gpu --device cpu                            # the same on this machine's CPU

For each family (super-resolution, video, point clouds, floorplans):

- ``train``: the shipped preset's own training function (``train_<family>``) for a fixed number of
  steps on ``--device`` with ``--mixed-precision``, from scratch in a temporary folder; samples per
  second and peak device memory as :class:`generators.core.training.TrainResult` reports them. This is
  the code path of ``mmdiff train <family> --device cuda --mixed-precision bf16``.
- ``generate``: the shipped checkpoint loaded on ``--device``: median seconds of three calls after a
  warm-up, at the settings of that family's CPU benchmark.
- ``agreement`` (only when ``--device`` is not the CPU): the same call, same seed, in float32 on the CPU
  and on the device; how close the outputs are (PSNR for pixels, Chamfer for points, max corner gap
  for plans). Seeds draw their noise on the CPU, so a seed means the same sample on every device.

Video training times the denoiser with an autoencoder trained here for a few steps first (its own
steps are timed apart), so the numbers are per stage.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np
import torch

from generators.core.checkpoint import atomic_write_json

CHECKPOINTS = ROOT / "data" / "checkpoints"


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _median_seconds(fn: Callable[[int], Any], device: str, repeats: int = 3) -> tuple[float, list[float]]:
    fn(-1)  # warm-up (kernels, allocator)
    times = []
    for r in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn(r)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 4), [round(t, 4) for t in times]


def _train_row(train: Callable[[], Any]) -> dict:
    """Run ``train`` and report its last stage's TrainResult plus the wall time of the whole call."""
    t0 = time.perf_counter()
    result = train()
    return {"wall_seconds_all_stages": round(time.perf_counter() - t0, 2), "steps": result.steps,
            "seconds": round(result.seconds, 2),
            "samples_per_second": round(result.samples_per_second, 1),
            "seconds_per_step": round(result.seconds / max(result.steps, 1), 4),
            "peak_memory_mb": None if result.peak_memory_mb is None else round(result.peak_memory_mb, 1),
            "final_loss": round(float(np.mean(result.losses[-10:])), 4) if result.losses else None}


def _generation(out: dict, device: str, load: Callable[[str], Any], timed: Callable[[Any, int], Any], what: str,
                compare: Callable[[Any], Any], measure: Callable[[Any, Any], dict], agreement: str) -> None:
    """Time ``timed(generator, seed)`` on ``device``; off the CPU, also ``measure`` one ``compare`` call on both."""
    gen = load(device)
    med, all_ = _median_seconds(lambda r: timed(gen, max(r, 0)), device)
    out["generate"] = {"what": what, "seconds_median": med, "all": all_}
    if device != "cpu":
        out["agreement"] = {"what": agreement, **measure(compare(load("cpu")), compare(gen))}


def _psnr(a: np.ndarray, b: np.ndarray) -> dict:
    """PSNR of uint8 pixels (images (H, W, C) or frames (T, H, W, C)) against the CPU's, in dB (100: identical)."""
    from evaluation.superres import psnr

    a, b = np.asarray(a), np.asarray(b)
    return {"psnr_db": round(psnr(a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:])), 2)}


def superres(device: str, mp: str, steps: int, work: Path, train_only: bool = False) -> dict:
    from generators.superres import SuperResolver
    from generators.superres.data import load_photo_uint8
    from generators.superres.train import train_superres

    out: dict[str, Any] = {"preset": "small"}
    out["train"] = _train_row(lambda: train_superres(work / "sr", preset="small", max_steps=steps, mixed_precision=mp,
                                                     device=device, progress=False))
    if not train_only:
        photo = load_photo_uint8("astronaut")[:256, :256]
        _generation(out, device, lambda d: SuperResolver.from_pretrained(CHECKPOINTS / "sr-x4", device=d),
                    lambda sr, seed: sr(photo, num_inference_steps=20, seed=seed),
                    "256x256 -> 1024x1024, dpmsolver++ 20 steps",
                    lambda sr: sr(photo[:64, :64], num_inference_steps=10, seed=0).images[0], _psnr,
                    "64x64 x4, 10 steps, seed 0: PSNR of the device output against the CPU's")
    return out


def video(device: str, mp: str, steps: int, work: Path, train_only: bool = False) -> dict:
    from generators.video import VideoGenerator, train_video
    from generators.video.autoencoder import train_video_autoencoder

    out: dict[str, Any] = {"preset": "small"}
    ae = work / "video-ae"
    out["train_autoencoder"] = _train_row(lambda: train_video_autoencoder(
        ae, "small", max_steps=steps, mixed_precision=mp, device=device, progress=False))
    out["train"] = _train_row(lambda: train_video(work / "video", preset="small", max_steps=steps, mixed_precision=mp,
                                                  device=device, progress=False, autoencoder=ae))
    if not train_only:
        prompt = "the digit 3 moving left"
        folder = CHECKPOINTS / "video-moving-digits"
        _generation(out, device, lambda d: VideoGenerator.from_pretrained(folder, device=d),
                    lambda gen, seed: gen(prompt=prompt, num_inference_steps=25, seed=seed),
                    "one clip, dpmsolver++ 25 steps",
                    lambda gen: gen(prompt=prompt, num_inference_steps=10, seed=0).frames, _psnr,
                    "one clip, 10 steps, seed 0: PSNR of the device frames against the CPU's")
    return out


def pointcloud(device: str, mp: str, steps: int, work: Path, train_only: bool = False) -> dict:
    from evaluation.pointcloud import chamfer_matrix
    from generators.pointcloud import PointCloudGenerator, train_pointcloud

    def measure(a: np.ndarray, b: np.ndarray) -> dict:
        a, b = np.asarray(a), np.asarray(b)
        return {"chamfer": float(chamfer_matrix(a[None], b[None])[0, 0]), "max_point_gap": float(np.abs(a - b).max())}

    out: dict[str, Any] = {"preset": "small", "note": "max_steps applies to each of the three stages"}
    out["train"] = _train_row(lambda: train_pointcloud(work / "pc", preset="small", max_steps=steps, mixed_precision=mp,
                                                       device=device, progress=False))
    if not train_only:
        folder = CHECKPOINTS / "pointcloud-shapes"
        _generation(out, device, lambda d: PointCloudGenerator.from_pretrained(folder, device=d),
                    lambda gen, seed: gen(label=["chair"] * 8, num_points=2048, num_inference_steps=25, seed=seed),
                    "8 chairs, 2,048 points, dpmsolver++ 25 steps",
                    lambda gen: gen(label="chair", num_points=2048, num_inference_steps=10, seed=0).points[0],
                    measure, "one chair, 10 steps, seed 0: Chamfer (mean squared) between CPU and device")
        out["generate"]["seconds_per_shape"] = round(out["generate"]["seconds_median"] / 8, 4)
    return out


def floorplan(device: str, mp: str, steps: int, work: Path, train_only: bool = False) -> dict:
    from generators.floorplan import FloorplanGenerator, train_floorplan
    from generators.floorplan.data import procedural_plans
    from generators.floorplan.evaluate import _request

    def measure(a: Any, b: Any) -> dict:
        return {"max_corner_gap": max(float(np.abs(np.asarray(p) - np.asarray(q)).max())
                                      for p, q in zip(a.polygons, b.polygons))}

    out: dict[str, Any] = {"preset": "small"}
    out["train"] = _train_row(lambda: train_floorplan(work / "fp", preset="small", max_steps=steps, mixed_precision=mp,
                                                      device=device, progress=False))
    if not train_only:
        graph = _request(procedural_plans("test", 1, (8, 8), seed=0)[0])
        _generation(out, device, lambda d: FloorplanGenerator.from_pretrained(CHECKPOINTS / "floorplan", device=d),
                    lambda gen, seed: gen(graph, num_samples=4, num_inference_steps=100, seed=seed, refine=False),
                    "4 plans of 8 rooms, ddpm 100 steps, no refinement",
                    lambda gen: gen(graph, num_inference_steps=20, seed=0, refine=False).plans[0], measure,
                    "one plan, ddpm 20 steps, seed 0: largest corner gap between CPU and device")
    return out


FAMILIES = {"superres": superres, "video": video, "pointcloud": pointcloud, "floorplan": floorplan}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--mixed-precision", default="no", choices=["no", "fp16", "bf16"])
    parser.add_argument("--train-steps", type=int, default=200)
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--train-only", action="store_true", help="skip generation and agreement")
    parser.add_argument("--out", default=None, help="result file (default bench/results/gpu_<device>.json)")
    args = parser.parse_args(argv)
    device = args.device
    result: dict[str, Any] = {
        "command": "python -m bench.bench_gpu " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": platform.machine(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device_name": torch.cuda.get_device_name(device) if device.startswith("cuda") else platform.processor(),
        "mixed_precision": args.mixed_precision, "train_steps": args.train_steps, "families": {}}
    out_path = Path(args.out) if args.out else ROOT / "bench" / "results" / f"gpu_{device.replace(':', '')}.json"
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.families.split(","):
            t0 = time.perf_counter()
            try:
                row = FAMILIES[name](device, args.mixed_precision, args.train_steps, Path(tmp), args.train_only)
            except Exception as exc:  # noqa: BLE001 -- one family's failure is a finding; the others still run
                row = {"error": f"{type(exc).__name__}: {exc}"}
            row["wall_seconds"] = round(time.perf_counter() - t0, 1)
            result["families"][name] = row
            print(name, json.dumps(row), flush=True)
            atomic_write_json(out_path, result)
    return result


if __name__ == "__main__":
    main()

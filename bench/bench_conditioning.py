"""Benchmark the conditioning encoders: text-encoding throughput with and without the per-prompt
cache, and the cost the ControlNet adapter adds per sampling step. Writes bench/results/conditioning.json.

    HF_HUB_OFFLINE=1 python bench/bench_conditioning.py
"""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

from conditioning.control import ControlNetAdapter
from generators.image.controlled_unet import ControlledUNet
from conditioning.text import TextEncoder
from generators.image.captions import TRAIN_TEMPLATES, caption
from generators.image.model import build_model

OUT = Path(__file__).resolve().parent / "results" / "conditioning.json"


def _time(fn, repeats: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats


@torch.no_grad()
def text_throughput(num_prompts: int = 256, batch_size: int = 64) -> dict:
    prompts = [caption(i % 10, (i % 3, (i // 3) % 3, (i // 9) % 3), TRAIN_TEMPLATES[i % len(TRAIN_TEMPLATES)])
               for i in range(num_prompts)]
    uncached = TextEncoder(cache_size=0)
    cached = TextEncoder()
    run = lambda enc: [enc(prompts[i:i + batch_size]) for i in range(0, num_prompts, batch_size)]  # noqa: E731
    t_uncached = _time(lambda: run(uncached), 2)
    run(cached)  # fill the cache
    t_cached = _time(lambda: run(cached), 5)
    return {"prompts": num_prompts, "batch_size": batch_size, "distinct_prompts": len(set(prompts)),
            "prompts_per_second_uncached": round(num_prompts / t_uncached, 1),
            "prompts_per_second_cached": round(num_prompts / t_cached, 1)}


@torch.no_grad()
def adapter_cost(batch_size: int = 64, preset: str = "small") -> dict:
    base = build_model(preset).eval()
    net = ControlledUNet(base.unet, ControlNetAdapter.from_unet(base.unet), base.label_encoder).eval()
    size = base.config.sample_size
    x, t = torch.randn(batch_size, 1, size, size), torch.full((batch_size,), 500.0)
    labels = torch.zeros(batch_size, dtype=torch.long)
    control = (torch.rand(batch_size, 1, size, size) > 0.7).float()
    t_base = _time(lambda: base(x, t, labels), 10)
    t_ctrl = _time(lambda: net(x, t, {"control": control, "labels": labels}), 10)
    return {"preset": preset, "batch_size": batch_size, "base_ms_per_step": round(1000 * t_base, 2),
            "controlled_ms_per_step": round(1000 * t_ctrl, 2), "overhead_ratio": round(t_ctrl / t_base, 3),
            "adapter_params": sum(p.numel() for p in net.adapter.parameters()),
            "base_params": sum(p.numel() for p in base.parameters())}


def main() -> dict:
    result = {"machine": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
              "load_average_at_start": os.getloadavg(), "text_encoder": text_throughput(), "controlnet": adapter_cost()}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))

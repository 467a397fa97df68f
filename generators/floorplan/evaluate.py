"""Evaluate the floorplan generator on held-out bubble graphs (``mmdiff evaluate floorplan``).

For graphs of the test split (never seen in training, :func:`.data.graph_split`) with 5-8 rooms, the
generator draws ``samples_per_graph`` plans each, with the corner counts of the held-out plans as
HouseDiffusion does (Shabani et al. 2023, sec. 5), and :mod:`evaluation.floorplan` measures them:
compatibility (graph edit distance), overlap, room match, door feasibility, diversity, and the Frechet
distance of rendered plans in the features of the project's plan classifier, beside the same distance
between real train and real held-out plans. The same metrics of the unrefined corners show what the
network does on its own.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evaluation.floorplan import (PlanClassifier, diversity, fit_plan_classifier, plan_accuracy, plan_features,
                                  plan_metrics, rasterize_plan)
from evaluation.metrics import frechet_distance
from generators.core.checkpoint import atomic_write_json, load_model, save_model
from generators.core.sampling import SamplerOptions

from .data import procedural_plans
from .generator import DEFAULT_GUIDANCE_SCALE, FloorplanGenerator
from .graph import FLOORPLAN_ROOM_TYPES, BubbleGraph, Room
from .plan import Floorplan

DEFAULT_CLASSIFIER = Path(__file__).resolve().parents[2] / "data" / "checkpoints" / "floorplan-classifier"
RASTER = 64


def render(plans: list[Floorplan]) -> torch.Tensor:
    """(N, 10, 64, 64) one-hot room-type rasters of the canvas."""
    return torch.from_numpy(np.stack([rasterize_plan(p.room_types, p.polygons, FLOORPLAN_ROOM_TYPES, RASTER)
                                      for p in plans]))


def train_floorplan_classifier(output_dir: str | os.PathLike, steps: int = 1500, num_plans: int = 4000,
                               num_test: int = 400, seed: int = 0, batch_size: int = 64, width: int = 16,
                               command: str = "") -> dict[str, Any]:
    """Train the realism classifier (room count from the rendered plan) on procedural train plans;
    writes a checkpoint folder with ``metrics.json`` (held-out accuracy) and returns the metrics."""
    t0 = time.perf_counter()
    train = procedural_plans("train", num_plans, (4, 10), seed=seed + 1000)
    test = procedural_plans("test", num_test, (4, 10), seed=seed + 1000)
    images, labels = render(train), torch.tensor([len(p.polygons) for p in train])
    model, losses = fit_plan_classifier(images, labels, steps, batch_size, seed=seed, width=width)
    acc = plan_accuracy(model, render(test), torch.tensor([len(p.polygons) for p in test]))
    save_model(output_dir, model)
    metrics = {"held_out_accuracy": acc, "final_loss": float(np.mean(losses[-50:])), "steps": steps,
               "n_train": len(train), "n_test": len(test), "seconds": round(time.perf_counter() - t0, 1),
               "command": command or f"train_floorplan_classifier({str(output_dir)!r}, steps={steps}, "
                                     f"num_plans={num_plans}, num_test={num_test}, seed={seed}, batch_size={batch_size}, "
                                     f"width={width})"}
    atomic_write_json(Path(output_dir) / "metrics.json", metrics)
    return metrics


def _request(plan: Floorplan) -> BubbleGraph:
    """The held-out plan's graph with its corner counts but without target areas (HouseDiffusion's setting)."""
    g = plan.graph
    return BubbleGraph(tuple(Room(r.id, r.room_type, None, r.corners) for r in g.rooms), g.doors, g.name)


def _summary(plans: list[Floorplan], per_graph: int) -> dict[str, float]:
    rows = [plan_metrics(p.graph.room_types, p.graph.edges, p.room_types, p.polygons,
                         [(d.rooms[0], d.rooms[1], d.segment) for d in p.doors]) for p in plans]
    requested = sum(r["doors_requested"] for r in rows)
    rasters = render(plans).numpy()
    div = [diversity(list(rasters[i:i + per_graph])) for i in range(0, len(plans), per_graph)]
    return {
        "compatibility": float(np.mean([r["compatibility"] for r in rows])),
        "overlap": float(np.mean([r["overlap"] for r in rows])),
        "rooms_match": float(np.mean([r["rooms_match"] for r in rows])),
        "door_feasibility": float(sum(r["doors_feasible"] for r in rows) / max(requested, 1)),
        "diversity": float(np.mean(div)),
    }


def evaluate_floorplan(generator_or_path: FloorplanGenerator | str | os.PathLike, num_graphs: int = 50,
                       samples_per_graph: int = 4, rooms: tuple[int, int] = (5, 8), sampler: str = "ddpm",
                       num_inference_steps: int = 50, guidance_scale: float = DEFAULT_GUIDANCE_SCALE, seed: int = 0,
                       classifier_path: str | os.PathLike | None = DEFAULT_CLASSIFIER,
                       options: SamplerOptions = SamplerOptions()) -> dict[str, Any]:
    """Generate plans for ``num_graphs`` held-out graphs and measure them (nothing is written).

    Args:
        generator_or_path: a FloorplanGenerator or its checkpoint folder.
        num_graphs: held-out graphs, with ``rooms`` = (low, high) rooms each.
        samples_per_graph: plans per graph (diversity is measured among them).
        sampler, num_inference_steps, guidance_scale, options: as for the generator.
        seed: sampling seed.
        classifier_path: the realism classifier folder (:func:`train_floorplan_classifier`); None skips
            the Frechet distance.
    """
    gen = generator_or_path if isinstance(generator_or_path, FloorplanGenerator) else \
        FloorplanGenerator.from_pretrained(generator_or_path)
    if samples_per_graph < 1 or num_graphs < 1:
        raise ValueError(f"num_graphs and samples_per_graph must be >= 1, got {num_graphs} and {samples_per_graph}")
    classifier = None
    if classifier_path is not None:
        if not (Path(classifier_path) / "config.json").is_file():
            raise ValueError(f"no plan classifier at {classifier_path}; train one with "
                             "generators.floorplan.evaluate.train_floorplan_classifier(path) or pass classifier_path=None")
        classifier = load_model(classifier_path, PlanClassifier, use_ema=False)
    held_out = procedural_plans("test", num_graphs, rooms)
    t0 = time.perf_counter()
    raw = gen([_request(p) for p in held_out], num_samples=samples_per_graph, num_inference_steps=num_inference_steps,
              sampler=sampler, guidance_scale=guidance_scale, seed=seed, options=options, refine=False).plans
    t_sample = time.perf_counter() - t0
    refined = [FloorplanGenerator._plan(p.graph, [np.asarray(q) for q in p.polygons], True) for p in raw]
    seconds = time.perf_counter() - t0
    metrics: dict[str, Any] = _summary(refined, samples_per_graph)
    metrics.update({f"{k}_unrefined": v for k, v in _summary(raw, samples_per_graph).items() if k != "diversity"})
    if classifier is not None:
        real_train = procedural_plans("train", len(refined), rooms, seed=1)
        f_gen, f_test, f_train = (plan_features(classifier, render(x)) for x in (refined, held_out, real_train))
        metrics["fd"] = frechet_distance(f_gen, f_test)
        metrics["fd_real_baseline"] = frechet_distance(f_train, f_test)
    metrics.update({"n_graphs": num_graphs, "samples_per_graph": samples_per_graph, "rooms": list(rooms),
                    "sampler": sampler, "steps": num_inference_steps, "guidance_scale": guidance_scale, "seed": seed,
                    "seconds_per_plan": seconds / len(refined), "sampling_seconds_per_plan": t_sample / len(refined)})
    return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in metrics.items()}


def benchmark_floorplan(generator_or_path: FloorplanGenerator | str | os.PathLike, rooms: tuple[int, ...] = (4, 6, 8, 10),
                        steps: tuple[int, ...] = (10, 50, 100), num_samples: int = 4, sampler: str = "ddpm",
                        seed: int = 0) -> list[dict[str, Any]]:
    """Seconds per plan (sampling and refinement apart) by room count and step count, on held-out graphs."""
    gen = generator_or_path if isinstance(generator_or_path, FloorplanGenerator) else \
        FloorplanGenerator.from_pretrained(generator_or_path)
    rows = []
    for n in rooms:
        if n > gen.model.config.max_rooms:
            continue
        graph = _request(procedural_plans("test", 1, (n, n), seed=seed)[0])
        for s in steps:
            t0 = time.perf_counter()
            raw = gen(graph, num_samples=num_samples, num_inference_steps=s, sampler=sampler, seed=seed, refine=False)
            t1 = time.perf_counter()
            for p in raw.plans:
                FloorplanGenerator._plan(p.graph, [np.asarray(q) for q in p.polygons], True)
            t2 = time.perf_counter()
            rows.append({"rooms": n, "steps": s, "sampler": sampler, "sample_s_per_plan": round((t1 - t0) / num_samples, 4),
                         "refine_s_per_plan": round((t2 - t1) / num_samples, 4),
                         "total_s_per_plan": round((t2 - t0) / num_samples, 4)})
    return rows

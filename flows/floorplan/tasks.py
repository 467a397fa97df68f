"""Prefect tasks for the floorplan family: each calls the library and passes file paths, not tensors.

Tasks that hold a model take the device's concurrency slot (:mod:`flows.gpu`); tasks that write files
retry transient I/O errors; tasks with large inputs use ``NO_CACHE``.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from .. import model_cache
from ..common import IO_RETRIES, log, training_device
from ..gpu import device_slot
from ..report import GalleryRow, Report
from ..reuse import code_version, fingerprint, mark_complete, publish_folder, reused_run
from .params import GenerateFloorplanParams, TrainFloorplanParams

CODE_PATHS = ("generators/core", "generators/floorplan", "conditioning", "evaluation")


def dataset_version(preset: str, rplan_dir: str | None) -> str:
    """sha256 of the training data: the procedural pool's spec (its code is in the code version), or the RPLAN files."""
    from generators.floorplan.model import PRESETS
    from generators.floorplan.train import DATA_SEED

    h = hashlib.sha256()
    p = PRESETS[preset]
    h.update(json.dumps({"pool_size": p.pool_size, "rooms": p.train_rooms, "seed": DATA_SEED}).encode())
    if rplan_dir:
        for path in sorted(Path(rplan_dir).glob("*.json")):
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def floorplan_generator(checkpoint: str, device: str = "cpu") -> Any:
    """The floorplan generator from the model cache (loaded afresh on a GPU)."""
    return model_cache.load("floorplan", checkpoint, device)


@task(name="fingerprint-floorplan-training", **IO_RETRIES)
def fingerprint_task(params: TrainFloorplanParams) -> dict[str, Any]:
    """The training folder for these parameters: cache_root/floorplan-<preset>-<fingerprint>."""
    from generators.floorplan.train import train_config_for

    config = asdict(train_config_for(params.preset, params.max_steps, params.seed, params.mixed_precision,
                                     params.checkpoint_every, params.device))
    config.update(preset=params.preset, rplan_dir=params.rplan_dir)
    digest = fingerprint(config, dataset_version(params.preset, params.rplan_dir), code_version(CODE_PATHS))
    return {"folder": str(Path(params.cache_root) / f"floorplan-{params.preset}-{digest[:16]}"), "fingerprint": digest}


@task(name="train-floorplan", cache_policy=NO_CACHE)
def train_task(folder: str, digest: str, params: TrainFloorplanParams, command: str = "") -> dict[str, Any]:
    """Train (resuming from ``folder/training_state``) unless ``folder`` already holds this fingerprint."""
    from generators.floorplan import train_floorplan

    out = Path(folder)
    reused = reused_run(out, digest)
    if reused is not None:
        return reused
    t0 = time.perf_counter()
    with device_slot(training_device(params.device)):
        result = train_floorplan(out, params.preset, params.max_steps, params.seed, params.mixed_precision,
                                 params.checkpoint_every, params.device, command=command or "prefect flow train_floorplan",
                                 progress=False, rplan_dir=params.rplan_dir)
    mark_complete(out, digest, {"steps": result.steps, "preset": params.preset})
    if result.resumed_from:
        log(f"resumed {out} from step {result.resumed_from}")
    return {"reused": False, "folder": folder, "steps": result.steps, "resumed_from": result.resumed_from,
            "seconds": round(time.perf_counter() - t0, 2)}


@task(name="publish-floorplan-checkpoint", **IO_RETRIES)
def publish_task(folder: str, publish_dir: str) -> str:
    """Copy the finished checkpoint, without its training state, to ``publish_dir`` atomically."""
    return str(publish_folder(Path(folder), Path(publish_dir)))


def plan_rows(plans: list[Any], paths: list[Path]) -> list[dict[str, Any]]:
    """One row per plan: its file and its metrics against the graph it was asked for."""
    from evaluation.floorplan import plan_metrics

    rows = []
    for i, (plan, path) in enumerate(zip(plans, paths)):
        m = plan_metrics(plan.graph.room_types, plan.graph.edges, plan.room_types, plan.polygons,
                         [(d.rooms[0], d.rooms[1], d.segment) for d in plan.doors])
        rows.append({"index": i, "path": str(path), "compatibility": m["compatibility"],
                     "overlap": round(m["overlap"], 5), "doors": f"{int(m['doors_feasible'])}/{int(m['doors_requested'])}"})
    return rows


def generate_plans(params: GenerateFloorplanParams, out: Path) -> list[dict[str, Any]]:
    """Generate the plans ``params`` describe and save them at ``out`` (a .svg, .png, .json, or a folder)."""
    from generators.floorplan import BubbleGraph

    graph = BubbleGraph.from_json(params.graph)
    with device_slot(params.device):
        gen = floorplan_generator(params.checkpoint, params.device)
        result = gen(graph=graph, num_samples=params.num, num_inference_steps=params.num_inference_steps,
                     sampler=params.sampler, guidance_scale=params.guidance_scale, seed=params.seed,
                     refine=params.refine)
    paths = result.save(out, prefix="plan")
    per_plan = [paths[0]] * len(result.plans) if out.suffix else [p for p in paths if p.suffix == ".svg"]
    return plan_rows(result.plans, per_plan)


@task(name="generate-floorplans", cache_policy=NO_CACHE, **IO_RETRIES)
def generate_task(params: GenerateFloorplanParams, out: str) -> list[dict[str, Any]]:
    """Plans for one bubble graph written under ``out``; one row per plan."""
    return generate_plans(params, Path(out))


@task(name="evaluate-floorplan", cache_policy=NO_CACHE)
def evaluate_task(checkpoint: str, num_graphs: int, samples_per_graph: int, sampler: str, steps: int,
                  guidance_scale: float, seed: int, classifier: str, device: str = "cpu") -> dict[str, Any]:
    """``generators.floorplan.evaluate_floorplan`` on a checkpoint folder."""
    from generators.floorplan import evaluate_floorplan

    with device_slot(device):
        return evaluate_floorplan(floorplan_generator(checkpoint, device), num_graphs, samples_per_graph,
                                  sampler=sampler, num_inference_steps=steps, guidance_scale=guidance_scale, seed=seed,
                                  classifier_path=classifier or None)


@task(name="write-floorplan-report", cache_policy=NO_CACHE, **IO_RETRIES)
def write_report_task(run_dir: str, title: str, tables: list[tuple[str, dict]], rows: list[dict[str, Any]]) -> str:
    """``run_dir/index.html``: the metric tables and the plans (SVG, the requested graph beside each)."""
    run = Path(run_dir)
    report = Report(title, tables=list(tables))
    if rows:
        images = [(str(Path(r["path"]).resolve().relative_to(run.resolve())),
                   f"plan {r['index']}: GED {r['compatibility']:g}, doors {r['doors']}") for r in rows]
        report.rows.append(GalleryRow("plans (requested graph beside each; dashed red: a door that did not fit)",
                                      images, kind="svg"))
    return str(report.write(run))

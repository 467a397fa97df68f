"""The floorplan family's rows of the composed flow (``make demo``): plans for the brief's bubble graph.

The brief's rooms (name, type, area) and adjacency become a :class:`generators.floorplan.BubbleGraph`;
``num_samples`` plans are drawn and the most compatible one (smallest graph edit distance to the
brief, then most feasible doors, then least overlap) is kept for the later steps.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task

from ..common import IO_RETRIES
from ..gpu import device_slot
from ..registry import StepContext, StepResult
from ..report import GalleryRow
from .params import FloorplanSection
from .tasks import floorplan_generator, plan_rows


def brief_graph(brief: Any) -> Any:
    """The brief's rooms and adjacency as a bubble graph (room names are the ids, area_m2 the target areas)."""
    from generators.floorplan import BubbleGraph, Room

    rooms = tuple(Room(r.name, r.room_type, float(r.area_m2)) for r in brief.rooms)
    return BubbleGraph(rooms, tuple((a, b) for a, b in brief.adjacency), name="brief")


@task(name="floorplan-gallery", **IO_RETRIES)
def floorplan_gallery_task(section: FloorplanSection, brief: Any, run_dir: str, seed: int,
                           device: str = "cpu") -> dict[str, Any]:
    """SVGs under ``run_dir/floorplan``: every candidate, and the kept plan; returns rows and the kept plan."""
    run = Path(run_dir)
    graph = brief_graph(brief)
    with device_slot(device):
        gen = floorplan_generator(section.checkpoint, device)
        out = gen(graph=graph, num_samples=section.num_samples, num_inference_steps=section.num_inference_steps,
                  sampler=section.sampler, guidance_scale=section.guidance_scale, seed=seed)
    paths = [p for p in out.save(run / "floorplan", prefix="candidate") if p.suffix == ".svg"]
    rows = plan_rows(out.plans, paths)
    best = min(rows, key=lambda r: (r["compatibility"], -int(r["doors"].split("/")[0]), r["overlap"], r["index"]))
    kept = out.plans[best["index"]]
    [svg] = kept.save(run / "floorplan" / "plan.svg")
    [plan_json] = kept.save(run / "floorplan" / "plan.json")
    gallery = [
        GalleryRow("floorplan for the brief (the requested graph beside it)",
                   [(str(svg.relative_to(run)), f"most compatible of {len(rows)}: GED {best['compatibility']:g}, "
                                                f"doors {best['doors']}")], kind="svg"),
        GalleryRow("all candidates", [(str(Path(r["path"]).relative_to(run)),
                                       f"GED {r['compatibility']:g}, doors {r['doors']}") for r in rows], kind="svg"),
    ]
    names = [r.id for r in graph.rooms]
    return {"rows": [g.to_dict() for g in gallery],
            "outputs": {"plan": str(plan_json), "compatibility": best["compatibility"],
                        "rooms": {str(n): [list(p) for p in poly] for n, (_, poly) in zip(names, kept.rooms)}}}


def run_gallery_step(section: FloorplanSection, context: StepContext) -> StepResult:
    """The composed flow's ``floorplans`` step: plans for the brief, the most compatible kept."""
    result = floorplan_gallery_task(section, context.brief, context.run_dir, context.seed)
    return StepResult(result["rows"], result["outputs"])

"""The composed flow: one brief (bubble graph + prompts) -> every registered family's steps -> one run folder, one report.

Each family contributes its steps (``ComposedStep``, ordered by ``order`` across families, so that
floorplans come before the room objects, their previews before the upscaling, and so on) and a
section of the parameters, nested under its name in ``ComposedParams``. A step sees the brief, the
run folder and the outputs of the steps before it (:class:`flows.registry.StepContext`), and returns
gallery rows for the one report. A step whose checkpoint is missing or damaged is skipped with a
note saying so, and the run goes on. The flow names no family: it iterates the registry.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from pydantic import Field, create_model

from generators.core.checkpoint import CheckpointError

from . import registry
from .artifacts import artifact_key, publish_report
from .common import IO_RETRIES, family_flow, run_dir_task
from .params import Brief, FlowParams, Room, seed_field
from .report import GalleryRow, Report


def default_brief() -> Brief:
    return Brief(
        rooms=[Room(name="living", room_type="living_room", area_m2=24, object_prompt="a sofa"),
               Room(name="kitchen", room_type="kitchen", area_m2=10, object_prompt="a table"),
               Room(name="bed", room_type="bedroom", area_m2=14, object_prompt="a bed"),
               Room(name="bath", room_type="bathroom", area_m2=5, object_prompt="a bathtub")],
        adjacency=[("living", "kitchen"), ("living", "bed"), ("living", "bath")],
        style_prompt="scandinavian, light wood",
        video_prompt="the digit 3 moves to the right",
    )


class ComposedBase(FlowParams):
    """The fields every composed run has; each family adds its section (see :func:`composed_params_model`)."""

    brief: Brief = Field(default_factory=default_brief)
    steps: list[str] = Field(default_factory=list, description="run only these steps (empty: every step)")
    seed: int = seed_field()
    output_root: str = Field("outputs")


def composed_params_model(families: list[registry.Family] | None = None) -> type[ComposedBase]:
    """``ComposedParams``: the base fields plus one section per family that has one, named after it."""
    sections = {f.name.replace("-", "_"): (f.composed_section, Field(default_factory=f.composed_section))
                for f in (families if families is not None else registry.families()) if f.composed_section}
    return create_model("ComposedParams", __base__=ComposedBase, __doc__=ComposedBase.__doc__, **sections)


def plan(families: list[registry.Family] | None = None) -> list[tuple[registry.Family, registry.ComposedStep]]:
    """Every (family, step) in run order."""
    pairs = [(f, s) for f in (families if families is not None else registry.families()) for s in f.composed_steps]
    return sorted(pairs, key=lambda fs: fs[1].order)


@task(name="write-composed-report", cache_policy=NO_CACHE, **IO_RETRIES)
def write_composed_report(run_dir: str, brief: Brief, status: list[dict[str, str]], rows: list[dict[str, Any]]) -> str:
    """``run_dir/index.html``: the brief, each step's status, then every gallery row."""
    report = Report("mmdiff composed run")
    report.tables.append(("brief", {
        "style prompt": brief.style_prompt or "(none)",
        "video prompt": brief.video_prompt or "(none)",
        "rooms": ", ".join(f"{r.name} ({r.room_type}, {r.area_m2:g} m2)" for r in brief.rooms),
        "adjacency": ", ".join(f"{a}-{b}" for a, b in brief.adjacency) or "(none)",
    }))
    report.tables.append(("steps", {s["step"]: s["status"] for s in status}))
    report.rows.extend(GalleryRow.from_dict(r) for r in rows)
    return str(report.write(run_dir))


def run_composed(params: ComposedBase, families: list[registry.Family] | None = None) -> dict[str, Any]:
    """The composed flow's body: every step in order, then the report (call it inside a flow run)."""
    run_dir = run_dir_task(params.output_root, "composed")
    status: list[dict[str, str]] = []
    rows: list[dict[str, Any]] = []
    outputs: dict[str, Any] = {}
    for fam, step in plan(families):
        if params.steps and step.name not in params.steps:
            status.append({"step": step.name, "family": fam.name, "status": "skipped: not in params.steps"})
            continue
        section = getattr(params, fam.name.replace("-", "_"), None)
        context = registry.StepContext(run_dir, params.brief, params.seed, dict(outputs))
        try:
            result = step.run(section, context)
        except CheckpointError as exc:  # e.g. a family whose shipped checkpoint is not trained yet
            reason = f"skipped: its checkpoint is not available ({exc})"
            print(f"step {step.name}: {reason}")
            status.append({"step": step.name, "family": fam.name, "status": reason})
            rows.append(GalleryRow(f"{step.name} ({fam.name})", [], reason).to_dict())
            continue
        rows.extend(result.rows)
        outputs[step.name] = result.outputs
        status.append({"step": step.name, "family": fam.name, "status": "ran"})
    report = write_composed_report(run_dir, params.brief, status, rows)
    publish_report(artifact_key("composed-report"), "composed run", {s["step"]: s["status"] for s in status},
                   Path(run_dir), status)
    return {"run_dir": run_dir, "report": report, "steps": status, "flow_run_id": str(flow_run.id)}


ComposedParams = composed_params_model()


@family_flow("composed")
def composed_flow(params: ComposedParams = ComposedParams()) -> dict[str, Any]:  # type: ignore[valid-type]
    """From one brief, run every registered family's steps into one run folder with one report."""
    return run_composed(params)

"""The point-cloud family's orchestration and its registry record (:data:`FAMILY`).

Flows and tasks are imported only when used, so that the CLI starts without importing Prefect.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from ..common import lazy
from ..registry import Command, ComposedStep, Family, StepContext, StepResult
from . import params as p


def _lazy(module: str, name: str) -> Callable[..., Any]:
    return lazy(f"flows.pointcloud.{module}", name)


def _load(path: str, device: str) -> Any:
    from generators.pointcloud import PointCloudGenerator

    return PointCloudGenerator.from_pretrained(path, device=device)


def _deployments(defaults: Mapping[str, Any]) -> list[Any]:
    from .deployments import build_deployments

    return build_deployments(defaults)


def _warm_flows() -> tuple[Any, ...]:
    from .flows import evaluate_pointcloud_flow, generate_pointcloud_flow

    return (generate_pointcloud_flow, evaluate_pointcloud_flow)


def _room_objects(section: p.PointCloudSection, context: StepContext) -> StepResult:
    from .gallery import run_room_objects

    return run_room_objects(section, context)


def _previews(section: p.PointCloudSection, context: StepContext) -> StepResult:
    from .gallery import run_previews

    return run_previews(section, context)


c = "commands"
FAMILY = Family(
    name="pointcloud",
    description="LION-style point clouds (hierarchical VAE + two latent priors) refined into watertight meshes",
    commands=(
        Command("train", "pointcloud", p.TrainPointCloudParams, _lazy(c, "train_pointcloud"),
                "Train the VAE, the global prior and the point prior (resumable).",
                out="checkpoint folder (resumes; default: --out-dir)", cli_skip=("output_root",)),
        Command("generate", "pointcloud", p.GeneratePointCloudParams, _lazy(c, "generate_pointcloud"),
                "Shapes from labels and/or prompts; the --out extension picks the format (.glb, .obj, .stl, .ply).",
                out="a file (.glb .obj .stl: mesh; .ply .npy: points; .png: preview) or a folder",
                cli_skip=("output_root", "refine_method", "refine_resolution"),
                out_formats=("", ".glb", ".obj", ".stl", ".ply", ".npy", ".png")),
        Command("evaluate", "pointcloud", p.EvaluatePointCloudParams, _lazy(c, "evaluate_pointcloud"),
                "MMD / COV / 1-NNA (CD, EMD) per category on held-out shapes, and mesh quality.",
                cli_skip=("output_root",)),
        Command("refine", None, p.RefineParams, _lazy(c, "refine_pointcloud"),
                "Refine any point cloud (PLY, XYZ, NPY) into a mesh.", out="mesh file (.obj .glb .stl .ply)",
                out_required=True, out_formats=(".obj", ".glb", ".stl", ".ply", ".png"), arguments=("points",)),
    ),
    deployments=_deployments,
    warm_flows=_warm_flows,
    loaders={"pointcloud": _load},
    preload=(),
    composed_section=p.PointCloudSection,
    composed_steps=(
        ComposedStep("room-objects", "one object per room of the brief, refined into a mesh", 300, _room_objects),
        ComposedStep("previews", "three headless views of every room object", 310, _previews),
    ),
    checkpoints={"pointcloud": p.POINTCLOUD_CHECKPOINT},
    code_paths=("generators/core", "generators/pointcloud", "evaluation/pointcloud.py"),
)

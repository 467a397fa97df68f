"""Parameters of the floorplan family's commands and flows (the CLI's options and the dashboard's forms)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from ..params import DEVICE_PATTERN, FlowParams, MixedPrecision, Sampler, guidance_field, seed_field

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINTS = ROOT / "data" / "checkpoints"
FLOORPLAN_CHECKPOINT = str(CHECKPOINTS / "floorplan")
FLOORPLAN_CLASSIFIER_CHECKPOINT = str(CHECKPOINTS / "floorplan-classifier")
SAMPLE_GRAPH = str(ROOT / "data" / "samples" / "graphs" / "two_bedroom.json")
FloorplanPresetName = Literal["tiny", "small", "base"]
MAX_PLANS = 256


def check_graph_file(path: str) -> str:
    """A readable bubble-graph JSON file (the schema of ``data/samples/graphs/README.md``), checked up front."""
    from generators.floorplan import BubbleGraph

    BubbleGraph.from_json(path)  # ValueError naming the file and the problem
    return path


class FloorplanSamplingParams(FlowParams):
    """The sampling keywords of the generator contract, shared by the floorplan commands."""

    sampler: Sampler = "ddpm"
    num_inference_steps: int = Field(50, ge=1, le=1000, description="sampler steps")
    guidance_scale: float = guidance_field(2.0)
    seed: int = seed_field()


class TrainFloorplanParams(FlowParams):
    """``train floorplan``: procedural (or RPLAN) plans -> training (reused by fingerprint, or resumed) -> publish."""

    preset: FloorplanPresetName = Field("tiny", description="tiny (tests), small (shipped, CPU), base (GPU)")
    max_steps: int | None = Field(None, ge=1, le=1_000_000, description="override the preset's number of steps")
    seed: int = seed_field()
    mixed_precision: MixedPrecision = "no"
    checkpoint_every: int | None = Field(None, ge=1, le=1_000_000, description="steps between resumable checkpoints")
    device: Literal["cpu", "cuda"] | None = Field(None, description="cpu forces the CPU; empty: GPU if any")
    rplan_dir: str | None = Field(None, description="train on this folder of RPLAN JSON files instead")
    cache_root: str = Field("outputs/checkpoints/cache", description="where fingerprinted training folders live")
    publish_dir: str = Field("outputs/checkpoints/floorplan", description="where the finished checkpoint is published")
    eval_graphs: int = Field(0, ge=0, le=10_000, description="held-out graphs for the evaluation step (0 skips it)")
    eval_steps: int = Field(50, ge=1, le=1000)
    output_root: str = Field("outputs", description="run folders are created here")


class GenerateFloorplanParams(FloorplanSamplingParams):
    """``generate floorplan``: a bubble-graph JSON file -> plans as SVG, PNG and JSON."""

    graph: str = Field(SAMPLE_GRAPH, description="bubble-graph JSON file (see data/samples/graphs/README.md)")
    num: int = Field(4, ge=1, le=MAX_PLANS, description="plans to generate")
    refine: bool = Field(True, description="snap, remove overlaps and place doors (False: the raw corners)")
    checkpoint: str = Field(FLOORPLAN_CHECKPOINT, description="floorplan checkpoint folder")
    device: str = Field("cpu", pattern=DEVICE_PATTERN, description="cpu, cuda or cuda:N")
    output_root: str = Field("outputs", description="run folders are created here")

    _graph_file = field_validator("graph")(classmethod(lambda cls, v: check_graph_file(v)))


class EvaluateFloorplanParams(FloorplanSamplingParams):
    """``evaluate floorplan``: compatibility, overlap, room match, door feasibility, diversity, realism."""

    checkpoint: str = Field(FLOORPLAN_CHECKPOINT, description="floorplan checkpoint folder")
    num_graphs: int = Field(50, ge=1, le=10_000, description="held-out graphs of 5-8 rooms")
    samples_per_graph: int = Field(4, ge=1, le=64)
    classifier: str = Field(FLOORPLAN_CLASSIFIER_CHECKPOINT, description="plan classifier folder ('' skips realism)")
    device: str = Field("cpu", pattern=DEVICE_PATTERN)
    write_metrics: bool = Field(False, description="write metrics.json into the checkpoint folder")
    output_root: str = Field("outputs")


class TrainFloorplanClassifierParams(FlowParams):
    """``train floorplan-classifier``: the realism feature network, on rendered procedural plans."""

    steps: int = Field(1500, ge=1, le=1_000_000)
    num_plans: int = Field(4000, ge=10, le=1_000_000)
    seed: int = seed_field()


class FloorplanSection(FlowParams):
    """The floorplan family's section of the composed flow: plans for the brief's bubble graph."""

    checkpoint: str = Field(FLOORPLAN_CHECKPOINT)
    num_samples: int = Field(4, ge=1, le=64, description="plans drawn; the most compatible one is kept")
    sampler: Sampler = "ddpm"
    num_inference_steps: int = Field(50, ge=1, le=1000)
    guidance_scale: float = guidance_field(2.0)

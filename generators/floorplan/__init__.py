"""Graph-conditioned floorplan generation (after HouseDiffusion, Shabani et al. 2023) on the shared core."""
from .evaluate import benchmark_floorplan, evaluate_floorplan, train_floorplan_classifier
from .generator import FloorplanGenerator
from .graph import FLOORPLAN_ROOM_TYPES, BubbleGraph, GraphWarning, Room
from .model import PRESETS, FloorplanTransformer, build_model
from .plan import Door, Floorplan, FloorplanOutput
from .refine import RefineConfig, refine_plan
from .train import train_floorplan

__all__ = [
    "BubbleGraph", "Door", "benchmark_floorplan", "FLOORPLAN_ROOM_TYPES", "Floorplan", "FloorplanGenerator", "FloorplanOutput",
    "FloorplanTransformer", "GraphWarning", "PRESETS", "RefineConfig", "Room", "build_model", "evaluate_floorplan",
    "refine_plan", "train_floorplan", "train_floorplan_classifier",
]

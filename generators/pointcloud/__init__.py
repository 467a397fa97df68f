"""LION-style point clouds (Zeng et al. 2022) with refinement into meshes; see ``generator.py``."""
from .generator import PointCloudGenerator
from .output import MeshOutput, PointCloudOutput
from .presets import PRESETS
from .refine import RefineOptions, refine
from .train import train_pointcloud

__all__ = ["MeshOutput", "PRESETS", "PointCloudGenerator", "PointCloudOutput", "RefineOptions", "refine", "train_pointcloud"]

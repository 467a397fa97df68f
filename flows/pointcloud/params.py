"""Parameters of the point-cloud family's commands and flows (the CLI's options and the dashboard's forms)."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from ..params import DEVICE_PATTERN, FlowParams, MixedPrecision, Sampler, guidance_field, seed_field

ROOT = Path(__file__).resolve().parents[2]
POINTCLOUD_CHECKPOINT = str(ROOT / "data" / "checkpoints" / "pointcloud-shapes")
MAX_SHAPES = 256
RefineMethod = Literal["closing", "poisson"]
PointCloudPresetName = Literal["tiny", "small", "small-fixed-h", "small-fixed-h-long", "small-fixed-h-wide",
                              "small-local", "small-local-prior", "small-fixed-h-sharp",
                              "small-fixed-h-sharp-long", "small-fixed-h-sharp-subsets",
                              "small-fixed-h-sharp-subsets-long", "small-fixed-h-sharp-subsets-xlong",
                              "small-fixed-h-sharp-annealed", "small-fixed-h-sharp-means", "small-fixed-h-sharp-deep",
                              "base"]
StageName = Literal["vae", "global_prior", "point_prior"]
# The object each room type of the brief gets (the room-objects step).
ROOM_OBJECTS: dict[str, str] = {
    "living_room": "sofa", "bedroom": "bed", "bathroom": "bathtub", "kitchen": "table", "dining_room": "table",
    "study_room": "chair", "storage": "shelf", "balcony": "chair", "corridor": "lamp", "entrance": "shelf",
}


class PointCloudSampling(FlowParams):
    """The sampling keywords of the generator contract."""

    sampler: Sampler = "dpmsolver++"
    num_inference_steps: int = Field(25, ge=1, le=1000, description="sampler steps")
    guidance_scale: float = guidance_field(2.0)
    seed: int = seed_field()


class TrainPointCloudParams(FlowParams):
    """Parameters of ``train_pointcloud``: VAE, global prior, point prior (each resumable) into ``out``."""

    preset: PointCloudPresetName = Field(
        "tiny", description="model size: tiny (tests), small (the CPU budget), small-fixed-h (small with the latent "
        "points' spread fixed), small-fixed-h-long (its priors trained twice as long), small-fixed-h-wide (its point "
        "prior twice as wide), small-local (small-fixed-h-wide with 16-nearest-neighbour "
        "context in the VAE and the point prior), small-local-prior (small-fixed-h-wide with that context in the point prior "
        "only), small-fixed-h-sharp (small-fixed-h-wide with the latent points' spread 0.06 instead of 0.1), small-fixed-h-sharp-long (its point prior trained 14,000 steps with a cosine "
        "learning-rate decay), small-fixed-h-sharp-subsets (that prior on batches of 64 shapes x 128 random latent "
        "points), small-fixed-h-sharp-subsets-long (that prior's cosine stretched to 30,000 steps), "
        "small-fixed-h-sharp-subsets-xlong (stretched again, to 50,000), small-fixed-h-sharp-annealed (a fine-tune of "
        "a finished xlong folder with --finetune-stages: the VAE annealed on a cosine, then both priors over it), "
        "small-fixed-h-sharp-means (from a finished annealed folder: its VAE kept, its point prior fine-tuned on the latent "
        "points' posterior means instead of samples, the global prior trained anew: the shipped checkpoint), "
        "small-fixed-h-sharp-deep (from a finished means folder: its point prior grown from 4 to 6 blocks and "
        "fine-tuned, the rest kept), base (GPU)")
    max_steps: int | None = Field(None, ge=1, le=1_000_000, description="override every stage's number of steps")
    seed: int = seed_field()
    mixed_precision: MixedPrecision = "no"
    checkpoint_every: int | None = Field(None, ge=1, le=1_000_000, description="steps between resumable checkpoints")
    device: str | None = Field(None, pattern=DEVICE_PATTERN, description="cpu, cuda or cuda:N (default: automatic)")
    data_root: str | None = Field(None, description="a PointFlow ShapeNet folder instead of the procedural shapes")
    init_checkpoint: str | None = Field(None, description="a published folder to take the kept or fine-tuned stages from")
    keep_stages: list[StageName] = Field(default_factory=list, max_length=3, description="stages taken finished from "
                                         "init_checkpoint (their configuration must be the preset's); the rest train")
    finetune_stages: list[StageName] = Field(default_factory=list, max_length=3, description="stages that start from "
                                             "init_checkpoint's weights and train their preset budget (fine-tuning)")
    out_dir: str = Field("outputs/checkpoints/pointcloud-shapes", description="checkpoint folder (resumes)")
    output_root: str = Field("outputs", description="run folders are created here")


class GeneratePointCloudParams(PointCloudSampling):
    """Parameters of ``generate_pointcloud``: one shape per label and/or prompt, refined into a mesh."""

    label: list[str] = Field(default_factory=list, max_length=MAX_SHAPES, description="category names, one shape each")
    prompt: list[str] = Field(default_factory=list, max_length=MAX_SHAPES, description="text prompts, one shape each")
    num_points: int = Field(2048, ge=16, le=100_000, description="points per cloud")
    refine_method: RefineMethod = "closing"
    refine_resolution: int = Field(112, ge=16, le=512, description="voxels along the largest side (closing)")
    checkpoint: str = Field(POINTCLOUD_CHECKPOINT, description="generator checkpoint folder")
    device: str = Field("cpu", pattern=DEVICE_PATTERN, description="cpu, cuda or cuda:N")
    output_root: str = Field("outputs", description="run folders are created here")

    @field_validator("prompt")
    @classmethod
    def _prompts_not_empty(cls, prompts: list[str]) -> list[str]:
        if any(not p.strip() for p in prompts):
            raise ValueError("prompt entries must be non-empty text")
        return prompts


class EvaluatePointCloudParams(PointCloudSampling):
    """Parameters of ``evaluate_pointcloud``: MMD / COV / 1-NNA (CD, EMD) per category, mesh quality."""

    guidance_scale: float = guidance_field(1.0)
    checkpoint: str = Field(POINTCLOUD_CHECKPOINT, description="generator checkpoint folder")
    per_category: int = Field(32, ge=2, le=1000, description="generated and held-out shapes per category")
    num_points: int = Field(2048, ge=16, le=10_000, description="points per cloud for the Chamfer metrics")
    emd_points: int = Field(512, ge=0, le=2048, description="points per cloud for exact EMD (0 skips EMD)")
    refine_per_category: int = Field(4, ge=0, le=100, description="clouds refined per category for mesh quality")
    breakdown: bool = Field(False, description="also measure validation shapes, their VAE reconstructions (from the "
                            "posterior means and from a posterior sample) and the point prior given their global latents "
                            "against the same held-out shapes (which stage loses)")
    write_metrics: bool = Field(False, description="write metrics.json into the checkpoint folder")
    output_root: str = Field("outputs", description="run folders are created here")


class RefineParams(FlowParams):
    """Parameters of ``refine``: any user's cloud (PLY, XYZ, NPY) -> a mesh (extension of ``--out``)."""

    points: str = Field(..., min_length=1, description="the cloud: .ply, .xyz, .txt or .npy")
    method: RefineMethod = "closing"
    resolution: int = Field(112, ge=16, le=512, description="voxels along the largest side (closing)")
    simplify_faces: int | None = Field(None, ge=4, le=10_000_000, description="target faces of decimation")


class PointCloudSection(FlowParams):
    """The point-cloud family's section of the composed run: one object per room, refined and previewed."""

    checkpoint: str = Field(POINTCLOUD_CHECKPOINT, description="generator checkpoint folder")
    num_points: int = Field(2048, ge=16, le=100_000)
    num_inference_steps: int = Field(25, ge=1, le=1000)
    sampler: Sampler = "dpmsolver++"
    guidance_scale: float = guidance_field(2.0)
    max_objects: int = Field(8, ge=1, le=32, description="rooms that get an object, in the brief's order")
    refine_resolution: int = Field(112, ge=16, le=512, description="voxels along the largest side (closing)")
    preview_size: int = Field(192, ge=32, le=1024, description="pixels per preview view")

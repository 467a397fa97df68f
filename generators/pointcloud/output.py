"""What the point-cloud family returns: clouds (saved as PLY points) and refined meshes (PLY/OBJ/GLB/STL).

``PointCloudOutput.save("chair.glb")`` refines the cloud and writes the mesh; ``save("x.ply")`` writes
the points; ``save("dir/")`` writes, per shape, the points, the refined mesh (PLY) and a PNG preview.
Every file goes through the core's atomic writer, so nothing half-written is left at the path.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import ClassVar, Iterator

import numpy as np
import trimesh

from generators.core.pipeline import GeneratorOutput, png_bytes

from .refine import RefineOptions, refine
from .render import render_views

MESH_FORMATS: tuple[str, ...] = (".obj", ".glb", ".stl", ".ply")


def points_ply_bytes(points: np.ndarray) -> bytes:
    """A binary PLY of vertices only (N, 3)."""
    return trimesh.PointCloud(np.asarray(points, np.float64)).export(file_type="ply")


def mesh_bytes(mesh: trimesh.Trimesh, suffix: str) -> bytes:
    """``mesh`` encoded as ``suffix`` (.obj, .glb, .stl, .ply) by trimesh."""
    if suffix not in MESH_FORMATS:
        raise ValueError(f"mesh format must be one of {MESH_FORMATS}, got {suffix!r}")
    data = mesh.export(file_type=suffix[1:])
    return data.encode() if isinstance(data, str) else bytes(data)


def preview_png(mesh: trimesh.Trimesh, size: int = 192) -> bytes:
    """Three shaded views of ``mesh`` side by side, as PNG bytes."""
    return png_bytes(render_views(mesh, size))


@dataclass
class MeshOutput(GeneratorOutput):
    """Refined meshes; ``save`` picks the format from the extension (.ply is a mesh here), .png a preview."""

    meshes: list[trimesh.Trimesh]
    file_formats: ClassVar[tuple[str, ...]] = MESH_FORMATS + (".png",)

    def _one(self) -> trimesh.Trimesh:
        if len(self.meshes) != 1:
            raise ValueError(f"{len(self.meshes)} meshes cannot go into one file; give a folder path instead")
        return self.meshes[0]

    def _encode(self, suffix: str) -> bytes:
        return preview_png(self._one()) if suffix == ".png" else mesh_bytes(self._one(), suffix)

    def _items(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        for i, mesh in enumerate(self.meshes):
            yield f"{prefix}_{i:03d}_mesh.ply", mesh_bytes(mesh, ".ply")
            yield f"{prefix}_{i:03d}.png", preview_png(mesh)


@dataclass
class PointCloudOutput(GeneratorOutput):
    """Generated clouds: float32 (B, N, 3), with the labels or prompts they were asked for.

    ``.ply`` and ``.npy`` hold the points; ``.obj``, ``.glb``, ``.stl`` the refined mesh; ``.png`` its
    preview; a folder gets ``<prefix>_000_points.ply``, ``<prefix>_000_mesh.ply`` and ``<prefix>_000.png``.
    """

    points: np.ndarray
    labels: list[str | None] = field(default_factory=list)
    prompts: list[str | None] = field(default_factory=list)
    refine_options: RefineOptions = field(default_factory=RefineOptions)
    file_formats: ClassVar[tuple[str, ...]] = (".ply", ".npy", ".obj", ".glb", ".stl", ".png")
    _meshes: list[trimesh.Trimesh] | None = field(default=None, repr=False)

    def to_mesh(self) -> list[trimesh.Trimesh]:
        """One refined mesh per cloud (:func:`~generators.pointcloud.refine.refine`), computed once."""
        if self._meshes is None:
            self._meshes = [refine(p, self.refine_options).mesh for p in self.points]
        return self._meshes

    def _single(self) -> int:
        if len(self.points) != 1:
            raise ValueError(f"{len(self.points)} clouds cannot go into one file; give a folder path instead")
        return 0

    def _encode(self, suffix: str) -> bytes:
        i = self._single()
        if suffix == ".ply":
            return points_ply_bytes(self.points[i])
        if suffix == ".npy":
            buf = io.BytesIO()
            np.save(buf, self.points[i].astype(np.float32), allow_pickle=False)
            return buf.getvalue()
        return MeshOutput(self.to_mesh())._encode(suffix)

    def _items(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        meshes = self.to_mesh()
        for i, pts in enumerate(self.points):
            yield f"{prefix}_{i:03d}_points.ply", points_ply_bytes(pts)
            yield f"{prefix}_{i:03d}_mesh.ply", mesh_bytes(meshes[i], ".ply")
            yield f"{prefix}_{i:03d}.png", preview_png(meshes[i])

"""Refinement of a point cloud into a surface mesh, for generated clouds and any user's cloud.

Two reconstructions, measured against each other by ``evaluate_refinement``:

- ``"closing"`` (default): a morphological closing of the points in a distance field. The union of
  balls of radius r around the points (r from the sampling density) is filled where it encloses
  space, and eroded again by r - delta using the exact distance to its outer boundary; marching
  cubes (Lorensen & Cline 1987) extracts the zero level. The result is the boundary of a solid,
  so it is watertight, and thin parts (legs, poles, wings) survive because a closing keeps every
  part thicker than 2 delta (Serra 1982, ch. 2), unlike Poisson reconstruction's smoothing.
- ``"poisson"``: screened Poisson reconstruction (Kazhdan & Hoppe 2013) on open3d normals,
  oriented by a consistent tangent plane, with low-density vertices trimmed - the baseline.

Both are cleaned with trimesh (degenerate faces, tiny disconnected pieces, holes, consistent
normals), optionally simplified (quadric decimation, Garland & Heckbert 1997), and mapped back to
the input's coordinates through the kept :class:`~generators.pointcloud.data.Normalization`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from scipy import ndimage
from scipy.spatial import cKDTree

from generators.core.validation import check_finite, check_int

from .data import Normalization, check_points, normalize

METHODS: tuple[str, ...] = ("closing", "poisson")


@dataclass(frozen=True)
class RefineOptions:
    """Knobs of :func:`refine`; distances are in the normalised frame (largest half-extent 1)."""

    method: str = "closing"
    resolution: int = 112            # voxels along the largest side of the closing grid
    radius: float | None = None      # closing radius r; default 3 x the mean nearest-neighbour spacing
    thickness: float = 0.01          # delta: half the thickness kept for open sheets
    min_component_area: float = 0.02  # pieces with less than this fraction of the area are dropped
    simplify_faces: int | None = None  # target face count of quadric decimation; None keeps all
    poisson_depth: int = 8
    density_quantile: float = 0.02  # Poisson: vertices below this density quantile are trimmed

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        check_int("resolution", self.resolution, 16, 512)
        check_finite("thickness", self.thickness, 0.0, 0.2)
        check_finite("min_component_area", self.min_component_area, 0.0, 0.5)
        if self.radius is not None:
            check_finite("radius", self.radius, 1e-4, 1.0)
        if self.simplify_faces is not None:
            check_int("simplify_faces", self.simplify_faces, 4)
        check_int("poisson_depth", self.poisson_depth, 4, 12)
        check_finite("density_quantile", self.density_quantile, 0.0, 0.5)


@dataclass
class RefinedMesh:
    """A refined mesh in the input's coordinates and the normalisation it was built in."""

    mesh: trimesh.Trimesh
    normalization: Normalization
    method: str


def closing_radius(points: np.ndarray, factor: float = 3.0) -> float:
    """factor x the mean nearest-neighbour distance: covers the gaps of a uniform random sampling."""
    d, _ = cKDTree(points).query(points, k=2)
    return float(factor * d[:, 1].mean())


def _grid(r: float, resolution: int) -> tuple[np.ndarray, float, tuple[int, int, int]]:
    """Origin, voxel size and shape of a grid over [-1 - r, 1 + r]^3 plus two voxels of padding."""
    h = (2 + 2 * r) / resolution
    n = resolution + 5
    origin = np.full(3, -1 - r - 2 * h)
    return origin, h, (n, n, n)


def _exterior(outside: np.ndarray, leak_voxels: int) -> np.ndarray:
    """The part of ``outside`` reached from the grid border, not through holes narrower than 2 * leak_voxels.

    A random sampling leaves gaps wider than the closing radius here and there; the empty space
    inside a solid would leak out through them. The flood fill runs on ``outside`` opened by a ball
    of ``leak_voxels`` (erosion, fill from the border, dilation back; Serra 1982), which closes such holes.
    """
    ball = ndimage.generate_binary_structure(3, 1)
    core = ndimage.binary_erosion(outside, ball, iterations=leak_voxels, border_value=1) if leak_voxels else outside
    labels, _ = ndimage.label(core)
    border = np.unique(np.concatenate([labels[[0, -1]].ravel(), labels[:, [0, -1]].ravel(), labels[:, :, [0, -1]].ravel()]))
    seed = np.isin(labels, border[border > 0])
    return ndimage.binary_dilation(seed, ball, iterations=leak_voxels) & outside if leak_voxels else seed


def _closing_field(points: np.ndarray, r: float, delta: float, resolution: int,
                   leak_voxels: int = 2) -> tuple[np.ndarray, np.ndarray, float]:
    """phi > 0 inside the closed solid: (phi, grid origin, voxel size)."""
    origin, h, shape = _grid(r, resolution)
    axes = [origin[i] + h * np.arange(shape[i]) for i in range(3)]
    centres = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    dist_p, _ = cKDTree(points).query(centres, k=1)
    dist_p = dist_p.reshape(shape)
    exterior = _exterior(dist_p > r, leak_voxels)
    # the outer offset surface {d = r} bounding the exterior, by marching cubes on the filled field
    from skimage.measure import marching_cubes

    filled = np.where(exterior | (dist_p <= r), dist_p - r, -h)  # enclosed cavities count as solid
    verts, _, _, _ = marching_cubes(filled, level=0.0, spacing=(h, h, h))
    band = dist_p < 2 * r + 2 * h
    signed = np.where(exterior, -1.0, 1.0) * (2 * r + 4 * h)
    d_surface, _ = cKDTree(verts + origin).query(centres[band.ravel()], k=1)
    signed[band] = np.where(exterior[band], -d_surface, d_surface)
    return signed - (r - delta), origin, h


def _closing_mesh(points: np.ndarray, options: RefineOptions) -> trimesh.Trimesh:
    from skimage.measure import marching_cubes

    r = options.radius or closing_radius(points)
    delta = min(options.thickness, 0.5 * r)
    phi, origin, h = _closing_field(points, r, delta, options.resolution)
    if phi.max() <= 0:
        raise ValueError("refinement found no solid: the cloud is too sparse for the closing radius; "
                         "pass RefineOptions(radius=...) larger than the gaps between points")
    verts, faces, _, _ = marching_cubes(phi, level=0.0, spacing=(h, h, h))
    return trimesh.Trimesh(verts + origin, faces[:, ::-1], process=True)


def _poisson_mesh(points: np.ndarray, options: RefineOptions) -> trimesh.Trimesh:
    import open3d as o3d

    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    pcd.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(knn=30))
    pcd.orient_normals_consistent_tangent_plane(15)
    mesh, density = o3d.geometry.TriangleMesh.create_from_point_cloud_poisson(pcd, depth=options.poisson_depth)
    density = np.asarray(density)
    if options.density_quantile > 0:
        mesh.remove_vertices_by_mask(density < np.quantile(density, options.density_quantile))
    return trimesh.Trimesh(np.asarray(mesh.vertices), np.asarray(mesh.triangles), process=True)


def clean_mesh(mesh: trimesh.Trimesh, min_component_area: float = 0.02) -> trimesh.Trimesh:
    """Drop degenerate faces and small disconnected pieces, fill small holes, make normals consistent."""
    mesh = mesh.copy()
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.remove_unreferenced_vertices()
    mesh.merge_vertices()
    parts = mesh.split(only_watertight=False)
    if len(parts) > 1:
        total = sum(p.area for p in parts)
        keep = [p for p in parts if p.area >= min_component_area * total] or [max(parts, key=lambda p: p.area)]
        mesh = trimesh.util.concatenate(keep)
    trimesh.repair.fill_holes(mesh)
    trimesh.repair.fix_normals(mesh)
    return mesh


def simplify(mesh: trimesh.Trimesh, target_faces: int) -> trimesh.Trimesh:
    """Quadric edge-collapse decimation (Garland & Heckbert 1997) through open3d."""
    import open3d as o3d

    if len(mesh.faces) <= target_faces:
        return mesh
    o3 = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(mesh.vertices), o3d.utility.Vector3iVector(mesh.faces))
    o3 = o3.simplify_quadric_decimation(target_number_of_triangles=int(target_faces))
    return trimesh.Trimesh(np.asarray(o3.vertices), np.asarray(o3.triangles), process=True)


def refine(points: np.ndarray, options: RefineOptions = RefineOptions(), seed: int = 0) -> RefinedMesh:
    """Reconstruct a surface mesh from ``points`` (N, 3) in any coordinates.

    Args:
        points: the cloud; NaN/inf, collinear or all-equal clouds and fewer than 16 points are refused.
        options: reconstruction method and its knobs.
        seed: fixes the subsampling of very large clouds.
    Returns:
        The cleaned mesh in the input's coordinates (the normalisation is applied and inverted).
    """
    pts = check_points(points, "points", seed=seed)
    if len(pts) > 20_000:
        pts = pts[np.random.default_rng(seed).choice(len(pts), 20_000, replace=False)]
    unit, norm = normalize(pts)
    mesh = _closing_mesh(unit, options) if options.method == "closing" else _poisson_mesh(unit, options)
    mesh = clean_mesh(mesh, options.min_component_area)
    if options.simplify_faces is not None:
        mesh = clean_mesh(simplify(mesh, options.simplify_faces), options.min_component_area)
    mesh.vertices = norm.inverse(mesh.vertices)
    return RefinedMesh(mesh, norm, options.method)

"""Headless mesh previews: a numpy z-buffer over dense surface samples with Lambert shading.

No display, OpenGL or EGL is needed: the mesh is sampled densely (about four samples per pixel of
its silhouette), each sample is projected orthographically and the nearest one per pixel wins
(a z-buffer, Catmull 1974); its face normal gives the Lambertian shade max(0, n . l).
"""
from __future__ import annotations

import numpy as np
import trimesh

from generators.core.validation import check_int

DEFAULT_VIEWS: tuple[tuple[float, float], ...] = ((30.0, 20.0), (120.0, 20.0), (210.0, 35.0))


def _rotation(azimuth: float, elevation: float) -> np.ndarray:
    """World -> camera: turn by azimuth about z, then tilt by elevation; camera looks along -y', z' up."""
    a, e = np.radians(azimuth), np.radians(elevation)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(e), -np.sin(e)], [0, np.sin(e), np.cos(e)]])
    return rx @ rz


def render_mesh(mesh: trimesh.Trimesh, size: int = 256, azimuth: float = 30.0, elevation: float = 20.0,
                color: tuple[float, float, float] = (0.55, 0.7, 0.9), seed: int = 0) -> np.ndarray:
    """One view of ``mesh`` as uint8 (size, size, 3) on a white background."""
    size = check_int("size", size, 16, 2048)
    if len(mesh.faces) == 0:
        raise ValueError("mesh has no faces to render")
    v = mesh.vertices - mesh.bounds.mean(0)
    scale = 0.9 / max(np.abs(v).max(), 1e-12)
    rot = _rotation(azimuth, elevation)
    m = trimesh.Trimesh(v @ rot.T * scale, mesh.faces, process=False)
    count = int(min(2_000_000, 6 * size * size))
    pts, face_idx = trimesh.sample.sample_surface(m, count, seed=seed)
    normals = m.face_normals[face_idx]
    px = ((pts[:, 0] + 1) / 2 * (size - 1)).round().astype(int)
    py = ((1 - (pts[:, 2] + 1) / 2) * (size - 1)).round().astype(int)
    depth = pts[:, 1]  # larger y is farther from the camera at y = -inf
    ok = (px >= 0) & (px < size) & (py >= 0) & (py < size)
    px, py, depth, normals = px[ok], py[ok], depth[ok], normals[ok]
    pixel = py * size + px
    order = np.lexsort((depth, pixel))  # per pixel, nearest first
    pixel, normals = pixel[order], normals[order]
    first = np.r_[True, pixel[1:] != pixel[:-1]]
    light = np.array([-0.4, -0.8, 0.6])
    light /= np.linalg.norm(light)
    shade = 0.25 + 0.75 * np.abs(normals[first] @ light)  # two-sided Lambert
    image = np.ones((size * size, 3))
    image[pixel[first]] = shade[:, None] * np.asarray(color)[None]
    return (image.reshape(size, size, 3) * 255).clip(0, 255).astype(np.uint8)


def render_views(mesh: trimesh.Trimesh, size: int = 256,
                 views: tuple[tuple[float, float], ...] = DEFAULT_VIEWS) -> np.ndarray:
    """Several views side by side: uint8 (size, size * len(views), 3)."""
    if not views:
        raise ValueError("views must list at least one (azimuth, elevation) pair")
    return np.concatenate([render_mesh(mesh, size, az, el) for az, el in views], axis=1)

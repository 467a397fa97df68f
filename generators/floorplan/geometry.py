"""Plan geometry shared by the data generator, the refinement and the RPLAN loader.

Every plan lives on the square canvas [0, :data:`EXTENT`]^2 metres with a grid of :data:`CELL` metres
(:data:`GRID` cells a side). Rooms are axis-aligned (Manhattan) polygons stored in a canonical order:
counter-clockwise, starting at the lowest (then leftmost) corner, so the first edge runs in +x and
edges alternate horizontal / vertical. That fixed order is what the denoiser's corner-index
embedding learns (HouseDiffusion, Shabani et al. 2023, sec. 4.1, orders corners the same way).

Doors follow one rule everywhere: a door between two rooms sits centred on their longest shared
wall, and only when that wall is at least ``MIN_DOOR_WALL`` = 0.7 m long
(:func:`evaluation.floorplan.longest_shared_wall`).
"""
from __future__ import annotations

import numpy as np

from evaluation.floorplan import EPS, MIN_DOOR_WALL, Point, Polygon, longest_shared_wall

CELL = 0.25          # metres per grid cell
EXTENT = 16.0        # metres: the canvas is [0, EXTENT]^2
GRID = int(round(EXTENT / CELL))  # 64 cells a side
DOOR_WIDTH = 0.9     # metres; narrower (down to MIN_DOOR_WALL) where the shared wall is shorter


def signed_area(poly: Polygon) -> float:
    p = np.asarray(poly, dtype=np.float64)
    x, y = p[:, 0], p[:, 1]
    return float((np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def simplify(poly: Polygon) -> list[Point]:
    """Drop repeated vertices and vertices in the middle of a straight edge."""
    pts = [tuple(map(float, p)) for p in poly]
    changed = True
    while changed and len(pts) >= 3:
        changed = False
        n = len(pts)
        for k in range(n):
            a, b, c = pts[k - 1], pts[k], pts[(k + 1) % n]
            cross = (b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0])
            if (abs(a[0] - b[0]) < EPS and abs(a[1] - b[1]) < EPS) or abs(cross) < EPS:
                del pts[k]
                changed = True
                break
    return pts


def canonical_polygon(poly: Polygon) -> tuple[Point, ...]:
    """Counter-clockwise, collinear points removed, starting at the lowest then leftmost vertex."""
    pts = simplify(poly)
    if len(pts) < 3:
        return tuple(pts)
    if signed_area(pts) < 0:
        pts = pts[::-1]
    start = min(range(len(pts)), key=lambda k: (round(pts[k][1], 6), round(pts[k][0], 6)))
    return tuple(pts[start:] + pts[:start])


def is_rectilinear(poly: Polygon) -> bool:
    n = len(poly)
    return n >= 4 and all(abs(poly[k][0] - poly[(k + 1) % n][0]) < EPS or abs(poly[k][1] - poly[(k + 1) % n][1]) < EPS
                          for k in range(n))


def rect_polygon(x0: float, y0: float, x1: float, y1: float) -> tuple[Point, ...]:
    """Axis-aligned rectangle in canonical order."""
    return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))


def dihedral(points: np.ndarray, k: int, centre: float = EXTENT / 2) -> np.ndarray:
    """One of the 8 symmetries of the square about ``centre``: quarter turns k % 4, mirrored when k >= 4."""
    p = np.asarray(points, dtype=np.float64) - centre
    if k >= 4:
        p = p * np.array([-1.0, 1.0])
    for _ in range(k % 4):
        p = np.stack([-p[..., 1], p[..., 0]], axis=-1)
    return p + centre


def place_door(a: Polygon, b: Polygon, min_wall: float = MIN_DOOR_WALL) -> tuple[Point, Point] | None:
    """A door segment centred on the longest wall ``a`` and ``b`` share, or None when it is under ``min_wall``."""
    run = longest_shared_wall(a, b)
    if run is None or run.length < min_wall - EPS:
        return None
    width = min(DOOR_WIDTH, run.length)
    mid = (run.lo + run.hi) / 2
    return run.segment(mid - width / 2, mid + width / 2)


def to_unit(coords: np.ndarray) -> np.ndarray:
    """Metres on the canvas -> [-1, 1] (the diffusion's data coordinates)."""
    return np.asarray(coords, dtype=np.float64) / EXTENT * 2 - 1


def from_unit(coords: np.ndarray) -> np.ndarray:
    """[-1, 1] -> metres on the canvas."""
    return (np.asarray(coords, dtype=np.float64) + 1) / 2 * EXTENT


def snap(values: np.ndarray | float) -> np.ndarray:
    """Round metres to the grid and clamp to the canvas."""
    return np.clip(np.round(np.asarray(values, dtype=np.float64) / CELL) * CELL, 0.0, EXTENT)

"""Refinement: from sampled corners to a plan whose rooms tile without overlap and whose doors fit.

The sampled corners are close to a plan but not one: walls miss each other by a few centimetres,
rooms overlap or leave slivers. The refinement makes it one, in six steps (the post-processing that
HouseDiffusion leaves to its discrete denoising, Shabani et al. 2023, sec. 4.2, made explicit):

1. **regularise**: each room's corners become an axis-aligned polygon (edge i joins corners i and i+1,
   horizontal for even i), its coordinates averaged per wall and snapped to the 0.25 m grid;
2. **align**: wall coordinates of all rooms closer than ``align_tolerance`` are merged (weighted by wall
   length), so neighbouring rooms share walls instead of leaving gaps or overlaps;
3. **resolve overlaps**: on the grid, a cell claimed by several rooms goes to the smallest of them,
   every room keeps one 4-connected piece and at least 0.5 m^2 (a room hidden under another shares
   the common cells with it, or moves to the nearest free block), and no room encloses another;
4. **close gaps**: empty cells inside the house outline (its morphological closing) go to neighbouring
   rooms, first by growing whole room sides, then cell by cell;
5. **repair doors**: a requested door whose rooms share less than 0.7 m of wall gets a band of three cells
   on each side of a new shared wall, taken from other rooms where they stay connected, keep most of
   their area and keep their own feasible doors;
6. **doors**: room outlines are traced back to polygons, and each requested door is centred on the
   longest wall its rooms share, where that wall is at least 0.7 m (:func:`.geometry.place_door`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage

from evaluation.floorplan import Polygon, points_in_polygon

from .geometry import CELL, GRID, canonical_polygon, place_door, snap
from .graph import BubbleGraph
from .plan import Door, Floorplan
from .repair import FOUR, repair_doors



@dataclass(frozen=True)
class RefineConfig:
    """Knobs of :func:`refine_plan`; the defaults are the ones evaluated."""

    align_tolerance: float = 0.5   # metres: wall coordinates this close are merged
    close_radius: int = 2          # cells: gaps up to 2 * radius wide inside the outline are closed
    repair_doors: bool = True
    max_arm: int = 3               # cells a room may grow to reach a new door band
    keep_fraction: float = 0.6     # a room giving cells to a door keeps at least this share of its area
    min_cells: int = 8             # 0.5 m^2: the smallest room kept


# ------------------------------------------------------------------ step 1-2
def regularise(corners: np.ndarray, min_side: float = 1.0) -> list[tuple[float, float]]:
    """Axis-aligned polygon from k (even) predicted corners: x of corners 2j-1, 2j and y of 2j, 2j+1 averaged.

    Falls back to the snapped bounding box when the result is degenerate, self-intersecting, or has an
    edge under half of ``min_side``; a bounding box is widened to ``min_side`` metres a side.
    """
    c = np.nan_to_num(np.asarray(corners, dtype=np.float64), nan=GRID * CELL / 2).clip(0, GRID * CELL)
    k = len(c)
    if k >= 4 and k % 2 == 0:
        xs = [(c[(2 * j - 1) % k, 0] + c[2 * j, 0]) / 2 for j in range(k // 2)]
        ys = [(c[2 * j, 1] + c[2 * j + 1, 1]) / 2 for j in range(k // 2)]
        xs, ys = snap(np.array(xs)), snap(np.array(ys))
        poly = [(xs[((i + 1) // 2) % (k // 2)], ys[i // 2]) for i in range(k)]
        edges = np.abs(np.diff(np.asarray(poly + poly[:1]), axis=0)).sum(1)
        if _valid(poly) and edges.min() >= min_side / 2 - 1e-9 and min(np.ptp(np.asarray(poly), 0)) >= min_side - 1e-9:
            return poly
        c = np.asarray(poly) if _valid(poly) else c
    lo, hi = snap(c.min(0)), snap(c.max(0))
    for d in range(2):
        if hi[d] - lo[d] < min_side:
            start = min(max(0.0, float(snap((lo[d] + hi[d] - min_side) / 2))), GRID * CELL - min_side)
            lo[d], hi[d] = start, start + min_side
    return [(lo[0], lo[1]), (hi[0], lo[1]), (hi[0], hi[1]), (lo[0], hi[1])]


def _valid(poly: Sequence[tuple[float, float]]) -> bool:
    """A simple axis-aligned polygon with positive area and no zero-length edges."""
    n = len(poly)
    edges = [(poly[i], poly[(i + 1) % n]) for i in range(n)]
    if any(abs(a[0] - b[0]) + abs(a[1] - b[1]) < 1e-9 for a, b in edges):
        return False
    for i in range(n):
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:
                continue
            if _segments_touch(*edges[i], *edges[j]):
                return False
    return abs(_area(poly)) > 1e-9


def _area(poly: Sequence[tuple[float, float]]) -> float:
    p = np.asarray(poly)
    return float((np.dot(p[:, 0], np.roll(p[:, 1], -1)) - np.dot(p[:, 1], np.roll(p[:, 0], -1))) / 2)


def _segments_touch(a, b, c, d) -> bool:
    """Axis-aligned segments ab and cd share a point."""
    ax0, ax1 = sorted((a[0], b[0]))
    ay0, ay1 = sorted((a[1], b[1]))
    cx0, cx1 = sorted((c[0], d[0]))
    cy0, cy1 = sorted((c[1], d[1]))
    return ax0 <= cx1 + 1e-9 and cx0 <= ax1 + 1e-9 and ay0 <= cy1 + 1e-9 and cy0 <= ay1 + 1e-9


def align_walls(polygons: list[list[tuple[float, float]]], tolerance: float) -> list[list[tuple[float, float]]]:
    """Merge x (and y) wall coordinates of all rooms that lie within ``tolerance`` (complete linkage,
    length-weighted mean, snapped); a room that would become invalid keeps its own walls."""
    out = [list(p) for p in polygons]
    for axis in (0, 1):
        entries = []  # (value, weight, room, vertex indices)
        for r, poly in enumerate(out):
            n = len(poly)
            for i in range(n):
                a, b = poly[i], poly[(i + 1) % n]
                if abs(a[axis] - b[axis]) < 1e-9:  # an edge along the other axis at this coordinate
                    entries.append((a[axis], abs(a[1 - axis] - b[1 - axis]), r, (i, (i + 1) % n)))
        entries.sort(key=lambda e: e[0])
        clusters, current = [], []
        for e in entries:
            if current and e[0] - current[0][0] > tolerance + 1e-9:
                clusters.append(current)
                current = []
            current.append(e)
        if current:
            clusters.append(current)
        proposal = [list(p) for p in out]
        for cl in clusters:
            value = float(snap(sum(v * w for v, w, _, _ in cl) / max(sum(w for _, w, _, _ in cl), 1e-9)))
            for _, _, r, idx in cl:
                for i in idx:
                    pt = list(proposal[r][i])
                    pt[axis] = value
                    proposal[r][i] = tuple(pt)
        out = [p if _valid(p) and _area(p) * _area(q) > 0 and _wide_enough(p, q) else q for p, q in zip(proposal, out)]
    return out


def _wide_enough(new: Sequence[tuple[float, float]], old: Sequence[tuple[float, float]], side: float = 1.0) -> bool:
    """Alignment may not make a room narrower than ``side`` metres (or than it was, if it was narrower)."""
    a, b = np.ptp(np.asarray(new), axis=0), np.ptp(np.asarray(old), axis=0)
    return bool((a >= np.minimum(b, side) - 1e-9).all())


# ------------------------------------------------------------------ step 3-4
def rasterise(poly: Polygon) -> np.ndarray:
    """(GRID, GRID) bool mask, [iy, ix], of the cells whose centres lie inside ``poly``."""
    centres = (np.arange(GRID) + 0.5) * CELL
    cx, cy = np.meshgrid(centres, centres)
    return points_in_polygon(cx, cy, poly)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    lab, n = ndimage.label(mask, structure=FOUR)
    if n <= 1:
        return mask
    sizes = ndimage.sum(mask, lab, range(1, n + 1))
    return lab == (1 + int(np.argmax(sizes)))


def resolve_overlaps(masks: list[np.ndarray], min_cells: int) -> np.ndarray:
    """Label grid (-1 empty): contested cells go to the smallest room; tiny rooms take back their own cells."""
    labels = np.full((GRID, GRID), -1)
    sizes = [int(m.sum()) for m in masks]
    for r in sorted(range(len(masks)), key=lambda r: -sizes[r]):
        labels[masks[r]] = r
    for r in sorted(range(len(masks)), key=lambda r: sizes[r]):
        if (labels == r).sum() < min(min_cells, sizes[r]):
            _share(labels, masks, r)
    for r in range(len(masks)):
        own = labels == r
        labels[own & ~_largest_component(own)] = -1
    return labels


def _share(labels: np.ndarray, masks: list[np.ndarray], r: int) -> None:
    """A room hidden under another takes the half of their common cells on its side (split across the longer axis)."""
    owners = labels[masks[r] & (labels >= 0) & (labels != r)]
    if owners.size == 0:
        labels[masks[r]] = r
        return
    k = int(np.bincount(owners).argmax())
    region = masks[r] & (labels == k)
    ys, xs = np.nonzero(region)
    axis, coords = (1, xs) if np.ptp(xs) >= np.ptp(ys) else (0, ys)
    mid = (coords.min() + coords.max() + 1) / 2
    centre_r = np.nonzero(masks[r])[axis].mean()
    centre_k = np.nonzero(masks[k])[axis].mean()
    grid = np.indices(labels.shape)[axis]
    half = (grid < mid) if centre_r <= centre_k else (grid >= mid)
    labels[region & half] = r


def _grow_sides(labels: np.ndarray, free: np.ndarray, sizes: np.ndarray) -> bool:
    """Every room tries to push each of its sides one cell into free space; True when something grew."""
    grew = False
    for r in np.argsort(sizes):
        for axis, step in ((1, 1), (1, -1), (0, 1), (0, -1)):
            own = labels == r
            front = np.roll(own, step, axis=axis) & ~own
            if axis == 1:
                front[:, 0 if step == 1 else -1] = False
            else:
                front[0 if step == 1 else -1, :] = False
            if front.any() and (free[front] & (labels[front] == -1)).all():
                labels[front] = r
                grew = True
    return grew


def close_gaps(labels: np.ndarray, radius: int, min_cells: int) -> np.ndarray:
    """Give the empty cells inside the outline to neighbouring rooms (side growth, then cell by cell)."""
    labels = labels.copy()
    occupied = labels >= 0
    outline = ndimage.binary_fill_holes(ndimage.binary_closing(occupied, np.ones((3, 3)), iterations=radius) | occupied)
    n = labels.max() + 1
    sizes = np.array([(labels == r).sum() for r in range(n)])
    for _ in range(GRID):
        if not _grow_sides(labels, outline, sizes):
            break
    for _ in range(GRID):
        empty = outline & (labels < 0)
        if not empty.any():
            break
        counts = np.stack([ndimage.convolve((labels == r).astype(int), FOUR.astype(int), mode="constant") for r in range(n)])
        best = counts.argmax(0)
        take = empty & (counts.max(0) > 0)
        if not take.any():
            break
        labels[take] = best[take]
    return _break_rings(labels)


def keep_every_room(labels: np.ndarray, masks: list[np.ndarray], min_cells: int, radius: int) -> np.ndarray:
    """Every requested room ends with at least ``min_cells`` cells: a starved room shares the cells it has in
    common with the room that took them (three rounds), else it moves to the nearest free block of cells."""
    labels = labels.copy()
    n = len(masks)

    def starved() -> list[int]:
        return [r for r in range(n) if (labels == r).sum() < min(min_cells, int(masks[r].sum()))]

    for _ in range(3):
        if not starved():
            break
        for r in starved():
            _share(labels, masks, r)
        for k in range(n):
            own = labels == k
            labels[own & ~_largest_component(own)] = -1
    for r in starved():
        _move_to_free_block(labels, masks[r], r, min_cells)
    return close_gaps(labels, radius, min_cells)


def _move_to_free_block(labels: np.ndarray, mask: np.ndarray, r: int, min_cells: int) -> None:
    """Put room ``r`` on the free square block (at least ``min_cells`` cells) nearest to its requested cells."""
    side = int(np.ceil(np.sqrt(min_cells)))
    free = labels < 0
    free[labels == r] = True
    fits = ndimage.binary_erosion(free, np.ones((side, side), dtype=bool), border_value=0)
    if not fits.any():
        return
    cy, cx = (np.argwhere(mask).mean(0) if mask.any() else np.array(labels.shape) / 2)
    ys, xs = np.nonzero(fits)
    k = int(np.argmin((ys - cy) ** 2 + (xs - cx) ** 2))
    y0, x0 = ys[k] - (side - 1) // 2, xs[k] - (side - 1) // 2
    labels[labels == r] = -1
    labels[y0:y0 + side, x0:x0 + side] = r


def _break_rings(labels: np.ndarray) -> np.ndarray:
    """No room may enclose cells of another: a straight path from each enclosed piece to the outside
    of the enclosing room is given to the enclosed room."""
    for r in range(labels.max() + 1):
        own = labels == r
        inside = ndimage.binary_fill_holes(own) & ~own
        if not inside.any():
            continue
        lab, n = ndimage.label(inside, structure=FOUR)
        for k in range(1, n + 1):
            ys, xs = np.nonzero(lab == k)
            y, x = int(ys[0]), int(xs[0])
            owner = labels[y, x]
            best = None
            for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                path, cy, cx = [], y, x
                while 0 <= cy < GRID and 0 <= cx < GRID and (labels[cy, cx] == r or lab[cy, cx] == k):
                    if labels[cy, cx] == r:
                        path.append((cy, cx))
                    cy, cx = cy + dy, cx + dx
                if best is None or len(path) < len(best):
                    best = path
            for cy, cx in best or []:
                labels[cy, cx] = owner if owner >= 0 else -1
    return labels




# ------------------------------------------------------------------ step 6
def trace(mask: np.ndarray) -> tuple[tuple[float, float], ...]:
    """The outline (metres, canonical order) of a 4-connected, hole-free cell mask [iy, ix].

    Boundary edges run counter-clockwise around the cells; at a vertex where two cells of the mask touch
    only diagonally the walk turns right, so the outline is one loop (touching itself at that vertex).
    """
    out: dict[tuple[int, int], list[tuple[int, int]]] = {}
    padded = np.pad(mask, 1)
    for iy, ix in zip(*np.nonzero(mask)):
        y, x = iy + 1, ix + 1
        if not padded[y - 1, x]:
            out.setdefault((ix, iy), []).append((ix + 1, iy))
        if not padded[y, x + 1]:
            out.setdefault((ix + 1, iy), []).append((ix + 1, iy + 1))
        if not padded[y + 1, x]:
            out.setdefault((ix + 1, iy + 1), []).append((ix, iy + 1))
        if not padded[y, x - 1]:
            out.setdefault((ix, iy + 1), []).append((ix, iy))
    if not out:
        return ()
    start = min(out, key=lambda v: (v[1], v[0]))
    loop, prev, cur = [start], None, start
    while True:
        nexts = out[cur]
        if prev is None or len(nexts) == 1:
            nxt = nexts[0]
        else:
            din = (cur[0] - prev[0], cur[1] - prev[1])
            nxt = min(nexts, key=lambda v: din[0] * (v[1] - cur[1]) - din[1] * (v[0] - cur[0]))
        nexts.remove(nxt)
        prev, cur = cur, nxt
        if cur == start and not out[start]:
            break
        loop.append(cur)
    return canonical_polygon([(x * CELL, y * CELL) for x, y in loop])


def place_doors(polygons: Sequence[Polygon], edges: Sequence[tuple[int, int]]) -> tuple[Door, ...]:
    """A door for each requested pair whose rooms share at least 0.7 m of wall, centred on the longest such wall."""
    doors = []
    for i, j in edges:
        segment = place_door(polygons[i], polygons[j])
        if segment is not None:
            doors.append(Door((int(i), int(j)), segment))
    return tuple(doors)


def refine_plan(room_types: Sequence[str], corners: Sequence[np.ndarray], edges: Sequence[tuple[int, int]],
                graph: BubbleGraph | None = None, config: RefineConfig = RefineConfig()) -> Floorplan:
    """Steps 1-6 above: sampled corners (metres, per room) -> a plan without overlaps, with its doors.

    Args:
        room_types: one type per room.
        corners: per room, its (k, 2) corners in metres in canonical order.
        edges: the requested doors as room-index pairs.
        graph: the requested :class:`~.graph.BubbleGraph`, kept on the plan.
        config: refinement knobs.
    """
    if len(room_types) != len(corners):
        raise ValueError(f"room_types has {len(room_types)} entries but corners has {len(corners)}")
    polys = align_walls([regularise(c) for c in corners], config.align_tolerance)
    masks = [rasterise(p) for p in polys]
    labels = close_gaps(resolve_overlaps(masks, config.min_cells), config.close_radius, config.min_cells)
    if config.repair_doors and edges:
        labels = repair_doors(labels, edges, config.max_arm, config.keep_fraction, config.min_cells)
    labels = keep_every_room(labels, masks, config.min_cells, config.close_radius)
    polygons = []
    for r, fallback in enumerate(polys):
        outline = trace(labels == r)
        polygons.append(outline if len(outline) >= 4 else canonical_polygon(fallback))
    return Floorplan(tuple(room_types), tuple(polygons), place_doors(polygons, edges), graph)


def raw_plan(room_types: Sequence[str], corners: Sequence[np.ndarray], edges: Sequence[tuple[int, int]],
             graph: BubbleGraph | None = None) -> Floorplan:
    """The network's discrete output as it is: each corner on its nearest grid line, no other change;
    doors where the rule already allows one."""
    polygons = [tuple((float(x), float(y)) for x, y in snap(np.nan_to_num(np.asarray(c, dtype=np.float64))))
                for c in corners]
    return Floorplan(tuple(room_types), tuple(polygons), place_doors(polygons, edges), graph)

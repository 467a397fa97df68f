"""Door repair on the plan grid: give two rooms a shared wall long enough for their requested door.

For a requested door i - j whose rooms share fewer than three cells (0.75 m >= 0.7 m) of straight wall,
every placement of a new wall is scored: a band of three cells on each side of a grid line (i on one
side, j on the other) plus, where i or j does not already touch its band, the shortest straight arm
(at most ``max_arm`` cells) joining the room to it. The cheapest placements, in cells changed, are
tried in turn; one is kept when every room still forms one 4-connected piece without holes, the rooms
that gave cells keep ``keep_fraction`` of their area, and every door that was feasible stays feasible.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy import ndimage

from evaluation.floorplan import MIN_DOOR_WALL

from .geometry import CELL

DOOR_CELLS = int(np.ceil(MIN_DOOR_WALL / CELL - 1e-9))  # 3 cells = 0.75 m
FOUR = ndimage.generate_binary_structure(2, 1)

def _runs(mask: np.ndarray, axis: int) -> int:
    """Longest run of True along ``axis``."""
    m = np.moveaxis(mask, axis, 0).astype(int)
    best = np.zeros(m.shape[1:], dtype=int)
    cur = np.zeros(m.shape[1:], dtype=int)
    for row in m:
        cur = (cur + 1) * row
        best = np.maximum(best, cur)
    return int(best.max()) if best.size else 0


def shared_cells(labels: np.ndarray, i: int, j: int) -> int:
    """Longest straight wall (in cells) rooms i and j share on the grid."""
    a, b = labels[:, :-1], labels[:, 1:]
    vertical = ((a == i) & (b == j)) | ((a == j) & (b == i))     # walls between columns, run along y
    a, b = labels[:-1, :], labels[1:, :]
    horizontal = ((a == i) & (b == j)) | ((a == j) & (b == i))   # walls between rows, run along x
    return max(_runs(vertical, 0), _runs(horizontal, 1))


# Views of the grid in which room i lies left of room j (lower column index): the identity, a mirror,
# a transpose and a transposed mirror, each with its inverse.
VIEWS: tuple[tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]], ...] = (
    (lambda a: a, lambda a: a),
    (lambda a: a[:, ::-1], lambda a: a[:, ::-1]),
    (lambda a: a.T, lambda a: a.T),
    (lambda a: a.T[:, ::-1], lambda a: a[:, ::-1].T),
)


def _nearest(labels: np.ndarray, room: int, leftwards: bool) -> np.ndarray:
    """Per cell, the distance along its row to the nearest cell of ``room`` at or left (right) of it; large if none."""
    g = labels.shape[1]
    out = np.full(labels.shape, 10 * g)
    last = np.full(labels.shape[0], -10 * g)
    cols = range(g) if leftwards else range(g - 1, -1, -1)
    for x in cols:
        last = np.where(labels[:, x] == room, x, last)
        out[:, x] = np.abs(x - last)
    return out


def _window(v: np.ndarray, fn: Callable[..., np.ndarray]) -> np.ndarray:
    return fn(np.lib.stride_tricks.sliding_window_view(v, DOOR_CELLS, axis=0), axis=-1)


def _candidates(view: np.ndarray, i: int, j: int, max_arm: int) -> list[tuple[int, int, int]]:
    """(cost, b, r) for walls on the line between columns b - 1 and b, rows r .. r + 2, cheapest first."""
    di, dj = _nearest(view, i, True), _nearest(view, j, False)
    h, g = view.shape
    out = []
    for b in range(1, g):
        cost = _window((di[:, b - 1] > 0).astype(int), np.sum) + _window((dj[:, b] > 0).astype(int), np.sum)
        arms = []
        for d, col, room in ((di[:, b - 1], b - 1, i), (dj[:, b], b, j)):
            reach = _window(d, np.min)  # per band start r: the nearest cell of the room from a band row
            above = np.zeros(len(reach), dtype=bool)  # the room touches the band at (r - 1, col)
            above[1:] = view[:h - DOOR_CELLS, col] == room
            below = np.zeros(len(reach), dtype=bool)  # ... or at (r + 3, col)
            below[:-1] = view[DOOR_CELLS:, col] == room
            arms.append(np.where((reach == 0) | above | below, 0, reach - 1))
        arm = arms[0] + arms[1]
        ok = (arms[0] <= max_arm) & (arms[1] <= max_arm)
        out += [(int(cost[r] + arm[r]), b, r) for r in np.nonzero(ok)[0]]
    return sorted(out)


def _apply(view: np.ndarray, i: int, j: int, b: int, r: int) -> np.ndarray:
    """The band (i at column b - 1, j at column b, rows r .. r + 2) and the arms joining i and j to it."""
    out = view.copy()
    rows = slice(r, r + DOOR_CELLS)
    for room, col, step in ((i, b - 1, -1), (j, b, 1)):
        band = out[rows, col]
        touching = (band == room).any() or (r > 0 and out[r - 1, col] == room) or \
            (r + DOOR_CELLS < out.shape[0] and out[r + DOOR_CELLS, col] == room)
        if not touching:  # the shortest straight arm from a band row to the room
            best = None
            for y in range(r, r + DOOR_CELLS):
                x = col + step
                while 0 <= x < out.shape[1] and out[y, x] != room:
                    x += step
                if 0 <= x < out.shape[1] and (best is None or abs(x - col) < abs(best[1] - col)):
                    best = (y, x)
            if best is not None:
                y, x = best
                lo, hi = sorted((x, col))
                out[y, lo:hi + 1] = room
        out[rows, col] = room
    return out


def _acceptable(before: np.ndarray, after: np.ndarray, start_sizes: np.ndarray, feasible: set[tuple[int, int]],
                min_cells: int, keep_fraction: float) -> bool:
    n = len(start_sizes)
    for r in range(n):
        own = after == r
        if not np.array_equal(own, before == r):
            size = int(own.sum())
            if size < max(min_cells, keep_fraction * start_sizes[r]) and size < (before == r).sum():
                return False
            if ndimage.label(own, structure=FOUR)[1] != 1 or (ndimage.binary_fill_holes(own) & ~own).any():
                return False
    return all(shared_cells(after, a, c) >= DOOR_CELLS for a, c in feasible)


def repair_doors(labels: np.ndarray, edges: Sequence[tuple[int, int]], max_arm: int = 3, keep_fraction: float = 0.6,
                 min_cells: int = 8, max_tries: int = 12) -> np.ndarray:
    """Make as many requested doors feasible as the rules allow (two passes over the failing ones).

    Args:
        labels: (G, G) room index per cell, -1 where empty.
        edges: the requested doors as room-index pairs.
        max_arm: cells a room may grow in a straight line to reach a new door band.
        keep_fraction: share of its area (at the start) a room giving cells keeps.
        min_cells: the smallest room, in cells.
        max_tries: placements tried per door, cheapest first.
    """
    labels = labels.copy()
    n = int(labels.max()) + 1
    start_sizes = np.array([(labels == r).sum() for r in range(n)])
    for _ in range(2):
        feasible = {e for e in edges if shared_cells(labels, *e) >= DOOR_CELLS}
        failing = sorted((e for e in edges if e not in feasible), key=lambda e: -shared_cells(labels, *e))
        if not failing:
            break
        for i, j in failing:
            options = []
            for forward, back in VIEWS:
                view = forward(labels)
                options += [(cost, b, r, forward, back) for cost, b, r in _candidates(view, i, j, max_arm)]
            options.sort(key=lambda o: o[:3])
            for _cost, b, r, forward, back in options[:max_tries]:
                after = np.ascontiguousarray(back(_apply(forward(labels), i, j, b, r)))
                if shared_cells(after, i, j) >= DOOR_CELLS and _acceptable(labels, after, start_sizes, feasible, min_cells, keep_fraction):
                    labels = after
                    feasible.add((i, j))
                    break
    return labels

"""Floorplan geometry and metrics on plain polygons (no generator code, no flows).

A plan here is a list of room polygons (sequences of (x, y) in metres), the room types as
strings, and doors as ``(i, j, ((x0, y0), (x1, y1)))``: a segment between rooms i and j. The
metrics follow HouseDiffusion (Shabani et al. 2023, sec. 5):

- **compatibility**: the graph edit distance between the input bubble graph and the graph the plan
  realises: rooms i, j are joined when a door lies on a wall they share over at least
  :data:`MIN_DOOR_WALL` metres (the same rule the family's data generator and refinement use);
- **overlap**: the area covered by two or more rooms over the area of the plan (the union);
- **room match**: whether the plan holds exactly the requested multiset of room types;
- **door feasibility**: the fraction of requested doors whose rooms share such a wall;
- **diversity**: the mean fraction of raster cells whose room type differs between two samples;
- **realism**: the Frechet distance (Heusel et al. 2017, eq. 6) between rendered generated and real
  plans in the features of :class:`PlanClassifier`, a small CNN the project trains on rendered plans.

Areas are exact for axis-aligned (Manhattan) polygons: they are measured on the grid of all the
plan's distinct x and y coordinates (coordinate compression), where every cell is inside or outside
each polygon as a whole.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterable, Sequence

import networkx as nx
import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

MIN_DOOR_WALL = 0.7  # metres of shared wall a door needs (the feasibility rule)
EPS = 1e-6

Point = tuple[float, float]
Polygon = Sequence[Point]
Door = tuple[int, int, tuple[Point, Point]]


@dataclass(frozen=True)
class WallRun:
    """A maximal stretch of wall two rooms share: on the line ``axis`` = ``coord`` from ``lo`` to ``hi``.

    ``axis`` is "y" for a horizontal wall (y = coord, x in [lo, hi]) and "x" for a vertical one.
    """

    axis: str
    coord: float
    lo: float
    hi: float

    @property
    def length(self) -> float:
        return self.hi - self.lo

    def segment(self, lo: float | None = None, hi: float | None = None) -> tuple[Point, Point]:
        lo, hi = self.lo if lo is None else lo, self.hi if hi is None else hi
        if self.axis == "y":
            return (lo, self.coord), (hi, self.coord)
        return (self.coord, lo), (self.coord, hi)


def polygon_area(poly: Polygon) -> float:
    """Unsigned shoelace area."""
    p = np.asarray(poly, dtype=np.float64)
    if len(p) < 3:
        return 0.0
    x, y = p[:, 0], p[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def _axis_edges(poly: Polygon) -> tuple[list[tuple[float, float, float]], list[tuple[float, float, float]]]:
    """Horizontal edges as (y, x_lo, x_hi) and vertical edges as (x, y_lo, y_hi); slanted edges are skipped."""
    horizontal, vertical = [], []
    n = len(poly)
    for k in range(n):
        (x0, y0), (x1, y1) = poly[k], poly[(k + 1) % n]
        if abs(y0 - y1) < EPS and abs(x0 - x1) > EPS:
            horizontal.append((float(y0), float(min(x0, x1)), float(max(x0, x1))))
        elif abs(x0 - x1) < EPS and abs(y0 - y1) > EPS:
            vertical.append((float(x0), float(min(y0, y1)), float(max(y0, y1))))
    return horizontal, vertical


def _merge(intervals: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + EPS:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return [(a, b) for a, b in out]


def shared_walls(a: Polygon, b: Polygon) -> list[WallRun]:
    """The walls rooms ``a`` and ``b`` share: collinear edge overlaps, merged into maximal runs."""
    runs: list[WallRun] = []
    for axis, ea, eb in zip(("y", "x"), _axis_edges(a), _axis_edges(b)):
        by_line: dict[float, list[tuple[float, float]]] = {}
        for ca, la, ha in ea:
            for cb, lb, hb in eb:
                lo, hi = max(la, lb), min(ha, hb)
                if abs(ca - cb) < EPS and hi - lo > EPS:
                    key = next((k for k in by_line if abs(k - ca) < EPS), ca)
                    by_line.setdefault(key, []).append((lo, hi))
        runs += [WallRun(axis, c, lo, hi) for c, iv in by_line.items() for lo, hi in _merge(iv)]
    return sorted(runs, key=lambda r: -r.length)


def longest_shared_wall(a: Polygon, b: Polygon) -> WallRun | None:
    runs = shared_walls(a, b)
    return runs[0] if runs else None


def door_fits(a: Polygon, b: Polygon, min_wall: float = MIN_DOOR_WALL) -> bool:
    """True when rooms ``a`` and ``b`` share a wall of at least ``min_wall`` metres."""
    run = longest_shared_wall(a, b)
    return run is not None and run.length >= min_wall - EPS


def door_is_valid(door: tuple[Point, Point], a: Polygon, b: Polygon, min_wall: float = MIN_DOOR_WALL) -> bool:
    """A door segment is valid when it lies on a shared wall of ``a`` and ``b`` at least ``min_wall`` long."""
    (x0, y0), (x1, y1) = door
    for run in shared_walls(a, b):
        if run.length < min_wall - EPS:
            continue
        if run.axis == "y" and abs(y0 - run.coord) < EPS and abs(y1 - run.coord) < EPS:
            lo, hi = sorted((x0, x1))
        elif run.axis == "x" and abs(x0 - run.coord) < EPS and abs(x1 - run.coord) < EPS:
            lo, hi = sorted((y0, y1))
        else:
            continue
        if lo >= run.lo - EPS and hi <= run.hi + EPS and hi - lo > EPS:
            return True
    return False


def realised_graph(room_types: Sequence[str], polygons: Sequence[Polygon], doors: Iterable[Door],
                   min_wall: float = MIN_DOOR_WALL) -> nx.Graph:
    """The bubble graph a plan realises: node i has ``room_type``; i - j when a valid door joins them."""
    g = nx.Graph()
    for i, t in enumerate(room_types):
        g.add_node(i, room_type=t)
    for i, j, seg in doors:
        if i != j and door_is_valid(seg, polygons[i], polygons[j], min_wall):
            g.add_edge(int(i), int(j))
    return g


def graph_edit_distance(a: nx.Graph, b: nx.Graph, timeout: float = 2.0) -> float:
    """Graph edit distance with unit costs, nodes matching only on equal ``room_type``.

    Exact (networkx's A* search) within ``timeout`` seconds; otherwise the cost of the identity
    matching of the node ids, an upper bound, is returned.
    """
    def same_type(u: dict, v: dict) -> bool:
        return u.get("room_type") == v.get("room_type")

    identity = sum(1 for v in set(a) | set(b) if v not in a or v not in b
                   or a.nodes[v].get("room_type") != b.nodes[v].get("room_type"))
    identity += len({frozenset(e) for e in a.edges} ^ {frozenset(e) for e in b.edges})
    if identity == 0:
        return 0.0
    ged = nx.graph_edit_distance(a, b, node_match=same_type, upper_bound=identity, timeout=timeout)
    return float(identity if ged is None else min(ged, identity))


def points_in_polygon(x: np.ndarray, y: np.ndarray, poly: Polygon) -> np.ndarray:
    """Even-odd rule for many points at once; points exactly on an edge are undefined (use cell centres)."""
    p = np.asarray(poly, dtype=np.float64)
    inside = np.zeros(np.broadcast(x, y).shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(p, np.roll(p, -1, axis=0)):
        if y0 == y1:
            continue
        crosses = (y0 > y) != (y1 > y)
        x_at = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < x_at)
    return inside


def coverage(polygons: Sequence[Polygon]) -> tuple[float, float]:
    """(union area, area covered by two or more polygons); exact for axis-aligned polygons."""
    polys = [p for p in polygons if len(p) >= 3]
    if not polys:
        return 0.0, 0.0
    xs = np.unique(np.concatenate([np.asarray(p, np.float64)[:, 0] for p in polys]))
    ys = np.unique(np.concatenate([np.asarray(p, np.float64)[:, 1] for p in polys]))
    cx, cy = np.meshgrid((xs[:-1] + xs[1:]) / 2, (ys[:-1] + ys[1:]) / 2)
    cell_area = np.outer(np.diff(ys), np.diff(xs))
    count = sum(points_in_polygon(cx, cy, p).astype(np.int32) for p in polys)
    return float(cell_area[count >= 1].sum()), float(cell_area[count >= 2].sum())


def overlap_fraction(polygons: Sequence[Polygon]) -> float:
    """Area covered by two or more rooms, as a fraction of the plan's area (the union of the rooms)."""
    union, overlap = coverage(polygons)
    return overlap / union if union > 0 else 0.0


def rooms_match(requested: Sequence[str], realised: Sequence[str], polygons: Sequence[Polygon] | None = None,
                min_area: float = 0.5) -> bool:
    """True when the plan holds exactly the requested room types (as a multiset), each room non-degenerate."""
    if sorted(requested) != sorted(realised):
        return False
    return polygons is None or all(polygon_area(p) >= min_area for p in polygons)


def door_feasibility(requested_edges: Iterable[tuple[int, int]], polygons: Sequence[Polygon],
                     min_wall: float = MIN_DOOR_WALL) -> tuple[int, int]:
    """(feasible, requested): requested doors (i, j) whose rooms share a wall of at least ``min_wall``."""
    edges = list(requested_edges)
    ok = sum(door_fits(polygons[i], polygons[j], min_wall) for i, j in edges)
    return ok, len(edges)


def rasterize_plan(room_types: Sequence[str], polygons: Sequence[Polygon], vocabulary: Sequence[str],
                   size: int = 64, extent: float = 16.0) -> np.ndarray:
    """(len(vocabulary), size, size) float32 one-hot room-type maps of the square [0, extent]^2.

    Row 0 is the top of the plan (y = extent). A cell covered by several rooms takes the later one.
    """
    index = {t: i for i, t in enumerate(vocabulary)}
    centres = (np.arange(size) + 0.5) * extent / size
    cx, cy = np.meshgrid(centres, centres[::-1])
    out = np.zeros((len(vocabulary), size, size), dtype=np.float32)
    labels = np.full((size, size), -1)
    for t, poly in zip(room_types, polygons):
        if t not in index:
            raise ValueError(f"room type {t!r} is not in the vocabulary {list(vocabulary)}")
        if len(poly) >= 3:
            labels[points_in_polygon(cx, cy, poly)] = index[t]
    for c in range(len(vocabulary)):
        out[c] = labels == c
    return out


def diversity(rasters: Sequence[np.ndarray]) -> float:
    """Mean over pairs of the fraction of cells whose room type differs (0: identical samples)."""
    if len(rasters) < 2:
        return 0.0
    labels = [np.where(r.any(0), r.argmax(0), -1) for r in rasters]
    pairs = list(itertools.combinations(labels, 2))
    return float(np.mean([(a != b).mean() for a, b in pairs]))


class PlanClassifier(ModelMixin, ConfigMixin):
    """A small CNN on rendered plans (one-hot room-type maps); its penultimate layer gives the features
    of the realism Frechet distance. It is trained to count a plan's rooms."""

    @register_to_config
    def __init__(self, in_channels: int = 10, num_classes: int = 11, width: int = 16, feature_dim: int = 64,
                 input_size: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.GELU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.GELU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 4 * width, 3, padding=1), nn.GELU(), nn.MaxPool2d(2),
            nn.Conv2d(4 * width, 4 * width, 3, padding=1), nn.GELU(), nn.AdaptiveAvgPool2d(2),
            nn.Flatten(), nn.Linear(16 * width, feature_dim), nn.GELU(),
        )
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # (B, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # (B, num_classes)


def fit_plan_classifier(images: torch.Tensor, labels: torch.Tensor, steps: int = 300, batch_size: int = 64,
                        lr: float = 2e-3, seed: int = 0, width: int = 16) -> tuple[PlanClassifier, list[float]]:
    """Train a fresh :class:`PlanClassifier` on (N, C, S, S) rasters with random flips and quarter turns."""
    if images.ndim != 4 or len(images) != len(labels):
        raise ValueError(f"images must be (N, C, S, S) with one label each, got {tuple(images.shape)} and {len(labels)}")
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = PlanClassifier(in_channels=images.shape[1], num_classes=int(labels.max()) + 1, width=width,
                               input_size=images.shape[-1])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    losses = []
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(images), (batch_size,), generator=g)
        x = torch.rot90(images[idx], int(torch.randint(0, 4, (1,), generator=g)), dims=(2, 3))
        if torch.rand(1, generator=g) < 0.5:
            x = x.flip(3)
        loss = F.cross_entropy(model(x), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return model.eval(), losses


@torch.no_grad()
def plan_features(model: PlanClassifier, images: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """(N, feature_dim) features of rendered plans."""
    return np.concatenate([model.features(images[i:i + batch_size].float()).numpy()
                           for i in range(0, len(images), batch_size)])


@torch.no_grad()
def plan_accuracy(model: PlanClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    pred = torch.cat([model(images[i:i + 256].float()).argmax(1) for i in range(0, len(images), 256)])
    return float((pred == labels).float().mean())


def plan_metrics(requested_types: Sequence[str], requested_edges: Sequence[tuple[int, int]],
                 room_types: Sequence[str], polygons: Sequence[Polygon], doors: Iterable[Door]) -> dict[str, float]:
    """Per-plan metrics: compatibility (GED), overlap, room match, feasible and requested door counts."""
    requested = nx.Graph()
    for i, t in enumerate(requested_types):
        requested.add_node(i, room_type=t)
    requested.add_edges_from(requested_edges)
    feasible, total = door_feasibility(requested_edges, polygons)
    return {
        "compatibility": graph_edit_distance(requested, realised_graph(room_types, polygons, doors)),
        "overlap": overlap_fraction(polygons),
        "rooms_match": float(rooms_match(requested_types, room_types, polygons)),
        "doors_feasible": float(feasible),
        "doors_requested": float(total),
    }

"""Plans as padded corner sets: the tensors the denoiser sees, the procedural datasets and the batch source.

A batch of B plans with at most R rooms and N corners in all is (HouseDiffusion, Shabani et al. 2023, sec. 4.1):

==============  ============  ===========================================================
key             shape         what
==============  ============  ===========================================================
corners         (B, N, 2)     corner coordinates in [-1, 1] (the diffusion's x_0)
corner_room     (B, N) long   the room slot of each corner
corner_index    (B, N) long   the corner's position in its room's canonical order
corner_mask     (B, N) bool   True for real corners, False for padding
room_type       (B, R) long   index into ``conditioning.graph.ROOM_TYPES``
room_corners    (B, R) long   corners of each room
room_mask       (B, R) bool   True for real rooms
room_area       (B, R, 2)     (log(area / 10 m^2), 1) when the target area is given, else (0, 0)
adjacency       (B, R, R)     the bubble graph's doors
==============  ============  ===========================================================

Train and test split by graph: a plan belongs to the held-out split when the Weisfeiler-Lehman hash
(Shervashidze et al. 2011) of its bubble graph, with room types as labels, salted and hashed again, falls
in the test bucket (one in ten), so no test graph (up to isomorphism) is ever seen in training. A few
graphs carry much of the mass of small houses (one 4-room graph is 88 % of 4-room draws), so the salt is
fixed to one that holds out 6-12 % of the draws of every room count from 4 to 10 (chosen among 300 salts
on 2,100 draws).
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import networkx as nx
import numpy as np
import torch

from conditioning.graph import ROOM_TYPES

from .geometry import canonical_polygon, dihedral, from_unit, to_unit
from .graph import BubbleGraph, Room
from .plan import Floorplan
from .procedural import generate_plan

BATCH_KEYS: tuple[str, ...] = ("corners", "corner_room", "corner_index", "corner_mask", "room_type", "room_corners",
                               "room_mask", "room_area", "adjacency")
STRUCTURE_KEYS: tuple[str, ...] = BATCH_KEYS[1:]
AREA_SCALE = 10.0  # m^2
SPLITS = {"train": 1, "test": 2}
TEST_BUCKETS = 10  # one WL-hash bucket in ten is held out
SPLIT_SALT = 145


def graph_split(graph: BubbleGraph) -> str:
    """'test' for graphs in the held-out hash bucket, else 'train'."""
    h = nx.weisfeiler_lehman_graph_hash(graph.to_networkx(), node_attr="room_type", iterations=3)
    bucket = int(hashlib.sha256(f"{SPLIT_SALT}:{h}".encode()).hexdigest(), 16) % TEST_BUCKETS
    return "test" if bucket == 0 else "train"


def procedural_plan(split: str, index: int, rooms: tuple[int, int] = (4, 10), seed: int = 0) -> Floorplan:
    """Plan ``index`` of ``split``: a function of (seed, split, index) alone, drawn until its graph is in the split."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {tuple(SPLITS)}, got {split!r}")
    if not 4 <= rooms[0] <= rooms[1]:
        raise ValueError(f"rooms must be (low, high) with 4 <= low <= high, got {rooms}")
    rng = np.random.default_rng([seed, SPLITS[split], index])
    while True:
        plan = generate_plan(rng, int(rng.integers(rooms[0], rooms[1] + 1)))
        if graph_split(plan.graph) == split:
            return plan


def procedural_plans(split: str, count: int, rooms: tuple[int, int] = (4, 10), seed: int = 0,
                     start: int = 0) -> list[Floorplan]:
    return [procedural_plan(split, start + i, rooms, seed) for i in range(count)]


def structure_tensors(graphs: Sequence[BubbleGraph], area_known: Sequence[Sequence[bool]] | None = None,
                      corner_counts: Sequence[Sequence[int]] | None = None) -> dict[str, torch.Tensor]:
    """The structure of a batch (every key but ``corners``) from its bubble graphs.

    Args:
        graphs: one bubble graph per plan.
        area_known: per graph and room, whether its area is passed to the network (default: where given).
        corner_counts: per graph and room, the number of corners (default: the graph's, 4 where unset).
    """
    counts = [list(c) for c in corner_counts] if corner_counts is not None else [list(g.corner_counts()) for g in graphs]
    b, r, n = len(graphs), max(len(g) for g in graphs), max(sum(c) for c in counts)
    out = {
        "corner_room": torch.zeros(b, n, dtype=torch.long), "corner_index": torch.zeros(b, n, dtype=torch.long),
        "corner_mask": torch.zeros(b, n, dtype=torch.bool), "room_type": torch.zeros(b, r, dtype=torch.long),
        "room_corners": torch.zeros(b, r, dtype=torch.long), "room_mask": torch.zeros(b, r, dtype=torch.bool),
        "room_area": torch.zeros(b, r, 2), "adjacency": torch.zeros(b, r, r, dtype=torch.bool),
    }
    for k, g in enumerate(graphs):
        pos = 0
        for i, room in enumerate(g.rooms):
            c = counts[k][i]
            out["corner_room"][k, pos:pos + c] = i
            out["corner_index"][k, pos:pos + c] = torch.arange(c)
            out["corner_mask"][k, pos:pos + c] = True
            pos += c
            out["room_type"][k, i] = ROOM_TYPES.index(room.room_type)
            out["room_corners"][k, i] = c
            known = room.area is not None if area_known is None else area_known[k][i] and room.area is not None
            if known:
                out["room_area"][k, i] = torch.tensor([float(np.log(room.area / AREA_SCALE)), 1.0])
        out["room_mask"][k, :len(g)] = True
        for i, j in g.edges:
            out["adjacency"][k, i, j] = out["adjacency"][k, j, i] = True
    return out


def encode_plans(plans: Sequence[Floorplan], area_known: Sequence[Sequence[bool]] | None = None) -> dict[str, torch.Tensor]:
    """Every key of :data:`BATCH_KEYS` for plans that carry their bubble graphs (``plan.graph``)."""
    graphs = [p.graph for p in plans]
    if any(g is None or len(g) != len(p.polygons) for g, p in zip(graphs, plans)):
        raise ValueError("every plan must carry its bubble graph with one room per polygon")
    counts = [[len(poly) for poly in p.polygons] for p in plans]
    out = structure_tensors(graphs, area_known, counts)
    corners = torch.zeros(out["corner_mask"].shape + (2,))
    for k, p in enumerate(plans):
        pts = np.concatenate([np.asarray(poly, dtype=np.float64) for poly in p.polygons])
        corners[k, :len(pts)] = torch.from_numpy(to_unit(pts)).float()
    return {"corners": corners, **out}


def split_corners(corners: torch.Tensor, structure: dict[str, torch.Tensor]) -> list[list[np.ndarray]]:
    """(B, N, 2) in [-1, 1] -> per plan, per room, a (k, 2) array of corners in metres."""
    x = from_unit(corners.detach().float().cpu().numpy())
    counts = structure["room_corners"].cpu().numpy()
    mask = structure["room_mask"].cpu().numpy()
    out = []
    for k in range(x.shape[0]):
        rooms, pos = [], 0
        for c in counts[k][mask[k]]:
            rooms.append(x[k, pos:pos + c])
            pos += c
        out.append(rooms)
    return out


def augment_plan(plan: Floorplan, symmetry: int, order: Sequence[int]) -> Floorplan:
    """The plan turned by one of the 8 symmetries of the canvas, with its rooms put in ``order``."""
    polys = [canonical_polygon([tuple(p) for p in dihedral(np.asarray(plan.polygons[i]), symmetry)]) for i in order]
    inverse = {old: new for new, old in enumerate(order)}
    g = plan.graph
    rooms = tuple(Room(new, g.rooms[i].room_type, g.rooms[i].area, len(polys[new]))
                  for new, i in enumerate(order))
    doors = tuple((inverse[i], inverse[j]) for i, j in g.edges)
    return Floorplan(tuple(plan.room_types[i] for i in order), tuple(polys), (), BubbleGraph(rooms, doors))


class PlanBatches:
    """A :class:`generators.core.training.BatchSource` over a fixed pool of plans.

    Each batch draws plans with replacement, turns each by a random symmetry of the canvas, shuffles
    its rooms, and passes room areas to the network for a random subset of plans and rooms (so that
    the model serves graphs with and without target areas), all from the loop's seeded generator.
    """

    def __init__(self, plans: Sequence[Floorplan], augment: bool = True) -> None:
        if not plans:
            raise ValueError("the training pool of plans is empty")
        self.plans = list(plans)
        self.augment = augment

    def batch(self, generator: torch.Generator, batch_size: int) -> tuple[torch.Tensor, ...]:
        idx = torch.randint(0, len(self.plans), (batch_size,), generator=generator).tolist()
        plans, known = [], []
        for i in idx:
            plan = self.plans[i]
            n = len(plan.polygons)
            if self.augment:
                k = int(torch.randint(0, 8, (1,), generator=generator))
                plan = augment_plan(plan, k, torch.randperm(n, generator=generator).tolist())
            mode = int(torch.randint(0, 3, (1,), generator=generator))  # none / all / some areas given
            some = (torch.rand(n, generator=generator) < 0.5).tolist()
            known.append([mode == 1 or (mode == 2 and s) for s in some])
            plans.append(plan)
        enc = encode_plans(plans, known)
        return tuple(enc[k] for k in BATCH_KEYS)

"""A loader for RPLAN-derived JSON files in the format HouseDiffusion and House-GAN++ read (Shabani et al. 2023;
Nauata et al. 2021), so that users who have RPLAN (Wu et al. 2019) can train on it. Nothing is downloaded.

One file describes one plan on a 256 x 256 pixel canvas:

- ``room_type``: a list of integer types, one per room or door (1 living room, 2 kitchen, 3 bedroom,
  4 bathroom, 5 balcony, 6 entrance, 7 dining room, 8 study room, 10 storage, 15 front door,
  17 interior door, 16 unknown);
- ``boxes``: per room or door, its bounding box [x0, y0, x1, y1] in pixels;
- ``edges``: the walls [x0, y0, x1, y1, room_type, ...] of every room and door polygon;
- ``ed_rm``: per wall, the rooms it belongs to: first its own room or door, then the room on its other side.

A room's polygon is the loop of walls whose ``ed_rm`` starts with it; an interior door joins the rooms its
walls touch. Coordinates are scaled by ``pixel_size`` metres (default 1/16: the 256-pixel canvas is the
family's 16 m canvas) with y flipped upwards, snapped to the 0.25 m grid and centred.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np

from evaluation.floorplan import polygon_area

from .geometry import CELL, EXTENT, canonical_polygon, is_rectilinear, place_door
from .graph import BubbleGraph, Room
from .plan import Door, Floorplan

RPLAN_ROOM_TYPES: dict[int, str] = {
    1: "living_room", 2: "kitchen", 3: "bedroom", 4: "bathroom", 5: "balcony", 6: "entrance",
    7: "dining_room", 8: "study_room", 10: "storage",
}
FRONT_DOOR, INTERIOR_DOOR = 15, 17
CANVAS_PIXELS = 256


def _loops(walls: list[tuple[float, float, float, float]]) -> list[list[tuple[float, float]]]:
    """Chain wall segments into closed loops of vertices."""
    remaining = [((x0, y0), (x1, y1)) for x0, y0, x1, y1 in walls]
    loops = []
    while remaining:
        a, b = remaining.pop(0)
        loop = [a, b]
        while loop[-1] != loop[0]:
            k = next((k for k, (p, q) in enumerate(remaining) if p == loop[-1] or q == loop[-1]), None)
            if k is None:
                raise ValueError("a room's walls do not form a closed loop")
            p, q = remaining.pop(k)
            loop.append(q if p == loop[-1] else p)
        loops.append(loop[:-1])
    return loops


def read_rplan(path: str | os.PathLike, pixel_size: float = EXTENT / CANVAS_PIXELS) -> Floorplan:
    """One RPLAN-derived JSON file -> a Floorplan with its bubble graph (rooms and interior doors).

    Raises ValueError naming the file and the problem (unknown room type, an open polygon, missing keys).
    """
    path = Path(path)
    try:
        info = json.loads(path.read_text())
        types, walls, owners = info["room_type"], info["edges"], info["ed_rm"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not an RPLAN JSON file with room_type, edges and ed_rm ({exc})") from None
    if len(walls) != len(owners):
        raise ValueError(f"{path}: 'edges' has {len(walls)} entries but 'ed_rm' has {len(owners)}")
    rooms = [k for k, t in enumerate(types) if t not in (FRONT_DOOR, INTERIOR_DOOR)]
    unknown = sorted({types[k] for k in rooms if types[k] not in RPLAN_ROOM_TYPES})
    if unknown:
        raise ValueError(f"{path}: room types {unknown} have no floorplan room type (known: {sorted(RPLAN_ROOM_TYPES)})")
    index = {k: i for i, k in enumerate(rooms)}
    polygons = []
    for k in rooms:
        own = [tuple(map(float, w[:4])) for w, o in zip(walls, owners) if o and o[0] == k]
        loops = _loops(own)
        if not loops:
            raise ValueError(f"{path}: room {k} has no walls")
        loop = max(loops, key=polygon_area)
        pts = [(x * pixel_size, (CANVAS_PIXELS - y) * pixel_size) for x, y in loop]
        polygons.append(pts)
    pts = np.array([p for poly in polygons for p in poly])
    shift = EXTENT / 2 - (pts.min(0) + pts.max(0)) / 2
    polygons = [canonical_polygon([tuple(np.round((np.asarray(p) + shift) / CELL) * CELL) for p in poly]) for poly in polygons]
    edges: set[tuple[int, int]] = set()
    for k, t in enumerate(types):
        if t == INTERIOR_DOOR:
            joined = sorted({index[r] for w, o in zip(walls, owners) if o and o[0] == k for r in o[1:] if r in index})
            if len(joined) == 2:
                edges.add((joined[0], joined[1]))
    room_types = [RPLAN_ROOM_TYPES[types[k]] for k in rooms]
    graph = BubbleGraph(tuple(Room(i, t, round(polygon_area(p), 2), len(p)) for i, (t, p) in enumerate(zip(room_types, polygons))),
                        tuple(sorted(edges)), name=path.stem)
    doors = tuple(Door(e, seg) for e in sorted(edges) if (seg := place_door(polygons[e[0]], polygons[e[1]])) is not None)
    return Floorplan(tuple(room_types), tuple(polygons), doors, graph)


def iter_rplan(folder: str | os.PathLike) -> Iterator[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"RPLAN folder {folder} does not exist; give the folder of HouseDiffusion's rplan/*.json files")
    yield from sorted(folder.glob("*.json"))


def load_rplan_folder(folder: str | os.PathLike, max_rooms: int = 10, max_corners: int = 8,
                      max_tokens: int = 64) -> list[Floorplan]:
    """Every usable plan of a folder of RPLAN JSON files: Manhattan, at most ``max_rooms`` rooms, rooms of
    at most ``max_corners`` corners and ``max_tokens`` corners in all, every room of positive area.
    Unreadable files are skipped with one warning that counts them."""
    plans, skipped = [], 0
    for path in iter_rplan(folder):
        try:
            plan = read_rplan(path)
        except ValueError:
            skipped += 1
            continue
        counts = [len(p) for p in plan.polygons]
        if (len(counts) > max_rooms or max(counts) > max_corners or sum(counts) > max_tokens
                or not all(is_rectilinear(p) and polygon_area(p) > 0 for p in plan.polygons)):
            skipped += 1
            continue
        plans.append(plan)
    if skipped:
        warnings.warn(f"{skipped} RPLAN files in {folder} were skipped (unreadable, non-Manhattan or too large)",
                      stacklevel=2)
    return plans

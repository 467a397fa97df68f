"""Procedural floorplans: recursive subdivision of a house outline with room-type rules (nothing downloaded).

One plan is drawn in five steps, all on the 0.25 m grid of :mod:`.geometry`:

1. a room programme for ``num_rooms`` rooms (always a living room, a kitchen, a bathroom and a
   bedroom; then bedrooms, bathrooms, a dining room, an entrance, a corridor, a study, balconies, a
   storage room by weighted draws), each with a target area from :data:`ROOM_RULES` (bathrooms small,
   living rooms large);
2. a rectangular outline of the total area, split into a public zone (living, kitchen, dining, entrance)
   and a private zone (bedrooms, bathrooms, sometimes the study);
3. the private zone as a row along the public zone, or along a corridor spine when there is a
   corridor, so that every bedroom is reachable; the public zone by recursive area-proportional
   subdivision (squarified slicing, Bruls et al. 2000) of its room sequence;
4. carve-outs: a balcony as a strip on an exterior side of the living room or a bedroom, a storage
   room (and sometimes the entrance) as a corner of a host room, which makes the host L-shaped;
5. doors: each room takes a door to its preferred neighbour (:data:`DOOR_PREFERENCES`) among the rooms
   it shares at least 0.7 m of wall with, extra doors join public rooms, and doors are added until
   every room is reachable. The bubble graph is the set of doors, so every edge of it is feasible
   by construction, under the same rule the refinement and the metrics use.

The plan is then turned by a random symmetry of the square and centred on the canvas.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evaluation.floorplan import MIN_DOOR_WALL, longest_shared_wall, polygon_area

from .geometry import CELL, GRID, canonical_polygon, dihedral, place_door
from .graph import BubbleGraph, Room
from .plan import Door, Floorplan

Rect = tuple[int, int, int, int]  # (x0, y0, x1, y1) in cells


@dataclass(frozen=True)
class RoomRule:
    """Target area range (m^2) and the shortest side (m) a room of this type may have."""

    area: tuple[float, float]
    min_side: float


ROOM_RULES: dict[str, RoomRule] = {
    "living_room": RoomRule((16.0, 28.0), 3.0),
    "kitchen": RoomRule((6.0, 11.0), 2.0),
    "bedroom": RoomRule((9.0, 15.0), 2.5),
    "bathroom": RoomRule((3.5, 6.0), 1.5),
    "balcony": RoomRule((3.0, 7.0), 1.25),
    "entrance": RoomRule((3.0, 6.0), 1.5),
    "dining_room": RoomRule((7.0, 12.0), 2.25),
    "study_room": RoomRule((6.0, 9.5), 2.25),
    "storage": RoomRule((1.5, 3.5), 1.0),
    "corridor": RoomRule((4.0, 9.0), 1.0),
}
DOOR_PREFERENCES: dict[str, tuple[str, ...]] = {
    "bedroom": ("corridor", "living_room", "entrance", "dining_room"),
    "bathroom": ("corridor", "bedroom", "living_room", "entrance", "dining_room"),
    "kitchen": ("dining_room", "living_room", "corridor", "entrance"),
    "dining_room": ("living_room", "kitchen", "corridor", "entrance"),
    "study_room": ("living_room", "corridor", "entrance", "dining_room", "bedroom"),
    "storage": ("corridor", "entrance", "kitchen", "living_room", "bedroom"),
    "balcony": ("living_room", "bedroom", "dining_room", "study_room", "kitchen"),
    "entrance": ("living_room", "corridor", "dining_room"),
    "corridor": ("living_room", "entrance", "dining_room"),
    "living_room": ("entrance", "dining_room", "corridor", "kitchen"),
}
EXTRA_DOORS: dict[frozenset, float] = {
    frozenset(("living_room", "dining_room")): 0.8, frozenset(("dining_room", "kitchen")): 0.6,
    frozenset(("living_room", "kitchen")): 0.35, frozenset(("entrance", "corridor")): 0.7,
    frozenset(("living_room", "corridor")): 0.6,
}
HOST_TYPES: dict[str, tuple[str, ...]] = {
    "balcony": ("living_room", "bedroom"), "entrance": ("living_room",),
    "storage": ("bedroom", "kitchen", "living_room", "entrance", "study_room"),
}
PREFERENCE_DECAY = 0.3
HUB_SCORE = {"living_room": 3, "corridor": 3, "entrance": 2, "dining_room": 2, "kitchen": 1}
SINGLE_DOOR = ("bathroom", "balcony", "storage")
PRIVATE = ("bedroom", "bathroom")
MAX_SIDE_CELLS = 60  # the outline fits 15 m, leaving a margin on the 16 m canvas


def sample_program(rng: np.random.Generator, num_rooms: int) -> list[str]:
    """Room types for a house of ``num_rooms`` rooms (4..16)."""
    types = ["living_room", "kitchen", "bathroom", "bedroom"][:num_rooms]
    caps = {"bedroom": 4, "bathroom": 3, "dining_room": 1, "entrance": 1, "corridor": 1, "study_room": 1,
            "balcony": 2, "storage": 1}
    weights = {"bedroom": 3.0, "bathroom": 1.3, "dining_room": 1.0, "entrance": 1.0, "corridor": 1.3,
               "study_room": 0.8, "balcony": 1.0, "storage": 0.7}
    while len(types) < num_rooms:
        names = [t for t in caps if types.count(t) < caps[t] and (t != "corridor" or types.count("bedroom") >= 2)]
        if not names:
            raise ValueError(f"num_rooms={num_rooms} exceeds what the room programme can fill (at most 16)")
        w = np.array([weights[t] for t in names])
        types.append(names[int(rng.choice(len(names), p=w / w.sum()))])
    return types


def _min_cells(room_type: str) -> int:
    return int(np.ceil(ROOM_RULES[room_type].min_side / CELL - 1e-9))


def _subdivide(rect: Rect, rooms: list[int], areas: np.ndarray, rng: np.random.Generator, out: dict[int, Rect],
               types: list[str]) -> None:
    """Slice ``rect`` among ``rooms`` in proportion to their areas, cutting across the longer side."""
    if len(rooms) == 1:
        out[rooms[0]] = rect
        return
    x0, y0, x1, y1 = rect
    w, h = x1 - x0, y1 - y0
    cut_x = w > h if abs(w - h) > 0.2 * max(w, h) else bool(rng.integers(2))
    total = areas[rooms].sum()
    prefix = np.cumsum(areas[rooms])[:-1] / total
    k = 1 + int(np.argmin(np.abs(prefix - 0.5) + rng.uniform(0, 0.1, len(prefix))))
    lo, hi = (x0, x1) if cut_x else (y0, y1)
    m1, m2 = max(_min_cells(types[r]) for r in rooms[:k]), max(_min_cells(types[r]) for r in rooms[k:])
    pos = int(np.clip(lo + round(prefix[k - 1] * (hi - lo)), lo + m1, max(lo + m1, hi - m2)))
    first, second = ((x0, y0, pos, y1), (pos, y0, x1, y1)) if cut_x else ((x0, y0, x1, pos), (x0, pos, x1, y1))
    _subdivide(first, rooms[:k], areas, rng, out, types)
    _subdivide(second, rooms[k:], areas, rng, out, types)


def _row(rect: Rect, rooms: list[int], areas: np.ndarray, along_x: bool, out: dict[int, Rect],
         types: list[str]) -> bool:
    """Rooms side by side along one axis of ``rect``, widths in proportion to their areas but at least
    each room's shortest side; False when the row is too short for that."""
    x0, y0, x1, y1 = rect
    length = (x1 - x0) if along_x else (y1 - y0)
    low = np.array([_min_cells(types[r]) for r in rooms], dtype=np.float64)
    width = areas[rooms] / areas[rooms].sum() * length
    for _ in range(len(rooms)):
        short = width < low
        if not short.any():
            break
        spare = length - low[short].sum()
        if spare < low[~short].sum():
            return False
        width = np.where(short, low, width / width[~short].sum() * spare)
    edges = np.round(np.concatenate([[0], np.cumsum(width)])).astype(int)
    for r, a, b in zip(rooms, edges[:-1], edges[1:]):
        out[r] = (x0 + a, y0, x0 + b, y1) if along_x else (x0, y0 + a, x1, y0 + b)
    return True


def _private_zone(rect: Rect, private: list[int], corridor: int | None, areas: np.ndarray,
                  rng: np.random.Generator, out: dict[int, Rect], types: list[str]) -> None:
    """Private rooms in a column along the public zone (x = rect's left side), or on both sides of a corridor."""
    x0, y0, x1, y1 = rect
    if corridor is None:
        if len(private) <= 3 and _row(rect, private, areas, along_x=False, out=out, types=types):
            return
        _subdivide(rect, private, areas, rng, out, types)
        return
    order = list(rng.permutation(private))
    split = max(1, len(order) // 2) if len(order) > 1 else len(order)
    top, bottom = order[:split], order[split:]
    width = int(rng.integers(4, 7))
    length = x1 - x0
    h_top = int(round(areas[top].sum() / length)) if top else 0
    h_bottom = (y1 - y0) - width - h_top
    if bottom:
        _row((x0, y0, x1, y0 + h_bottom), bottom, areas, along_x=True, out=out, types=types)
    out[corridor] = (x0, y0 + h_bottom, x1, y0 + h_bottom + width)
    _row((x0, y0 + h_bottom + width, x1, y1), top, areas, along_x=True, out=out, types=types)


def _layout(types: list[str], core: list[int], areas: np.ndarray, rng: np.random.Generator) -> dict[int, Rect] | None:
    """Rectangles (cells) for the core rooms, public zone left of the private zone, or None if infeasible.

    ``areas`` (cells^2, hosts including what will be carved from them) is rescaled in place to fill the outline.
    """
    total = areas[core].sum()
    aspect = rng.uniform(1.0, 1.5)  # wide: the zones sit side by side
    w = int(round(np.sqrt(total * aspect)))
    h = int(round(total / w))
    if max(w, h) > MAX_SIDE_CELLS:
        return None
    corridor = next((i for i in core if types[i] == "corridor"), None)
    private = [i for i in core if types[i] in PRIVATE or (types[i] == "study_room" and rng.random() < 0.5)]
    public = [i for i in core if i not in private and i != corridor]
    public.sort(key=lambda i: (types[i] != "living_room", rng.random()))
    areas[public] *= (w * h - areas[private].sum() - (areas[corridor] if corridor is not None else 0)) / areas[public].sum()
    if corridor is not None:  # the corridor's share is a strip of the private zone
        areas[corridor] = 0.0
    split = int(round(w * areas[public].sum() / (w * h)))
    if not 0 < split < w:
        return None
    out: dict[int, Rect] = {}
    _subdivide((0, 0, split, h), public[::-1], areas, rng, out, types)
    _private_zone((split, 0, w, h), private, corridor, areas, rng, out, types)
    if set(out) != set(core):
        return None
    for i, (x0, y0, x1, y1) in out.items():
        short, long_ = sorted((x1 - x0, y1 - y0))
        if short < _min_cells(types[i]) or (types[i] != "corridor" and long_ > 3.2 * short):
            return None
    return out


def _exterior_sides(rect: Rect, w: int, h: int) -> list[str]:
    x0, y0, x1, y1 = rect
    return [s for s, on in (("left", x0 == 0), ("right", x1 == w), ("bottom", y0 == 0), ("top", y1 == h)) if on]


def _minus(host: Rect, cut: Rect) -> tuple[tuple[float, float], ...]:
    """Polygon (metres) of ``host`` minus ``cut``, where ``cut`` is a full side strip or a corner of ``host``."""
    hx0, hy0, hx1, hy1 = host
    cx0, cy0, cx1, cy1 = cut
    if (cx0, cx1) == (hx0, hx1) or (cy0, cy1) == (hy0, hy1):  # full-side strip: host stays a rectangle
        rx0 = cx1 if (cx0, cx1) != (hx0, hx1) and cx0 == hx0 else hx0
        rx1 = cx0 if (cx0, cx1) != (hx0, hx1) and cx1 == hx1 else hx1
        ry0 = cy1 if (cy0, cy1) != (hy0, hy1) and cy0 == hy0 else hy0
        ry1 = cy0 if (cy0, cy1) != (hy0, hy1) and cy1 == hy1 else hy1
        pts = [(rx0, ry0), (rx1, ry0), (rx1, ry1), (rx0, ry1)]
    else:
        corner_x = cx0 if cx0 != hx0 else cx1
        corner_y = cy0 if cy0 != hy0 else cy1
        ox = hx0 if cx0 == hx0 else hx1
        oy = hy0 if cy0 == hy0 else hy1
        ring = {(hx0, hy0), (hx1, hy0), (hx1, hy1), (hx0, hy1)} - {(ox, oy)}
        pts = [p for p in [(hx0, hy0), (hx1, hy0), (hx1, hy1), (hx0, hy1)] if p in ring or p == (ox, oy)]
        k = pts.index((ox, oy))
        prev_pt, next_pt = pts[k - 1], pts[(k + 1) % 4]
        first = (corner_x, oy) if prev_pt[1] == oy else (ox, corner_y)
        last = (ox, corner_y) if next_pt[0] == ox else (corner_x, oy)
        pts = pts[:k] + [first, (corner_x, corner_y), last] + pts[k + 1:]
    return tuple((x * CELL, y * CELL) for x, y in pts)


def _assign_hosts(types: list[str], carved: list[int], areas: np.ndarray, rng: np.random.Generator) -> dict[int, int] | None:
    """A host room for each carved room; the host's target area grows by the carved room's."""
    hosts: dict[int, int] = {}
    for i in carved:
        cands = [j for j in range(len(types)) if j not in carved and j not in hosts.values()
                 and types[j] in HOST_TYPES[types[i]]]
        if not cands:
            return None
        hosts[i] = cands[int(rng.integers(len(cands)))]
        areas[hosts[i]] += areas[i]
    return hosts


def _carve_rect(kind: str, host: Rect, area: float, keep: int, w: int, h: int, rng: np.random.Generator) -> Rect | None:
    """The rectangle (cells) cut from ``host``: an exterior strip for a balcony, else a corner."""
    hw, hh = host[2] - host[0], host[3] - host[1]
    ext = _exterior_sides(host, w, h)
    if kind == "balcony":
        sides = [s for s in ext if _side_len(host, s) >= 10 and (hw if s in ("left", "right") else hh) - 6 >= keep]
        if not sides:
            return None
        side = sides[int(rng.integers(len(sides)))]
        depth, span = int(rng.integers(5, 7)), _side_len(host, side)
        length = int(np.clip(round(area / depth), 10, span))
        length = span if length > span - 7 else length
        start = bool(rng.integers(2))
        if side in ("left", "right"):
            y0 = host[1] if start else host[3] - length
            x0 = host[0] if side == "left" else host[2] - depth
            return x0, y0, x0 + depth, y0 + length
        x0 = host[0] if start else host[2] - length
        y0 = host[1] if side == "bottom" else host[3] - depth
        return x0, y0, x0 + length, y0 + depth
    a = int(np.clip(round(np.sqrt(area) * rng.uniform(0.8, 1.25)), 4, 10))
    b = int(np.clip(round(area / a), 4, 10))
    if hw - a < keep or hh - b < keep:
        return None
    corners = [(cx, cy) for cx in (0, 1) for cy in (0, 1)]
    if kind == "entrance":  # the entrance is on the outline
        corners = [(cx, cy) for cx, cy in corners
                   if ("left" if cx == 0 else "right") in ext or ("bottom" if cy == 0 else "top") in ext]
    if not corners:
        return None
    cx, cy = corners[int(rng.integers(len(corners)))]
    x0 = host[0] if cx == 0 else host[2] - a
    y0 = host[1] if cy == 0 else host[3] - b
    return x0, y0, x0 + a, y0 + b


def _carve(types: list[str], rects: dict[int, Rect], hosts: dict[int, int], areas: np.ndarray, w: int, h: int,
           rng: np.random.Generator) -> dict[int, tuple] | None:
    """Cut balconies, storage and a carved entrance out of their hosts; polygons (metres) per room."""
    polys: dict[int, tuple] = {}
    for i, j in hosts.items():
        keep = _min_cells(types[j]) - (2 if types[j] == "living_room" else 0)
        cut = _carve_rect(types[i], rects[j], areas[i], keep, w, h, rng)
        if cut is None:
            return None
        polys[i] = tuple((x * CELL, y * CELL) for x, y in [(cut[0], cut[1]), (cut[2], cut[1]), (cut[2], cut[3]), (cut[0], cut[3])])
        polys[j] = _minus(rects[j], cut)
    for j, (x0, y0, x1, y1) in rects.items():
        polys.setdefault(j, tuple((x * CELL, y * CELL) for x, y in [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]))
    return polys


def _side_len(rect: Rect, side: str) -> int:
    return rect[3] - rect[1] if side in ("left", "right") else rect[2] - rect[0]


def choose_doors(types: list[str], polygons: list, rng: np.random.Generator) -> list[tuple[int, int]] | None:
    """Doors by the type preferences, extra public doors, then links until connected; None if impossible."""
    n = len(types)
    walls = {(i, j) for i in range(n) for j in range(i + 1, n)
             if (r := longest_shared_wall(polygons[i], polygons[j])) is not None and r.length >= MIN_DOOR_WALL - 1e-6}
    nbrs = {i: [j for j in range(n) if (min(i, j), max(i, j)) in walls] for i in range(n)}
    doors: set[tuple[int, int]] = set()
    for i in sorted(range(n), key=lambda k: (HUB_SCORE.get(types[k], 0), rng.random())):
        if any(i in d for d in doors) and types[i] in SINGLE_DOOR:
            continue
        prefs = DOOR_PREFERENCES[types[i]]
        # a neighbour of preference rank r with probability proportional to PREFERENCE_DECAY^r (Gumbel-max trick)
        rank = {j: prefs.index(types[j]) if types[j] in prefs else len(prefs) for j in nbrs[i]}
        ranked = sorted(nbrs[i], key=lambda j: -rank[j] * np.log(PREFERENCE_DECAY) + np.log(-np.log(rng.random())))
        if ranked and (types[ranked[0]] in prefs or types[i] not in PRIVATE):
            doors.add((min(i, ranked[0]), max(i, ranked[0])))
    for i, j in sorted(walls):
        if rng.random() < EXTRA_DOORS.get(frozenset((types[i], types[j])), 0.0):
            doors.add((i, j))
    parent = list(range(n))

    def find(k: int) -> int:
        while parent[k] != k:
            k = parent[k]
        return k

    for i, j in doors:
        parent[find(i)] = find(j)
    while len({find(k) for k in range(n)}) > 1:
        links = [(i, j) for i, j in walls if find(i) != find(j)]
        if not links:
            return None
        i, j = max(links, key=lambda e: (HUB_SCORE.get(types[e[0]], 0) + HUB_SCORE.get(types[e[1]], 0), rng.random()))
        doors.add((i, j))
        parent[find(i)] = find(j)
    return sorted(doors)


def sample_plan(rng: np.random.Generator, num_rooms: int) -> Floorplan | None:
    """One attempt at a plan of ``num_rooms`` rooms; None when the draw is infeasible (the caller redraws)."""
    types = sample_program(rng, num_rooms)
    areas = np.array([rng.uniform(*ROOM_RULES[t].area) for t in types]) / CELL**2
    carved = [i for i, t in enumerate(types) if t in ("balcony", "storage") or (t == "entrance" and rng.random() < 0.5)]
    hosts = _assign_hosts(types, carved, areas, rng)
    if hosts is None:
        return None
    rects = _layout(types, [i for i in range(len(types)) if i not in carved], areas, rng)
    if rects is None:
        return None
    w, h = max(r[2] for r in rects.values()), max(r[3] for r in rects.values())
    polys = _carve(types, rects, hosts, areas, w, h, rng)
    if polys is None:
        return None
    k = int(rng.integers(8))
    pts = {i: dihedral(np.array(p) / CELL, k, centre=0.0) for i, p in polys.items()}
    lo = np.min([p.min(0) for p in pts.values()], axis=0)
    hi = np.max([p.max(0) for p in pts.values()], axis=0)
    offset = (GRID - (hi - lo)) // 2 - lo
    order = [int(v) for v in rng.permutation(len(types))]
    out_types = [types[i] for i in order]
    out_polys = [canonical_polygon([tuple(v) for v in np.round(pts[i] + offset) * CELL]) for i in order]
    edges = choose_doors(out_types, out_polys, rng)
    if edges is None:
        return None
    doors = tuple(Door((i, j), place_door(out_polys[i], out_polys[j])) for i, j in edges)
    graph = BubbleGraph(tuple(Room(i, t, round(polygon_area(p), 2), len(p)) for i, (t, p) in enumerate(zip(out_types, out_polys))),
                        tuple(edges))
    return Floorplan(tuple(out_types), tuple(out_polys), doors, graph)


def generate_plan(rng: np.random.Generator, num_rooms: int, max_attempts: int = 200) -> Floorplan:
    """A plan of ``num_rooms`` rooms drawn from ``rng`` (deterministic in its state)."""
    if not 4 <= num_rooms <= 16:
        raise ValueError(f"num_rooms must be in 4..16 for the procedural generator, got {num_rooms}")
    for _ in range(max_attempts):
        plan = sample_plan(rng, num_rooms)
        if plan is not None:
            return plan
    raise RuntimeError(f"no feasible plan of {num_rooms} rooms in {max_attempts} draws")

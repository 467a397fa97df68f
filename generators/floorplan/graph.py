"""Bubble graphs: the input of the floorplan generator (rooms as nodes, doors as edges).

A bubble diagram (HouseGAN, Nauata et al. 2020, sec. 3; HouseDiffusion, Shabani et al. 2023, sec. 3)
names the rooms of a house and which pairs of rooms a door joins. Users write one by hand as JSON:

.. code-block:: json

    {
      "name": "two-bedroom flat",
      "rooms": [
        {"id": "living", "room_type": "living_room", "area": 22.0},
        {"id": "kitchen", "room_type": "kitchen"},
        {"id": "bed1", "room_type": "bedroom", "corners": 4},
        {"id": "bath", "room_type": "bathroom"}
      ],
      "doors": [["living", "kitchen"], ["living", "bed1"], ["bed1", "bath"]]
    }

Schema (every other key is an error, so typos are caught):

- ``rooms`` (required, non-empty list): objects with
  ``id`` (required; a string or an integer, unique), ``room_type`` (required; one of
  :data:`FLOORPLAN_ROOM_TYPES`), ``area`` (optional target area in square metres, > 0) and
  ``corners`` (optional number of corners of the room's polygon: an even integer >= 4; default 4,
  a rectangle; 6 is an L shape).
- ``doors`` (required list, may be empty): pairs ``[id_a, id_b]`` of two different rooms; each pair once.
- ``name`` (optional string).

A graph that is not connected is accepted with a warning (some rooms then cannot be reached).
``BubbleGraph.from_networkx`` reads the node attributes ``room_type`` (as ``conditioning/graph.py``
does), ``area`` and ``corners``.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import networkx as nx

from conditioning.graph import ROOM_TYPES as ENCODER_ROOM_TYPES

FLOORPLAN_ROOM_TYPES: tuple[str, ...] = (
    "living_room", "kitchen", "bedroom", "bathroom", "balcony", "entrance", "dining_room", "study_room",
    "storage", "corridor",
)
assert set(FLOORPLAN_ROOM_TYPES) <= set(ENCODER_ROOM_TYPES)
MAX_CORNERS_PER_ROOM = 32
_ROOM_KEYS = {"id", "room_type", "area", "corners"}
_GRAPH_KEYS = {"name", "rooms", "doors"}

RoomId = str | int


class GraphWarning(UserWarning):
    """A bubble graph that is accepted but probably not what the user meant (e.g. disconnected)."""


@dataclass(frozen=True)
class Room:
    """One node of a bubble graph: its id, type, optional target area (m^2) and optional corner count."""

    id: RoomId
    room_type: str
    area: float | None = None
    corners: int | None = None


def _check_room(room: Room, where: str) -> None:
    if isinstance(room.id, bool) or not isinstance(room.id, (str, int)):
        raise ValueError(f"{where}: id must be a string or an integer, got {room.id!r}")
    if room.room_type not in FLOORPLAN_ROOM_TYPES:
        hint = " (doors are the graph's edges, not rooms)" if room.room_type in ("front_door", "interior_door") else ""
        raise ValueError(f"{where}: unknown room_type {room.room_type!r}{hint}; use one of {list(FLOORPLAN_ROOM_TYPES)}")
    if room.area is not None:
        if isinstance(room.area, bool) or not isinstance(room.area, (int, float)) or not math.isfinite(room.area) \
                or room.area <= 0:
            raise ValueError(f"{where}: area must be a positive number of square metres, got {room.area!r}")
    if room.corners is not None:
        c = room.corners
        if isinstance(c, bool) or not isinstance(c, int) or c < 4 or c % 2 or c > MAX_CORNERS_PER_ROOM:
            raise ValueError(f"{where}: corners must be an even integer in 4..{MAX_CORNERS_PER_ROOM} "
                             f"(axis-aligned rooms have an even number of corners), got {c!r}")


@dataclass(frozen=True)
class BubbleGraph:
    """Rooms and the doors between them; validated on construction (each error names the problem and the fix).

    >>> g = BubbleGraph.from_json("data/samples/graphs/two_bedroom.json")
    >>> g.room_types, g.edges      # ('living_room', ...), ((0, 1), ...) as room indices
    """

    rooms: tuple[Room, ...]
    doors: tuple[tuple[RoomId, RoomId], ...] = ()
    name: str = ""
    _index: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rooms", tuple(self.rooms))
        object.__setattr__(self, "doors", tuple(tuple(d) for d in self.doors))
        if not self.rooms:
            raise ValueError("the bubble graph is empty; give at least one room in 'rooms'")
        index: dict[RoomId, int] = {}
        for k, room in enumerate(self.rooms):
            _check_room(room, f"rooms[{k}]")
            if room.id in index:
                raise ValueError(f"rooms[{k}]: duplicate id {room.id!r} (also rooms[{index[room.id]}]); give every room its own id")
            index[room.id] = k
        object.__setattr__(self, "_index", index)
        seen: set[frozenset] = set()
        for k, door in enumerate(self.doors):
            if len(door) != 2:
                raise ValueError(f"doors[{k}] must be a pair [id_a, id_b], got {list(door)!r}")
            a, b = door
            for end in (a, b):
                if end not in index:
                    raise ValueError(f"doors[{k}] names room {end!r}, which is not in 'rooms' (ids: {list(index)})")
            if a == b:
                raise ValueError(f"doors[{k}] is a self-loop on {a!r}; a door joins two different rooms, remove it")
            if frozenset((a, b)) in seen:
                raise ValueError(f"doors[{k}] repeats the door {a!r}-{b!r}; list each door once")
            seen.add(frozenset((a, b)))
        if len(self.rooms) > 1 and not nx.is_connected(self._graph()):
            warnings.warn(f"bubble graph {self.name or ''!s} is not connected: some rooms cannot be reached "
                          "through doors; the plan is generated anyway", GraphWarning, stacklevel=3)

    # ----------------------------------------------------------------- views
    @property
    def room_types(self) -> tuple[str, ...]:
        return tuple(r.room_type for r in self.rooms)

    @property
    def edges(self) -> tuple[tuple[int, int], ...]:
        """The doors as sorted pairs of room indices (positions in ``rooms``)."""
        return tuple(sorted(tuple(sorted((self._index[a], self._index[b]))) for a, b in self.doors))

    def __len__(self) -> int:
        return len(self.rooms)

    def corner_counts(self, default: int = 4) -> tuple[int, ...]:
        return tuple(r.corners if r.corners is not None else default for r in self.rooms)

    def _graph(self) -> nx.Graph:
        g = nx.Graph()
        g.add_nodes_from(range(len(self.rooms)))
        g.add_edges_from(self.edges)
        return g

    def to_networkx(self) -> nx.Graph:
        """Nodes are room indices with ``room_type``, ``id`` (and ``area``/``corners`` when given)."""
        g = nx.Graph()
        for i, r in enumerate(self.rooms):
            attrs = {"room_type": r.room_type, "id": r.id}
            attrs.update({k: v for k, v in (("area", r.area), ("corners", r.corners)) if v is not None})
            g.add_node(i, **attrs)
        g.add_edges_from(self.edges)
        return g

    def to_dict(self) -> dict[str, Any]:
        rooms = []
        for r in self.rooms:
            item: dict[str, Any] = {"id": r.id, "room_type": r.room_type}
            item.update({k: v for k, v in (("area", r.area), ("corners", r.corners)) if v is not None})
            rooms.append(item)
        out: dict[str, Any] = {"rooms": rooms, "doors": [list(d) for d in self.doors]}
        if self.name:
            out["name"] = self.name
        return out

    # -------------------------------------------------------------- readers
    @classmethod
    def from_dict(cls, obj: Any, source: str = "bubble graph") -> "BubbleGraph":
        """Build from the JSON schema above; a mismatch raises ValueError naming ``source`` and the key."""
        if not isinstance(obj, Mapping):
            raise ValueError(f"{source}: the top level must be an object with 'rooms' and 'doors', got {type(obj).__name__}")
        unknown = sorted(set(obj) - _GRAPH_KEYS)
        if unknown:
            raise ValueError(f"{source}: unknown keys {unknown}; allowed: {sorted(_GRAPH_KEYS)}")
        for key in ("rooms", "doors"):
            if key not in obj:
                raise ValueError(f"{source}: missing {key!r} (a list); see data/samples/graphs/README.md")
            if not isinstance(obj[key], list):
                raise ValueError(f"{source}: {key!r} must be a list, got {type(obj[key]).__name__}")
        name = obj.get("name", "")
        if not isinstance(name, str):
            raise ValueError(f"{source}: 'name' must be a string, got {name!r}")
        rooms = []
        for k, item in enumerate(obj["rooms"]):
            if not isinstance(item, Mapping):
                raise ValueError(f"{source}: rooms[{k}] must be an object with 'id' and 'room_type', got {item!r}")
            extra = sorted(set(item) - _ROOM_KEYS)
            missing = sorted({"id", "room_type"} - set(item))
            if extra or missing:
                raise ValueError(f"{source}: rooms[{k}] has unknown keys {extra} / missing keys {missing}; "
                                 f"allowed: {sorted(_ROOM_KEYS)}")
            rooms.append(Room(item["id"], item["room_type"], item.get("area"), item.get("corners")))
        doors = []
        for k, d in enumerate(obj["doors"]):
            if not isinstance(d, list) or len(d) != 2:
                raise ValueError(f"{source}: doors[{k}] must be a pair [id_a, id_b], got {d!r}")
            doors.append(tuple(d))
        try:
            return cls(tuple(rooms), tuple(doors), name)
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "BubbleGraph":
        """Read a bubble-graph JSON file; a missing file, invalid JSON or a schema mismatch is a ValueError."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"bubble graph file {path} does not exist; give a JSON file (see data/samples/graphs/)")
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"bubble graph file {path} is not valid JSON ({exc}); see data/samples/graphs/README.md") from None
        return cls.from_dict(obj, source=str(path))

    @classmethod
    def from_networkx(cls, graph: nx.Graph, name: str = "") -> "BubbleGraph":
        """Nodes carry ``room_type`` (and optionally ``area``, ``corners``); node keys become the room ids."""
        if not isinstance(graph, nx.Graph):
            raise ValueError(f"graph must be a networkx.Graph, got {type(graph).__name__}")
        if graph.is_directed() or graph.is_multigraph():
            raise ValueError("graph must be a simple undirected networkx.Graph; use nx.Graph(graph.to_undirected())")
        rooms = []
        for v, attrs in graph.nodes(data=True):
            if "room_type" not in attrs:
                raise ValueError(f"graph node {v!r} has no 'room_type' attribute; set graph.nodes[v]['room_type']")
            rid = v if isinstance(v, (str, int)) and not isinstance(v, bool) else str(v)
            rooms.append(Room(rid, attrs["room_type"], attrs.get("area"), attrs.get("corners")))
        doors = tuple((u if isinstance(u, (str, int)) else str(u), w if isinstance(w, (str, int)) else str(w))
                      for u, w in graph.edges)
        return cls(tuple(rooms), doors, name or str(graph.graph.get("name", "")))

    def to_json(self, path: str | os.PathLike) -> Path:
        from generators.core.checkpoint import atomic_write_json

        atomic_write_json(path, self.to_dict())
        return Path(path)


def as_bubble_graph(graph: Any, name: str = "graph") -> BubbleGraph:
    """A BubbleGraph from a BubbleGraph, a networkx graph, a dict in the JSON schema, or a JSON file path."""
    if isinstance(graph, BubbleGraph):
        return graph
    if isinstance(graph, nx.Graph):
        return BubbleGraph.from_networkx(graph)
    if isinstance(graph, Mapping):
        return BubbleGraph.from_dict(graph, source=name)
    if isinstance(graph, (str, os.PathLike)):
        return BubbleGraph.from_json(graph)
    raise ValueError(f"{name} must be a BubbleGraph, a networkx.Graph, a dict or a JSON file path, "
                     f"got {type(graph).__name__}")

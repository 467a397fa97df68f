"""Floorplans: room polygons and doors in metres, the graph they realise, and their SVG/PNG/JSON files.

>>> plan = out.plans[0]
>>> plan.rooms        # [(room_type, [(x, y), ...]), ...] counter-clockwise, y up
>>> plan.doors        # (Door(rooms=(i, j), segment=((x0, y0), (x1, y1))), ...)
>>> plan.to_graph()   # the realised bubble graph: i - j when a door lies on a >= 0.7 m shared wall
>>> plan.save("plan.svg")  # .svg, .png or .json

The realised graph is computed by :func:`evaluation.floorplan.realised_graph`, the same rule the
procedural data generator and the refinement place doors by (HouseDiffusion, Shabani et al. 2023, sec. 5).
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Sequence

import networkx as nx
import numpy as np
from PIL import Image, ImageDraw

from evaluation.floorplan import Point, polygon_area, realised_graph
from generators.core.pipeline import GeneratorOutput

from .graph import BubbleGraph

ROOM_COLOURS: dict[str, str] = {
    "living_room": "#f2c57c", "kitchen": "#e58f65", "bedroom": "#8fb8de", "bathroom": "#9fd8cb",
    "balcony": "#c5e1a5", "entrance": "#d7b9d5", "dining_room": "#f6a5a5", "study_room": "#b39ddb",
    "storage": "#bdbdbd", "corridor": "#e0e0d1",
}
SVG_SCALE = 30.0   # pixels per metre in SVG files
PNG_SCALE = 24.0   # pixels per metre in PNG files
MARGIN = 0.6       # metres around a plan


@dataclass(frozen=True)
class Door:
    """A door: the two rooms it joins (indices into the plan's rooms) and its segment in metres."""

    rooms: tuple[int, int]
    segment: tuple[Point, Point]


@dataclass(frozen=True)
class Floorplan(GeneratorOutput):
    """One plan: a polygon per room (metres, counter-clockwise), its doors, and the graph it was asked for.

    ``save(path)`` writes ``.svg``, ``.png`` or ``.json`` by the extension, or all three into a folder.
    """

    room_types: tuple[str, ...]
    polygons: tuple[tuple[Point, ...], ...]
    doors: tuple[Door, ...] = ()
    graph: BubbleGraph | None = field(default=None, compare=False)
    file_formats: ClassVar[tuple[str, ...]] = (".svg", ".png", ".json")

    def __post_init__(self) -> None:
        if len(self.room_types) != len(self.polygons):
            raise ValueError(f"room_types has {len(self.room_types)} entries but polygons has {len(self.polygons)}")

    @property
    def rooms(self) -> list[tuple[str, list[Point]]]:
        """[(room_type, [(x, y), ...]), ...] as plain floats in metres."""
        return [(t, [(float(x), float(y)) for x, y in p]) for t, p in zip(self.room_types, self.polygons)]

    def to_graph(self) -> nx.Graph:
        """The bubble graph this plan realises (node attribute ``room_type``; an edge per valid door)."""
        return realised_graph(self.room_types, self.polygons, [(d.rooms[0], d.rooms[1], d.segment) for d in self.doors])

    def bounds(self) -> tuple[float, float, float, float]:
        pts = np.array([pt for p in self.polygons for pt in p] or [(0.0, 0.0)], dtype=np.float64)
        return float(pts[:, 0].min()), float(pts[:, 1].min()), float(pts[:, 0].max()), float(pts[:, 1].max())

    def to_dict(self) -> dict[str, Any]:
        g = self.to_graph()
        return {
            "rooms": [{"room_type": t, "polygon": [[round(x, 4), round(y, 4)] for x, y in p],
                       "area": round(polygon_area(p), 3)} for t, p in self.rooms],
            "doors": [{"rooms": list(d.rooms), "segment": [list(map(float, d.segment[0])), list(map(float, d.segment[1]))]}
                      for d in self.doors],
            "graph": {"nodes": [{"index": i, "room_type": g.nodes[i]["room_type"]} for i in g.nodes],
                      "edges": [sorted(e) for e in g.edges]},
            "requested_graph": self.graph.to_dict() if self.graph is not None else None,
        }

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> "Floorplan":
        """Inverse of :meth:`to_dict` (the realised graph is recomputed, not read)."""
        try:
            types = tuple(r["room_type"] for r in obj["rooms"])
            polys = tuple(tuple((float(x), float(y)) for x, y in r["polygon"]) for r in obj["rooms"])
            doors = tuple(Door((int(d["rooms"][0]), int(d["rooms"][1])),
                               (tuple(map(float, d["segment"][0])), tuple(map(float, d["segment"][1]))))
                          for d in obj.get("doors", []))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a floorplan JSON object (needs rooms[].room_type/polygon, doors[].rooms/segment): {exc}") from None
        graph = obj.get("requested_graph")
        return cls(types, polys, doors, BubbleGraph.from_dict(graph) if graph else None)

    # ------------------------------------------------------------ rendering
    def svg(self, show_graph: bool = True) -> str:
        """SVG of the plan (rooms, walls, doors, labels), with the requested graph drawn beside it."""
        return _svg_document([self], show_graph)

    def png(self, show_graph: bool = True) -> bytes:
        return _png_bytes(_render_png(self, show_graph))

    def _encode(self, suffix: str) -> bytes:
        if suffix == ".svg":
            return self.svg().encode()
        if suffix == ".png":
            return self.png()
        return (json.dumps(self.to_dict(), indent=1) + "\n").encode()

    def _items(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        for suffix in self.file_formats:
            yield f"{prefix}{suffix}", self._encode(suffix)


@dataclass
class FloorplanOutput(GeneratorOutput):
    """Generated plans (graph-major: every sample of the first graph, then the next) and their graphs."""

    plans: list[Floorplan]
    file_formats: ClassVar[tuple[str, ...]] = (".svg", ".png", ".json")

    def _encode(self, suffix: str) -> bytes:
        if suffix == ".svg":
            return _svg_document(self.plans, True).encode()
        if suffix == ".png":
            return _png_bytes(_tile([_render_png(p, True) for p in self.plans]))
        return (json.dumps({"plans": [p.to_dict() for p in self.plans]}, indent=1) + "\n").encode()

    def _items(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        for i, plan in enumerate(self.plans):
            yield from plan._items(f"{prefix}_{i:03d}")


# ---------------------------------------------------------------- SVG
def _graph_layout(graph: BubbleGraph) -> dict[int, tuple[float, float]]:
    """Node positions in [0, 1]^2, deterministic (spring layout seeded at 0)."""
    g = graph.to_networkx()
    if len(g) == 1:
        return {0: (0.5, 0.5)}
    pos = nx.spring_layout(g, seed=0)
    arr = np.array(list(pos.values()))
    lo, span = arr.min(0), np.maximum(arr.max(0) - arr.min(0), 1e-9)
    return {k: tuple(((np.asarray(v) - lo) / span * 0.8 + 0.1).tolist()) for k, v in pos.items()}


def _svg_plan(plan: Floorplan, ox: float, show_graph: bool) -> tuple[list[str], float, float]:
    """SVG elements of one plan placed at x offset ``ox`` (pixels); returns (elements, width, height)."""
    x0, y0, x1, y1 = plan.bounds()
    w, h = (x1 - x0 + 2 * MARGIN) * SVG_SCALE, (y1 - y0 + 2 * MARGIN) * SVG_SCALE

    def tx(x: float, y: float) -> str:
        return f"{ox + (x - x0 + MARGIN) * SVG_SCALE:.1f},{(y1 - y + MARGIN) * SVG_SCALE:.1f}"

    out = [f'<rect x="{ox:.1f}" y="0" width="{w:.1f}" height="{h:.1f}" fill="white"/>']
    for t, poly in plan.rooms:
        pts = " ".join(tx(x, y) for x, y in poly)
        out.append(f'<polygon points="{pts}" fill="{ROOM_COLOURS.get(t, "#dddddd")}" stroke="#222" stroke-width="3"/>')
    for d in plan.doors:
        (ax, ay), (bx, by) = d.segment
        pa, pb = tx(ax, ay).split(","), tx(bx, by).split(",")
        out.append(f'<line x1="{pa[0]}" y1="{pa[1]}" x2="{pb[0]}" y2="{pb[1]}" stroke="#fff" stroke-width="5"/>')
        out.append(f'<line x1="{pa[0]}" y1="{pa[1]}" x2="{pb[0]}" y2="{pb[1]}" stroke="#8d6e63" stroke-width="1.5"/>')
    for t, poly in plan.rooms:
        cx, cy = np.mean(np.asarray(poly), axis=0) if poly else (0.0, 0.0)
        px, py = tx(cx, cy).split(",")
        out.append(f'<text x="{px}" y="{py}" font-size="9" text-anchor="middle" font-family="sans-serif">'
                   f'{t.replace("_", " ")}</text>')
    if show_graph and plan.graph is not None:
        out += _svg_graph(plan, ox + w, h)
        w += h
    return out, w, h


def _svg_graph(plan: Floorplan, ox: float, size: float) -> list[str]:
    """The requested bubble graph in a square panel; requested doors the plan lacks are dashed red."""
    pos = _graph_layout(plan.graph)
    realised = {frozenset(e) for e in plan.to_graph().edges}
    out = [f'<rect x="{ox:.1f}" y="0" width="{size:.1f}" height="{size:.1f}" fill="#fafafa" stroke="#ccc"/>']

    def p(k: int) -> tuple[float, float]:
        return ox + pos[k][0] * size, (1 - pos[k][1]) * size

    for i, j in plan.graph.edges:
        (ax, ay), (bx, by) = p(i), p(j)
        style = 'stroke="#444" stroke-width="2"' if frozenset((i, j)) in realised else \
            'stroke="#d32f2f" stroke-width="2" stroke-dasharray="5,4"'
        out.append(f'<line x1="{ax:.1f}" y1="{ay:.1f}" x2="{bx:.1f}" y2="{by:.1f}" {style}/>')
    for k, t in enumerate(plan.graph.room_types):
        x, y = p(k)
        out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="9" fill="{ROOM_COLOURS.get(t, "#ddd")}" stroke="#222"/>')
        out.append(f'<text x="{x:.1f}" y="{y + 20:.1f}" font-size="8" text-anchor="middle" '
                   f'font-family="sans-serif">{t.replace("_", " ")}</text>')
    return out


def _svg_document(plans: Sequence[Floorplan], show_graph: bool) -> str:
    parts, ox, height = [], 0.0, 0.0
    for plan in plans:
        elems, w, h = _svg_plan(plan, ox, show_graph)
        parts += elems
        ox, height = ox + w + 10, max(height, h)
    width = max(ox - 10, 1.0)
    body = "\n".join(parts)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.1f} {height:.1f}">\n{body}\n</svg>\n')


# ---------------------------------------------------------------- PNG
def _render_png(plan: Floorplan, show_graph: bool) -> Image.Image:
    x0, y0, x1, y1 = plan.bounds()
    w = int(round((x1 - x0 + 2 * MARGIN) * PNG_SCALE))
    h = int(round((y1 - y0 + 2 * MARGIN) * PNG_SCALE))
    panel = h if show_graph and plan.graph is not None else 0
    img = Image.new("RGB", (max(w + panel, 1), max(h, 1)), "white")
    draw = ImageDraw.Draw(img)

    def tx(x: float, y: float) -> tuple[float, float]:
        return (x - x0 + MARGIN) * PNG_SCALE, (y1 - y + MARGIN) * PNG_SCALE

    for t, poly in plan.rooms:
        if len(poly) >= 3:
            draw.polygon([tx(x, y) for x, y in poly], fill=ROOM_COLOURS.get(t, "#dddddd"), outline="#222222", width=2)
    for d in plan.doors:
        draw.line([tx(*d.segment[0]), tx(*d.segment[1])], fill="white", width=4)
    if panel:
        pos = _graph_layout(plan.graph)
        realised = {frozenset(e) for e in plan.to_graph().edges}
        def p(k: int) -> tuple[float, float]:
            return w + pos[k][0] * panel, (1 - pos[k][1]) * panel
        for i, j in plan.graph.edges:
            colour = "#444444" if frozenset((i, j)) in realised else "#d32f2f"
            draw.line([p(i), p(j)], fill=colour, width=2)
        for k, t in enumerate(plan.graph.room_types):
            x, y = p(k)
            draw.ellipse([x - 6, y - 6, x + 6, y + 6], fill=ROOM_COLOURS.get(t, "#dddddd"), outline="#222222")
    return img


def _tile(images: Sequence[Image.Image]) -> Image.Image:
    width = sum(im.width for im in images) + 10 * (len(images) - 1)
    out = Image.new("RGB", (max(width, 1), max((im.height for im in images), default=1)), "white")
    x = 0
    for im in images:
        out.paste(im, (x, 0))
        x += im.width + 10
    return out


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()

"""Procedural shape categories built from trimesh primitives with randomised proportions.

Each category builder draws its proportions from a ``numpy.random.Generator`` and returns a
:class:`Shape`: a union of closed primitives (boxes, cylinders, frusta, tubes, tori, ellipsoids,
capsules) plus the attributes its captions mention. Points are sampled uniformly on the surface
of the *union*: samples on every primitive, area-weighted, keep only those outside every other
primitive (analytic inside tests), so interior faces where parts overlap are never sampled, as for
a watertight mesh (PointFlow, Yang et al. 2019, sec. 5, samples the mesh surface uniformly).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import trimesh

SECTIONS = 48  # facets of round primitives; chord error 0.2% of the radius


@dataclass(frozen=True)
class Primitive:
    """A closed solid: ``kind`` with ``params`` in its local frame, placed by a 4x4 ``transform``."""

    kind: str  # box | cylinder | frustum | tube | torus | ellipsoid | capsule
    params: tuple[float, ...]
    transform: np.ndarray

    def mesh(self) -> trimesh.Trimesh:
        """The primitive as a trimesh surface, in world coordinates."""
        p = self.params
        if self.kind == "box":
            m = trimesh.creation.box(extents=p)
        elif self.kind == "cylinder":
            m = trimesh.creation.cylinder(radius=p[0], height=p[1], sections=SECTIONS)
        elif self.kind == "frustum":  # r_bottom, r_top, height, centred at the origin
            r0, r1, h = p
            m = trimesh.creation.revolve([[0, -h / 2], [r0, -h / 2], [r1, h / 2], [0, h / 2]], sections=SECTIONS)
        elif self.kind == "tube":
            m = trimesh.creation.annulus(r_min=p[0], r_max=p[1], height=p[2], sections=SECTIONS)
        elif self.kind == "torus":
            m = trimesh.creation.torus(major_radius=p[0], minor_radius=p[1], major_sections=SECTIONS,
                                       minor_sections=16)
        elif self.kind == "ellipsoid":
            m = trimesh.creation.icosphere(subdivisions=3)
            m.apply_scale(p)
        elif self.kind == "capsule":
            m = trimesh.creation.capsule(height=p[1], radius=p[0], count=[SECTIONS, SECTIONS])  # centred on z
        else:
            raise ValueError(f"unknown primitive kind {self.kind!r}")
        m.apply_transform(self.transform)
        return m

    def inside(self, pts: np.ndarray, margin: float = 1e-4) -> np.ndarray:
        """(M,) bool: strictly inside the solid by more than ``margin``."""
        inv = np.linalg.inv(self.transform)
        q = pts @ inv[:3, :3].T + inv[:3, 3]
        x, y, z = q[:, 0], q[:, 1], q[:, 2]
        rho = np.hypot(x, y)
        p = self.params
        if self.kind == "box":
            return np.all(np.abs(q) < np.asarray(p) / 2 - margin, axis=1)
        if self.kind == "cylinder":
            return (rho < p[0] - margin) & (np.abs(z) < p[1] / 2 - margin)
        if self.kind == "frustum":
            r = p[0] + (p[1] - p[0]) * (z / p[2] + 0.5)
            return (rho < r - margin) & (np.abs(z) < p[2] / 2 - margin)
        if self.kind == "tube":
            return (rho > p[0] + margin) & (rho < p[1] - margin) & (np.abs(z) < p[2] / 2 - margin)
        if self.kind == "torus":
            return (rho - p[0]) ** 2 + z**2 < (p[1] - margin) ** 2
        if self.kind == "ellipsoid":
            return ((q / (np.asarray(p) - margin)) ** 2).sum(1) < 1
        if self.kind == "capsule":
            zc = np.clip(z, -p[1] / 2, p[1] / 2)
            return np.hypot(rho, z - zc) < p[0] - margin
        raise ValueError(f"unknown primitive kind {self.kind!r}")


@dataclass
class Shape:
    """A procedural object: its primitives (a union of closed solids) and caption attributes."""

    category: str
    primitives: list[Primitive]
    attributes: dict[str, str | int] = field(default_factory=dict)

    def mesh(self) -> trimesh.Trimesh:
        """All primitive surfaces in one mesh (overlapping; for display, not for sampling)."""
        return trimesh.util.concatenate([p.mesh() for p in self.primitives])

    def sample_surface(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` points uniform on the boundary of the union of the primitives, (count, 3) float32."""
        meshes = [p.mesh() for p in self.primitives]
        areas = np.array([m.area for m in meshes])
        kept: list[np.ndarray] = []
        total, oversample = 0, 2.0
        while total < count:
            draw = int(count * oversample) + 64
            per = rng.multinomial(draw, areas / areas.sum())
            for i, (m, k) in enumerate(zip(meshes, per)):
                if k == 0:
                    continue
                pts, _ = trimesh.sample.sample_surface(m, int(k), seed=int(rng.integers(2**31)))
                for j, other in enumerate(self.primitives):
                    if j != i and len(pts):
                        pts = pts[~other.inside(pts)]
                kept.append(pts)
                total += len(pts)
            oversample *= 2
        pts = np.concatenate(kept)
        return pts[rng.permutation(len(pts))[:count]].astype(np.float32)


def _tf(translate=(0.0, 0.0, 0.0), rotate: tuple[float, tuple[float, float, float]] | None = None) -> np.ndarray:
    m = np.eye(4)
    if rotate is not None:
        m = trimesh.transformations.rotation_matrix(rotate[0], rotate[1])
    m[:3, 3] = translate
    return m


def box(size, at) -> Primitive:
    return Primitive("box", tuple(float(s) for s in size), _tf(at))


def cyl(radius, height, at, axis: str = "z") -> Primitive:
    rot = {"z": None, "x": (np.pi / 2, (0, 1, 0)), "y": (np.pi / 2, (1, 0, 0))}[axis]
    return Primitive("cylinder", (float(radius), float(height)), _tf(at, rot))


def _legs(rng, x, y, z_top, height, thick, round_legs: bool) -> list[Primitive]:
    out = []
    for sx in (-1, 1):
        for sy in (-1, 1):
            at = (sx * x, sy * y, z_top - height / 2)
            out.append(cyl(thick / 2, height, at) if round_legs else box((thick, thick, height), at))
    return out


def chair(rng: np.random.Generator) -> Shape:
    w, d, leg_h = rng.uniform(0.8, 1.2), rng.uniform(0.8, 1.1), rng.uniform(0.8, 1.2)
    seat_t, leg_t, back_h = rng.uniform(0.08, 0.14), rng.uniform(0.06, 0.11), rng.uniform(0.7, 1.3)
    round_legs, arms = bool(rng.random() < 0.5), bool(rng.random() < 0.35)
    prims = [box((w, d, seat_t), (0, 0, leg_h + seat_t / 2))]
    prims += _legs(rng, w / 2 - leg_t / 2, d / 2 - leg_t / 2, leg_h + 0.02, leg_h + 0.02, leg_t, round_legs)
    prims.append(box((w, seat_t, back_h), (0, d / 2 - seat_t / 2, leg_h + seat_t + back_h / 2 - 0.02)))
    if arms:
        for s in (-1, 1):
            prims.append(box((seat_t, d, 0.08), (s * (w / 2 - seat_t / 2), 0, leg_h + seat_t + 0.3)))
            prims.append(box((seat_t, seat_t, 0.32), (s * (w / 2 - seat_t / 2), -d / 2 + seat_t / 2, leg_h + seat_t + 0.14)))
    legs = "round" if round_legs else "square"
    return Shape("chair", prims, {"legs": legs, "arms": "with armrests" if arms else "", "back": "tall" if back_h > 1.0 else "low"})


def table(rng: np.random.Generator) -> Shape:
    h, top_t = rng.uniform(0.6, 1.0), rng.uniform(0.06, 0.12)
    round_top, pedestal = bool(rng.random() < 0.4), bool(rng.random() < 0.3)
    w, d = rng.uniform(1.2, 2.2), rng.uniform(0.7, 1.2)
    if round_top:
        w = d = rng.uniform(1.0, 1.6)
        prims = [cyl(w / 2, top_t, (0, 0, h + top_t / 2))]
    else:
        prims = [box((w, d, top_t), (0, 0, h + top_t / 2))]
    if pedestal:
        prims += [cyl(rng.uniform(0.05, 0.1), h + 0.02, (0, 0, h / 2 + 0.01)), cyl(rng.uniform(0.25, 0.4), 0.06, (0, 0, 0.03))]
    else:
        leg_t = rng.uniform(0.05, 0.1)
        inset = 0.72 if round_top else 1.0
        prims += _legs(rng, inset * (w / 2 - leg_t), inset * (d / 2 - leg_t), h + 0.02, h + 0.02, leg_t, bool(rng.random() < 0.5))
    return Shape("table", prims, {"top": "round" if round_top else "rectangular", "support": "pedestal" if pedestal else "four legs"})


def sofa(rng: np.random.Generator) -> Shape:
    w, d, seat_h = rng.uniform(1.6, 2.6), rng.uniform(0.8, 1.1), rng.uniform(0.35, 0.5)
    back_h, arm_w, arm_h = rng.uniform(0.4, 0.7), rng.uniform(0.15, 0.3), rng.uniform(0.15, 0.35)
    back_t = rng.uniform(0.15, 0.25)
    prims = [box((w, d, seat_h), (0, 0, seat_h / 2 + 0.08)),
             box((w, back_t, back_h + 0.02), (0, d / 2 - back_t / 2, seat_h + 0.08 + back_h / 2 - 0.01))]
    for s in (-1, 1):
        prims.append(box((arm_w, d, arm_h + 0.02), (s * (w / 2 - arm_w / 2), 0, seat_h + 0.08 + arm_h / 2 - 0.01)))
    prims += _legs(rng, w / 2 - 0.08, d / 2 - 0.08, 0.1, 0.1, 0.07, False)
    return Shape("sofa", prims, {"size": "long" if w > 2.1 else "small"})


def bed(rng: np.random.Generator) -> Shape:
    w, length = rng.uniform(1.0, 1.8), rng.uniform(1.9, 2.2)
    frame_h, matt_h, head_h = rng.uniform(0.15, 0.3), rng.uniform(0.15, 0.25), rng.uniform(0.4, 0.9)
    foot = bool(rng.random() < 0.5)
    z0 = 0.15
    prims = [box((w, length, frame_h), (0, 0, z0 + frame_h / 2)),
             box((w - 0.06, length - 0.06, matt_h + 0.02), (0, 0, z0 + frame_h + matt_h / 2 - 0.01)),
             box((w + 0.04, 0.08, frame_h + matt_h + head_h), (0, length / 2, z0 + (frame_h + matt_h + head_h) / 2))]
    if foot:
        prims.append(box((w + 0.04, 0.08, frame_h + matt_h + 0.1), (0, -length / 2, z0 + (frame_h + matt_h + 0.1) / 2)))
    prims += _legs(rng, w / 2 - 0.05, length / 2 - 0.1, z0 + 0.02, z0 + 0.02, 0.08, False)
    return Shape("bed", prims, {"size": "double" if w > 1.4 else "single", "foot": "with a footboard" if foot else ""})


def lamp(rng: np.random.Generator) -> Shape:
    pole_h, pole_r = rng.uniform(0.8, 2.0), rng.uniform(0.025, 0.045)
    base_r, shade_h = rng.uniform(0.2, 0.35), rng.uniform(0.3, 0.5)
    r_bot, r_top = rng.uniform(0.25, 0.4), rng.uniform(0.12, 0.25)
    prims = [cyl(base_r, 0.06, (0, 0, 0.03)), cyl(pole_r, pole_h + 0.04, (0, 0, 0.04 + pole_h / 2)),
             Primitive("frustum", (r_bot, r_top, shade_h), _tf((0, 0, pole_h + shade_h / 2 - 0.05)))]
    return Shape("lamp", prims, {"height": "tall" if pole_h > 1.4 else "short"})


def shelf(rng: np.random.Generator) -> Shape:
    w, d, h, t = rng.uniform(0.8, 1.6), rng.uniform(0.3, 0.5), rng.uniform(1.2, 2.2), rng.uniform(0.04, 0.07)
    n = int(rng.integers(3, 6))
    back = bool(rng.random() < 0.5)
    prims = [box((t, d, h), (s * (w / 2 - t / 2), 0, h / 2)) for s in (-1, 1)]
    for k in range(n):
        z = t / 2 + k * (h - t) / (n - 1)
        prims.append(box((w - 0.02, d, t), (0, 0, z)))
    if back:
        prims.append(box((w, t, h), (0, d / 2 - t / 2, h / 2)))
    return Shape("shelf", prims, {"shelves": n, "back": "with a back panel" if back else "open"})


def bathtub(rng: np.random.Generator) -> Shape:
    w, length, h, t = rng.uniform(0.7, 0.9), rng.uniform(1.5, 1.9), rng.uniform(0.45, 0.65), rng.uniform(0.06, 0.1)
    feet = bool(rng.random() < 0.4)
    z0 = 0.12 if feet else 0.0
    prims = [box((w, length, t), (0, 0, z0 + t / 2)),
             box((t, length, h), (w / 2 - t / 2, 0, z0 + h / 2)), box((t, length, h), (-w / 2 + t / 2, 0, z0 + h / 2)),
             box((w, t, h), (0, length / 2 - t / 2, z0 + h / 2)), box((w, t, h), (0, -length / 2 + t / 2, z0 + h / 2))]
    if feet:
        prims += _legs(rng, w / 2 - 0.08, length / 2 - 0.15, z0 + 0.02, z0 + 0.02, 0.08, True)
    return Shape("bathtub", prims, {"feet": "with feet" if feet else ""})


def mug(rng: np.random.Generator) -> Shape:
    r, h, t = rng.uniform(0.3, 0.45), rng.uniform(0.6, 1.0), rng.uniform(0.04, 0.07)
    handle_r, handle_t = rng.uniform(0.15, 0.25) * h / 0.8, rng.uniform(0.035, 0.05)
    prims = [Primitive("tube", (r - t, r, h), _tf((0, 0, h / 2))), cyl(r - t / 2, t, (0, 0, t / 2)),
             Primitive("torus", (handle_r, handle_t), _tf((r + handle_r - 2 * handle_t, 0, h / 2), (np.pi / 2, (1, 0, 0))))]
    return Shape("mug", prims, {"shape": "tall" if h / r > 2.3 else "wide"})


def bottle(rng: np.random.Generator) -> Shape:
    r, body_h = rng.uniform(0.2, 0.4), rng.uniform(0.8, 1.6)
    neck_r, neck_h, shoulder_h = rng.uniform(0.06, 0.1), rng.uniform(0.2, 0.45), rng.uniform(0.15, 0.35)
    prims = [cyl(r, body_h, (0, 0, body_h / 2)),
             Primitive("frustum", (r, neck_r, shoulder_h + 0.02), _tf((0, 0, body_h + shoulder_h / 2 - 0.01))),
             cyl(neck_r, neck_h + 0.02, (0, 0, body_h + shoulder_h + neck_h / 2 - 0.01)),
             cyl(neck_r * 1.2, 0.06, (0, 0, body_h + shoulder_h + neck_h + 0.02))]
    return Shape("bottle", prims, {"shape": "tall" if body_h / r > 3.5 else "squat"})


def airplane(rng: np.random.Generator) -> Shape:
    length, fr = rng.uniform(2.2, 3.0), rng.uniform(0.12, 0.2)
    span, chord, wt = rng.uniform(2.0, 3.0), rng.uniform(0.35, 0.6), rng.uniform(0.03, 0.05)
    engines = bool(rng.random() < 0.5)
    fus = Primitive("capsule", (fr, length - 2 * fr), _tf((0, 0, 0), (np.pi / 2, (1, 0, 0))))
    wing_y = rng.uniform(-0.1, 0.2)
    prims = [fus, box((span, chord, wt), (0, wing_y, 0)),
             box((span * 0.35, chord * 0.6, wt), (0, -length / 2 + fr + chord * 0.3, 0)),
             box((wt, chord * 0.6, rng.uniform(0.3, 0.5)), (0, -length / 2 + fr + chord * 0.3, fr + 0.15))]
    if engines:
        for s in (-1, 1):
            prims.append(cyl(0.08, 0.4, (s * span * 0.25, wing_y + 0.05, -0.1), axis="y"))
    return Shape("airplane", prims, {"engines": "with engines" if engines else "", "wings": "wide" if span > 2.5 else "short"})


def car(rng: np.random.Generator) -> Shape:
    length, w, body_h = rng.uniform(1.8, 2.6), rng.uniform(0.8, 1.1), rng.uniform(0.3, 0.45)
    cab_l, cab_h, wheel_r = rng.uniform(0.4, 0.6) * length, rng.uniform(0.25, 0.4), rng.uniform(0.15, 0.22)
    z0 = wheel_r * 0.9
    prims = [box((w, length, body_h), (0, 0, z0 + body_h / 2)),
             box((w * 0.9, cab_l, cab_h + 0.02), (0, rng.uniform(-0.15, 0.05) * length, z0 + body_h + cab_h / 2 - 0.01))]
    for sx in (-1, 1):
        for sy in (-1, 1):
            prims.append(cyl(wheel_r, 0.14, (sx * (w / 2 - 0.04), sy * (length / 2 - wheel_r * 1.4), wheel_r), axis="x"))
    return Shape("car", prims, {"size": "long" if length > 2.2 else "compact"})


CATEGORY_BUILDERS: dict[str, Callable[[np.random.Generator], Shape]] = {
    "chair": chair, "table": table, "sofa": sofa, "bed": bed, "lamp": lamp, "shelf": shelf,
    "bathtub": bathtub, "mug": mug, "bottle": bottle, "airplane": airplane, "car": car,
}
CATEGORIES: tuple[str, ...] = tuple(CATEGORY_BUILDERS)


def build_shape(category: str, rng: np.random.Generator) -> Shape:
    """One random shape of ``category`` (a name in :data:`CATEGORIES`)."""
    if category not in CATEGORY_BUILDERS:
        raise ValueError(f"category must be one of {CATEGORIES}, got {category!r}")
    return CATEGORY_BUILDERS[category](rng)

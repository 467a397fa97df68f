"""Point-cloud data: the procedural dataset, captions, the PointFlow ShapeNet layout, and input checks.

Shapes are normalised one by one (centre of the bounding box at the origin, largest half-extent 1),
as LION (Zeng et al. 2022, appendix) and PointFlow (Yang et al. 2019) normalise ShapeNet shapes;
the :class:`Normalization` is kept so that a mesh maps back to the user's coordinates.
Every shape of the procedural dataset is a function of (seed, split, category, index) alone.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .shapes import CATEGORIES, Shape, build_shape

SPLITS: tuple[str, ...] = ("train", "val", "test")
MIN_POINTS = 16
# PointFlow's ShapeNetCore.v2-PC15k synset folders for the categories this family knows.
SHAPENET_SYNSETS: dict[str, str] = {
    "airplane": "02691156", "bathtub": "02808440", "bed": "02818832", "bottle": "02876657", "car": "02958343",
    "chair": "03001627", "lamp": "03636649", "mug": "03797390", "shelf": "02871439", "sofa": "04256520",
    "table": "04379243",
}
COUNT_WORDS = {3: "three", 4: "four", 5: "five"}


class PointCountWarning(UserWarning):
    """A cloud had fewer points than needed and was resampled."""


@dataclass(frozen=True)
class Normalization:
    """x_normalised = (x - center) / scale; :meth:`inverse` maps back (meshes included)."""

    center: np.ndarray  # (3,)
    scale: float

    def apply(self, points: np.ndarray) -> np.ndarray:
        return ((points - self.center) / self.scale).astype(np.float32)

    def inverse(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, np.float64) * self.scale + self.center).astype(np.float32)


def normalization_of(points: np.ndarray) -> Normalization:
    """Bounding-box centre and largest half-extent of ``points`` (N, 3)."""
    lo, hi = points.min(0), points.max(0)
    half = float((hi - lo).max() / 2)
    return Normalization(((lo + hi) / 2).astype(np.float64), half if half > 0 else 1.0)


def normalize(points: np.ndarray) -> tuple[np.ndarray, Normalization]:
    """Points in [-1, 1]^3 (largest extent exactly [-1, 1]) and the transform that did it."""
    norm = normalization_of(points)
    return norm.apply(points), norm


def check_points(points: object, name: str = "points", min_points: int = MIN_POINTS,
                 num_points: int | None = None, seed: int = 0) -> np.ndarray:
    """Validate a user's cloud: (N, 3) finite, not degenerate; resample to ``num_points`` when given.

    Raises:
        ValueError: naming ``name`` for a wrong shape, NaN/inf, all points equal or collinear, or fewer
            than ``min_points`` points. A cloud smaller than ``num_points`` is resampled with a warning.
    """
    try:
        arr = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array of shape (N, 3)") from exc
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{name} must have shape (N, 3), got {arr.shape}")
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr).all(1)).sum())
        raise ValueError(f"{name} contains NaN or inf in {bad} of {len(arr)} points; remove or fix those rows")
    if len(arr) < min_points:
        raise ValueError(f"{name} has {len(arr)} points; at least {min_points} are needed for a surface")
    centred = arr - arr.mean(0)
    sv = np.linalg.svd(centred / max(np.abs(centred).max(), 1e-300), compute_uv=False)
    if sv[0] < 1e-9:
        raise ValueError(f"{name} is degenerate: all points are equal; give a cloud that spans a surface")
    if sv[1] < 1e-6 * sv[0]:
        raise ValueError(f"{name} is degenerate: the points are collinear; give a cloud that spans a surface")
    if num_points is not None and len(arr) != num_points:
        rng = np.random.default_rng(seed)
        if len(arr) < num_points:
            warnings.warn(f"{name} has {len(arr)} points, fewer than the {num_points} needed; resampled with "
                          "replacement", PointCountWarning, stacklevel=2)
        idx = rng.choice(len(arr), num_points, replace=len(arr) < num_points)
        arr = arr[idx]
    return arr.astype(np.float32)


def read_points(path: str | os.PathLike) -> np.ndarray:
    """Read a cloud from PLY (vertices), XYZ/TXT (x y z per line) or NPY (N, 3); raw, unchecked."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"points file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix in (".xyz", ".txt"):
            arr = np.loadtxt(path, dtype=np.float64, ndmin=2)[:, :3]
        elif suffix == ".ply":
            import trimesh

            arr = np.asarray(trimesh.load(path, process=False).vertices)
        else:
            raise ValueError(f"points file {path} must be .ply, .xyz, .txt or .npy, got {suffix!r}")
    except (OSError, ValueError, IndexError) as exc:
        if "must be .ply" in str(exc):
            raise
        raise ValueError(f"cannot read points from {path}: {exc}") from exc
    return np.asarray(arr)


def caption(shape: Shape, rng: np.random.Generator) -> str:
    """A short English description of a procedural shape from its attributes (for the text prior)."""
    a, c = shape.attributes, shape.category
    options = {
        "chair": [f"a chair with four {a.get('legs')} legs {a.get('arms')}", f"a {a.get('back')}-backed chair {a.get('arms')}"],
        "table": [f"a {a.get('top')} table with {a.get('support') if a.get('support') == 'four legs' else 'a pedestal'}",
                  f"a {a.get('top')} table"],
        "sofa": [f"a {a.get('size')} sofa", f"a {a.get('size')} couch with armrests"],
        "bed": [f"a {a.get('size')} bed {a.get('foot')}", f"a {a.get('size')} bed with a headboard"],
        "lamp": [f"a {a.get('height')} floor lamp", f"a {a.get('height')} lamp with a shade"],
        "shelf": [f"a shelf with {COUNT_WORDS.get(a.get('shelves'), a.get('shelves'))} shelves",
                  f"an {a.get('back')} bookshelf" if a.get("back") == "open" else "a bookshelf with a back panel"],
        "bathtub": [f"a bathtub {a.get('feet')}", "a rectangular bathtub"],
        "mug": [f"a {a.get('shape')} mug with a handle", f"a {a.get('shape')} cup"],
        "bottle": [f"a {a.get('shape')} bottle", f"a {a.get('shape')} bottle with a narrow neck"],
        "airplane": [f"an airplane with {a.get('wings')} wings {a.get('engines')}", f"an airplane {a.get('engines')}"],
        "car": [f"a {a.get('size')} car", f"a {a.get('size')} car with four wheels"],
    }[c]
    return " ".join(options[int(rng.integers(len(options)))].split())


@dataclass
class PointCloudSet:
    """Normalised clouds (M, N, 3) float32, labels (M,) int64 into ``categories``, and captions."""

    points: np.ndarray
    labels: np.ndarray
    captions: list[str]
    categories: tuple[str, ...]


def _shape_rng(seed: int, split: str, category: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, SPLITS.index(split), category, index])


def procedural_shape(category: str, split: str, index: int, num_points: int, seed: int = 0,
                     categories: Sequence[str] = CATEGORIES) -> tuple[np.ndarray, str, Shape]:
    """Shape ``index`` of ``category`` in ``split``: normalised points (N, 3), its caption, the shape."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = _shape_rng(seed, split, list(categories).index(category), index)
    shape = build_shape(category, rng)
    points, _ = normalize(shape.sample_surface(num_points, rng))
    return points, caption(shape, rng), shape


def procedural_split(split: str, per_category: int, num_points: int, seed: int = 0,
                     categories: Sequence[str] = CATEGORIES) -> PointCloudSet:
    """``per_category`` shapes of each category in ``split``; deterministic in (seed, split)."""
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"categories must be among {CATEGORIES}; unknown {unknown}")
    if per_category < 1 or num_points < MIN_POINTS:
        raise ValueError(f"per_category must be >= 1 and num_points >= {MIN_POINTS}, got {per_category}, {num_points}")
    pts, labels, caps = [], [], []
    for c_idx, cat in enumerate(categories):
        for i in range(per_category):
            p, cap, _ = procedural_shape(cat, split, i, num_points, seed, categories)
            pts.append(p)
            labels.append(c_idx)
            caps.append(cap)
    return PointCloudSet(np.stack(pts), np.asarray(labels, np.int64), caps, tuple(categories))


def load_pointflow_shapenet(root: str | os.PathLike, split: str, num_points: int,
                            categories: Sequence[str] = ("airplane", "chair", "car"), max_per_category: int | None = None,
                            seed: int = 0) -> PointCloudSet:
    """PointFlow's ShapeNetCore.v2-PC15k layout: ``root/<synset>/<split>/<model>.npy``, each (15000, 3).

    ``num_points`` are drawn per shape (seeded), then normalised like the procedural shapes. Captions
    are "a <category>", so the text prior trains unchanged on this data.
    """
    root = Path(root)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = np.random.default_rng(seed)
    pts, labels, caps = [], [], []
    for c_idx, cat in enumerate(categories):
        folder = root / SHAPENET_SYNSETS.get(cat, cat) / split
        files = sorted(folder.glob("*.npy"))
        if not files:
            raise ValueError(f"no .npy files in {folder}; root must hold <synset>/<split>/*.npy (PointFlow layout)")
        for f in files[:max_per_category]:
            cloud = check_points(np.load(f, allow_pickle=False), name=str(f))
            idx = rng.choice(len(cloud), num_points, replace=len(cloud) < num_points)
            pts.append(normalize(cloud[idx])[0])
            labels.append(c_idx)
            caps.append(f"a {cat}")
    return PointCloudSet(np.stack(pts), np.asarray(labels, np.int64), caps, tuple(categories))

"""Refinement into meshes, measured against the true procedural surface, and headless previews."""
import numpy as np
import pytest

from evaluation.pointcloud import chamfer_percent_of_diagonal
from generators.pointcloud import MeshOutput, RefineOptions, refine
from generators.pointcloud.data import procedural_shape
from generators.pointcloud.render import render_mesh


def _refined_error(category: str, options: RefineOptions, index: int = 0) -> tuple[float, bool]:
    _, _, shape = procedural_shape(category, "test", index, 16)
    rng = np.random.default_rng(index)
    truth = shape.sample_surface(20_000, rng)
    mesh = refine(shape.sample_surface(2048, rng), options).mesh
    return chamfer_percent_of_diagonal(np.asarray(mesh.sample(20_000)), truth), bool(mesh.is_watertight)


@pytest.mark.parametrize("category", ["chair", "lamp"])  # thin legs, a thin pole
def test_refinement_is_within_one_percent_and_watertight(category):
    error, watertight = _refined_error(category, RefineOptions())
    assert error < 1.0 and watertight


def test_poisson_baseline_runs_and_is_less_accurate_on_thin_parts():
    closing, _ = _refined_error("lamp", RefineOptions(resolution=64))
    poisson, _ = _refined_error("lamp", RefineOptions(method="poisson", poisson_depth=7))
    assert closing < poisson


def test_refine_maps_back_huge_offset_coordinates():
    pts = procedural_shape("table", "test", 2, 1024)[0].astype(np.float64) * 2000.0 + np.array([1e5, -5e4, 300.0])
    result = refine(pts, RefineOptions(resolution=40))
    assert np.allclose(result.mesh.bounds, [pts.min(0), pts.max(0)], atol=2000.0 * 0.05)
    assert result.mesh.is_watertight and result.normalization.scale == pytest.approx(2000.0, rel=0.01)


def test_refine_bad_inputs():
    with pytest.raises(ValueError, match="NaN or inf"):
        refine(np.full((100, 3), np.inf))
    with pytest.raises(ValueError, match="collinear"):
        refine(np.arange(300, dtype=float).reshape(100, 3))
    with pytest.raises(ValueError, match="method must be one of"):
        RefineOptions(method="alpha")
    with pytest.raises(ValueError, match="resolution"):
        RefineOptions(resolution=4)


def test_preview_is_shaded_and_mesh_output_saves(tmp_path):
    pts = procedural_shape("mug", "test", 0, 1024)[0]
    mesh = refine(pts, RefineOptions(resolution=40)).mesh
    img = render_mesh(mesh, size=64)
    background = (img == 255).all(-1)
    assert img.shape == (64, 64, 3) and 0.1 < background.mean() < 0.9
    assert img[~background].std() > 5  # Lambert shading varies over the surface
    out = MeshOutput([mesh])
    for suffix in (".ply", ".obj", ".stl", ".glb", ".png"):
        assert out.save(tmp_path / f"m{suffix}")[0].stat().st_size > 100

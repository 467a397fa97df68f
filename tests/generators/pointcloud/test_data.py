"""Procedural data, captions, the PointFlow ShapeNet loader, and the checks on users' clouds."""
import numpy as np
import pytest
import trimesh

from generators.pointcloud.data import (
    PointCountWarning, check_points, load_pointflow_shapenet, normalize, procedural_shape, procedural_split, read_points,
)
from generators.pointcloud.shapes import CATEGORIES, build_shape


def test_procedural_data_is_deterministic_and_splits_differ():
    a = procedural_split("train", 2, 128, seed=3, categories=("chair", "lamp"))
    b = procedural_split("train", 2, 128, seed=3, categories=("chair", "lamp"))
    test = procedural_split("test", 2, 128, seed=3, categories=("chair", "lamp"))
    assert np.array_equal(a.points, b.points) and a.captions == b.captions
    assert a.points.shape == (4, 128, 3) and a.points.dtype == np.float32 and a.labels.tolist() == [0, 0, 1, 1]
    assert not np.allclose(a.points, test.points)
    assert not np.allclose(a.points[0], a.points[1])  # two chairs of one split differ


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_category_is_normalised_and_sampled_on_the_union_boundary(category):
    pts, caption, shape = procedural_shape(category, "val", 0, 512)
    assert np.isclose(np.abs(pts).max(), 1.0, atol=1e-5) and np.allclose((pts.max(0) + pts.min(0)) / 2, 0, atol=1e-5)
    raw = shape.sample_surface(512, np.random.default_rng(0))
    inside = np.zeros(len(raw), bool)
    for p in shape.primitives:
        inside |= p.inside(raw, margin=0.01)  # no sample lies inside any part (no hidden interior faces)
    assert not inside.any()
    assert category.split("-")[0] in caption or category in ("shelf", "mug", "sofa")


def test_captions_mention_attributes():
    captions = {procedural_shape("shelf", "train", i, 32)[1] for i in range(12)}
    assert any("shelves" in c for c in captions) and all(c == " ".join(c.split()) for c in captions)


def test_unknown_category_and_split():
    with pytest.raises(ValueError, match="category must be one of"):
        build_shape("spaceship", np.random.default_rng(0))
    with pytest.raises(ValueError, match="split must be one of"):
        procedural_shape("chair", "holdout", 0, 32)


def test_check_points_rejects_bad_clouds():
    good = np.random.default_rng(0).normal(size=(100, 3))
    bad = good.copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        check_points(bad)
    bad[5, 1] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        check_points(bad)
    with pytest.raises(ValueError, match="all points are equal"):
        check_points(np.ones((50, 3)))
    with pytest.raises(ValueError, match="collinear"):
        check_points(np.linspace(0, 1, 50)[:, None] * np.array([[1.0, 2.0, 3.0]]))
    with pytest.raises(ValueError, match="at least 16"):
        check_points(good[:5])
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        check_points(good[:, :2])
    with pytest.warns(PointCountWarning, match="resampled"):
        out = check_points(good[:40], num_points=64)
    assert out.shape == (64, 3)


def test_normalisation_maps_back():
    pts = np.random.default_rng(1).normal(size=(200, 3)) * 1e4 + np.array([5e5, -3e5, 7.0])
    unit, norm = normalize(pts)
    assert np.abs(unit).max() <= 1.0 + 1e-5
    assert np.abs(norm.inverse(unit) - pts).max() < 1.0  # float32 at 5e5: about 0.03


def test_read_points_formats(tmp_path):
    pts = np.random.default_rng(2).normal(size=(30, 3)).astype(np.float32)
    np.save(tmp_path / "a.npy", pts)
    np.savetxt(tmp_path / "a.xyz", pts)
    (tmp_path / "a.ply").write_bytes(trimesh.PointCloud(pts).export(file_type="ply"))
    for name in ("a.npy", "a.xyz", "a.ply"):
        assert np.allclose(read_points(tmp_path / name), pts, atol=1e-5)
    with pytest.raises(ValueError, match="must be .ply, .xyz"):
        read_points((tmp_path / "a.stl").write_text("x") and tmp_path / "a.stl")
    with pytest.raises(ValueError, match="does not exist"):
        read_points(tmp_path / "missing.ply")


def test_pointflow_shapenet_layout(tmp_path):
    rng = np.random.default_rng(0)
    for synset in ("03001627", "02691156"):
        folder = tmp_path / synset / "train"
        folder.mkdir(parents=True)
        for i in range(2):
            np.save(folder / f"model{i}.npy", rng.normal(size=(300, 3)).astype(np.float32) * 5 + 2)
    data = load_pointflow_shapenet(tmp_path, "train", 64, categories=("chair", "airplane"))
    assert data.points.shape == (4, 64, 3) and data.labels.tolist() == [0, 0, 1, 1]
    assert np.isclose(np.abs(data.points).max(axis=(1, 2)), 1.0).all() and data.captions[0] == "a chair"
    with pytest.raises(ValueError, match="PointFlow layout"):
        load_pointflow_shapenet(tmp_path, "test", 64, categories=("chair",))

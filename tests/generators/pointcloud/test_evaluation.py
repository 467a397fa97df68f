"""Point-cloud metrics against closed forms and brute force, and the family's evaluation on a tiny model."""
from itertools import permutations

import numpy as np
import pytest
import torch

from evaluation.pointcloud import chamfer_matrix, emd_exact, emd_matrix, emd_sinkhorn, set_metrics
from generators.pointcloud import RefineOptions
from generators.pointcloud.data import normalize, procedural_shape, procedural_split
from generators.pointcloud.evaluate import distribution_metrics, evaluate_pointcloud


def test_chamfer_closed_form():
    x = np.zeros((1, 4, 3), np.float32)
    y = x + np.array([0.0, 0.0, 2.0], np.float32)
    assert np.allclose(chamfer_matrix(x, y), [[8.0]]) and np.allclose(chamfer_matrix(x, x), 0)


def test_chamfer_matrix_matches_brute_force_and_its_self_matrix_is_symmetric():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 50, 3)).astype(np.float32), rng.normal(size=(3, 70, 3)).astype(np.float32)
    d = torch.cdist(torch.tensor(a)[:, None].double(), torch.tensor(b)[None].double()) ** 2  # (4, 3, 50, 70)
    brute = (d.min(-1).values.mean(-1) + d.min(-2).values.mean(-1)).numpy()
    assert np.allclose(chamfer_matrix(a, b), brute, rtol=1e-5)
    self_matrix = chamfer_matrix(a)
    assert np.allclose(self_matrix, chamfer_matrix(a, a), rtol=1e-6, atol=1e-9)
    assert np.allclose(self_matrix, self_matrix.T) and np.allclose(np.diag(self_matrix), 0)


def test_exact_emd_self_matrix_equals_the_full_matrix():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(4, 16, 3)).astype(np.float32)
    assert np.allclose(emd_matrix(a), emd_matrix(a, a), atol=1e-6)


def test_exact_emd_matches_brute_force():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    brute = min(np.linalg.norm(x - y[list(p)], axis=1).mean() for p in permutations(range(6)))
    assert emd_exact(x, y) == pytest.approx(brute)


def test_sinkhorn_emd_approximates_exact_from_above():
    clouds = [procedural_shape(c, "test", i, 64)[0] for c in ("chair", "lamp", "car") for i in range(2)]
    ratios = []
    for i in range(len(clouds)):
        for j in range(i + 1, len(clouds)):
            exact = emd_exact(clouds[i], clouds[j])
            approx = float(emd_sinkhorn(torch.tensor(clouds[i])[None], torch.tensor(clouds[j])[None])[0])
            ratios.append(approx / exact)
    ratios = np.array(ratios)
    assert (ratios >= 1 - 1e-6).all()  # a feasible plan never beats the optimum
    assert ratios.mean() < 1.05 and ratios.max() < 1.25
    a = np.stack(clouds[:2])
    assert np.allclose(emd_matrix(a, a, exact=False), emd_matrix(a, a, exact=False).T, rtol=0.1, atol=1e-3)


def test_set_metrics_extremes():
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(6, 32, 3)).astype(np.float32)
    same = set_metrics(chamfer_matrix(ref + 1e-3, ref), chamfer_matrix(ref + 1e-3, ref + 1e-3), chamfer_matrix(ref, ref))
    assert same["cov"] == 1.0 and same["1-nna"] == 0.0 and same["mmd"] < 1e-4
    far = ref + 100.0
    apart = set_metrics(chamfer_matrix(far, ref), chamfer_matrix(far, far), chamfer_matrix(ref, ref))
    assert apart["1-nna"] == 1.0 and apart["mmd"] > 1e4
    collapsed = np.repeat(ref[:1], 6, axis=0)
    mode = set_metrics(chamfer_matrix(collapsed, ref), chamfer_matrix(collapsed, collapsed), chamfer_matrix(ref, ref))
    assert mode["cov"] == pytest.approx(1 / 6)
    with pytest.raises(ValueError, match="distance matrices"):
        set_metrics(np.zeros((2, 3)), np.zeros((2, 2)), np.zeros((2, 2)))


def test_evaluate_tiny_model_values_in_range(tiny_gen):
    metrics = evaluate_pointcloud(tiny_gen, per_category=3, num_points=48, steps=2, emd_points=24,
                                  refine_per_category=1, categories=["chair", "mug"],
                                  refine_options=RefineOptions(resolution=32))
    assert set(metrics["per_category"]) == {"chair", "mug"}
    for values in metrics["per_category"].values():
        for key in ("1-nna-cd", "cov-cd", "1-nna-emd", "cov-emd", "watertight", "refine_watertight"):
            assert 0.0 <= values[key] <= 1.0
        assert values["mmd-cd"] >= 0 and values["mmd-emd"] >= 0 and values["refine_cd_percent"] >= 0
    assert set(metrics["done_when"]) == {"1-nna-cd", "cov-cd", "watertight", "refine"}
    with pytest.raises(ValueError, match="categories must be among"):
        evaluate_pointcloud(tiny_gen, per_category=2, categories=["car"])


def test_stage_breakdown_rows(tiny_gen):
    """real = validation vs test shapes; reconstruction = decoded posterior means; point_prior = sampled given z."""
    metrics = evaluate_pointcloud(tiny_gen, per_category=3, num_points=48, steps=2, emd_points=0,
                                  refine_per_category=0, categories=["mug"], breakdown=True)
    rows = metrics["breakdown"]["mug"]
    assert set(rows) == {"real", "reconstruction", "posterior_sample", "point_prior"}
    assert set(metrics["breakdown_mean"]) == set(rows)
    c = tiny_gen.categories.index("mug")
    val = procedural_split("val", 3, 48, 0, tiny_gen.categories)
    test = procedural_split("test", 3, 48, 0, tiny_gen.categories)
    real, ref = val.points[val.labels == c], test.points[test.labels == c]
    assert rows["real"] == distribution_metrics(np.stack([normalize(p)[0] for p in real]), ref, 0, 0)
    with torch.no_grad():
        z, _, h, _ = tiny_gen.model.vae.encode(torch.from_numpy(real))
        decoded = tiny_gen.model.vae.decode(h, z).numpy()
    np.testing.assert_allclose(tiny_gen.reconstruct(real).points, decoded, atol=1e-5)
    unit = lambda clouds: np.stack([normalize(p)[0] for p in clouds])  # noqa: E731
    assert rows["reconstruction"] == distribution_metrics(unit(tiny_gen.reconstruct(real).points), ref, 0, 0)
    sampled = tiny_gen.reconstruct(real, prior_points=True, num_inference_steps=2, seed=0).points  # the first category's seed
    assert rows["point_prior"] == distribution_metrics(unit(sampled), ref, 0, 0)
    a = tiny_gen.reconstruct(real, prior_points=True, num_inference_steps=2, seed=3).points
    b = tiny_gen.reconstruct(real, prior_points=True, num_inference_steps=2, seed=3).points
    assert np.array_equal(a, b) and not np.allclose(a, decoded, atol=1e-3)
    drawn = tiny_gen.reconstruct(real, posterior_sample=True, seed=0).points
    assert rows["posterior_sample"] == distribution_metrics(unit(drawn), ref, 0, 0)
    with torch.no_grad():  # h_mu + sigma * eps with the seed's noise, then decoded
        z, _, h, h_logvar = tiny_gen.model.vae.encode(torch.from_numpy(real))
        eps = torch.randn(h.shape, generator=torch.Generator().manual_seed(0))
        np.testing.assert_allclose(drawn, tiny_gen.model.vae.decode(h + (0.5 * h_logvar).exp() * eps, z).numpy(), atol=1e-5)
    assert not np.allclose(drawn, decoded, atol=1e-3)
    with pytest.raises(ValueError, match="pass one of them"):
        tiny_gen.reconstruct(real, prior_points=True, posterior_sample=True)
    with pytest.raises(ValueError, match="clouds must be finite"):
        tiny_gen.reconstruct(np.full((1, 8, 3), np.nan, np.float32))

"""Metrics against closed forms."""
import numpy as np
import pytest
import torch

from evaluation.metrics import accuracy, frechet_distance, mmd_rbf, sliced_wasserstein


def test_frechet_distance_closed_form():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20000, 3))
    b = rng.normal(size=(20000, 3)) * 2 + np.array([1.0, 0, 0])
    # ||mu||^2 + tr(I + 4I - 2*2I) = 1 + 3
    assert frechet_distance(a, b) == pytest.approx(4.0, rel=0.03)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="equal D"):
        frechet_distance(a, b[:, :2])


def test_mmd_and_sliced_wasserstein_separate_distributions():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(500, 2, generator=g), torch.randn(500, 2, generator=g)
    z = torch.randn(500, 2, generator=g) + 1.0
    assert abs(mmd_rbf(x, y)) < 0.01 < mmd_rbf(x, z)
    # a shift by (1, 1) moves every 1-D projection by cos+sin; RMS over directions is 1
    assert sliced_wasserstein(x, z, 512) == pytest.approx(1.0, abs=0.15)
    assert sliced_wasserstein(x, y) < 0.15
    assert accuracy(np.array([1, 2, 3]), np.array([1, 2, 0])) == pytest.approx(2 / 3)

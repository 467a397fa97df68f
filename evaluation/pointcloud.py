"""Point-cloud metrics on arrays: Chamfer, EMD (exact and Sinkhorn), MMD / COV / 1-NNA, mesh quality.

The set metrics follow PointFlow (Yang et al. 2019, sec. 5.1) as LION (Zeng et al. 2022) reports them:
- CD(X, Y) = mean_x min_y |x - y|^2 + mean_y min_x |x - y|^2;
- EMD(X, Y) = min over bijections phi of mean_x |x - phi(x)|, exact by the Hungarian method
  (``scipy.optimize.linear_sum_assignment``) or approximated by entropic optimal transport
  (Sinkhorn iterations in the log domain, Cuturi 2013), whose plan cost is an upper bound of the exact;
- MMD = mean over reference Y of min over generated X of D(X, Y);
- COV = fraction of reference shapes that are the nearest neighbour of some generated shape;
- 1-NNA = leave-one-out accuracy of the 1-nearest-neighbour classifier on generated + reference
  (Lopez-Paz & Oquab 2017); 50% is ideal.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree


def _clouds(x: np.ndarray | torch.Tensor, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    if t.ndim != 3 or t.shape[-1] != 3 or t.shape[0] < 1 or t.shape[1] < 1:
        raise ValueError(f"{name} must be clouds of shape (M, N, 3), got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf")
    return t


def _pairs(m: int, k: int, symmetric: bool) -> list[tuple[int, int]]:
    """Index pairs to compute: all of (M, K), or the upper triangle of a symmetric (M, M) matrix."""
    return [(i, j) for i in range(m) for j in range(i + 1 if symmetric else 0, k)]


def chamfer_matrix(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor | None = None,
                   workers: int | None = None) -> np.ndarray:
    """CD between every cloud of ``a`` (M, N, 3) and of ``b`` (K, N', 3): (M, K); ``b=None`` gives ``a`` vs ``a``.

    Nearest neighbours come from one k-d tree per cloud (``scipy.spatial.cKDTree``), built once, so a
    pair costs O((N + N') log N) instead of the N x N' distance block (at 2,048 points, one thread:
    0.004 s per pair against 0.09 s for ``torch.cdist``, a development measurement). The self matrix
    is symmetric with a zero diagonal, so only its upper triangle is computed.
    """
    a = _clouds(a, "a").numpy().astype(np.float64)
    symmetric = b is None
    b = a if symmetric else _clouds(b, "b").numpy().astype(np.float64)
    workers = workers or torch.get_num_threads()
    trees_a = [cKDTree(x) for x in a]
    trees_b = trees_a if symmetric else [cKDTree(y) for y in b]
    out = np.zeros((len(a), len(b)))
    for i, j in _pairs(len(a), len(b), symmetric):
        ab = trees_b[j].query(a[i], workers=workers)[0]
        ba = trees_a[i].query(b[j], workers=workers)[0]
        out[i, j] = np.mean(ab**2) + np.mean(ba**2)
    return out + out.T if symmetric else out


def emd_exact(x: np.ndarray, y: np.ndarray) -> float:
    """Exact EMD of two equal-size clouds (N, 3): mean matched distance of the optimal bijection."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"EMD needs two clouds of the same shape (N, 3), got {x.shape} and {y.shape}")
    cost = np.linalg.norm(x[:, None] - y[None], axis=-1)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def _round_plan(plan: torch.Tensor, marginal: float) -> torch.Tensor:
    """Project a near-feasible plan onto the transport polytope (Altschuler et al. 2017, Algorithm 2)."""
    rows = (marginal / plan.sum(2, keepdim=True).clamp_min(1e-300)).clamp(max=1.0)
    plan = plan * rows
    cols = (marginal / plan.sum(1, keepdim=True).clamp_min(1e-300)).clamp(max=1.0)
    plan = plan * cols
    err_r = marginal - plan.sum(2)  # (B, N)
    err_c = marginal - plan.sum(1)
    total = err_r.sum(1).clamp_min(1e-300)[:, None, None]
    return plan + err_r[:, :, None] * err_c[:, None, :] / total


def emd_sinkhorn(x: torch.Tensor, y: torch.Tensor, epsilon: float = 0.005, iterations: int = 60) -> torch.Tensor:
    """Approximate EMD of batched equal-size clouds (B, N, 3) -> (B,), by entropic optimal transport.

    Log-domain Sinkhorn (Cuturi 2013) with epsilon-scaling from the mean cost down to ``epsilon`` x the
    mean cost (Schmitzer 2019), then rounded to an exact transport plan (Altschuler et al. 2017), so
    the value, the mean matched distance under that plan, is an upper bound of the exact EMD.
    """
    if x.shape != y.shape:
        raise ValueError(f"EMD needs clouds of the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    cost = torch.cdist(x.double(), y.double())  # (B, N, N)
    n = x.shape[1]
    scale = float(cost.mean().clamp_min(1e-12))
    log_w = -float(np.log(n))
    f = torch.zeros(x.shape[:2], dtype=torch.float64)
    g = torch.zeros_like(f)
    for eps in np.geomspace(scale, epsilon * scale, iterations):
        f = -eps * torch.logsumexp((g[:, None, :] - cost) / eps + log_w, dim=2)
        g = -eps * torch.logsumexp((f[:, :, None] - cost) / eps + log_w, dim=1)
    plan = torch.exp((f[:, :, None] + g[:, None, :] - cost) / eps + 2 * log_w)
    plan = _round_plan(plan, 1.0 / n)
    return ((plan * cost).sum(dim=(1, 2))).float()


def emd_matrix(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor | None = None, exact: bool = True,
               batch: int = 32, epsilon: float = 0.005, iterations: int = 60) -> np.ndarray:
    """EMD between every cloud of ``a`` (M, N, 3) and ``b`` (K, N, 3): exact (Hungarian) or Sinkhorn.

    ``b=None`` gives ``a`` vs ``a``: only the upper triangle is computed and mirrored (the exact EMD
    is symmetric; for Sinkhorn this fixes one of two near-equal estimates).
    """
    symmetric = b is None
    a = _clouds(a, "a")
    b = a if symmetric else _clouds(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"EMD needs equal point counts, got {a.shape[1]} and {b.shape[1]}; resample first")
    out = np.zeros((len(a), len(b)))
    if exact:
        an, bn = a.numpy(), b.numpy()
        for i, j in _pairs(len(a), len(b), symmetric):
            out[i, j] = emd_exact(an[i], bn[j])
        return out + out.T if symmetric else out
    for i in range(len(a)):
        start = i + 1 if symmetric else 0
        for j in range(start, len(b), batch):
            bj = b[j:j + batch]
            out[i, j:j + len(bj)] = emd_sinkhorn(a[i].expand(len(bj), -1, -1), bj, epsilon, iterations).numpy()
    return out + out.T if symmetric else out


def set_metrics(d_gr: np.ndarray, d_gg: np.ndarray, d_rr: np.ndarray) -> dict[str, float]:
    """MMD, COV and 1-NNA from distance matrices generated-reference (M, K), generated (M, M), reference (K, K)."""
    d_gr, d_gg, d_rr = np.asarray(d_gr), np.asarray(d_gg), np.asarray(d_rr)
    m, k = d_gr.shape
    if d_gg.shape != (m, m) or d_rr.shape != (k, k) or m < 1 or k < 1:
        raise ValueError(f"distance matrices must be (M, K), (M, M), (K, K); got {d_gr.shape}, {d_gg.shape}, {d_rr.shape}")
    mmd = float(d_gr.min(axis=0).mean())
    cov = float(len(np.unique(d_gr.argmin(axis=1))) / k)
    full = np.block([[d_gg, d_gr], [d_gr.T, d_rr]]).astype(np.float64)
    np.fill_diagonal(full, np.inf)
    is_gen = np.r_[np.ones(m, bool), np.zeros(k, bool)]
    nearest = full.argmin(axis=1)
    nna = float((is_gen[nearest] == is_gen).mean())
    return {"mmd": mmd, "cov": cov, "1-nna": nna}


def surface_chamfer(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric mean nearest-neighbour distance (not squared) between two point sets (N, 3), (M, 3)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or len(a) == 0 or len(b) == 0:
        raise ValueError("surface_chamfer needs two non-empty (N, 3) point sets")
    return float((cKDTree(b).query(a)[0].mean() + cKDTree(a).query(b)[0].mean()) / 2)


def chamfer_percent_of_diagonal(surface_a: np.ndarray, surface_b: np.ndarray) -> float:
    """:func:`surface_chamfer` as a percentage of ``surface_b``'s bounding-box diagonal."""
    diag = float(np.linalg.norm(np.ptp(np.asarray(surface_b), axis=0)))
    if diag <= 0:
        raise ValueError("the reference surface has a zero bounding box")
    return 100.0 * surface_chamfer(surface_a, surface_b) / diag


def watertight_fraction(meshes: list) -> float:
    """Fraction of trimesh meshes that are watertight (every edge shared by exactly two faces)."""
    if not meshes:
        raise ValueError("watertight_fraction needs at least one mesh")
    return float(np.mean([bool(m.is_watertight) for m in meshes]))

"""The hierarchical VAE's fixed latent-point spread (``PointVAE(h_std=...)``) and the kNN local context
(``local_k``) of the VAE and the point prior."""
import json
import math

import pytest
import torch

import generators.pointcloud.model as model_module
from generators.pointcloud.losses import VAELoss, reparameterize
from generators.pointcloud.model import LionModel, LocalGraph, PointPriorNet, PointVAE, knn_indices


def test_fixed_spread_replaces_the_learned_variance():
    torch.manual_seed(0)
    x = torch.randn(2, 32, 3)
    fixed = PointVAE(latent_dim=8, hidden=16, depth=1, h_std=0.05)
    z_mu, _, h_mu, h_logvar = fixed.encode(x)
    assert h_logvar.shape == h_mu.shape == (2, 32, 4)
    assert torch.allclose(h_logvar, torch.full_like(h_logvar, 2 * math.log(0.05)))
    assert (h_mu[..., :3] - x).abs().max() <= 0.05 and h_mu[..., 3:].abs().max() <= 1  # bounded means
    h = reparameterize(h_mu, h_logvar, torch.Generator().manual_seed(0))
    assert (h - h_mu).std().item() == pytest.approx(0.05, rel=0.15)
    learned = PointVAE(latent_dim=8, hidden=16, depth=1)  # h_std=0: the encoder's own variance
    learned.load_state_dict(fixed.state_dict())
    assert not torch.allclose(learned.encode(x)[3], h_logvar)
    loss = VAELoss(kl_weight_z=1e-4, kl_weight_h=1e-3)(fixed, x, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and fixed.global_encoder.head[-1].weight.grad.abs().sum() > 0


def test_negative_spread_is_refused():
    with pytest.raises(ValueError, match="h_std"):
        PointVAE(h_std=-0.1)


# --- local context (``local_k``: a kNN EdgeConv in every block, model.LocalEdge) ---

def _randomize_residuals(module: torch.nn.Module) -> None:
    """fc2 and the zero-initialised out-projections start at zero, which would hide the local term."""
    torch.manual_seed(1)
    for name, p in module.named_parameters():
        if torch.count_nonzero(p) == 0:
            torch.nn.init.normal_(p, std=0.2)


@pytest.mark.parametrize("n", [64, 37])
def test_local_context_shapes_for_any_number_of_points(n):
    torch.manual_seed(0)
    vae = PointVAE(latent_dim=8, hidden=16, depth=2, h_std=0.1, local_k=8)
    x = torch.randn(2, n, 3)
    z_mu, z_logvar, h_mu, h_logvar = vae.encode(x)
    assert z_mu.shape == (2, 8) and h_mu.shape == h_logvar.shape == (2, n, 4)
    assert vae.decode(h_mu, z_mu).shape == (2, n, 3)
    prior = PointPriorNet(point_dim=4, latent_dim=8, hidden=16, depth=2, local_k=8)
    assert prior(torch.randn(2, n, 4), torch.tensor([3, 700]), z_mu).shape == (2, n, 4)
    assert vae.decode(torch.randn(1, 5, 4), z_mu[:1]).shape == (1, 5, 3)  # k clipped to N
    assert vae.decode(torch.randn(1, 1, 4), z_mu[:1]).isfinite().all()  # a single point


def test_local_context_is_permutation_equivariant():
    torch.manual_seed(0)
    vae = PointVAE(latent_dim=8, hidden=16, depth=2, h_std=0.1, local_k=6)
    prior = PointPriorNet(point_dim=4, latent_dim=8, hidden=16, depth=2, local_k=6)
    _randomize_residuals(vae), _randomize_residuals(prior)
    x, h, z = torch.randn(2, 50, 3), torch.randn(2, 50, 4), torch.randn(2, 8)
    perm = torch.randperm(50)
    t = torch.tensor([10, 500])
    with torch.no_grad():
        for f, inp in ((lambda a: vae.decode(a, z), h), (lambda a: prior(a, t, z), h),
                       (lambda a: vae.encode_points(a, z)[0], x)):
            assert torch.allclose(f(inp)[:, perm], f(inp[:, perm]), atol=1e-5)


def test_local_context_changes_the_output_and_uses_the_neighbours():
    torch.manual_seed(0)
    prior = PointPriorNet(point_dim=4, latent_dim=8, hidden=16, depth=1, local_k=4)
    _randomize_residuals(prior)
    h, z, t = torch.randn(1, 40, 4), torch.randn(1, 8), torch.tensor([100])
    with torch.no_grad():
        base = prior(h, t, z)
        nearest = LocalGraph.build(h[..., :3], 4).index[0, 0, 1]  # point 0's nearest other point
        moved = h.clone()
        moved[0, nearest, 3] += 1.0  # change its feature only: its position and the graph stay
        out = prior(moved, t, z)
    assert not torch.allclose(out[0, 0], base[0, 0], atol=1e-4)  # seen through the neighbourhood
    assert not torch.allclose(base, PointPriorNet(point_dim=4, latent_dim=8, hidden=16, depth=1)(h, t, z))


def test_chunked_knn_equals_unchunked_and_brute_force():
    torch.manual_seed(0)
    p = torch.randn(3, 101, 3)
    index, dist = knn_indices(p, 7, chunk_size=101)
    for chunk in (1, 16, 33):
        ci, cd = knn_indices(p, 7, chunk_size=chunk)
        assert torch.equal(ci, index) and torch.equal(cd, dist)
    auto = knn_indices(p, 7)  # automatic chunk size
    assert torch.equal(auto[0], index)
    brute = ((p[:, :, None] - p[:, None]) ** 2).sum(-1).argsort(dim=-1)[..., :7]
    assert torch.equal(index.sort(dim=-1).values, brute.sort(dim=-1).values)
    assert torch.equal(index[..., 0], torch.arange(101).expand(3, 101))  # each point is its own nearest
    assert not dist.requires_grad and knn_indices(p, 200)[0].shape == (3, 101, 101)


def test_neighbour_max_matches_gather_and_max_including_gradients(monkeypatch):
    torch.manual_seed(0)
    p = torch.randn(2, 30, 3)
    graph = LocalGraph.build(p, 5)
    g = torch.randn(2, 30, 6, requires_grad=True)
    ref = torch.stack([g[b][graph.index[b]] for b in range(2)]).max(dim=2).values  # (B, N, C)
    w = torch.randn_like(ref)
    (ref_grad,) = torch.autograd.grad((ref * w).sum(), g)
    monkeypatch.setattr(model_module, "GATHER_CHUNK_ELEMENTS", 2 * 5 * 6 * 7)  # chunks of 7 query points
    for _ in range(2):
        out = graph.neighbour_max(g)
        (grad,) = torch.autograd.grad((out * w).sum(), g)
        assert torch.equal(out, ref) and torch.allclose(grad, ref_grad)
        monkeypatch.undo()


def test_local_context_gradients_flow():
    torch.manual_seed(0)
    vae = PointVAE(latent_dim=8, hidden=16, depth=2, h_std=0.1, local_k=8)
    _randomize_residuals(vae)
    x = torch.randn(2, 48, 3)
    VAELoss(kl_weight_z=1e-4, kl_weight_h=1e-3)(vae, x, torch.Generator().manual_seed(0)).backward()
    for stack in (vae.point_encoder, vae.decoder):
        for block in stack.blocks:
            for p in block.local.parameters():
                assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    prior = PointPriorNet(point_dim=4, latent_dim=8, hidden=16, depth=2, local_k=8)
    _randomize_residuals(prior)
    h = torch.randn(2, 48, 4, requires_grad=True)
    prior(h, torch.tensor([5, 900]), torch.randn(2, 8)).square().sum().backward()
    assert prior.net.blocks[0].local.position.weight.grad.abs().sum() > 0
    assert h.grad[..., :3].abs().sum() > 0  # through the offsets (not the index)


def test_local_k_zero_is_todays_network_and_configs_without_the_key_load(tmp_path):
    torch.manual_seed(0)
    old = LionModel(vae_config={"latent_dim": 8, "hidden": 16, "depth": 1, "h_std": 0.1},
                    global_prior_config={"hidden": 16, "depth": 1, "text": False},
                    point_prior_config={"hidden": 16, "depth": 1}, categories=("a", "b"))
    assert old.vae.config.local_k == 0 and old.point_prior.config.local_k == 0
    assert not any(".local." in k for k in old.state_dict())  # same parameters as before local_k existed
    old.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert "local_k" not in config["vae_config"] and "local_k" not in config["point_prior_config"]
    loaded = LionModel.from_pretrained(tmp_path)
    x = torch.randn(1, 32, 3)
    with torch.no_grad():
        assert torch.equal(loaded.vae.encode(x)[2], old.vae.encode(x)[2])
    local = LionModel(vae_config={"latent_dim": 8, "hidden": 16, "depth": 1, "local_k": 4},
                      global_prior_config={"hidden": 16, "depth": 1, "text": False},
                      point_prior_config={"hidden": 16, "depth": 1, "local_k": 4}, categories=("a", "b"))
    local.save_pretrained(tmp_path / "local")
    again = LionModel.from_pretrained(tmp_path / "local")
    assert again.vae.config.local_k == 4 and again.point_prior.config.local_k == 4
    with torch.no_grad():
        assert torch.equal(again.vae.encode(x)[2], local.vae.encode(x)[2])
    with pytest.raises(ValueError, match="local_k"):
        PointVAE(local_k=-1)

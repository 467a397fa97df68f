"""LION's networks (Zeng et al. 2022, sec. 3): a hierarchical VAE and two latent denoisers.

- :class:`PointVAE`: q(z | x) by a PointNet (Qi et al. 2017) over the points, a global shape latent z
  (B, Dz); q(h | x, z) point by point, a latent point cloud h (B, N, 3 + d) whose first three
  channels are a point's position (LION eq. 1-2); p(x | h, z) decodes each latent point to a point.
- :class:`GlobalPriorNet`: eps_theta(z_t, t, y) on the global latent, conditioned on a class label
  and a text record from ``conditioning/`` (with learned nulls for classifier-free guidance).
- :class:`PointPriorNet`: eps_psi(h_t, t, z) on the latent points, conditioned on z through adaptive
  normalisation (LION's adaptive group norm, sec. 3.1; here per point with a set-mean context).
- :class:`LionModel`: the three in one diffusers ``ModelMixin`` / ``ConfigMixin``, so one checkpoint
  folder (``config.json`` + safetensors) rebuilds the whole generator, with the latent scales
  (Rombach et al. 2022, sec. 4.3.2) kept as buffers.

Every network is a stack of :class:`AdaBlock` s acting on each point, with the mean over the set as
the only interaction between points, so a network trained on N points runs on any number of points.
With ``local_k > 0`` (PointVAE, PointPriorNet) every block also max-pools over each point's k nearest
neighbours (:class:`LocalGraph`, an EdgeConv after DGCNN, Wang et al. 2019): the local context that LION
gets from PVCNN's point-voxel convolutions (Liu et al. 2019) and that per-point blocks lack.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from conditioning import ClassLabelEncoder, ConditioningRecord
from generators.core.schedules import NoiseSchedule
from generators.core.shapes import append_dims


# Numbers in one chunk of query points, whatever the batch and the number of points: of the (B, Q, N)
# distances in knn_indices (16 Mi float32, 64 MiB) and of the (B, k, Q, C) gathered features in
# LocalGraph.neighbour_max (4 Mi, 16 MiB; small enough to stay in cache, which the gather is bound by).
KNN_CHUNK_ELEMENTS = 1 << 24
GATHER_CHUNK_ELEMENTS = 1 << 22


@torch.no_grad()
def knn_indices(points: torch.Tensor, k: int, chunk_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest neighbours of every point in its own set, itself included (as in DGCNN's graph).

    Args:
        points: (B, N, 3) positions (any float dtype; distances are taken in float32).
        k: neighbours per point; clipped to N.
        chunk_size: query points per ``torch.cdist`` + ``topk`` call; ``None`` picks it so that one chunk's
            (B, chunk, N) distances hold at most :data:`KNN_CHUNK_ELEMENTS` numbers, so memory stays bounded
            for generation's 2,048+ points at batch 32.
    Returns:
        ``(index, distance)``, each (B, N, k), nearest first; no gradient flows through either.
        Distances are computed element by element (not as |a|^2 + |b|^2 - 2ab), so the result does not
        depend on the chunking.
    """
    batch, n, _ = points.shape
    k = min(k, n)
    if chunk_size is None:
        chunk_size = max(1, KNN_CHUNK_ELEMENTS // max(1, batch * n))
    p = points.detach().float()
    index, distance = [], []
    for start in range(0, n, chunk_size):
        d = torch.cdist(p[:, start:start + chunk_size], p, compute_mode="donot_use_mm_for_euclid_dist")  # (B, Q, N)
        top = d.topk(k, dim=-1, largest=False)
        index.append(top.indices)
        distance.append(top.values)
    return torch.cat(index, dim=1), torch.cat(distance, dim=1)


@dataclass(frozen=True)
class LocalGraph:
    """The kNN graph of one forward pass, built once from a stack input's positions and shared by its blocks.

    ``pos`` are the positions, centred and divided by the set's mean neighbour distance (per-set statistics
    without gradient; ``pos`` itself keeps the input's gradient, only the index has none), so that offsets
    p_j - p_i are O(1) whatever the scale of the input (points, latent points, noisy scaled latents) and
    whatever the density: a network trained on 512 points sees offsets of the same size on 2,048 (though
    its k neighbours then span half the distance).
    """

    index: torch.Tensor  # (B, N, k) neighbour indices, each point's own index among them
    pos: torch.Tensor    # (B, N, 3) normalised positions, dtype of the input

    @classmethod
    def build(cls, points: torch.Tensor, k: int, chunk_size: int | None = None) -> "LocalGraph":
        """The graph of ``points`` (B, N, 3): :func:`knn_indices` and the normalised positions."""
        index, distance = knn_indices(points, k, chunk_size)
        batch, n, k_eff = index.shape
        p = points.float()
        if k_eff > 1:  # mean distance to the k_eff - 1 other neighbours (the self-distance is 0), per set
            scale = (distance.sum(dim=(1, 2)) / (n * (k_eff - 1))).clamp_min(1e-6).view(batch, 1, 1)
        else:  # a single point: no offsets to scale
            scale = torch.ones(batch, 1, 1, device=p.device)
        # centred per set (offsets are unchanged) so that B p_j - B p_i cancels at small magnitudes
        centre = p.mean(dim=1, keepdim=True).detach()
        return cls(index=index, pos=((p - centre) / scale).to(points.dtype))

    def neighbour_max(self, g: torch.Tensor) -> torch.Tensor:
        """max_{j in N(i)} g_j per channel: (B, N, C) -> (B, N, C), differentiable in ``g``."""
        return _NeighbourMax.apply(g, self.index)


class _NeighbourMax(torch.autograd.Function):
    """max over each point's neighbours, with a backward that scatters into (B, N, C), not (B, k, N, C).

    Autograd's own backward of gather + amax builds three (B, k, N, C) tensors and index-adds them; here the
    forward keeps the source point of every channel's maximum (the largest index among ties, a valid
    subgradient) and the backward is one ``scatter_add_`` (measured 2.2-2.6x faster at 32-64 channels).
    The gather runs in chunks of query points of at most :data:`GATHER_CHUNK_ELEMENTS` numbers.
    """

    @staticmethod
    def forward(ctx: Any, g: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        batch, n, channels = g.shape
        k = index.shape[-1]
        index_t = index.transpose(1, 2)  # (B, k, N)
        flat_index = index_t + torch.arange(batch, device=g.device).view(batch, 1, 1) * n  # rows of g.reshape(B N, C)
        flat = g.reshape(batch * n, channels)
        step = max(1, GATHER_CHUNK_ELEMENTS // max(1, batch * k * channels))
        values, sources = [], []
        for start in range(0, n, step):
            rows = flat_index[:, :, start:start + step]  # (B, k, Q)
            gathered = flat.index_select(0, rows.reshape(-1)).view(batch, k, rows.shape[-1], channels)
            best = gathered.amax(dim=1)  # (B, Q, C): a contiguous reduction over the k neighbours
            values.append(best)
            if ctx.needs_input_grad[0]:  # source of each maximum: max over neighbours of hit * (index + 1)
                code = (index_t[:, :, start:start + step] + 1).to(torch.float32).unsqueeze(-1)  # exact below 2^24
                hit = (gathered == best.unsqueeze(1)).to(torch.float32).mul_(code)  # (B, k, Q, C)
                sources.append(hit.amax(dim=1).sub_(1).to(torch.long))  # (B, Q, C)
        if sources:
            ctx.save_for_backward(sources[0] if len(sources) == 1 else torch.cat(sources, dim=1))
        return values[0] if len(values) == 1 else torch.cat(values, dim=1)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (source,) = ctx.saved_tensors
        return torch.zeros_like(grad).scatter_add_(1, source, grad), None


class LocalEdge(nn.Module):
    """max_{j in N(i)} [A y_j + B (p_j - p_i)], projected back to the block width (EdgeConv, DGCNN eq. 7-8).

    DGCNN (Wang et al. 2019) applies an MLP to every edge (y_i, y_j - y_i); here the edge function is linear,
    so that max_j [A y_j + B p_j] - B p_i costs one projection of the points plus a gather, not an MLP per
    edge, and it runs at a narrow width (``dim // 4``, 32 channels at hidden 128) before ``U`` widens it back:
    the gather, not the projections, dominates the cost, and it is memory-bound.
    It gives each point what LION's PVCNN voxels give it: where its neighbours are and what they carry.
    """

    def __init__(self, dim: int, width: int | None = None) -> None:
        super().__init__()
        width = width or max(8, dim // 4)
        self.feature = nn.Linear(dim, width, bias=False)  # A (a bias would pass through the max unchanged)
        self.position = nn.Linear(3, width, bias=False)   # B
        self.out = nn.Linear(width, dim)                  # U

    def forward(self, y: torch.Tensor, graph: LocalGraph) -> torch.Tensor:
        bp = self.position(graph.pos.to(y.dtype))  # (B, N, W)
        return self.out(graph.neighbour_max(self.feature(y) + bp) - bp)  # (B, N, C)


class AdaBlock(nn.Module):
    """h + W2 silu(W1 silu(AdaLN(h; c)) + V mean_set(.) [+ LocalEdge(.)]): adaptive normalisation by c.

    ``local`` adds :class:`LocalEdge` over the stack's :class:`LocalGraph` (absent from the state dict when
    off, so checkpoints of blocks without it load unchanged).
    """

    def __init__(self, dim: int, cond_dim: int, set_context: bool, local: bool = False) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.modulation = nn.Linear(cond_dim, 2 * dim)
        self.fc1 = nn.Linear(dim, dim)
        self.context = nn.Linear(dim, dim) if set_context else None
        self.local = LocalEdge(dim) if local else None
        self.fc2 = nn.Linear(dim, dim)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, h: torch.Tensor, c: torch.Tensor, graph: LocalGraph | None = None) -> torch.Tensor:
        scale, shift = self.modulation(c).unsqueeze(1).chunk(2, dim=-1)  # (B, 1, C) each
        y = self.fc1(F.silu(self.norm(h) * (1 + scale) + shift))  # (B, N, C)
        out = y
        if self.context is not None:
            out = out + self.context(y.mean(dim=1, keepdim=True))  # set context, same for every N
        if self.local is not None:
            if graph is None:
                raise ValueError("a block with local context needs the stack's LocalGraph")
            out = out + self.local(y, graph)  # (B, N, C) neighbourhood context
        return h + self.fc2(F.silu(out))


class AdaStack(nn.Module):
    """in-projection, ``depth`` AdaBlocks, normalised out-projection: (B, N, C_in) -> (B, N, C_out).

    ``local_k > 0`` builds one :class:`LocalGraph` per forward from the input's first three channels (the
    points, or the latent points' positions) and gives every block a :class:`LocalEdge` over it.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int, depth: int, cond_dim: int, set_context: bool,
                 zero_out: bool = False, local_k: int = 0) -> None:
        super().__init__()
        if local_k < 0:
            raise ValueError(f"local_k must be >= 0 (0: no local context), got {local_k}")
        if local_k and in_dim < 3:
            raise ValueError(f"local context needs positions in the first 3 input channels, got {in_dim} channels")
        self.local_k = local_k
        self.inp = nn.Linear(in_dim, hidden)
        self.blocks = nn.ModuleList(AdaBlock(hidden, cond_dim, set_context, local=local_k > 0) for _ in range(depth))
        self.out_norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, out_dim)
        if zero_out:  # a residual on top of an analytic prediction starts at zero
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        graph = LocalGraph.build(x[..., :3], self.local_k) if self.local_k else None
        h = self.inp(x)  # (B, N, H)
        for block in self.blocks:
            h = block(h, c, graph)
        return self.out(F.silu(self.out_norm(h)))  # (B, N, C_out)


class PointNetEncoder(nn.Module):
    """PointNet (Qi et al. 2017): shared MLP, max and mean pooling, MLP -> (mu, log sigma^2) of z."""

    def __init__(self, hidden: int, latent_dim: int) -> None:
        super().__init__()
        self.point_mlp = nn.Sequential(nn.Linear(3, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                       nn.Linear(hidden, 2 * hidden))
        self.head = nn.Sequential(nn.Linear(4 * hidden, 2 * hidden), nn.SiLU(), nn.Linear(2 * hidden, 2 * latent_dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.point_mlp(x)  # (B, N, 2H)
        pooled = torch.cat([f.max(dim=1).values, f.mean(dim=1)], dim=-1)  # (B, 4H)
        mu, logvar = self.head(pooled).chunk(2, dim=-1)  # (B, Dz) each
        return mu, logvar.clamp(-12.0, 4.0)


class PointVAE(ModelMixin, ConfigMixin):
    """LION's hierarchical VAE: x (B, N, 3) <-> z (B, Dz) and h (B, N, 3 + d).

    ``h_std > 0`` fixes the posterior standard deviation of the latent points, q(h | x, z) =
    N(mu(x, z), h_std^2 I), and bounds the means: coordinates x + h_std tanh(.), features tanh(.), so
    the encoder cannot scale the means up to outrun the noise. With a learned variance the KL weight on h
    has two stable ends (measured on the procedural shapes): w_h = 0.1 makes h noise (std ~0.4) and the
    decoder reads the shape from z alone, blurring thin parts; w_h from 1e-3 to 1e-2 makes h an exact copy
    of the points (std ~0.01) and the decoder ignores z (decoding one shape's h with another's z returns
    the first shape), which leaves the point prior, conditioned on z, nothing to place its points by.
    A fixed, bounded spread makes the decoder remove noise of that size, which it can only do from z.

    ``local_k > 0`` gives the point encoder (graph of the points x) and the decoder (graph of the latent
    points' positions) a max over each point's k nearest neighbours in every block (:class:`LocalEdge`),
    standing in for LION's PVCNN; 0 (the default, and what folders saved without the key load as) is the
    purely per-point network.
    """

    @register_to_config
    def __init__(self, latent_dim: int = 32, point_feature_dim: int = 1, hidden: int = 64, depth: int = 2,
                 h_std: float = 0.0, local_k: int = 0) -> None:
        super().__init__()
        if h_std < 0:
            raise ValueError(f"h_std must be >= 0 (0 learns the posterior variance of h), got {h_std}")
        self.global_encoder = PointNetEncoder(hidden, latent_dim)
        self.z_embed = nn.Sequential(nn.Linear(latent_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.point_encoder = AdaStack(3, 2 * (3 + point_feature_dim), hidden, depth, hidden, set_context=True,
                                      local_k=local_k)
        self.decoder_z_embed = nn.Sequential(nn.Linear(latent_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.decoder = AdaStack(3 + point_feature_dim, 3, hidden, depth, hidden, set_context=True, local_k=local_k)

    @property
    def point_dim(self) -> int:
        return 3 + int(self.config.point_feature_dim)

    def encode_points(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(h_mu, h_logvar) of q(h | x, z), each (B, N, 3 + d)."""
        out = self.point_encoder(x, self.z_embed(z))  # (B, N, 2(3 + d))
        h_mu, h_logvar = out.chunk(2, dim=-1)
        std = float(self.config.h_std)
        if std > 0:  # a fixed spread, with offsets and features bounded so that no rescaling outruns it
            h_mu = torch.cat([x + std * torch.tanh(h_mu[..., :3]), torch.tanh(h_mu[..., 3:])], dim=-1)
            return h_mu, torch.full_like(h_logvar, 2.0 * math.log(std))
        h_mu = torch.cat([x + h_mu[..., :3], h_mu[..., 3:]], dim=-1)  # latent points stay near their points
        return h_mu, h_logvar.clamp(-12.0, 4.0)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(z_mu, z_logvar, h_mu, h_logvar), with h encoded given the posterior mean of z."""
        z_mu, z_logvar = self.global_encoder(x)
        return (z_mu, z_logvar, *self.encode_points(x, z_mu))

    def decode(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Points (B, N, 3) from latent points h (B, N, 3 + d) and the shape latent z (B, Dz)."""
        return h[..., :3] + self.decoder(h, self.decoder_z_embed(z))


class _TimeEmbedding(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = Timesteps(dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.embed = TimestepEmbedding(dim, dim)

    def forward(self, t: torch.Tensor, batch: int, like: torch.Tensor) -> torch.Tensor:
        return self.embed(self.proj(_per_sample(t, batch)).to(like.dtype))  # (B, D)


def _per_sample(t: torch.Tensor, batch: int) -> torch.Tensor:
    return t.reshape(-1).expand(batch) if t.numel() == 1 else t


class MixedScore(nn.Module):
    """LION's mixed score (sec. 3.1, after LSGM, Vahdat et al. 2021): eps = sqrt(1 - abar_t) x_t + f(x_t, t).

    sqrt(1 - abar_t) x_t is the exact noise prediction for unit-Gaussian data, so the network only
    learns the latents' departure from N(0, I); without it a prior trained briefly predicts eps ~ 0 at
    low noise and deterministic samplers blow the latents up (measured: std 5 instead of 1.3).
    """

    def __init__(self, beta_schedule: str, num_train_timesteps: int) -> None:
        super().__init__()
        self.schedule = NoiseSchedule.create(beta_schedule, num_train_timesteps)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        sigma = self.schedule.t_to_sigma(_per_sample(t, x.shape[0]).detach().float().cpu()).to(x)
        return append_dims((sigma**2 / (1 + sigma**2)).sqrt(), x.ndim) * x  # sqrt(1 - abar_t) x_t


class GlobalPriorNet(ModelMixin, ConfigMixin):
    """eps_theta(z_t, t, cond) for the global latent; cond = {"labels": (B,), "text": ConditioningRecord}."""

    @register_to_config
    def __init__(self, latent_dim: int = 32, hidden: int = 128, depth: int = 4, num_classes: int = 11,
                 text: bool = True, text_model_path: str | None = None, text_max_length: int = 32,
                 beta_schedule: str = "linear", num_train_timesteps: int = 1000) -> None:
        super().__init__()
        self.time = _TimeEmbedding(hidden)
        self.gaussian = MixedScore(beta_schedule, num_train_timesteps)
        self.label_encoder = ClassLabelEncoder(num_classes=num_classes, embedding_dim=hidden)
        self.text_encoder = None
        if text:
            from conditioning.text import TextEncoder

            self.text_encoder = TextEncoder(model_path=text_model_path, max_length=text_max_length, on_truncate="error")
            self.text_proj = nn.Sequential(nn.Linear(self.text_encoder.dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.net = AdaStack(latent_dim, latent_dim, hidden, depth, hidden, set_context=False, zero_out=True)

    def null_condition(self, batch: int, device: torch.device | str) -> dict[str, Any]:
        """The learned null condition of both encoders (the unconditional branch of CFG)."""
        cond: dict[str, Any] = {"labels": self.label_encoder.null(batch, device)}
        if self.text_encoder is not None:
            cond["text"] = self.text_encoder.null(batch, device)
        return cond

    def condition(self, cond: dict[str, Any], batch: int, like: torch.Tensor) -> torch.Tensor:
        """(B, H): the label's pooled embedding plus the projected pooled text vector."""
        emb = self.label_encoder(cond["labels"].to(like.device)).pooled  # (B, H)
        if self.text_encoder is not None:
            record: ConditioningRecord = cond["text"]
            emb = emb + self.text_proj(record.pooled.to(like))  # (B, H)
        return emb

    def forward(self, z: torch.Tensor, t: torch.Tensor, cond: dict[str, Any]) -> torch.Tensor:
        c = self.time(t, z.shape[0], z) + self.condition(cond, z.shape[0], z)  # (B, H)
        return self.gaussian(z, t) + self.net(z.unsqueeze(1), c).squeeze(1)  # (B, Dz)


class PointPriorNet(ModelMixin, ConfigMixin):
    """eps_psi(h_t, t, z) on latent points (B, N, 3 + d), conditioned on the shape latent z (B, Dz).

    ``local_k > 0``: every block also max-pools over the k nearest neighbours of the noisy latent points
    h_t (their first three channels), the local context of LION's PVCNN prior (:class:`LocalEdge`).
    """

    @register_to_config
    def __init__(self, point_dim: int = 4, latent_dim: int = 32, hidden: int = 128, depth: int = 4,
                 beta_schedule: str = "linear", num_train_timesteps: int = 1000, local_k: int = 0) -> None:
        super().__init__()
        self.time = _TimeEmbedding(hidden)
        self.gaussian = MixedScore(beta_schedule, num_train_timesteps)
        self.z_embed = nn.Sequential(nn.Linear(latent_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.net = AdaStack(point_dim, point_dim, hidden, depth, hidden, set_context=True, zero_out=True,
                            local_k=local_k)

    def forward(self, h: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        c = self.time(t, h.shape[0], h) + self.z_embed(z.to(h))  # (B, H)
        return self.gaussian(h, t) + self.net(h, c)  # (B, N, 3 + d)


class LionModel(ModelMixin, ConfigMixin):
    """The VAE and both priors; ``z_scale`` and ``h_scale`` make the latents unit-variance for diffusion.

    ``beta_schedule`` and ``num_train_timesteps`` must be those of the folder's ``diffusion.json``
    (the priors' mixed score needs abar_t); the generator checks that they agree.
    """

    @register_to_config
    def __init__(self, vae_config: dict | None = None, global_prior_config: dict | None = None,
                 point_prior_config: dict | None = None, categories: tuple[str, ...] = (), num_points: int = 2048,
                 beta_schedule: str = "linear", num_train_timesteps: int = 1000) -> None:
        super().__init__()
        vae, global_prior = dict(vae_config or {}), dict(global_prior_config or {})
        point_prior = dict(point_prior_config or {})
        if len(categories) < 1:
            raise ValueError("categories must name at least one category")
        self.vae = PointVAE(**vae)
        dz, dh = self.vae.config.latent_dim, self.vae.point_dim
        schedule = {"beta_schedule": beta_schedule, "num_train_timesteps": num_train_timesteps}
        self.global_prior = GlobalPriorNet(latent_dim=dz, num_classes=len(categories), **global_prior, **schedule)
        self.point_prior = PointPriorNet(point_dim=dh, latent_dim=dz, **point_prior, **schedule)
        self.register_buffer("z_scale", torch.ones(()))
        self.register_buffer("h_scale", torch.ones(()))

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(self.config.categories)

    @torch.no_grad()
    def set_latent_scales(self, points: torch.Tensor, batch_size: int = 64) -> tuple[float, float]:
        """s = 1 / std of posterior samples of ``points``' latents (Rombach et al. 2022, sec. 4.3.2).

        The priors train on samples z ~ q(z | x), so the scale uses their variance,
        Var[mu] + E[sigma^2], not that of the means alone.
        """
        stats: dict[str, list[torch.Tensor]] = {"z_mu": [], "z_var": [], "h_mu": [], "h_var": []}
        for i in range(0, len(points), batch_size):
            z_mu, z_logvar, h_mu, h_logvar = self.vae.encode(points[i:i + batch_size])
            for key, value in (("z_mu", z_mu), ("z_var", z_logvar.exp()), ("h_mu", h_mu), ("h_var", h_logvar.exp())):
                stats[key].append(value.flatten())
        for name, prefix in (("z_scale", "z"), ("h_scale", "h")):
            mu, var = torch.cat(stats[f"{prefix}_mu"]), torch.cat(stats[f"{prefix}_var"])
            getattr(self, name).fill_(float(1.0 / (mu.var() + var.mean()).sqrt().clamp_min(1e-6)))
        return float(self.z_scale), float(self.h_scale)

    def decode_scaled(self, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Points from scaled latents (the priors' samples)."""
        return self.vae.decode(h / self.h_scale, z / self.z_scale)

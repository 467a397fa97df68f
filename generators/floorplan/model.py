"""The floorplan denoiser: a transformer on room-corner tokens with three attention masks and a
quantised-grid output (after HouseDiffusion, Shabani et al. 2023, sec. 4).

Each token is one corner: its noisy coordinates (Fourier features), its room's type, its index in the
room's canonical corner order, the room's corner count and optional target area, and the room's node
token from :class:`conditioning.graph.GraphEncoder`. Every layer attends under three masks at once,
split across heads: corners of the same room (component-wise self-attention), corners of rooms a door
joins (relational cross-attention) and all corners (global self-attention); padded corners are
masked out as keys. The noise level enters by adaptive layer norm (Peebles & Xie 2023, sec. 3.2).

The output is discrete: per coordinate, logits over the G + 1 grid lines of the canvas. They are the
network's prior over x_0, and Bayes' rule with the forward kernel q(x_t | x_0) = N(sqrt(abar) x_0,
(1 - abar) I) (Ho et al. 2020, eq. 4) gives the posterior over grid lines,

    log p(x_0 = v_k | x_t) = prior_k - (x_t - sqrt(abar) v_k)^2 / (2 (1 - abar)) + const,

whose mean is the denoiser D(x, sigma) every core sampler sees (Karras et al. 2022, eq. 2-3) and whose
mode snaps corners to the grid as the noise vanishes (HouseDiffusion's discrete denoising, sec. 4.2).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import networkx as nx
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from conditioning.graph import ROOM_TYPES, GraphEncoder
from generators.core.shapes import append_dims

from .data import STRUCTURE_KEYS
from .geometry import GRID

Cond = dict[str, torch.Tensor]


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (fractional) steps t (B,) -> (B, dim) (Vaswani et al. 2017, sec. 3.5)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class CornerBlock(nn.Module):
    """Pre-norm transformer block; heads split in three groups, one per attention mask; adaLN on the step."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.ada = nn.Linear(dim, 4 * dim)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        # x (B, N, D); allowed (B, H, N, N) True where query i may attend key j; temb (B, D)
        b, n, d = x.shape
        shift1, scale1, shift2, scale2 = self.ada(temb)[:, None].chunk(4, dim=-1)
        h = self.norm1(x) * (1 + scale1) + shift1
        q, k, v = self.qkv(h).view(b, n, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)  # (B, H, N, D/H)
        x = x + self.proj(a.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x) * (1 + scale2) + shift2)


class FloorplanTransformer(ModelMixin, ConfigMixin):
    """Prior logits over grid lines for each corner coordinate: (B, N, 2) x_t -> (B, N, 2, grid_size + 1)."""

    @register_to_config
    def __init__(self, max_rooms: int = 10, max_corners: int = 8, max_tokens: int = 64, grid_size: int = GRID,
                 dim: int = 96, num_layers: int = 4, num_heads: int = 6, mlp_ratio: float = 2.0,
                 graph_dim: int = 64, graph_layers: int = 2, graph_heads: int = 4, pe_dim: int = 8,
                 fourier_features: int = 8) -> None:
        super().__init__()
        if num_heads % 3 or dim % num_heads:
            raise ValueError(f"num_heads must be a multiple of 3 (room, door and global heads) dividing dim; "
                             f"got num_heads={num_heads}, dim={dim}")
        self.graph_encoder = GraphEncoder(room_types=ROOM_TYPES, max_nodes=max_rooms, dim=graph_dim,
                                          num_layers=graph_layers, num_heads=graph_heads, pe_dim=pe_dim)
        self.graph_proj = nn.Linear(graph_dim, dim)
        self.type_embedding = nn.Embedding(len(ROOM_TYPES), dim)
        self.corner_embedding = nn.Embedding(max_corners, dim)
        self.count_embedding = nn.Embedding(max_corners + 1, dim)
        self.area_proj = nn.Linear(2, dim)
        self.register_buffer("freqs", math.pi * 2.0 ** torch.linspace(0, math.log2(grid_size), fourier_features),
                             persistent=False)
        self.coord_proj = nn.Linear(2 + 4 * fourier_features, dim)
        self.time_mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.blocks = nn.ModuleList(CornerBlock(dim, num_heads, mlp_ratio) for _ in range(num_layers))
        self.norm_out = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 2 * (grid_size + 1))
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.register_buffer("grid_values", torch.linspace(-1.0, 1.0, grid_size + 1), persistent=False)

    # ------------------------------------------------------------ conditions
    def condition(self, structure: Cond, generator: torch.Generator | None = None) -> Cond:
        """The structure tensors plus the bubble graph's node tokens (``graph_tokens``, (B, R, graph_dim)).

        With a ``generator`` the Laplacian eigenvector signs are flipped at random (training augmentation).
        """
        graphs = []
        types, mask, adj = (structure[k].cpu() for k in ("room_type", "room_mask", "adjacency"))
        for b in range(types.shape[0]):
            n = int(mask[b].sum())
            g = nx.Graph()
            g.add_nodes_from((i, {"room_type": ROOM_TYPES[int(types[b, i])]}) for i in range(n))
            g.add_edges_from((i, j) for i, j in adj[b, :n, :n].nonzero().tolist() if i < j)
            graphs.append(g)
        tokens = self.graph_encoder(graphs, generator).pad_to(types.shape[1]).tokens
        return {**structure, "graph_tokens": tokens}

    def null_condition(self, cond: Cond) -> Cond:
        """The same plan structure without the graph: null node tokens and no door attention (for CFG)."""
        b, r = cond["room_mask"].shape
        null = self.graph_encoder.null_tokens.expand(b, r, -1).to(cond["graph_tokens"])
        return {**cond, "graph_tokens": null, "adjacency": torch.zeros_like(cond["adjacency"])}

    def drop_condition(self, cond: Cond, p: float, generator: torch.Generator | None = None) -> Cond:
        """Replace each plan's graph by the null condition with probability p (Ho & Salimans 2022, Algorithm 1)."""
        if p <= 0:
            return cond
        keep = (torch.rand(cond["room_mask"].shape[0], generator=generator) >= p).to(cond["room_mask"].device)
        null = self.null_condition(cond)
        return {**cond, "graph_tokens": torch.where(keep[:, None, None], cond["graph_tokens"], null["graph_tokens"]),
                "adjacency": cond["adjacency"] & keep[:, None, None]}

    # --------------------------------------------------------------- forward
    def _masks(self, cond: Cond) -> torch.Tensor:
        """(B, H, N, N) attention masks: heads split into same-room, door-joined-room and global groups."""
        room, real = cond["corner_room"], cond["corner_mask"]
        pair = real[:, :, None] & real[:, None, :]
        same = (room[:, :, None] == room[:, None, :]) & pair
        adj = cond["adjacency"]
        door = torch.gather(torch.gather(adj, 1, room[:, :, None].expand(-1, -1, adj.shape[2])), 2,
                            room[:, None, :].expand(-1, room.shape[1], -1)) & pair
        eye = torch.eye(room.shape[1], dtype=torch.bool, device=room.device)
        groups = torch.stack([same | eye, door | eye, pair | eye], dim=1)  # (B, 3, N, N)
        return groups.repeat_interleave(self.config.num_heads // 3, dim=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: Cond) -> torch.Tensor:
        """Prior logits (B, N, 2, grid_size + 1) for noisy corners x (B, N, 2) at steps t (B,)."""
        room = cond["corner_room"]

        def per_corner(v: torch.Tensor) -> torch.Tensor:  # (B, R, ...) -> (B, N, ...)
            return torch.gather(v, 1, room.view(*room.shape, *([1] * (v.ndim - 2))).expand(-1, -1, *v.shape[2:]))

        rooms = (self.type_embedding(cond["room_type"]) + self.count_embedding(cond["room_corners"])
                 + self.area_proj(cond["room_area"]) + self.graph_proj(cond["graph_tokens"]))  # (B, R, D)
        ang = x[..., None] * self.freqs  # (B, N, 2, F)
        coords = torch.cat([x, ang.sin().flatten(2), ang.cos().flatten(2)], dim=-1)
        h = self.coord_proj(coords) + self.corner_embedding(cond["corner_index"]) + per_corner(rooms)  # (B, N, D)
        temb = self.time_mlp(timestep_embedding(t, self.config.dim))  # (B, D)
        allowed = self._masks(cond)
        for block in self.blocks:
            h = block(h, allowed, temb)
        return self.head(self.norm_out(h)).view(*x.shape, -1)  # (B, N, 2, G + 1)


def posterior_logits(prior: torch.Tensor, x_t: torch.Tensor, abar: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """log p(x_0 = v_k | x_t) up to a constant: prior_k - (x_t - sqrt(abar) v_k)^2 / (2 (1 - abar)) (Ho et al. 2020, eq. 4)."""
    abar = append_dims(abar.to(x_t.dtype), x_t.ndim + 1)
    diff = x_t[..., None] - abar.sqrt() * values
    return prior - diff**2 / (2 * (1 - abar).clamp_min(1e-8))


class CornerDenoiser(nn.Module):
    """D(x, sigma, cond): the posterior mean over grid lines, in the VE coordinates of the denoiser contract.

    x = x_0 + sigma * eps; the network sees x_vp = x / sqrt(1 + sigma^2) at abar = 1 / (1 + sigma^2)
    and step t(sigma). Padded corners are returned as 0 so they stay still under every sampler.
    """

    def __init__(self, model: FloorplanTransformer, schedule: Any) -> None:
        super().__init__()
        self.model = model
        self.schedule = schedule

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: Cond) -> torch.Tensor:
        sigma = sigma.to(x.dtype)
        abar = 1.0 / (1.0 + sigma**2)
        x_vp = x * append_dims(abar.sqrt(), x.ndim)
        dtype = next(self.model.parameters()).dtype
        t = self.schedule.sigma_to_t(sigma)
        prior = self.model(x_vp.to(dtype), t.to(dtype), cond).float()
        probs = posterior_logits(prior, x_vp.float(), abar.float(), self.model.grid_values.float()).softmax(-1)
        x0 = (probs * self.model.grid_values.float()).sum(-1).to(x.dtype)
        return x0 * cond["corner_mask"][..., None].to(x.dtype)


@dataclass
class FloorplanLoss:
    """Cross-entropy of the posterior over grid lines at x_0's grid line, plus a small squared error of its mean.

    t ~ U{0..T-1}, x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (Ho et al. 2020, Algorithm 1, eq. 4), the
    graph dropped with probability ``cond_drop_prob`` for classifier-free guidance (Ho & Salimans 2022,
    Algorithm 1); padded corners are excluded. The cross-entropy is a proper scoring rule, so its optimum
    is the true posterior, whose mean is the MMSE denoiser (Tweedie); ``mse_weight`` (in grid cells^2)
    adds the ordinal signal a categorical loss lacks.
    """

    schedule: Any
    cond_drop_prob: float = 0.1
    mse_weight: float = 0.05

    def __call__(self, model: FloorplanTransformer, corners: torch.Tensor, *structure: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        cond = model.condition(dict(zip(STRUCTURE_KEYS, structure)), generator)
        cond = model.drop_condition(cond, self.cond_drop_prob, generator)
        b = corners.shape[0]
        t = torch.randint(0, self.schedule.num_train_timesteps, (b,), generator=generator).to(corners.device)
        noise = torch.randn(corners.shape, generator=generator).to(corners)
        x_t = self.schedule.q_sample(corners, t, noise)
        abar = self.schedule.alphas_cumprod.to(corners.device)[t].float()
        logits = posterior_logits(model(x_t, t.to(corners.dtype), cond).float(), x_t.float(), abar, model.grid_values)
        g = model.config.grid_size
        target = ((corners.float() + 1) / 2 * g).round().long().clamp(0, g)  # (B, N, 2)
        ce = F.cross_entropy(logits.flatten(0, 2), target.flatten(), reduction="none").view(target.shape)
        mean = (logits.softmax(-1) * model.grid_values).sum(-1)
        se = ((mean - corners.float()) * g / 2) ** 2
        mask = cond["corner_mask"][..., None].float()
        per_coord = (ce + self.mse_weight * se) * mask
        return per_coord.sum() / mask.sum().clamp_min(1.0) / 2


@dataclass(frozen=True)
class FloorplanPreset:
    """Network size, training budget and data for one named preset."""

    dim: int
    num_layers: int
    num_heads: int
    graph_dim: int
    graph_layers: int
    max_rooms: int
    max_tokens: int
    max_steps: int
    batch_size: int
    learning_rate: float
    checkpoint_every: int
    pool_size: int
    train_rooms: tuple[int, int] = (4, 10)


PRESETS: dict[str, FloorplanPreset] = {
    # tests: seconds on one CPU thread
    "tiny": FloorplanPreset(24, 1, 3, 16, 1, 8, 48, 20, 8, 2e-3, 10, 24, (4, 8)),
    # the shipped CPU checkpoint: 592k parameters, 0.22 s/step on one loaded core -> 30k steps in ~1.9 h
    "small": FloorplanPreset(96, 4, 6, 64, 2, 10, 64, 30000, 32, 1e-3, 1000, 40000),
    # for a GPU
    "base": FloorplanPreset(192, 8, 6, 128, 2, 10, 64, 100000, 256, 3e-4, 2500, 100000),
}


def build_model(preset: str) -> FloorplanTransformer:
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {preset!r}")
    p = PRESETS[preset]
    return FloorplanTransformer(max_rooms=p.max_rooms, max_tokens=p.max_tokens, dim=p.dim, num_layers=p.num_layers,
                                num_heads=p.num_heads, graph_dim=p.graph_dim, graph_layers=p.graph_layers,
                                graph_heads=4 if p.graph_dim % 4 == 0 else 2)

"""Graph encoder for floorplans: rooms as nodes, doors/adjacency as edges -> node tokens.

Each node token is a room-type embedding plus a Laplacian-eigenvector positional encoding
(Dwivedi & Bresson 2021, sec. 3: the k smallest non-trivial eigenvectors of the symmetric
normalised Laplacian, with random sign flips during training). A small graph transformer then
alternates attention restricted to graph neighbours (the adjacency attention mask, as in
HouseDiffusion's relational attention, Shabani et al. 2023, sec. 4) with global attention.

>>> g = nx.Graph(); g.add_node(0, room_type="kitchen"); g.add_node(1, room_type="living_room"); g.add_edge(0, 1)
>>> rec = GraphEncoder()([g])       # tokens (1, 2, D), mask (1, 2), pooled (1, D)
"""
from __future__ import annotations

from typing import Sequence

import networkx as nx
import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from .base import NullConditionMixin
from .record import ConditioningRecord

ROOM_TYPES: tuple[str, ...] = (
    "living_room", "kitchen", "bedroom", "bathroom", "balcony", "entrance", "dining_room", "study_room",
    "storage", "front_door", "interior_door", "corridor", "unknown",
)


def check_graph(graph: nx.Graph, room_types: Sequence[str], max_nodes: int, name: str = "graph") -> list:
    """Validate one graph and return its nodes in a fixed order; errors name the problem and the fix."""
    if not isinstance(graph, nx.Graph):
        raise TypeError(f"{name} must be a networkx.Graph, got {type(graph).__name__}")
    if graph.is_directed():
        raise ValueError(f"{name} must be undirected (adjacency is symmetric); use graph.to_undirected()")
    n = graph.number_of_nodes()
    if n == 0:
        raise ValueError(f"{name} is empty; a floorplan graph needs at least one room node")
    if n > max_nodes:
        raise ValueError(f"{name} has {n} nodes but the encoder supports at most max_nodes={max_nodes}")
    loops = list(nx.selfloop_edges(graph))
    if loops:
        raise ValueError(f"{name} has self-loops {loops[:3]}; a room is not adjacent to itself, remove them")
    nodes = list(graph.nodes)
    for v in nodes:
        rt = graph.nodes[v].get("room_type")
        if rt is None:
            raise ValueError(f"{name} node {v!r} has no 'room_type' attribute; set graph.nodes[v]['room_type']")
        if rt not in room_types:
            raise ValueError(f"{name} node {v!r} has unknown room_type {rt!r}; known types: {list(room_types)}")
    return nodes


def laplacian_pe(adjacency: np.ndarray, k: int) -> np.ndarray:
    """(N, k) eigenvectors of L = I - D^-1/2 A D^-1/2 for the k smallest eigenvalues after the first.

    Zero-padded when the graph has fewer than k + 1 nodes (Dwivedi & Bresson 2021, eq. 10).
    """
    n = adjacency.shape[0]
    deg = adjacency.sum(1)
    inv_sqrt = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-12)), 0.0)
    lap = np.eye(n) - inv_sqrt[:, None] * adjacency * inv_sqrt[None, :]
    _, vecs = np.linalg.eigh(lap)
    pe = np.zeros((n, k), dtype=np.float32)
    take = min(k, n - 1)
    if take > 0:
        pe[:, :take] = vecs[:, 1 : 1 + take]
    return pe


class GraphTransformerLayer(nn.Module):
    """Pre-norm transformer layer whose attention may be limited by a (B, N, N) mask."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        self.num_heads = num_heads

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        # x (B, N, D); allowed (B, N, N) True where query i may attend to key j
        h = self.norm1(x)
        attn_mask = ~allowed.repeat_interleave(self.num_heads, dim=0)  # (B*H, N, N), True = blocked
        x = x + self.attn(h, h, h, attn_mask=attn_mask, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class GraphEncoder(NullConditionMixin, ModelMixin, ConfigMixin):
    """networkx graphs (node attr ``room_type``) -> ConditioningRecord of node tokens.

    Args:
        room_types: the vocabulary of room types; anything else is an error.
        max_nodes: the most nodes a graph may have.
        dim: token width.
        num_layers: transformer layers, alternating adjacency-masked and global attention.
        num_heads: attention heads.
        pe_dim: number of Laplacian eigenvectors in the positional encoding.
    """

    @register_to_config
    def __init__(
        self,
        room_types: tuple[str, ...] = ROOM_TYPES,
        max_nodes: int = 32,
        dim: int = 128,
        num_layers: int = 2,
        num_heads: int = 4,
        pe_dim: int = 8,
    ) -> None:
        super().__init__()
        if len(set(room_types)) != len(room_types) or not room_types:
            raise ValueError(f"room_types must be a non-empty list of distinct names, got {room_types}")
        if dim % num_heads:
            raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")
        self.type_index = {t: i for i, t in enumerate(room_types)}
        self.type_embedding = nn.Embedding(len(room_types), dim)
        self.pe_proj = nn.Linear(pe_dim, dim)
        self.layers = nn.ModuleList(GraphTransformerLayer(dim, num_heads) for _ in range(num_layers))
        self.norm = nn.LayerNorm(dim)
        self.null_tokens = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.null_pooled = nn.Parameter(torch.randn(1, dim) * 0.02)

    def featurize(self, graphs: Sequence[nx.Graph], generator: torch.Generator | None = None):
        """Type ids (B, N), Laplacian PE (B, N, k), node mask (B, N), adjacency (B, N, N) as tensors.

        With a ``generator`` the eigenvector signs are flipped at random (training augmentation).
        """
        if isinstance(graphs, nx.Graph):
            graphs = [graphs]
        if len(graphs) == 0:
            raise ValueError("graphs must be a non-empty list of networkx graphs")
        cfg = self.config
        node_lists = [check_graph(g, cfg.room_types, cfg.max_nodes, f"graphs[{i}]") for i, g in enumerate(graphs)]
        b, n = len(graphs), max(len(v) for v in node_lists)
        types = torch.zeros(b, n, dtype=torch.long)
        pe = torch.zeros(b, n, cfg.pe_dim)
        mask = torch.zeros(b, n, dtype=torch.bool)
        adjacency = torch.zeros(b, n, n, dtype=torch.bool)
        for i, (g, nodes) in enumerate(zip(graphs, node_lists)):
            a = nx.to_numpy_array(g, nodelist=nodes, weight=None) > 0
            k = len(nodes)
            types[i, :k] = torch.tensor([self.type_index[g.nodes[v]["room_type"]] for v in nodes])
            pe[i, :k] = torch.from_numpy(laplacian_pe(a.astype(np.float64), cfg.pe_dim))
            mask[i, :k] = True
            adjacency[i, :k, :k] = torch.from_numpy(a)
        if generator is not None:
            signs = torch.randint(0, 2, (b, 1, cfg.pe_dim), generator=generator) * 2 - 1
            pe = pe * signs
        return types, pe, mask, adjacency

    def forward(self, graphs: Sequence[nx.Graph], generator: torch.Generator | None = None) -> ConditioningRecord:
        """Encode graphs; padded node slots have mask False."""
        types, pe, mask, adjacency = self.featurize(graphs, generator)
        device = self.null_pooled.device
        types, pe, mask, adjacency = types.to(device), pe.to(device), mask.to(device), adjacency.to(device)
        x = self.type_embedding(types) + self.pe_proj(pe)  # (B, N, D)
        eye = torch.eye(x.shape[1], dtype=torch.bool, device=device)
        local = (adjacency & mask[:, None, :]) | eye  # neighbours and self (padded slots: self only)
        global_ = mask[:, None, :] | eye  # all real nodes (padded queries see themselves)
        for i, layer in enumerate(self.layers):
            x = layer(x, local if i % 2 == 0 else global_)
        x = self.norm(x) * mask[..., None]
        pooled = x.sum(1) / mask.sum(1, keepdim=True)  # (B, D) mean over real nodes
        return ConditioningRecord(x, mask, pooled)

    def adjacency_mask(self, graphs: Sequence[nx.Graph]) -> torch.Tensor:
        """(B, N, N) bool adjacency among node tokens, for a denoiser's relational attention."""
        return self.featurize(graphs)[3].to(self.null_pooled.device)

    def null(self, batch_size: int, device: torch.device | str | None = None) -> ConditioningRecord:
        device = device or self.null_pooled.device
        tokens = self.null_tokens.expand(batch_size, -1, -1).to(device)
        mask = torch.ones(batch_size, 1, dtype=torch.bool, device=device)
        return ConditioningRecord(tokens, mask, self.null_pooled.expand(batch_size, -1).to(device))

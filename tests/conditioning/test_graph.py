import networkx as nx
import numpy as np
import pytest
import torch

from conditioning.graph import GraphEncoder, laplacian_pe


def house(types=("kitchen", "living_room", "bedroom", "bathroom"), edges=((0, 1), (1, 2), (2, 3))) -> nx.Graph:
    g = nx.Graph()
    for i, t in enumerate(types):
        g.add_node(i, room_type=t)
    g.add_edges_from(edges)
    return g


@pytest.fixture
def encoder() -> GraphEncoder:
    torch.manual_seed(0)
    return GraphEncoder(max_nodes=6, dim=16, num_layers=2, num_heads=2, pe_dim=3).eval()


def test_shapes_and_padding_mask(encoder):
    small = house(("kitchen", "bedroom"), ((0, 1),))
    rec = encoder([house(), small])
    assert rec.tokens.shape == (2, 4, 16) and rec.pooled.shape == (2, 16)
    assert rec.mask.tolist() == [[True] * 4, [True, True, False, False]]
    alone = encoder([small])
    assert torch.allclose(rec.tokens[1, :2], alone.tokens[0], atol=1e-5)
    assert torch.allclose(rec.pooled[1], alone.pooled[0], atol=1e-5)


def test_adjacency_mask_limits_attention_to_neighbours():
    torch.manual_seed(0)
    one_layer = GraphEncoder(max_nodes=6, dim=16, num_layers=1, num_heads=2, pe_dim=3).eval()
    a = house(("kitchen", "living_room", "bedroom", "bathroom"))
    b = house(("kitchen", "living_room", "bedroom", "storage"))  # node 3 is not adjacent to node 0
    ta, tb = one_layer([a]).tokens, one_layer([b]).tokens
    assert torch.allclose(ta[0, 0], tb[0, 0], atol=1e-6)  # node 0 sees only itself and node 1
    assert not torch.allclose(ta[0, 2], tb[0, 2], atol=1e-4)  # node 2 is adjacent to node 3
    assert one_layer.adjacency_mask([a])[0].tolist()[0] == [False, True, False, False]


def test_laplacian_pe_are_eigenvectors():
    a = nx.to_numpy_array(nx.cycle_graph(5))
    pe = laplacian_pe(a, 3)
    d = np.diag(1 / np.sqrt(a.sum(1)))
    lap = np.eye(5) - d @ a @ d
    for j in range(3):
        v = pe[:, j]
        lam = v @ lap @ v
        assert np.allclose(lap @ v, lam * v, atol=1e-5) and lam > 1e-6
    assert np.allclose(laplacian_pe(np.zeros((1, 1)), 3), 0)


def test_null_and_drop(encoder):
    rec = encoder([house(), house()])
    assert torch.equal(encoder.drop(rec, 0.0).tokens, rec.tokens)
    dropped = encoder.drop(rec, 1.0)
    assert torch.equal(dropped.pooled, encoder.null(2).pooled)
    assert dropped.mask.sum() == 2


def test_save_load_round_trip(encoder, tmp_path):
    encoder.save_pretrained(tmp_path)
    again = GraphEncoder.from_pretrained(tmp_path).eval()
    assert torch.allclose(again([house()]).tokens, encoder([house()]).tokens)


@pytest.mark.parametrize(
    "graph, message",
    [
        (house(("kitchen", "spaceship")), "unknown room_type 'spaceship'"),
        (nx.Graph(), "empty"),
        (house(("kitchen",) * 7, ()), "at most max_nodes=6"),
        (nx.DiGraph(house()), "undirected"),
    ],
)
def test_bad_graphs_are_rejected(encoder, graph, message):
    with pytest.raises(ValueError, match=message):
        encoder([graph])


def test_self_loop_and_missing_type_rejected(encoder):
    g = house()
    g.add_edge(1, 1)
    with pytest.raises(ValueError, match="self-loops"):
        encoder([g])
    g = house()
    g.add_node(9)
    with pytest.raises(ValueError, match="no 'room_type'"):
        encoder([g])
    with pytest.raises(TypeError, match="networkx.Graph"):
        encoder([{"rooms": 2}])

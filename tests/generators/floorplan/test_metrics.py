"""evaluation.floorplan on hand-made plans: shared walls, door validity, GED, exact overlap, rasters."""
import networkx as nx
import pytest

from evaluation.floorplan import (coverage, diversity, door_feasibility, door_fits, door_is_valid, graph_edit_distance,
                                  longest_shared_wall, overlap_fraction, plan_metrics, rasterize_plan, realised_graph,
                                  rooms_match, shared_walls)


def rect(x0, y0, x1, y1):
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def test_shared_wall_of_neighbours_and_of_an_l_shape():
    a, b = rect(0, 0, 4, 3), rect(4, 1, 6, 5)
    run = longest_shared_wall(a, b)
    assert (run.axis, run.coord, run.lo, run.hi) == ("x", 4, 1, 3) and run.length == 2
    assert longest_shared_wall(a, rect(5, 0, 6, 3)) is None  # a gap of 1 m: no shared wall
    # an L whose two collinear edges meet the neighbour's one edge: merged into one 3 m run
    l_shape = [(0, 0), (2, 0), (2, 1), (2, 3), (0, 3)]
    assert longest_shared_wall(l_shape, rect(2, 0, 4, 3)).length == 3
    assert shared_walls(a, rect(4, 3, 6, 5)) == []  # corner contact only


def test_door_needs_seventy_centimetres_of_shared_wall():
    a = rect(0, 0, 4, 3)
    assert door_fits(a, rect(4, 2.3, 6, 5))           # 0.7 m shared
    assert not door_fits(a, rect(4, 2.4, 6, 5))       # 0.6 m shared
    b = rect(4, 0, 6, 3)
    assert door_is_valid(((4, 1), (4, 1.9)), a, b)
    assert not door_is_valid(((4, 2.5), (4, 3.4)), a, b)  # runs past the shared wall
    assert not door_is_valid(((3, 1), (3, 1.9)), a, b)    # not on the wall
    assert door_feasibility([(0, 1), (0, 2)], [a, b, rect(4, 2.4, 6, 5)]) == (1, 2)


def test_realised_graph_counts_only_valid_doors():
    polys = [rect(0, 0, 4, 3), rect(4, 0, 6, 3), rect(0, 3, 4, 5)]
    doors = [(0, 1, ((4, 1), (4, 1.9))), (0, 2, ((1, 4), (2, 4)))]  # the second is not on the wall
    g = realised_graph(["living_room", "kitchen", "bedroom"], polys, doors)
    assert list(g.edges) == [(0, 1)] and g.nodes[2]["room_type"] == "bedroom"


def _g(types, edges):
    g = nx.Graph()
    for i, t in enumerate(types):
        g.add_node(i, room_type=t)
    g.add_edges_from(edges)
    return g


def test_graph_edit_distance():
    a = _g(["living_room", "kitchen", "bedroom"], [(0, 1), (0, 2)])
    assert graph_edit_distance(a, a.copy()) == 0
    assert graph_edit_distance(a, _g(["living_room", "kitchen", "bedroom"], [(0, 1)])) == 1
    # the same graph with its nodes numbered differently is at distance 0 (node types must match)
    assert graph_edit_distance(a, _g(["bedroom", "living_room", "kitchen"], [(1, 2), (1, 0)])) == 0
    assert graph_edit_distance(a, _g(["living_room", "kitchen", "bathroom"], [(0, 1), (0, 2)])) == 1  # one substitution


def test_overlap_is_exact_for_rectangles():
    polys = [rect(0, 0, 2, 2), rect(1, 0, 3, 2)]
    assert coverage(polys) == (6.0, 2.0)
    assert overlap_fraction(polys) == pytest.approx(1 / 3)
    assert overlap_fraction([rect(0, 0, 2, 2), rect(2, 0, 3, 2)]) == 0.0
    assert overlap_fraction([rect(0, 0, 4, 4), rect(1, 1, 2, 2)]) == pytest.approx(1 / 16)


def test_rooms_match_and_plan_metrics():
    polys = [rect(0, 0, 4, 3), rect(4, 0, 6, 3)]
    assert rooms_match(["kitchen", "bedroom"], ["bedroom", "kitchen"], polys)
    assert not rooms_match(["kitchen", "bedroom"], ["kitchen", "kitchen"])
    assert not rooms_match(["kitchen", "bedroom"], ["kitchen", "bedroom"], [rect(0, 0, 4, 3), rect(4, 0, 4.2, 1)])
    m = plan_metrics(["kitchen", "bedroom"], [(0, 1)], ["kitchen", "bedroom"], polys, [(0, 1, ((4, 1), (4, 1.9)))])
    assert m == {"compatibility": 0.0, "overlap": 0.0, "rooms_match": 1.0, "doors_feasible": 1.0, "doors_requested": 1.0}


def test_raster_and_diversity():
    vocab = ["kitchen", "bedroom"]
    r1 = rasterize_plan(["kitchen", "bedroom"], [rect(0, 0, 8, 16), rect(8, 0, 16, 16)], vocab, size=8)
    r2 = rasterize_plan(["kitchen", "bedroom"], [rect(0, 0, 4, 16), rect(4, 0, 16, 16)], vocab, size=8)
    assert r1.shape == (2, 8, 8) and r1.sum() == 64 and r1[0, :, :4].all() and r1[1, :, 4:].all()
    assert diversity([r1, r1]) == 0.0
    assert diversity([r1, r2]) == pytest.approx(16 / 64)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        rasterize_plan(["attic"], [rect(0, 0, 1, 1)], vocab)

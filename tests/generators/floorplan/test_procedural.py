"""The procedural data: deterministic, valid plans whose bubble graphs are their doors; split by graph."""
import numpy as np
import torch

from evaluation.floorplan import coverage, door_feasibility, polygon_area
from generators.floorplan.data import (BATCH_KEYS, PlanBatches, encode_plans, graph_split, procedural_plan,
                                       procedural_plans, split_corners)
from generators.floorplan.geometry import EXTENT, is_rectilinear
from generators.floorplan.procedural import ROOM_RULES, generate_plan


def test_plans_are_a_function_of_seed_split_and_index():
    a, b = procedural_plan("train", 3), procedural_plan("train", 3)
    assert a == b and a.graph == b.graph
    assert procedural_plan("train", 4) != a
    assert procedural_plan("train", 3, seed=1) != a
    assert generate_plan(np.random.default_rng(5), 7) == generate_plan(np.random.default_rng(5), 7)


def test_plans_tile_without_overlap_and_every_door_is_feasible():
    for plan in procedural_plans("train", 12, rooms=(4, 10)):
        union, overlap = coverage(plan.polygons)
        assert overlap == 0
        xs = [x for p in plan.polygons for x, _ in p]
        ys = [y for p in plan.polygons for _, y in p]
        assert union == (max(xs) - min(xs)) * (max(ys) - min(ys))  # the rooms fill the rectangular outline
        assert 0 < min(xs) and max(xs) < EXTENT and 0 < min(ys) and max(ys) < EXTENT
        assert all(is_rectilinear(p) and len(p) in (4, 6) for p in plan.polygons)
        edges = plan.graph.edges
        assert door_feasibility(edges, plan.polygons) == (len(edges), len(edges))
        assert {frozenset(e) for e in plan.to_graph().edges} == {frozenset(e) for e in edges}
        assert plan.graph.room_types == plan.room_types
        for t, p in zip(plan.room_types, plan.polygons):
            assert min(np.ptp(np.asarray(p), axis=0)) >= ROOM_RULES[t].min_side - 1e-9 or t in ("living_room",)
            assert polygon_area(p) > 0.9


def test_splits_share_no_graph():
    train = procedural_plans("train", 20, rooms=(5, 6))
    test = procedural_plans("test", 5, rooms=(5, 6))
    assert all(graph_split(p.graph) == "train" for p in train)
    assert all(graph_split(p.graph) == "test" for p in test)


def test_encoding_round_trip_and_deterministic_batches():
    plans = procedural_plans("train", 3, rooms=(4, 6))
    enc = encode_plans(plans)
    assert enc["corners"].abs().max() <= 1 and enc["room_mask"].sum() == sum(len(p.polygons) for p in plans)
    back = split_corners(enc["corners"], enc)
    for plan, rooms in zip(plans, back):
        for poly, corners in zip(plan.polygons, rooms):
            assert np.allclose(np.asarray(poly), corners, atol=1e-5)
    source = PlanBatches(plans)
    b1 = source.batch(torch.Generator().manual_seed(3), 4)
    b2 = source.batch(torch.Generator().manual_seed(3), 4)
    b3 = source.batch(torch.Generator().manual_seed(4), 4)
    assert len(b1) == len(BATCH_KEYS) and all(torch.equal(x, y) for x, y in zip(b1, b2))
    assert not all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(b1, b3))
    corners, mask = b1[0], b1[3]
    assert (corners[~mask] == 0).all()

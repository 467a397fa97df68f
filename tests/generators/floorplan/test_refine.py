"""Refinement on hand-made cases: snapping, wall alignment, overlap removal, gap closing, door rules, repair."""
import numpy as np
import pytest

from evaluation.floorplan import door_is_valid, longest_shared_wall, overlap_fraction, polygon_area
from generators.floorplan.geometry import CELL, canonical_polygon, is_rectilinear
from generators.floorplan.refine import RefineConfig, raw_plan, refine_plan, regularise, trace

NO_REPAIR = RefineConfig(repair_doors=False)


def rect(x0, y0, x1, y1):
    return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], dtype=float)


def on_grid(plan):
    pts = np.array([p for poly in plan.polygons for p in poly])
    return np.allclose(pts / CELL, np.round(pts / CELL))


def test_corners_snap_to_the_grid_and_walls_become_straight():
    noisy = np.array([(2.07, 3.02), (5.96, 2.91), (6.08, 6.1), (1.9, 5.97)])
    assert regularise(noisy) == [(2.0, 3.0), (6.0, 3.0), (6.0, 6.0), (2.0, 6.0)]
    l_shape = np.array([(1.0, 1.1), (4.1, 0.9), (3.9, 2.0), (2.1, 2.1), (1.9, 4.0), (1.1, 3.9)])
    poly = regularise(l_shape)
    assert is_rectilinear(poly) and len(poly) == 6 and polygon_area(poly) == pytest.approx(3 * 1 + 1 * 2)
    twisted = np.array([(5.0, 5.0), (2.0, 5.0), (2.0, 2.0), (5.0, 2.0), (1.0, 1.0), (1.0, 6.0)])  # self-crossing
    assert len(regularise(twisted)) == 4  # falls back to the bounding box
    plan = refine_plan(["kitchen"], [noisy], [])
    assert on_grid(plan) and plan.polygons[0] == canonical_polygon(regularise(noisy))


def test_overlap_is_removed_and_the_smaller_room_keeps_its_area():
    big, small = rect(2, 2, 8, 6), rect(7, 3, 10, 5)  # the kitchen pokes 1 m into the living room
    raw = raw_plan(["living_room", "kitchen"], [big, small], [])
    assert overlap_fraction(raw.polygons) > 0.05
    plan = refine_plan(["living_room", "kitchen"], [big, small], [(0, 1)])
    assert overlap_fraction(plan.polygons) == 0
    assert polygon_area(plan.polygons[1]) == pytest.approx(6.0)
    assert polygon_area(plan.polygons[0]) == pytest.approx(24.0 - 2.0)
    assert [d.rooms for d in plan.doors] == [(0, 1)]


def test_a_room_inside_another_and_two_coincident_rooms_both_survive():
    plan = refine_plan(["living_room", "storage"], [rect(2, 2, 8, 8), rect(4, 4, 5.5, 5.5)], [])
    assert overlap_fraction(plan.polygons) == 0
    assert all(polygon_area(p) > 1.0 for p in plan.polygons)
    assert all(is_rectilinear(p) for p in plan.polygons)  # the living room has no hole: a notch reaches the store
    twins = refine_plan(["bedroom", "bedroom"], [rect(2, 2, 6, 5), rect(2.1, 2, 6, 5.1)], [(0, 1)])
    assert overlap_fraction(twins.polygons) == 0 and min(polygon_area(p) for p in twins.polygons) >= 4.0
    assert len(twins.doors) == 1


def test_walls_a_little_apart_are_aligned_and_gaps_closed():
    # 0.25 m apart: the wall alignment merges them
    plan = refine_plan(["bedroom", "bathroom"], [rect(2, 2, 6, 5), rect(6.25, 2, 8, 5)], [(0, 1)], config=NO_REPAIR)
    assert longest_shared_wall(*plan.polygons).length == pytest.approx(3.0)
    # 0.75 m apart, beyond the alignment tolerance: the gap inside the outline is closed by growing rooms
    plan = refine_plan(["bedroom", "bathroom"], [rect(2, 2, 6, 5), rect(6.75, 2, 8.5, 5)], [(0, 1)], config=NO_REPAIR)
    assert longest_shared_wall(*plan.polygons).length == pytest.approx(3.0)
    assert sum(polygon_area(p) for p in plan.polygons) == pytest.approx(6.5 * 3)


def test_doors_only_on_shared_walls_of_at_least_seventy_centimetres():
    rooms = [rect(2, 2, 6, 5), rect(6, 4.5, 9, 8)]  # they share 0.5 m of the wall x = 6
    plan = refine_plan(["bedroom", "bathroom"], rooms, [(0, 1)], config=NO_REPAIR)
    assert plan.doors == () and list(plan.to_graph().edges) == []
    rooms = [rect(2, 2, 6, 5), rect(6, 4, 9, 8)]  # 1 m shared: a door of 0.9 m centred on it
    plan = refine_plan(["bedroom", "bathroom"], rooms, [(0, 1)], config=NO_REPAIR)
    (door,) = plan.doors
    (x0, y0), (x1, y1) = door.segment
    assert x0 == x1 == 6 and (y0, y1) == pytest.approx((4.05, 4.95))
    assert door_is_valid(door.segment, *plan.polygons) and list(plan.to_graph().edges) == [(0, 1)]
    unrequested = refine_plan(["bedroom", "bathroom"], rooms, [], config=NO_REPAIR)
    assert unrequested.doors == ()  # doors are placed only where the graph asks for one


def test_repair_gives_a_short_contact_a_door_band():
    rooms = [rect(2, 2, 6, 5), rect(6, 4.5, 9, 8), rect(6, 2, 9, 4.5)]  # 0 and 1 share 0.5 m
    edges = [(0, 1), (0, 2)]
    plan = refine_plan(["living_room", "bedroom", "kitchen"], rooms, edges)
    assert {d.rooms for d in plan.doors} == {(0, 1), (0, 2)}
    assert all(door_is_valid(d.segment, plan.polygons[d.rooms[0]], plan.polygons[d.rooms[1]]) for d in plan.doors)
    assert overlap_fraction(plan.polygons) == 0
    assert polygon_area(plan.polygons[2]) >= 0.6 * 3 * 2.5  # the kitchen gave cells but kept most of its area


def test_trace_of_a_cell_mask():
    mask = np.zeros((64, 64), dtype=bool)
    mask[4:8, 2:6] = True
    mask[8:10, 2:3] = True
    poly = trace(mask)
    assert poly[0] == (0.5, 1.0) and len(poly) == 6 and polygon_area(poly) == pytest.approx((16 + 2) * CELL**2)


def test_any_corners_give_a_plan_without_overlap_with_every_room():
    """Garbage in (random corners, coincident and degenerate rooms): still one valid room each, no overlap."""
    from evaluation.floorplan import coverage
    from generators.floorplan.refine import _valid

    rng = np.random.default_rng(0)
    for trial in range(25):
        n = int(rng.integers(2, 9))
        corners = [rng.uniform(5, 11, (4, 2)) for _ in range(n)]
        if trial % 5 == 0:
            corners[-1] = corners[0] + 0.05  # two rooms on top of each other
        edges = [(i, i + 1) for i in range(n - 1)]
        plan = refine_plan(["bedroom"] * n, corners, edges)
        assert coverage(plan.polygons)[1] == 0
        assert all(polygon_area(p) >= 0.5 and is_rectilinear(p) for p in plan.polygons)
        assert all(_valid(list(p)) or len(p) > 4 for p in plan.polygons)
        assert all(door_is_valid(d.segment, plan.polygons[d.rooms[0]], plan.polygons[d.rooms[1]]) for d in plan.doors)

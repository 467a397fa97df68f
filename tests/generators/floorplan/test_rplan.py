"""The RPLAN (HouseDiffusion JSON) loader on a small hand-written file."""
import json
import warnings

import pytest

from evaluation.floorplan import polygon_area
from generators.floorplan.rplan import load_rplan_folder, read_rplan


def box_walls(x0, y0, x1, y1, room_type, owner, neighbours=((), (), (), ())):
    """The four walls of a box in RPLAN's order, with ``ed_rm`` entries (own index first)."""
    walls = [[x0, y0, x0, y1], [x0, y1, x1, y1], [x1, y1, x1, y0], [x1, y0, x0, y0]]
    return [w + [room_type, 0] for w in walls], [[owner, *n] for n in neighbours]


def write_plan(path, living_type=1):
    """Living room 4 x 4 m, a kitchen to its right (2 x 4 m), a bedroom below (4 x 3 m); two doors and a front door."""
    parts = [
        box_walls(64, 64, 128, 128, living_type, 0, ((), (2,), (1,), ())),
        box_walls(128, 64, 160, 128, 2, 1, ((0,), (), (), ())),
        box_walls(64, 128, 128, 176, 3, 2, ((), (), (), (0,))),
        box_walls(126, 90, 130, 102, 17, 3, ((0,), (), (1,), ())),
        box_walls(90, 126, 102, 130, 17, 4, ((), (2,), (), (0,))),
        box_walls(60, 80, 64, 92, 15, 5, ((), (), (0,), ())),
    ]
    info = {"room_type": [living_type, 2, 3, 17, 17, 15],
            "boxes": [[64, 64, 128, 128], [128, 64, 160, 128], [64, 128, 128, 176], [126, 90, 130, 102],
                      [90, 126, 102, 130], [60, 80, 64, 92]],
            "edges": [w for walls, _ in parts for w in walls], "ed_rm": [o for _, owners in parts for o in owners]}
    path.write_text(json.dumps(info))
    return path


def test_read_rplan_file(tmp_path):
    plan = read_rplan(write_plan(tmp_path / "0.json"))
    assert plan.room_types == ("living_room", "kitchen", "bedroom")
    assert [polygon_area(p) for p in plan.polygons] == [16.0, 8.0, 12.0]
    # 256 px = 16 m, y flipped up, centred on the canvas: x 4..10 m -> 5..11, y 5..12 m -> 4.5..11.5
    assert plan.polygons[0] == ((5.0, 7.5), (9.0, 7.5), (9.0, 11.5), (5.0, 11.5))
    assert plan.graph.edges == ((0, 1), (0, 2)) and plan.graph.room_types == plan.room_types
    assert {d.rooms for d in plan.doors} == {(0, 1), (0, 2)}


def test_folder_loader_skips_unusable_files(tmp_path):
    write_plan(tmp_path / "good.json")
    write_plan(tmp_path / "unknown.json", living_type=16)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match=r"room types \[16\]"):
        read_rplan(tmp_path / "unknown.json")
    with pytest.warns(UserWarning, match="2 RPLAN files"):
        plans = load_rplan_folder(tmp_path)
    assert len(plans) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert load_rplan_folder(tmp_path, max_rooms=2) == []
    with pytest.raises(ValueError, match="does not exist"):
        load_rplan_folder(tmp_path / "nowhere")

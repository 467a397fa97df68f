"""Bubble graphs: the JSON schema, networkx round trips, and every bad input the issue lists."""
import json
from pathlib import Path

import networkx as nx
import pytest

from generators.floorplan import BubbleGraph, GraphWarning, Room

SAMPLES = Path(__file__).resolve().parents[3] / "data" / "samples" / "graphs"


@pytest.mark.parametrize("path", [p for p in sorted(SAMPLES.glob("*.json")) if not p.name.endswith(".schema.json")],
                         ids=lambda p: p.name)
def test_sample_files_load_and_are_connected(path):
    g = BubbleGraph.from_json(path)
    assert len(g) >= 4 and nx.is_connected(g.to_networkx())
    assert BubbleGraph.from_dict(json.loads(path.read_text())) == g


def test_json_round_trip_keeps_areas_corners_and_ids(tmp_path, graph):
    g = BubbleGraph.from_json(SAMPLES / "house_with_balcony.json")
    assert g.rooms[0] == Room(0, "living_room", None, 6)
    assert g.corner_counts() == (6, 4, 4, 4, 4, 4, 4)
    g.to_json(tmp_path / "g.json")
    assert BubbleGraph.from_json(tmp_path / "g.json") == g
    assert graph.rooms[0].area == 22.0 and graph.edges[0] == (0, 1)


def test_networkx_round_trip_reads_room_type():
    nxg = nx.Graph()
    nxg.add_node("a", room_type="kitchen")
    nxg.add_node("b", room_type="living_room", area=20.0)
    nxg.add_edge("a", "b")
    g = BubbleGraph.from_networkx(nxg)
    assert g.room_types == ("kitchen", "living_room") and g.edges == ((0, 1),) and g.rooms[1].area == 20.0
    back = g.to_networkx()
    assert back.nodes[0]["room_type"] == "kitchen" and back.nodes[1]["id"] == "b" and list(back.edges) == [(0, 1)]


def _graph(rooms, doors):
    return {"rooms": [{"id": i, "room_type": t} for i, t in rooms], "doors": doors}


@pytest.mark.parametrize("obj, match", [
    (_graph([(0, "kitchen"), (1, "ballroom")], [[0, 1]]), "unknown room_type 'ballroom'"),
    (_graph([(0, "kitchen"), (1, "interior_door")], []), "doors are the graph's edges"),
    (_graph([(0, "kitchen"), (1, "bedroom")], [[1, 1]]), "self-loop"),
    (_graph([(0, "kitchen"), (0, "bedroom")], []), "duplicate id 0"),
    (_graph([], []), "empty"),
    (_graph([(0, "kitchen"), (1, "bedroom")], [[0, 2]]), "not in 'rooms'"),
    (_graph([(0, "kitchen"), (1, "bedroom")], [[0, 1], [1, 0]]), "repeats the door"),
    ({"rooms": [{"id": 0, "room_type": "kitchen", "size": 3}], "doors": []}, "unknown keys \\['size'\\]"),
    ({"rooms": [{"id": 0, "room_type": "kitchen"}]}, "missing 'doors'"),
    ({"rooms": [{"id": 0, "room_type": "kitchen", "corners": 5}], "doors": []}, "corners must be an even integer"),
    ({"rooms": [{"id": 0, "room_type": "kitchen", "area": -2}], "doors": []}, "area must be a positive"),
    ({"rooms": [{"id": True, "room_type": "kitchen"}], "doors": []}, "id must be a string or an integer"),
    ({"rooms": "kitchen", "doors": []}, "'rooms' must be a list"),
    ([1, 2], "top level must be an object"),
])
def test_bad_graphs_name_the_problem(obj, match):
    with pytest.raises(ValueError, match=match):
        BubbleGraph.from_dict(obj)


def test_files_that_are_not_json_or_missing(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{rooms: [")
    with pytest.raises(ValueError, match="not valid JSON"):
        BubbleGraph.from_json(bad)
    with pytest.raises(ValueError, match="does not exist"):
        BubbleGraph.from_json(tmp_path / "missing.json")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"nodes": [], "edges": []}))
    with pytest.raises(ValueError, match="unknown keys"):
        BubbleGraph.from_json(wrong)


def test_disconnected_graph_is_accepted_with_a_warning():
    with pytest.warns(GraphWarning, match="not connected"):
        g = BubbleGraph.from_dict(_graph([(0, "kitchen"), (1, "bedroom"), (2, "bathroom")], [[0, 1]]))
    assert len(g) == 3


def test_networkx_without_room_type_is_rejected():
    nxg = nx.Graph()
    nxg.add_node(0)
    with pytest.raises(ValueError, match="no 'room_type'"):
        BubbleGraph.from_networkx(nxg)
    with pytest.raises(ValueError, match="undirected"):
        BubbleGraph.from_networkx(nx.DiGraph([(0, 1)]))

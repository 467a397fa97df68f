"""The generator: the call, every core sampler on padded corner sets, bad inputs, files, save and load."""
import json

import networkx as nx
import pytest
import torch
from PIL import Image

from evaluation.floorplan import door_is_valid, overlap_fraction
from generators.core.sampling import SAMPLERS, SamplerOptions
from generators.floorplan import BubbleGraph, FloorplanGenerator, FloorplanOutput, GraphWarning, RefineConfig

VE = SamplerOptions(sigma_max=20.0)


def test_call_gives_refined_plans_with_the_requested_rooms(tiny_gen, graph):
    out = tiny_gen(graph=graph, num_samples=2, num_inference_steps=2, seed=0)
    assert isinstance(out, FloorplanOutput) and len(out.plans) == 2
    for plan in out.plans:
        assert sorted(t for t, _ in plan.rooms) == sorted(graph.room_types)
        assert overlap_fraction(plan.polygons) == 0
        assert all(door_is_valid(d.segment, plan.polygons[d.rooms[0]], plan.polygons[d.rooms[1]]) for d in plan.doors)
        assert {tuple(sorted(e)) for e in plan.to_graph().edges} <= set(graph.edges)
        assert nx.get_node_attributes(plan.to_graph(), "room_type") == dict(enumerate(graph.room_types))
    again = tiny_gen(graph=graph, num_samples=2, num_inference_steps=2, seed=0)
    assert again.plans == out.plans
    assert tiny_gen(graph=graph, num_samples=2, num_inference_steps=2, seed=1).plans != out.plans


def test_graph_forms_and_several_graphs(tiny_gen, graph):
    nxg = graph.to_networkx()
    a = tiny_gen(graph=nxg, num_inference_steps=2, seed=3)
    b = tiny_gen(graph=graph.to_dict(), num_inference_steps=2, seed=3)
    assert a.plans[0].polygons == b.plans[0].polygons
    small = BubbleGraph.from_dict({"rooms": [{"id": 0, "room_type": "kitchen"}, {"id": 1, "room_type": "bedroom",
                                                                                    "corners": 6}], "doors": [[0, 1]]})
    out = tiny_gen(graph=[graph, small], num_samples=2, num_inference_steps=2, seed=0)
    assert [len(p.polygons) for p in out.plans] == [6, 6, 2, 2]
    raw = tiny_gen(graph=small, num_inference_steps=2, seed=0, refine=False)
    assert [len(p) for p in raw.plans[0].polygons] == [4, 6]  # the raw corners, as many as asked for
    assert tiny_gen(graph=small, num_inference_steps=2, seed=0, refine=RefineConfig(repair_doors=False)).plans


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_core_sampler_runs_on_padded_corner_sets(tiny_gen, graph, sampler):
    small = BubbleGraph.from_dict({"rooms": [{"id": 0, "room_type": "kitchen"}, {"id": 1, "room_type": "bedroom"}],
                                   "doors": [[0, 1]]})
    steps = []
    out = tiny_gen(graph=[graph, small], num_inference_steps=2, sampler=sampler, seed=0, guidance_scale=2.0,
                   options=VE if sampler.endswith("-ve") or sampler == "annealed-langevin" else SamplerOptions(),
                   callback=lambda i, n, x: steps.append(x.shape))
    assert steps and all(s == (2, 24, 2) for s in steps)
    assert [len(p.polygons) for p in out.plans] == [6, 2]
    assert all(overlap_fraction(p.polygons) == 0 for p in out.plans)


@pytest.mark.parametrize("graph_in, match", [
    ({"rooms": [{"id": 0, "room_type": "ballroom"}], "doors": []}, "unknown room_type"),
    ({"rooms": [{"id": 0, "room_type": "kitchen"}, {"id": 1, "room_type": "bedroom"}], "doors": [[0, 0]]}, "self-loop"),
    ({"rooms": [{"id": 0, "room_type": "kitchen"}, {"id": 0, "room_type": "bedroom"}], "doors": []}, "duplicate id"),
    ({"rooms": [{"id": i, "room_type": "bedroom"} for i in range(9)], "doors": [[i, i + 1] for i in range(8)]},
     "at most 8"),
    ({"rooms": [], "doors": []}, "empty"),
    ({"rooms": [{"id": 0, "room_type": "kitchen", "corners": 12}], "doors": []}, "corners but this model"),
    (None, "graph is required"),
    (42, "must be a BubbleGraph"),
    ([], "empty list"),
])
def test_bad_input_is_rejected_before_sampling(tiny_gen, graph_in, match, monkeypatch):
    monkeypatch.setattr(FloorplanGenerator, "run_sampler", lambda *a, **k: pytest.fail("sampling started"))
    with pytest.raises(ValueError, match=match):
        tiny_gen(graph=graph_in, num_inference_steps=2)


def test_bad_files_and_keywords_are_rejected_before_sampling(tiny_gen, graph, tmp_path, monkeypatch):
    monkeypatch.setattr(FloorplanGenerator, "run_sampler", lambda *a, **k: pytest.fail("sampling started"))
    not_json = tmp_path / "g.json"
    not_json.write_text("rooms: kitchen")
    with pytest.raises(ValueError, match="not valid JSON"):
        tiny_gen(graph=str(not_json))
    off_schema = tmp_path / "h.json"
    off_schema.write_text(json.dumps({"rooms": [{"name": "kitchen"}], "doors": []}))
    with pytest.raises(ValueError, match="unknown keys"):
        tiny_gen(graph=off_schema)
    for kwargs, match in (({"num_samples": 0}, "num_samples"), ({"sampler": "magic"}, "sampler"),
                          ({"num_inference_steps": 0}, "num_inference_steps"), ({"seed": -1}, "seed"),
                          ({"guidance_scale": -1.0}, "guidance_scale"), ({"refine": "yes"}, "refine")):
        with pytest.raises(ValueError, match=match):
            tiny_gen(graph=graph, **kwargs)


def test_disconnected_graph_is_generated_with_a_warning(tiny_gen):
    with pytest.warns(GraphWarning):
        g = BubbleGraph.from_dict({"rooms": [{"id": 0, "room_type": "kitchen"}, {"id": 1, "room_type": "bedroom"},
                                             {"id": 2, "room_type": "bathroom"}], "doors": [[0, 1]]})
    assert len(tiny_gen(graph=g, num_inference_steps=2).plans[0].polygons) == 3


def test_output_files_in_every_format(tiny_gen, graph, tmp_path):
    out = tiny_gen(graph=graph, num_samples=2, num_inference_steps=2, seed=0)
    (svg,) = out.save(tmp_path / "plans.svg")
    text = svg.read_text()
    assert text.startswith("<svg") and text.count("<polygon") == 12 and "<circle" in text
    (png,) = out.save(tmp_path / "plans.png")
    assert Image.open(png).size[0] > 100
    (js,) = out.save(tmp_path / "plans.json")
    data = json.loads(js.read_text())
    assert len(data["plans"]) == 2 and data["plans"][0]["requested_graph"] == graph.to_dict()
    files = out.save(tmp_path / "folder")
    assert sorted(p.name for p in files) == sorted(f"sample_{i:03d}.{e}" for i in range(2) for e in ("svg", "png", "json"))
    plan = out.plans[0]
    assert plan.save(tmp_path / "one.svg")[0].read_text().count("<polygon") == 6
    assert type(plan).from_dict(json.loads(plan.save(tmp_path / "one.json")[0].read_text())) == plan
    with pytest.raises(ValueError, match="supported extensions"):
        out.save(tmp_path / "plans.gif")
    assert not (tmp_path / "plans.gif").exists()


def test_save_and_load_round_trip(tiny_gen, graph, tmp_path):
    tiny_gen.save_pretrained(tmp_path / "ckpt")
    again = FloorplanGenerator.from_pretrained(tmp_path / "ckpt")
    public = lambda cfg: {k: v for k, v in cfg.items() if not k.startswith("_")}  # noqa: E731
    assert public(again.model.config) == public(tiny_gen.model.config) and again.diffusion == tiny_gen.diffusion
    for k, v in tiny_gen.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k])
    a = tiny_gen(graph=graph, num_inference_steps=2, seed=5)
    b = again(graph=graph, num_inference_steps=2, seed=5)
    assert a.plans == b.plans

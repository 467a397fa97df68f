"""Flow parameters: bounds, Literal choices, the schema the dashboard renders, parameter files."""
from __future__ import annotations

import json
import typing

import pytest
from pydantic import ValidationError

from flows.composed import ComposedParams
from flows.image.params import GenerateImageParams, TrainImageParams
from flows.params import Brief, Room, Sampler, load_params
from generators.core.sampling import SAMPLERS


def test_sampler_literal_matches_the_core_registry():
    assert tuple(typing.get_args(Sampler)) == tuple(SAMPLERS)


@pytest.mark.parametrize("field, value", [
    ("labels", [3, 10]), ("labels", []), ("num_inference_steps", 0), ("num_inference_steps", 1001),
    ("guidance_scale", -1.0), ("sampler", "plms"), ("device", "gpu"), ("shard_size", 0),
    ("task_runner", "dask"), ("seed", -1), ("guidance_scale", float("nan")), ("guidance_scale", float("inf")),
    ("guidance_scale", 1e308), ("labels", [3] * 50_001),
])
def test_generate_params_reject_bad_values_naming_the_field(field, value):
    with pytest.raises(ValidationError) as err:
        GenerateImageParams(**{field: value})
    assert field in str(err.value)


def test_unknown_fields_are_rejected():
    with pytest.raises(ValidationError, match="num_steps"):
        GenerateImageParams(num_steps=3)


def test_train_params_bounds():
    with pytest.raises(ValidationError, match="preset"):
        TrainImageParams(preset="huge")
    with pytest.raises(ValidationError, match="num_processes"):
        TrainImageParams(num_processes=0)
    assert TrainImageParams(max_steps=5).max_steps == 5


def test_brief_adjacency_must_name_rooms():
    rooms = [Room(name="a"), Room(name="b")]
    assert Brief(rooms=rooms, adjacency=[("a", "b")]).adjacency == [("a", "b")]
    with pytest.raises(ValidationError, match="not in rooms"):
        Brief(rooms=rooms, adjacency=[("a", "kitchen")])
    assert ComposedParams().brief.rooms  # the default brief is valid


def test_deployment_schema_has_dropdowns_and_bounds():
    """The JSON schema Prefect stores for the dashboard form: enums for Literals, min/max for bounds."""
    from flows.serve import build_deployments

    deployments = {d.name: d for d in build_deployments({"schedules": False})}
    schema = deployments["generate-image"]._parameter_openapi_schema.model_dump()
    props = schema["definitions"]["GenerateImageParams"]["properties"]
    assert props["sampler"]["enum"] == list(SAMPLERS)
    assert props["task_runner"]["enum"] == ["local", "ray"]
    assert props["num_inference_steps"]["minimum"] == 1 and props["num_inference_steps"]["maximum"] == 1000
    assert deployments["generate-image"].enforce_parameter_schema


def test_schedules_and_file_parameters(tmp_path):
    from flows.serve import build_deployments

    deployments = {d.name: d for d in build_deployments() if d.flow_name in ("train_image", "generate_image",
                                                                              "evaluate_image", "composed",
                                                                              "generate_image_from_file")}
    assert set(deployments) == {"train-image", "generate-image", "evaluate-image", "nightly-evaluation",
                                "nightly-generation-from-file", "composed"}
    nightly = deployments["nightly-evaluation"].schedules[0].schedule
    assert nightly.cron == "0 2 * * *" and nightly.timezone == "UTC"
    assert deployments["nightly-generation-from-file"].schedules
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"sampler": "nope"}))
    with pytest.raises(ValueError, match="bad.json"):
        build_deployments({"params_files": {"image": str(bad)}})


def test_load_params_names_file_and_field(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"labels": [1, 2], "num_inference_steps": 7}))
    assert load_params(path, GenerateImageParams).num_inference_steps == 7
    path.write_text(json.dumps({"labels": [42]}))
    with pytest.raises(ValueError, match="(?s)p.json.*labels"):
        load_params(path, GenerateImageParams)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_params(path, GenerateImageParams)
    with pytest.raises(ValueError, match="does not exist"):
        load_params(tmp_path / "missing.json", GenerateImageParams)

"""Fixtures of the floorplan family's tests: one thread, a tiny trained checkpoint, a tiny plan classifier."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread; two threads on the shared 2-core machine spin against each other."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """The tiny preset trained for 20 steps (about a second on one core)."""
    from generators.floorplan.train import train_floorplan

    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("floorplan") / "tiny"
    train_floorplan(path, "tiny", max_steps=20, progress=False)
    return path


@pytest.fixture(scope="session")
def tiny_gen(tiny_checkpoint):
    from generators.floorplan import FloorplanGenerator

    return FloorplanGenerator.from_pretrained(tiny_checkpoint)


@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory) -> Path:
    from generators.floorplan.evaluate import train_floorplan_classifier

    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("floorplan") / "classifier"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train_floorplan_classifier(path, steps=5, num_plans=24, num_test=4, batch_size=8, width=4)
    return path


@pytest.fixture
def graph():
    from generators.floorplan import BubbleGraph

    return BubbleGraph.from_json(Path(__file__).resolve().parents[3] / "data" / "samples" / "graphs" / "two_bedroom.json")

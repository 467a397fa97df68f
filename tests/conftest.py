"""Fixtures shared by the whole suite: one tiny trained digits checkpoint for every test that needs one."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A tiny digits generator (8x8) trained for 60 steps: a few seconds on one CPU thread."""
    from generators.image.train import train_image

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        path = tmp_path_factory.mktemp("image") / "tiny"
        train_image(path, "tiny", max_steps=60, progress=False)
    finally:
        torch.set_num_threads(before)
    return path


@pytest.fixture(scope="session")
def tiny_gen(tiny_checkpoint):
    from generators.image import ImageGenerator

    return ImageGenerator.from_pretrained(tiny_checkpoint)

"""Tiny checkpoints of the families whose commands the CLI tests fuzz (a few seconds each, one thread)."""
import importlib

import pytest
import torch


def _tiny(module: str, function: str):
    """A session fixture: ``module.function(path, "tiny", progress=False)`` trained on one thread."""

    @pytest.fixture(scope="session")
    def fixture(tmp_path_factory):
        train = getattr(importlib.import_module(module), function)
        path = tmp_path_factory.mktemp(f"cli-{function}") / "tiny"
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            train(path, "tiny", progress=False)
        finally:
            torch.set_num_threads(before)
        return path

    return fixture


tiny_sr_checkpoint = _tiny("generators.superres.train", "train_superres")
tiny_cascade_checkpoint = _tiny("generators.superres.train", "train_cascade")
tiny_video_checkpoint = _tiny("generators.video.train", "train_video")
tiny_pointcloud_checkpoint = _tiny("generators.pointcloud", "train_pointcloud")

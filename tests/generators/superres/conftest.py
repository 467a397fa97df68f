"""Tiny super-resolution and cascade checkpoints, trained once per session in about a second."""
import pytest
import torch

from generators.superres import Cascade, SuperResolver
from generators.superres.train import train_cascade, train_superres


@pytest.fixture(autouse=True)
def one_thread():
    """Two cores are shared by several test runs: keep torch on one."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_sr_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("superres") / "sr-tiny"
    torch.set_num_threads(1)
    train_superres(path, "tiny", progress=False)
    return path


@pytest.fixture(scope="session")
def tiny_sr(tiny_sr_path):
    return SuperResolver.from_pretrained(tiny_sr_path)


@pytest.fixture(scope="session")
def tiny_cascade_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("cascade") / "cascade-tiny"
    torch.set_num_threads(1)
    train_cascade(path, "tiny", progress=False)
    return path


@pytest.fixture(scope="session")
def tiny_cascade(tiny_cascade_path):
    return Cascade.from_pretrained(tiny_cascade_path)


@pytest.fixture(scope="session")
def photo_crop():
    """A 64x64 RGB crop of a held-out photo (uint8) and its x4 bicubic / area inputs."""
    from evaluation.superres import downsample_array
    from generators.superres.data import load_photo_uint8

    high = load_photo_uint8("astronaut")[120:184, 200:264]
    return high, {k: downsample_array(high, 4, k) for k in ("bicubic", "area")}

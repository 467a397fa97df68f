import pytest
import torch

from generators.pointcloud import PointCloudGenerator, train_pointcloud


@pytest.fixture(autouse=True)
def one_thread():
    """Two cores are shared by everyone: every test of this family runs on one thread."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """The tiny preset (3 categories, 64 points, text prior) trained for a few steps per stage."""
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("pointcloud") / "tiny"
    train_pointcloud(path, "tiny", progress=False)
    return path


@pytest.fixture(scope="session")
def tiny_gen(tiny_checkpoint):
    return PointCloudGenerator.from_pretrained(tiny_checkpoint)

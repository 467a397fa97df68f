"""Tiny checkpoints of the families whose commands the CLI tests fuzz (a few seconds each, one thread)."""
import pytest
import torch


def _one_thread(train, *args, **kwargs):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(*args, **kwargs)
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_sr_checkpoint(tmp_path_factory):
    from generators.superres.train import train_superres

    path = tmp_path_factory.mktemp("cli-superres") / "sr"
    _one_thread(train_superres, path, "tiny", progress=False)
    return path


@pytest.fixture(scope="session")
def tiny_cascade_checkpoint(tmp_path_factory):
    from generators.superres.train import train_cascade

    path = tmp_path_factory.mktemp("cli-cascade") / "cascade"
    _one_thread(train_cascade, path, "tiny", progress=False)
    return path


@pytest.fixture(scope="session")
def tiny_video_checkpoint(tmp_path_factory):
    from generators.video.train import train_video

    path = tmp_path_factory.mktemp("cli-video") / "video"
    _one_thread(train_video, path, "tiny", progress=False)
    return path


@pytest.fixture(scope="session")
def tiny_pointcloud_checkpoint(tmp_path_factory):
    from generators.pointcloud import train_pointcloud

    path = tmp_path_factory.mktemp("cli-pointcloud") / "pc"
    _one_thread(train_pointcloud, path, "tiny", progress=False)
    return path

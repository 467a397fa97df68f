"""Fixtures of the video family's tests: one thread, a tiny trained latent model, a tiny pixel model."""
import pytest
import torch

from generators.core.pipeline import DiffusionConfig
from generators.video import PRESETS, VideoGenerator
from generators.video.train import build_model, train_video


@pytest.fixture(autouse=True)
def one_thread():
    """The machine's cores are shared: every test runs on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """The tiny latent preset trained end to end (autoencoder 4 steps, denoiser 4 steps)."""
    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("video") / "tiny"
    train_video(path, "tiny", progress=False)
    return path


@pytest.fixture(scope="session")
def tiny_gen(tiny_checkpoint):
    return VideoGenerator.from_pretrained(tiny_checkpoint)


@pytest.fixture(scope="session")
def pixel_gen():
    """An untrained tiny pixel-space generator (known frames come back exactly in pixel space)."""
    torch.manual_seed(0)
    p = PRESETS["tiny-pixel"]
    return VideoGenerator(build_model(p), DiffusionConfig(), clip=p.clip)

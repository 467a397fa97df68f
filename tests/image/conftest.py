import pytest

from generators.image import ImageGenerator
from generators.image.train import train_image


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny digits model (8x8) trained for a few seconds."""
    path = tmp_path_factory.mktemp("image") / "tiny"
    train_image(path, "tiny", max_steps=60, progress=False)
    return path


@pytest.fixture(scope="session")
def tiny_gen(tiny_checkpoint):
    return ImageGenerator.from_pretrained(tiny_checkpoint)

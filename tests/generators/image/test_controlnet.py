import numpy as np
import pytest
import torch

from conditioning.control import ControlNetAdapter
from generators.image.controlnet import ControlNetImageGenerator, ControlNetLoss, edge_f1, edge_map
from generators.core.pipeline import DiffusionConfig
from generators.image.generator import ImageGenerator
from generators.image.model import build_model
from generators.core.losses import DiffusionLoss


@pytest.fixture
def tiny_base() -> ImageGenerator:
    torch.manual_seed(0)
    return ImageGenerator(build_model("tiny"), DiffusionConfig())


def test_edge_map_outlines_a_square():
    x = -torch.ones(1, 1, 8, 8)
    x[..., 2:6, 2:6] = 1
    e = edge_map(x)[0, 0]
    assert e[0, 0] == 0 and e[3, 3] == 0  # far background and deep interior
    assert e[1, 3] == 1 and e[3, 1] == 1 and e[2, 3] == 1  # around the boundary


def test_edge_f1_values():
    a = torch.zeros(2, 1, 8, 8)
    a[:, :, 3, :] = 1
    b = torch.zeros(2, 1, 8, 8)
    b[:, :, 4, :] = 1
    assert np.allclose(edge_f1(a, a), 1.0)
    assert np.allclose(edge_f1(a, b), 0.0)
    assert np.allclose(edge_f1(a, b, tolerance=1), 1.0)
    with pytest.raises(ValueError, match="differ in shape"):
        edge_f1(a, b[:1])


def test_untrained_adapter_reproduces_the_base(tiny_base):
    gen = ControlNetImageGenerator(tiny_base, ControlNetAdapter.from_unet(tiny_base.model.unet))
    control = (torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    controlled = gen(control, num_inference_steps=2, seed=5).images
    unconditional = tiny_base([0, 0, 0], num_inference_steps=2, guidance_scale=0.0, seed=5).images
    assert np.array_equal(controlled, unconditional)
    labelled = gen(control, labels=[1, 2, 3], num_inference_steps=2, guidance_scale=2.0, seed=5).images
    assert np.array_equal(labelled, tiny_base([1, 2, 3], num_inference_steps=2, guidance_scale=2.0, seed=5, guidance_interval=None).images)


def test_control_and_label_errors(tiny_base):
    gen = ControlNetImageGenerator(tiny_base, ControlNetAdapter.from_unet(tiny_base.model.unet))
    with pytest.raises(ValueError, match="control must be edge maps"):
        gen(torch.zeros(2, 1, 4, 4))
    with pytest.raises(ValueError, match="labels must be in 0..9"):
        gen(torch.zeros(2, 1, 8, 8), labels=[1, 11])
    with pytest.raises(ValueError, match="labels must be 2 digits"):
        gen(torch.zeros(2, 1, 8, 8), labels=[1])


def test_loss_drops_labels_and_feeds_edges(tiny_base):
    seen = {}

    def spy(x, t, cond):
        seen.update(cond)
        return torch.zeros_like(x)

    loss = ControlNetLoss(DiffusionLoss(tiny_base.schedule), null_label=10, label_drop_prob=1.0, edge_threshold=0.2)
    x0 = torch.rand(4, 1, 8, 8) * 2 - 1
    loss(spy, x0, torch.tensor([1, 2, 3, 4]), generator=torch.Generator().manual_seed(0))
    assert seen["labels"].tolist() == [10] * 4
    assert torch.equal(seen["control"], edge_map(x0))

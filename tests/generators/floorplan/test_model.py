"""The denoiser: attention masks, the exact posterior over grid lines, padding, and the loss."""
import pytest
import torch

from generators.core.schedules import NoiseSchedule
from generators.floorplan.data import STRUCTURE_KEYS, encode_plans, procedural_plans, structure_tensors
from generators.floorplan.graph import BubbleGraph, GraphWarning, Room
from generators.floorplan.model import CornerDenoiser, FloorplanLoss, FloorplanTransformer, posterior_logits

SCHEDULE = NoiseSchedule.create("cosine", 1000)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return FloorplanTransformer(max_rooms=4, max_tokens=16, dim=12, num_layers=1, num_heads=3, graph_dim=8,
                                graph_layers=1, graph_heads=2, fourier_features=2).eval()


def three_rooms():
    """Room c has no door (a disconnected graph, accepted with a warning)."""
    rooms = (Room("a", "living_room"), Room("b", "kitchen"), Room("c", "bedroom", 12.0, 6))
    with pytest.warns(GraphWarning):
        return BubbleGraph(rooms, (("a", "b"),))


def test_attention_masks_follow_rooms_doors_and_padding(model):
    small = BubbleGraph((Room(0, "kitchen"), Room(1, "bathroom")), ((0, 1),))
    cond = structure_tensors([three_rooms(), small])
    masks = model._masks(cond)  # (B, H, N, N), heads: room, door, global
    assert masks.shape == (2, 3, 14, 14)
    room, door, everyone = masks[0, 0], masks[0, 1], masks[0, 2]
    assert room[0].tolist() == [True] * 4 + [False] * 10          # corner 0 of room a sees room a
    assert door[0].tolist() == [True] + [False] * 3 + [True] * 4 + [False] * 6  # ... and, by the door, room b
    assert door[8].tolist() == [False] * 8 + [True] + [False] * 5  # room c has no door: only itself
    assert everyone[0].all()
    assert masks[1, 2, 0].tolist() == [True] * 8 + [False] * 6     # padding is never a key
    assert cond["room_area"][0, 2].tolist() == pytest.approx([float(torch.tensor(1.2).log()), 1.0])


def test_denoiser_snaps_to_the_grid_at_low_noise_and_ignores_padding(model):
    cond = model.condition(structure_tensors([three_rooms()]))
    den = CornerDenoiser(model, SCHEDULE)
    g = model.config.grid_size
    lines = torch.randint(8, g - 8, (1, 14, 2)).float() / g * 2 - 1
    x = lines + (torch.rand(1, 14, 2) - 0.5) * 0.7 * (2 / g)  # within 0.35 cells of a grid line
    out = den(x, torch.tensor([1e-3]), cond)
    # an untrained (zero) head is a flat prior: the posterior mode is the nearest grid line
    assert torch.allclose(out, lines, atol=1e-5)
    padded = model.condition(structure_tensors([three_rooms(), BubbleGraph((Room(0, "kitchen"),))]))
    out = den(torch.randn(2, 14, 2), torch.tensor([1.0, 1.0]), padded)
    assert (out[1, 4:] == 0).all() and out[1, :4].abs().max() > 0


def test_posterior_is_bayes_rule_with_the_forward_kernel():
    values = torch.linspace(-1, 1, 5)
    prior = torch.log(torch.tensor([0.1, 0.2, 0.4, 0.2, 0.1]))
    abar, x_t = torch.tensor([0.5]), torch.tensor([[0.3]])
    post = posterior_logits(prior.expand(1, 1, 5), x_t, abar, values).softmax(-1)
    lik = torch.exp(-(0.3 - 0.5**0.5 * values) ** 2 / (2 * 0.5))
    expected = prior.exp() * lik / (prior.exp() * lik).sum()
    assert torch.allclose(post[0, 0], expected, atol=1e-6)


def test_loss_ignores_padding_and_learns():
    torch.manual_seed(0)
    model = FloorplanTransformer(max_rooms=8, max_tokens=48, dim=24, num_layers=1, num_heads=3, graph_dim=8,
                                 graph_layers=1, graph_heads=2)
    plans = procedural_plans("train", 2, rooms=(4, 5))
    batch = encode_plans(plans)
    loss = FloorplanLoss(SCHEDULE, cond_drop_prob=0.0)
    args = [batch["corners"]] + [batch[k] for k in STRUCTURE_KEYS]
    l1 = loss(model, *args, generator=torch.Generator().manual_seed(1))
    moved = batch["corners"].clone()
    moved[~batch["corner_mask"]] = 0.7  # padding coordinates do not change the loss
    l2 = loss(model, moved, *args[1:], generator=torch.Generator().manual_seed(1))
    assert torch.allclose(l1, l2)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    first = None
    for step in range(30):
        value = loss(model, *args, generator=torch.Generator().manual_seed(step % 3))
        first = first if first is not None else value.item()
        opt.zero_grad()
        value.backward()
        opt.step()
    assert loss(model, *args, generator=torch.Generator().manual_seed(0)).item() < 0.8 * first

"""Weight-only int8 storage (generators/core/quantize.py)."""
import pytest
import torch

from generators.core.quantize import GROUP_SIZE, MIN_QUANTIZED_NUMEL, dequantize_state, is_quantized, quantize_state


def test_round_trip_is_within_half_a_step_per_channel():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(16, 8, 3, 3, generator=g) * torch.logspace(-3, 1, 16).view(-1, 1, 1, 1)
    state = {"conv.weight": w, "conv.bias": torch.randn(16, generator=g), "steps": torch.tensor([3])}
    q = quantize_state(state, group_size=None)
    assert q["conv.weight.int8"].dtype == torch.int8 and q["conv.weight.int8_scale"].shape == (16,)
    assert q["conv.bias"].dtype == torch.float16 and torch.equal(q["steps"], state["steps"])
    back = dequantize_state(q)
    assert set(back) == set(state) and not is_quantized(back)
    step = w.abs().amax(dim=(1, 2, 3), keepdim=True) / 127
    assert bool(((back["conv.weight"] - w).abs() <= step / 2 + 1e-7).all())  # every channel at its own scale
    assert torch.equal(dequantize_state(state)["conv.weight"], w)  # an unquantized state passes through


def test_small_tensors_stay_float16():
    small = torch.randn(4, MIN_QUANTIZED_NUMEL // 8)
    assert quantize_state({"emb": small})["emb"].dtype == torch.float16


def test_a_missing_scale_is_an_error():
    q = quantize_state({"w": torch.randn(64, 64)})
    del q["w.int8_scale"]
    with pytest.raises(ValueError, match="w.int8_scale"):
        dequantize_state(q)


@pytest.mark.parametrize("shape", [(16, 96, 3, 3), (16, 100), (40, 33)])
def test_group_round_trip_is_within_half_a_step_per_group(shape):
    """Rows that GROUP_SIZE does not divide are padded; each group is rounded at its own scale."""
    g = torch.Generator().manual_seed(1)
    w = torch.randn(*shape, generator=g)
    w.view(shape[0], -1)[:, :GROUP_SIZE] *= 100.0  # one loud group per row must not coarsen the others
    q = quantize_state({"w": w})
    rows = w.reshape(shape[0], -1)
    groups = -(-rows.shape[1] // GROUP_SIZE)
    assert q["w.int8_scale"].shape == (shape[0], groups) and int(q["w.int8_group"]) == GROUP_SIZE
    back = dequantize_state(q)["w"]
    assert back.shape == w.shape
    padded = torch.nn.functional.pad(rows, (0, groups * GROUP_SIZE - rows.shape[1]))
    step = (padded.reshape(shape[0], groups, GROUP_SIZE).abs().amax(-1) / 127).repeat_interleave(GROUP_SIZE, 1)
    assert bool(((back - w).reshape(shape[0], -1).abs() <= step[:, : rows.shape[1]] / 2 + 1e-6).all())
    per_channel = dequantize_state(quantize_state({"w": w}, group_size=None))["w"]
    quiet = (slice(None), slice(GROUP_SIZE, None))
    assert (back - w).view(shape[0], -1)[quiet].abs().mean() < (per_channel - w).view(shape[0], -1)[quiet].abs().mean() / 10


def test_a_group_layout_needs_its_group_size():
    q = quantize_state({"w": torch.randn(16, 100)})
    del q["w.int8_group"]
    with pytest.raises(ValueError, match="w.int8_group"):
        dequantize_state(q)
    with pytest.raises(ValueError, match="group_size"):
        quantize_state({"w": torch.randn(16, 100)}, group_size=0)

"""Weight-only int8 storage (generators/core/quantize.py)."""
import pytest
import torch

from generators.core.quantize import MIN_QUANTIZED_NUMEL, dequantize_state, is_quantized, quantize_state


def test_round_trip_is_within_half_a_step_per_channel():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(16, 8, 3, 3, generator=g) * torch.logspace(-3, 1, 16).view(-1, 1, 1, 1)
    state = {"conv.weight": w, "conv.bias": torch.randn(16, generator=g), "steps": torch.tensor([3])}
    q = quantize_state(state)
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

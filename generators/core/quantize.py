"""Weight-only int8 storage of checkpoints: a quarter of float32, half of float16.

Every floating-point weight with two or more dimensions (convolutions, linear layers, embedding tables)
of at least :data:`MIN_QUANTIZED_NUMEL` values is stored as int8 with one float32 scale per output
channel (symmetric, absmax / 127: the weight-only per-channel scheme of LLM.int8(), Dettmers et al.
2022, sec. 3, and of GPTQ's round-to-nearest baseline). Biases, norms and small tensors stay float16.
On load the weights are dequantized, W = q * scale, and the network computes in its own dtype, so
only the rounding of each weight (at most half a step, scale / 2) differs from the trained network.

The stored names are ``<name>.int8`` and ``<name>.int8_scale``; :func:`dequantize_state` recognises
them, so any loader reads int8, float16 and float32 folders alike.
"""
from __future__ import annotations

import torch

__all__ = ["MIN_QUANTIZED_NUMEL", "dequantize_state", "is_quantized", "quantize_state"]

QUANT_SUFFIX = ".int8"
SCALE_SUFFIX = ".int8_scale"
MIN_QUANTIZED_NUMEL = 1024


def quantize_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """int8 weights with per-output-channel scales, float16 for the other floating-point tensors."""
    out: dict[str, torch.Tensor] = {}
    for name, value in state.items():
        if not value.is_floating_point():
            out[name] = value
        elif value.ndim >= 2 and value.numel() >= MIN_QUANTIZED_NUMEL:
            rows = value.detach().float().reshape(value.shape[0], -1)
            scale = rows.abs().amax(dim=1).clamp_min(torch.finfo(torch.float32).tiny) / 127.0
            q = torch.round(rows / scale[:, None]).clamp_(-127, 127).to(torch.int8)
            out[name + QUANT_SUFFIX] = q.reshape(value.shape)
            out[name + SCALE_SUFFIX] = scale
        else:
            out[name] = value.to(torch.float16)
    return out


def is_quantized(state: dict[str, torch.Tensor]) -> bool:
    """Whether ``state`` holds int8-stored weights."""
    return any(name.endswith(QUANT_SUFFIX) for name in state)


def dequantize_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The float32 weights back from :func:`quantize_state` (other states are returned unchanged).

    Raises ValueError for an int8 weight without its scale (or a scale without its weight)."""
    if not is_quantized(state):
        return state
    out: dict[str, torch.Tensor] = {}
    for name, value in state.items():
        if name.endswith(SCALE_SUFFIX):
            if name[: -len(SCALE_SUFFIX)] + QUANT_SUFFIX not in state:
                raise ValueError(f"{name} has no int8 weight beside it")
            continue
        if name.endswith(QUANT_SUFFIX):
            base = name[: -len(QUANT_SUFFIX)]
            scale = state.get(base + SCALE_SUFFIX)
            if scale is None or scale.numel() != value.shape[0]:
                raise ValueError(f"{name} has no per-channel scale {base + SCALE_SUFFIX} of {value.shape[0]} values")
            shape = (-1,) + (1,) * (value.ndim - 1)
            out[base] = value.float() * scale.float().reshape(shape)
        else:
            out[name] = value
    return out

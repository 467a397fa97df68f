"""Weight-only int8 storage of checkpoints: about a quarter of float32, a little over half of float16.

Every floating-point weight with two or more dimensions (convolutions, linear layers, embedding tables)
of at least :data:`MIN_QUANTIZED_NUMEL` values is stored as int8, symmetric round-to-nearest with one
float32 scale (absmax / 127) per group of :data:`GROUP_SIZE` consecutive values of each output channel's
row: the group-wise scheme of GPTQ's and AWQ's round-to-nearest baselines (Frantar et al. 2023, sec. 5;
Lin et al. 2024), which bounds the rounding error by the largest weight of the group rather than of the
whole row (the per-channel scheme of LLM.int8(), Dettmers et al. 2022, sec. 3, is ``group_size=None``).
Biases, norms and small tensors stay float16. On load the weights are dequantized, W = q * scale, and
the network computes in its own dtype, so only the rounding of each weight (at most half a step,
scale / 2) differs from the trained network.

The stored names are ``<name>.int8`` and ``<name>.int8_scale``: a scale of shape (out,) is per channel,
one of shape (out, groups) per group (each row zero-padded to ``groups`` times the group size stored in
``<name>.int8_group``). :func:`dequantize_state` reads both,
so any loader reads int8 (either layout), float16 and float32 folders alike.
"""
from __future__ import annotations

import math

import torch

__all__ = ["GROUP_SIZE", "MIN_QUANTIZED_NUMEL", "dequantize_state", "is_quantized", "quantize_state"]

QUANT_SUFFIX = ".int8"
SCALE_SUFFIX = ".int8_scale"
GROUP_SUFFIX = ".int8_group"
MIN_QUANTIZED_NUMEL = 1024
GROUP_SIZE = 32  # 1.125 bytes per weight with the float32 scales


def _scales(rows: torch.Tensor) -> torch.Tensor:
    return rows.abs().amax(dim=-1).clamp_min(torch.finfo(torch.float32).tiny) / 127.0


def _grouped(rows: torch.Tensor, groups: int, size: int) -> torch.Tensor:
    """(out, length) rows zero-padded and split into (out, groups, size)."""
    padded = torch.nn.functional.pad(rows, (0, groups * size - rows.shape[1]))
    return padded.reshape(rows.shape[0], groups, size)


def quantize_state(state: dict[str, torch.Tensor], group_size: int | None = GROUP_SIZE) -> dict[str, torch.Tensor]:
    """int8 weights with a scale per ``group_size`` values of each output channel (None: one per channel),
    float16 for the other floating-point tensors."""
    if group_size is not None and group_size < 1:
        raise ValueError(f"group_size must be a positive number of values or None (per channel), got {group_size}")
    out: dict[str, torch.Tensor] = {}
    for name, value in state.items():
        if not value.is_floating_point():
            out[name] = value
        elif value.ndim >= 2 and value.numel() >= MIN_QUANTIZED_NUMEL:
            rows = value.detach().float().reshape(value.shape[0], -1)
            length = rows.shape[1]
            if group_size is None or group_size >= length:
                scale = _scales(rows)
                q = torch.round(rows / scale[:, None])
            else:
                groups = math.ceil(length / group_size)
                grouped = _grouped(rows, groups, group_size)
                scale = _scales(grouped)
                q = torch.round(grouped / scale[..., None]).reshape(rows.shape[0], -1)[:, :length]
                out[name + GROUP_SUFFIX] = torch.tensor([group_size], dtype=torch.int32)
            out[name + QUANT_SUFFIX] = q.clamp_(-127, 127).to(torch.int8).reshape(value.shape)
            out[name + SCALE_SUFFIX] = scale
        else:
            out[name] = value.to(torch.float16)
    return out


def is_quantized(state: dict[str, torch.Tensor]) -> bool:
    """Whether ``state`` holds int8-stored weights."""
    return any(name.endswith(QUANT_SUFFIX) for name in state)


def _dequantize(name: str, value: torch.Tensor, scale: torch.Tensor | None, group: torch.Tensor | None) -> torch.Tensor:
    rows = value.float().reshape(value.shape[0], -1)
    if scale is None or scale.shape[0] != value.shape[0] or scale.ndim not in (1, 2):
        raise ValueError(f"{name} has no per-channel or per-group scale "
                         f"{name[: -len(QUANT_SUFFIX)] + SCALE_SUFFIX} of {value.shape[0]} rows beside it")
    if scale.ndim == 1:
        return (rows * scale.float()[:, None]).reshape(value.shape)
    if group is None or group.numel() != 1:
        raise ValueError(f"{name} has per-group scales but no group size ({name[: -len(QUANT_SUFFIX)] + GROUP_SUFFIX})")
    size, length = int(group.item()), rows.shape[1]
    if size < 1 or math.ceil(length / size) != scale.shape[1]:
        raise ValueError(f"{name}: {scale.shape[1]} groups of {size} do not cover a row of {length} values")
    grouped = _grouped(rows, scale.shape[1], size) * scale.float()[..., None]
    return grouped.reshape(rows.shape[0], -1)[:, :length].reshape(value.shape)


def dequantize_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The float32 weights back from :func:`quantize_state` (other states are returned unchanged).

    Raises ValueError for an int8 weight without its scale (or group size), or a scale without its weight."""
    if not is_quantized(state):
        return state
    out: dict[str, torch.Tensor] = {}
    for name, value in state.items():
        if name.endswith(SCALE_SUFFIX) or name.endswith(GROUP_SUFFIX):
            suffix = SCALE_SUFFIX if name.endswith(SCALE_SUFFIX) else GROUP_SUFFIX
            if name[: -len(suffix)] + QUANT_SUFFIX not in state:
                raise ValueError(f"{name} has no int8 weight beside it")
            continue
        if name.endswith(QUANT_SUFFIX):
            base = name[: -len(QUANT_SUFFIX)]
            out[base] = _dequantize(name, value, state.get(base + SCALE_SUFFIX), state.get(base + GROUP_SUFFIX))
        else:
            out[name] = value
    return out

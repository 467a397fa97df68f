"""The one validation layer for the parameters every entry point shares (CLI, Python API, flow parameters).

Each check raises ``ValueError`` whose message names the parameter and says what is allowed, so the
CLI's error boundary can print it as one line and a pydantic validator can re-raise it unchanged.
"""
from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

MAX_SEED = 2**63 - 1
# Guidance beyond this scale only amplifies noise (eq. 6 of Ho & Salimans 2022 extrapolates linearly);
# it also keeps w * (D(y) - D(null)) finite in float32.
MAX_GUIDANCE_SCALE = 100.0
# Steps for the samplers whose step count is not bounded by the training schedule (SDE, PC, Langevin, ODE).
MAX_CONTINUOUS_STEPS = 10_000
# Items a generator samples at once; larger requests run in chunks of this size, so memory stays bounded.
DEFAULT_BATCH_SIZE = 256


def check_finite(name: str, value: Any, low: float | None = None, high: float | None = None) -> float:
    """A real, finite number in [low, high]; bools and strings are refused."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low:g}, got {value:g}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high:g}, got {value:g}")
    return value


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """An integer (not a bool, not a float) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


def check_seed(seed: Any) -> int:
    """A seed: an integer in [0, 2**63 - 1]."""
    return check_int("seed", seed, 0, MAX_SEED)


def check_guidance_scale(scale: Any) -> float:
    """Classifier-free guidance w: finite, in [0, MAX_GUIDANCE_SCALE] (0 = unconditional, 1 = no guidance)."""
    return check_finite("guidance_scale", scale, 0.0, MAX_GUIDANCE_SCALE)


def check_guidance_interval(interval: Any) -> tuple[float, float] | None:
    """None (guide at every noise level) or (sigma_lo, sigma_hi) with 0 <= sigma_lo < sigma_hi, finite."""
    if interval is None:
        return None
    try:
        lo, hi = interval
    except (TypeError, ValueError):
        raise ValueError(f"guidance_interval must be None or (sigma_lo, sigma_hi), got {interval!r}") from None
    lo = check_finite("guidance_interval[0]", lo, 0.0)
    hi = check_finite("guidance_interval[1]", hi, 0.0)
    if not lo < hi:
        raise ValueError(f"guidance_interval must have sigma_lo < sigma_hi, got ({lo:g}, {hi:g})")
    return lo, hi


def check_batch(name: str, size: int, limit: int) -> int:
    """A request of ``size`` items, refused above ``limit`` (the caller's documented cap)."""
    if size < 1:
        raise ValueError(f"{name} must not be empty")
    if size > limit:
        raise ValueError(f"{name} asks for {size} items; at most {limit} per request (split it into several)")
    return size


def check_prompts(prompt: Any, allow_empty: bool = False, max_chars: int = 1000) -> list[str]:
    """A prompt or a list of prompts: strings of valid UTF-8 text, non-empty unless ``allow_empty``."""
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, (list, tuple)) or not prompts:
        raise ValueError(f"prompt must be a string or a non-empty list of strings, got {prompt!r:.80}")
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise ValueError(f"prompt {i} must be a string, got {type(p).__name__}")
        try:
            p.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"prompt {i} is not valid UTF-8 text; pass the prompt as UTF-8") from None
        if not allow_empty and not p.strip():
            raise ValueError(f"prompt {i} is empty; describe what to generate (for unconditional samples use "
                             "guidance_scale=0 with any prompt)")
        if len(p) > max_chars:
            raise ValueError(f"prompt {i} has {len(p)} characters; at most {max_chars}")
    return list(prompts)

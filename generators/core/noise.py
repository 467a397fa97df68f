"""Where the samplers' Gaussian draws come from: a torch generator, or antithetic pairs of paths.

Every stochastic sampler draws z ~ N(0, I) at each step through :func:`standard_normal`. Given a
plain ``torch.Generator`` (or None) that is ``torch.randn``. Given an :class:`AntitheticNoise`, each
draw of a batch of B comes in antithetic pairs: item i + ceil(B / 2) gets minus item i's z, at the
start and at every step. Each item's whole path is still an exact draw of the sampler (every z is
N(0, I) and independent across steps), while a pair's two paths are mirror images, so the mean of a
pair estimates the posterior mean E[x_0 | y] with far less variance than two independent samples:
antithetic variates (Hammersley & Morton 1956) on the Brownian path of the reverse SDE, the
construction that Jia et al. 2025 (arXiv 2506.06185) use for the initial noise of ODE samplers.
"""
from __future__ import annotations

import torch

__all__ = ["AntitheticNoise", "NoiseSource", "antithetic", "standard_normal"]


def antithetic(z: torch.Tensor) -> torch.Tensor:
    """``z`` (B, ...) with item i + ceil(B / 2) replaced by minus item i: antithetic pairs within the
    batch (an odd B leaves its middle item unpaired). Every item is still N(0, I) if ``z`` was."""
    half = (z.shape[0] + 1) // 2
    return torch.cat([z[:half], -z[:z.shape[0] - half]])


class AntitheticNoise:
    """A noise source for :func:`standard_normal` whose every draw is :func:`antithetic` pairs.

    ``generator`` seeds the draws (a CPU generator keeps results equal across devices)."""

    def __init__(self, generator: torch.Generator | None = None) -> None:
        self.generator = generator

    def __call__(self, shape: tuple[int, ...] | torch.Size, dtype: torch.dtype,
                 device: torch.device | str) -> torch.Tensor:
        return antithetic(torch.randn(tuple(shape), generator=self.generator, dtype=dtype)).to(device)

    def __repr__(self) -> str:
        return f"AntitheticNoise({self.generator!r})"


NoiseSource = torch.Generator | AntitheticNoise | None


def standard_normal(shape: tuple[int, ...] | torch.Size, source: NoiseSource, dtype: torch.dtype = torch.float32,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """N(0, I) of ``shape`` from ``source``: ``torch.randn`` with a generator (or None), or antithetic pairs."""
    if isinstance(source, AntitheticNoise):
        return source(shape, dtype, device)
    return torch.randn(tuple(shape), generator=source, dtype=dtype).to(device)


def torch_generator(source: NoiseSource) -> torch.Generator | None:
    """The ``torch.Generator`` behind ``source`` (for code that only takes a generator)."""
    return source.generator if isinstance(source, AntitheticNoise) else source

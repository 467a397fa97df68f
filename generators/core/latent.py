"""Latent diffusion (Rombach et al. 2022): diffuse in an autoencoder's latent space z = s * E(x).

Any module with ``encode(x)`` and ``decode(z)`` works; a diffusers ``AutoencoderKL`` is
recognised (its ``latent_dist`` is used, mean by default). The latent scale s is
estimated from data so that the scaled latents have unit standard deviation
(Rombach et al. 2022, sec. 4.3.2 / appendix G), as the noise schedules assume.
All samplers run on the latents unchanged; only the ends are encoded/decoded.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import torch
from torch import nn


def _latents(out: Any, sample: bool, generator: torch.Generator | None) -> torch.Tensor:
    """Unwrap the encoder output: AutoencoderKL's ``latent_dist``, a tuple, or a tensor."""
    dist = getattr(out, "latent_dist", None)
    if dist is not None:
        return dist.sample(generator) if sample else dist.mode()
    if isinstance(out, (tuple, list)):
        return out[0]
    return out


def _decoded(out: Any) -> torch.Tensor:
    return getattr(out, "sample", out if not isinstance(out, (tuple, list)) else out[0])


class LatentSpace(nn.Module):
    """Maps data to scaled latents and back around an autoencoder.

    Args:
        autoencoder: a module with ``encode`` and ``decode``.
        scale_factor: s in z = s * E(x); ``None`` until :meth:`estimate_scale` is called.
        shift: optional latent mean subtracted before scaling.
    """

    def __init__(self, autoencoder: nn.Module, scale_factor: float | None = None, shift: float = 0.0) -> None:
        super().__init__()
        if not (hasattr(autoencoder, "encode") and hasattr(autoencoder, "decode")):
            raise TypeError("autoencoder must have encode(x) and decode(z) methods")
        self.autoencoder = autoencoder
        self.scale_factor = scale_factor
        self.shift = shift

    @torch.no_grad()
    def estimate_scale(self, batches: Iterable[torch.Tensor], center: bool = False) -> float:
        """Set s = 1 / std of the latents of ``batches`` (and the shift to their mean if ``center``)."""
        zs = [_latents(self.autoencoder.encode(x), False, None).float() for x in batches]
        if not zs:
            raise ValueError("estimate_scale needs at least one batch of data")
        z = torch.cat([t.flatten() for t in zs])
        self.shift = float(z.mean()) if center else 0.0
        self.scale_factor = float(1.0 / (z - self.shift).std().clamp_min(1e-8))
        return self.scale_factor

    def _scale(self) -> float:
        if self.scale_factor is None:
            raise ValueError("latent scale_factor is unset; call estimate_scale(data) or pass scale_factor")
        return self.scale_factor

    def encode(self, x: torch.Tensor, sample: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        z = _latents(self.autoencoder.encode(x), sample, generator)
        return (z - self.shift) * self._scale()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return _decoded(self.autoencoder.decode(z / self._scale() + self.shift))

    @torch.no_grad()
    def latent_shape(self, data_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Latent shape for a data shape, found by encoding zeros."""
        probe = next(self.autoencoder.parameters(), torch.zeros(()))
        return tuple(self.encode(torch.zeros((1, *data_shape[1:]), device=probe.device, dtype=probe.dtype)).shape[1:])

    def sample(self, sampler: Callable[[torch.Tensor], torch.Tensor], noise: torch.Tensor) -> torch.Tensor:
        """Run ``sampler(noise) -> z_0`` in latent space and decode the result."""
        return self.decode(sampler(noise))

    def loss(self, loss_fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        """Wrap a data-space training loss ``loss_fn(net, x0, *rest)`` to train on latents of x0."""

        def latent_loss(net: Callable, x: torch.Tensor, *rest: Any, **kwargs: Any) -> torch.Tensor:
            with torch.no_grad():
                z = self.encode(x)
            return loss_fn(net, z, *rest, **kwargs)

        return latent_loss

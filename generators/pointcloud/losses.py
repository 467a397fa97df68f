"""The three training objectives of LION (Zeng et al. 2022, sec. 3.1-3.2) as small callables.

- :class:`VAELoss`: the negative ELBO of the hierarchical VAE, a Laplace (L1) reconstruction of
  every point plus weighted KL terms of both latents (LION eq. 3, with constant KL weights).
- :class:`GlobalPriorLoss`: L_simple (Ho et al. 2020, eq. 14) on the scaled global latent, with
  label/text dropout for classifier-free guidance (Ho & Salimans 2022, Algorithm 1).
- :class:`PointPriorLoss`: L_simple on the scaled latent points, conditioned on the global latent
  (LION eq. 4).

Every loss reads its noise only from the training loop's generator, so a resumed run is exact.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from generators.core.losses import DiffusionLoss
from generators.core.schedules import NoiseSchedule

from .model import GlobalPriorNet, PointPriorNet, PointVAE

# what the point prior learns: samples of q(h | x, z) (LION) or its means (see PointPriorLoss)
POINT_PRIOR_TARGETS: tuple[str, ...] = ("sample", "mean")


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) summed over the last dim (Kingma & Welling 2014, appendix B)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """mu + sigma * eps with eps from ``generator``."""
    eps = torch.randn(mu.shape, generator=generator).to(mu)
    return mu + (0.5 * logvar).exp() * eps


@dataclass
class VAELoss:
    """-ELBO / N = mean_i E_q|x_i - x_hat_i|_1 + w_h mean_i KL(q(h_i|x,z)) + w_z KL(q(z|x)) / N.

    Every term is the summed ELBO divided by the number of points N, so the shape latent's KL is
    shared by the N points it describes; weighting it per shape instead makes z N times dearer
    than h and the VAE puts the whole shape into h (posterior collapse of z).
    """

    kl_weight_z: float
    kl_weight_h: float

    def __call__(self, vae: PointVAE, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        z_mu, z_logvar = vae.global_encoder(x)  # (B, Dz)
        z = reparameterize(z_mu, z_logvar, generator)
        h_mu, h_logvar = vae.encode_points(x, z)  # (B, N, 3 + d)
        h = reparameterize(h_mu, h_logvar, generator)
        x_hat = vae.decode(h, z)  # (B, N, 3)
        rec = (x_hat - x).abs().sum(dim=-1).mean()
        kl_z = gaussian_kl(z_mu, z_logvar).mean() / x.shape[1]
        kl_h = gaussian_kl(h_mu, h_logvar).mean()
        return rec + self.kl_weight_z * kl_z + self.kl_weight_h * kl_h


@dataclass
class GlobalPriorLoss:
    """Denoising loss on z * z_scale; conditions dropped per sample for classifier-free guidance.

    With probability ``cond_drop_prob`` both the label and the text become the learned nulls; the
    other samples keep both, only the label, or only the text, with equal probability, so that one
    network serves label-only, prompt-only, joint and unconditional sampling.
    """

    schedule: NoiseSchedule
    z_scale: float
    captions: Sequence[str]
    cond_drop_prob: float = 0.1
    prediction_type: str = "epsilon"

    def _drop(self, net: GlobalPriorNet, cond: dict[str, Any], generator: torch.Generator | None) -> dict[str, Any]:
        b = cond["labels"].shape[0]
        none = torch.rand((b,), generator=generator) < self.cond_drop_prob
        mode = torch.randint(0, 3, (b,), generator=generator)  # 0 both, 1 label only, 2 text only
        has_text = net.text_encoder is not None
        keep_label = ~none & ((mode != 2) | (not has_text))
        labels = torch.where(keep_label.to(cond["labels"].device), cond["labels"], net.label_encoder.null(b, cond["labels"].device))
        out: dict[str, Any] = {"labels": labels}
        if has_text:
            keep_text = (~none & (mode != 1)).to(cond["text"].tokens.device)
            out["text"] = cond["text"].where(keep_text, net.text_encoder.null(1, cond["text"].tokens.device))
        return out

    def __call__(self, net: GlobalPriorNet, z_mu: torch.Tensor, z_logvar: torch.Tensor, labels: torch.Tensor,
                 caption_ids: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        z = reparameterize(z_mu, z_logvar, generator) * self.z_scale  # (B, Dz)
        cond: dict[str, Any] = {"labels": labels.long()}
        if net.text_encoder is not None:
            cond["text"] = net.text_encoder([self.captions[int(i)] for i in caption_ids.tolist()])
        loss = DiffusionLoss(self.schedule, self.prediction_type,
                             cond_dropout=lambda c, g: self._drop(net, c, g))
        return loss(net, z, cond, generator=generator)


@dataclass
class PointPriorLoss:
    """Denoising loss on h * h_scale given z * z_scale (both drawn from the VAE posterior).

    ``target="mean"`` trains on the posterior means of h instead of its samples. With a fixed spread
    (``PointVAE`` ``h_std``) the decoder is trained to remove noise of that size, and does so only in part:
    decoding posterior *samples* of held-out shelves lands 3.9x as far from their points as decoding the
    means (median 0.034 against 0.0087; README: "The point prior learns the posterior means"). A prior of
    the means puts its own error in the place of that noise instead of adding to it. Measured: a point
    prior fine-tuned on the means kept the given-z 1-NNA-CD of one fine-tuned on samples (0.66).

    ``points_per_shape > 0`` trains on a random subset of that many latent points of each shape, drawn
    afresh every step: at a fixed cost per step (shapes x points) a batch then holds more shapes, hence
    more global latents and more noise levels (one t per shape), and each shape's latents come from all
    its stored points rather than one fixed subset. The network acts per point with a set mean as its
    only context, so it samples any number of points afterwards.
    """

    schedule: NoiseSchedule
    z_scale: float
    h_scale: float
    prediction_type: str = "epsilon"
    points_per_shape: int = 0
    target: str = "sample"

    def __post_init__(self) -> None:
        if self.points_per_shape < 0:
            raise ValueError(f"points_per_shape must be >= 0 (0: every latent point), got {self.points_per_shape}")
        if self.target not in POINT_PRIOR_TARGETS:
            raise ValueError(f"target must be one of {POINT_PRIOR_TARGETS}, got {self.target!r}")

    def __call__(self, net: PointPriorNet, h_mu: torch.Tensor, h_logvar: torch.Tensor, z_mu: torch.Tensor,
                 z_logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        n = h_mu.shape[1]
        if 0 < self.points_per_shape < n:
            pick = torch.rand((h_mu.shape[0], n), generator=generator).argsort(dim=1)[:, : self.points_per_shape]
            pick = pick.to(h_mu.device)  # (B, k) indices of each shape's subset
            rows = torch.arange(h_mu.shape[0], device=h_mu.device)[:, None]
            h_mu, h_logvar = h_mu[rows, pick], h_logvar[rows, pick]
        z = reparameterize(z_mu, z_logvar, generator) * self.z_scale  # (B, Dz)
        if self.target == "sample":
            h_mu = reparameterize(h_mu, h_logvar, generator)
        h = h_mu * self.h_scale  # (B, N, 3 + d)
        return DiffusionLoss(self.schedule, self.prediction_type)(net, h, z, generator=generator)


class PointSubsets:
    """A BatchSource of shapes (M, N_store, 3): random shapes, each a random subset of ``num_points`` points."""

    def __init__(self, points: torch.Tensor, num_points: int) -> None:
        if points.ndim != 3 or points.shape[1] < num_points:
            raise ValueError(f"points must be (M, >= {num_points}, 3), got {tuple(points.shape)}")
        self.points = points
        self.num_points = num_points

    def batch(self, generator: torch.Generator, batch_size: int) -> tuple[torch.Tensor, ...]:
        idx = torch.randint(0, len(self.points), (batch_size,), generator=generator)
        n_store = self.points.shape[1]
        perm = torch.rand((batch_size, n_store), generator=generator).argsort(dim=1)[:, : self.num_points]
        return (self.points[idx[:, None], perm],)  # (B, N, 3)

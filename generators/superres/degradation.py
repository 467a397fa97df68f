"""The degradation y = A x (bicubic or area downsampling) and the data-consistency projection.

A is linear and separable, A x = A_h x A_w^T with per-axis matrices A_h (h x H) and A_w (w x W). The
projection onto {x : A x = y} is x - A^+ (A x - y) with the pseudo-inverse A^+ = A^T (A A^T)^{-1}
(DDNM, Wang et al. 2023, eq. 12-13; ILVR, Choi et al. 2021, eq. 8, uses the same range/null-space
split). (A A^T)^{-1} factorises per axis into two small matrices on the low-resolution grid, A x is
the downsampling itself and A^T its adjoint (the autograd transpose of ``downsample``), so the
projection costs a few passes over the image whatever its size. Applied to the denoiser's x_0
estimate, it hands every sampler a prediction whose downsampling equals the input exactly.
"""
from __future__ import annotations

import torch

from evaluation.superres import check_degradation, downsample


def axis_matrix(n: int, scale: int, kind: str) -> torch.Tensor:
    """The (n / scale, n) float64 matrix of one axis of ``downsample`` (read off basis vectors)."""
    # A width of 4 that is kept as is: torch's antialiased kernels mishandle a size-1 axis.
    basis = torch.eye(n, dtype=torch.float64).view(n, 1, n, 1).expand(n, 1, n, 4).contiguous()
    return _down_height(basis, scale, kind)[:, 0, :, 0].T.contiguous()


def _down_height(x: torch.Tensor, scale: int, kind: str) -> torch.Tensor:
    import torch.nn.functional as F

    size = (x.shape[-2] // scale, x.shape[-1])
    if kind == "area":
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)


class Degradation:
    """Downsampling by ``scale`` (``kind`` bicubic or area) of (B, C, H, W) images, with its projection.

    Args:
        kind: "bicubic" or "area".
        scale: the integer factor.
        size: (H, W) of the high-resolution images, multiples of ``scale``.
    """

    def __init__(self, kind: str, scale: int, size: tuple[int, int], device: torch.device | str = "cpu") -> None:
        self.kind = check_degradation(kind)
        self.scale = int(scale)
        self.size = (int(size[0]), int(size[1]))
        if self.size[0] % self.scale or self.size[1] % self.scale:
            raise ValueError(f"size {self.size} must be a multiple of scale={self.scale}")
        gram_inv = []
        for n in self.size:
            a = axis_matrix(n, self.scale, self.kind)  # (n / s, n)
            gram_inv.append(torch.linalg.inv(a @ a.T).float().to(device))  # (n / s, n / s)
        self.gram_inv_h, self.gram_inv_w = gram_inv

    def down(self, x: torch.Tensor) -> torch.Tensor:
        """A x: (B, C, H, W) -> (B, C, H / s, W / s)."""
        return downsample(x, self.scale, self.kind)

    def adjoint(self, v: torch.Tensor) -> torch.Tensor:
        """A^T v: (B, C, H / s, W / s) -> (B, C, H, W), the exact transpose of :meth:`down`."""
        with torch.enable_grad():
            z = torch.zeros((*v.shape[:2], *self.size), dtype=v.dtype, device=v.device, requires_grad=True)
            (grad,) = torch.autograd.grad(self.down(z), z, v)
        return grad

    def pinv(self, v: torch.Tensor) -> torch.Tensor:
        """A^+ v = A^T (A A^T)^{-1} v, with (A A^T)^{-1} applied per axis on the low-res grid."""
        u = self.gram_inv_h.to(v) @ v @ self.gram_inv_w.to(v)  # both Gram inverses are symmetric
        return self.adjoint(u)

    def project(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x - A^+ (A x - y): the closest x' (in L2) to ``x`` with A x' = y (DDNM, eq. 13)."""
        if x.shape[-2:] != self.size:
            raise ValueError(f"x is {tuple(x.shape[-2:])}, the degradation was built for {self.size}")
        return x - self.pinv(self.down(x) - y.to(x))

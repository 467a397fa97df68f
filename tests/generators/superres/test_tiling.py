"""The degradation operator, its projection, and seamless tiling."""
import numpy as np
import pytest
import torch

from evaluation.superres import downsample
from generators.core.pipeline import DiffusionConfig
from generators.superres import SuperResolver
from generators.superres.data import load_photo
from generators.superres.degradation import Degradation
from generators.superres.model import SRNet
from generators.superres.tiling import ramp_window, tile_spans


@pytest.mark.parametrize("kind", ["bicubic", "area"])
@pytest.mark.parametrize("scale,size", [(4, (64, 48)), (2, (30, 18))])
def test_projection_is_exact_and_idempotent(kind, scale, size):
    g = torch.Generator().manual_seed(0)
    op = Degradation(kind, scale, size)
    x = torch.randn(2, 3, *size, generator=g)
    y = torch.randn(2, 3, size[0] // scale, size[1] // scale, generator=g)
    xp = op.project(x, y)
    assert torch.allclose(op.down(xp), y, atol=1e-5)
    assert torch.allclose(op.project(xp, y), xp, atol=1e-5)
    assert torch.equal(op.down(x), downsample(x, scale, kind))
    v = torch.randn(2, 3, size[0] // scale, size[1] // scale, generator=g)  # <A x, v> = <x, A^T v>
    assert torch.allclose((op.down(x) * v).sum(), (x * op.adjoint(v)).sum(), rtol=1e-4)
    # x - xp lies in the row space of A: projecting changes nothing that A cannot see
    null = torch.randn(2, 3, *size, generator=g)
    null = null - op.pinv(op.down(null))
    assert torch.allclose(op.down(null), torch.zeros_like(y), atol=1e-5)
    assert torch.allclose(((x - xp) * null).sum(), torch.tensor(0.0), atol=1e-3)


def test_tile_spans_cover_aligned_and_overlap():
    spans = tile_spans(200, 64, 16, 8)
    assert spans[0][0] == 0 and spans[-1][1] == 200
    assert all(s % 8 == 0 for s, _ in spans)
    assert all(a[1] - b[0] >= 16 for a, b in zip(spans, spans[1:]))
    assert tile_spans(40, 64, 16, 8) == [(0, 40)]
    w = ramp_window(64, 16, True, True)
    assert w[16:48].eq(1).all() and w[0] < 0.01 and w[-1] < 0.01


def _random_resolver() -> SuperResolver:
    """A tiny network with every weight random (zero-initialised layers included), so tiles matter."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = SRNet(channels=3, scale=4, residual_scale=0.1, patch_size=4, block_channels=(8, 16), blocks_per_level=1)
        with torch.no_grad():
            for p in model.parameters():
                if p.ndim > 1 and p.abs().sum() == 0:
                    p.normal_(0, 0.05)
    return SuperResolver(model, DiffusionConfig(prediction_type="v_prediction", cond_drop_prob=0.1))


@pytest.fixture(scope="module")
def random_sr():
    return _random_resolver()


@pytest.fixture(scope="module")
def low_res():
    return torch.nn.functional.interpolate(load_photo("astronaut")[None, :, 100:356, 200:456], size=(64, 64), mode="area")


def _column_error(sr, low, tile, overlap):
    """Per-column mean |D_tiled - D_whole| of one denoiser evaluation, in 0..255 image units."""
    r = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))

    @torch.no_grad()
    def denoise(t, o):
        d, _ = sr.consistent_denoiser(low, None, 1.0, None, 0.0, t, o, torch.Generator().manual_seed(1))
        return d(r, torch.tensor([1.0]))

    diff = (denoise(tile, overlap) - denoise(1024, 0)) * sr.model.config.residual_scale * 127.5
    return diff.abs().mean(dim=(0, 1, 2))  # (W,)


def test_blended_tiles_leave_no_seam_where_hard_tiles_do(random_sr, low_res):
    blended = _column_error(random_sr, low_res, 128, 64)
    hard = _column_error(random_sr, low_res, 128, 0)
    # hard tiles: the error piles up at the tile boundary (column 128) -- a visible line
    assert 120 <= int(hard.argmax()) <= 136 and float(hard.max()) > 1.0
    # blended tiles: nowhere near that, and no column stands out
    assert float(blended.max()) < 0.3 * float(hard.max())
    assert float(blended.max()) < 0.5


def test_tiled_upscale_matches_the_whole_image(random_sr, low_res):
    kw = dict(num_inference_steps=3, sampler="ddim", seed=0, degradation="bicubic")
    whole = random_sr.upscale_tensor(low_res, tile_size=1024, **kw)
    tiled = random_sr.upscale_tensor(low_res, tile_size=128, tile_overlap=64, **kw)
    hard = random_sr.upscale_tensor(low_res, tile_size=128, tile_overlap=0, **kw)
    err = lambda x: ((x - whole).abs() * 127.5).mean(dim=(0, 1, 2))
    assert float(err(tiled).mean()) < 0.5 and float(err(tiled).max()) < 0.6 * float(err(hard).max())
    low = ((low_res[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
    from evaluation.superres import consistency_psnr

    out = ((tiled[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
    assert consistency_psnr(out, low, 4, "bicubic") > 40  # the projection is global, tiles or not


def test_a_hybrids_regression_estimate_is_tiled_without_seams(low_res):
    """R(y) of a hybrid is computed per tile and blended: close to the whole-image R(y), and the whole
    upscale still tiles like the plain network's."""
    plain = _random_resolver()
    config = {k: v for k, v in plain.model.config.items() if not k.startswith("_")}
    with torch.random.fork_rng():
        torch.manual_seed(1)
        model = SRNet(**{**config, "mean_config": config})
        with torch.no_grad():
            for p in model.parameters():
                if p.ndim > 1 and p.abs().sum() == 0:
                    p.normal_(0, 0.05)
    sr = SuperResolver(model, plain.diffusion)
    cond = sr.model.conditioner.eval()(low_res, (256, 256), aug_level=0.0)
    levels = torch.zeros(1)
    mean = lambda tile, overlap, ens=False: sr._mean_image(cond.image, levels, None, tile, overlap, ens)
    whole = mean(1024, 0)
    assert torch.allclose(whole, sr.model.mean_net.regression_image(cond.image, levels))  # one tile: exact
    assert not torch.allclose(whole, cond.image, atol=1e-2)  # the regressor changes the image
    col = lambda x: ((x - whole).abs() * 127.5).mean(dim=(0, 1, 2))
    blended, hard = col(mean(128, 64)), col(mean(128, 0))
    assert float(hard.max()) > 0.3 and float(blended.max()) < 0.5 * float(hard.max())
    kw = dict(num_inference_steps=2, sampler="ddim", seed=0, degradation="bicubic")
    out_whole, out_tiled = sr.upscale_tensor(low_res, tile_size=1024, **kw), sr.upscale_tensor(low_res, tile_size=128, tile_overlap=64, **kw)
    assert float(((out_tiled - out_whole).abs() * 127.5).mean()) < 0.5
    # the geometric self-ensemble: another estimate, and one that turns with the input
    from generators.superres.generator import dihedral
    ens = mean(1024, 0, True)
    assert not torch.allclose(ens, whole, atol=1e-3)
    turned = sr._mean_image(dihedral(cond.image, 1, True), levels, None, 1024, 0, True)
    assert torch.allclose(turned, dihedral(ens, 1, True), atol=1e-5)


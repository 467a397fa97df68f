"""The shipped ``data/checkpoints/sr-x4`` on a held-out photo: better than bicubic, sharp, consistent."""
from pathlib import Path

import numpy as np
import pytest

from evaluation.superres import bicubic_upsample, consistency_psnr, downsample_array, hf_energy_ratio, psnr
from generators.superres import SuperResolver
from generators.superres.data import HELD_OUT, load_photo_uint8
from generators.superres.evaluate import centre_crop

SHIPPED = Path(__file__).resolve().parents[3] / "data" / "checkpoints" / "sr-x4"


@pytest.mark.skipif(not (SHIPPED / "model.safetensors").is_file(), reason="shipped sr-x4 not present")
def test_shipped_sr_x4_beats_bicubic_on_a_held_out_photo():
    assert "coffee" in HELD_OUT
    high = centre_crop(load_photo_uint8("coffee"), 96)
    low = downsample_array(high, 4, "bicubic")
    sr = SuperResolver.from_pretrained(SHIPPED)
    out = sr(image=low, num_samples=4, num_inference_steps=10, seed=0)
    mean = np.stack(out.images).astype(np.float64).mean(0)
    bicubic = bicubic_upsample(low, 4)
    assert psnr(mean, high, 4) > psnr(bicubic, high, 4) + 0.3
    assert hf_energy_ratio(out.images[0], high, 4) > 5 * hf_energy_ratio(bicubic, high, 4)
    assert consistency_psnr(out.images[0], low, 4, "bicubic") > 35.0

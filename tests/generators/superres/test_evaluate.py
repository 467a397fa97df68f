"""Metrics on arrays, and the family's evaluations on tiny models (values in range, held-out photos only)."""
import numpy as np
import pytest

from evaluation.superres import bicubic_upsample, consistency_psnr, downsample_array, hf_energy_ratio, psnr, ssim
from generators.superres.data import load_photo_uint8
from generators.superres.evaluate import evaluate_cascade, evaluate_superres, train_crop_classifier


def test_metrics_on_known_cases():
    high = load_photo_uint8("coffee")[100:228, 200:328]
    low = downsample_array(high, 4, "bicubic")
    bicubic = bicubic_upsample(low, 4)
    assert psnr(high, high) == 100.0
    noisy = np.clip(high.astype(int) + 4, 0, 255).astype(np.uint8)
    assert abs(psnr(noisy, high) - 10 * np.log10(255**2 / 16)) < 0.5
    assert 20 < psnr(bicubic, high, border=4) < 40 and 0 < ssim(bicubic, high, 4) < 1
    assert hf_energy_ratio(high, high, 4) == pytest.approx(1.0)
    assert hf_energy_ratio(bicubic, high, 4) < 0.3  # bicubic holds almost nothing above the low-res Nyquist
    assert consistency_psnr(high.astype(np.float64), low, 4, "bicubic") > 45  # the original is consistent
    assert consistency_psnr(bicubic, low, 4, "bicubic") < consistency_psnr(high, low, 4, "bicubic")
    with pytest.raises(ValueError, match="multiple of scale"):
        downsample_array(high[:10], 4)
    with pytest.raises(ValueError, match="same shape"):
        psnr(high, low)


def test_evaluate_superres_on_a_tiny_model(tiny_sr):
    m = evaluate_superres(tiny_sr, photos=("coffee", "camera"), crop=32, num_samples=2, num_inference_steps=2)
    for kind in ("bicubic", "area"):
        r = m[kind]
        assert 10 < r["psnr_single"] < 60 and 10 < r["psnr_mean"] < 60 and 10 < r["psnr_bicubic"] < 60
        assert -1 <= r["ssim_single"] <= 1 and -1 <= r["ssim_mean"] <= 1
        assert 0 <= r["hf_bicubic"] < r["hf_single"] * 10
        assert r["consistency_single"] > 35 > r["consistency_bicubic"] - 20
        assert set(r["per_photo"]) == {"coffee", "camera"}
        assert isinstance(r["targets"]["met"], bool)
        assert 10 < r["psnr_mean_iid"] < 60  # antithetic by default, iid samples beside
    assert m["antithetic"] is True and m["self_ensemble"] is None  # a plain network: no regressor to ensemble
    iid = evaluate_superres(tiny_sr, photos=("coffee",), crop=32, num_samples=2, num_inference_steps=2,
                            antithetic=False, degradations=("bicubic",))
    assert "psnr_mean_iid" not in iid["bicubic"] and iid["antithetic"] is False
    with pytest.raises(ValueError, match="held-out photos"):
        evaluate_superres(tiny_sr, photos=("gravel",), crop=32)


def test_classifier_and_cascade_evaluation(tiny_cascade, tmp_path):
    metrics = train_crop_classifier(tmp_path / "clf", "tiny")
    assert metrics["classes"] == ["brick", "grass", "gravel"]
    assert all(0 <= metrics[f"held_out_accuracy_{r}px"] <= 1 for r in (8, 16, 32))
    result = evaluate_cascade(tiny_cascade, tmp_path / "clf", preset="tiny", per_prompt=3, num_inference_steps=2)
    for key in ("stage0_8px", "stage1_16px", "stage2_32px"):
        assert result[key]["fd"] >= 0 and result[key]["fd_real_baseline"] >= 0
        assert 0 <= result[key]["prompt_accuracy"] <= 1

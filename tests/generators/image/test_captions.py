import numpy as np
import pytest
import torch

from generators.image.captions import (EVAL_TEMPLATES, HIGH, LOW, MID, TRAIN_TEMPLATES, AttributeBins, caption,
                                       eval_prompts, measure_attributes, parse_caption_attributes)


def _canvas() -> torch.Tensor:
    return -torch.ones(1, 1, 16, 16)


def test_thickness_slant_width_measured_from_pixels():
    thin, thick = _canvas(), _canvas()
    thin[..., 2:14, 7] = 1
    thick[..., 2:14, 6:10] = 1
    slanted = _canvas()
    for r in range(2, 14):  # top leans right
        slanted[..., r, 14 - r] = 1
    wide = _canvas()
    wide[..., 2:14, 3] = 1
    wide[..., 2:14, 12] = 1
    a = measure_attributes(torch.cat([thin, thick, slanted, wide]))
    assert a[1, 0] > 2 * a[0, 0]  # thickness
    assert a[2, 1] > 0.5 and abs(a[0, 1]) < 1e-6  # slant
    assert a[3, 2] > 3 * max(a[0, 2], 0.1)  # width
    with pytest.raises(ValueError, match="images must be"):
        measure_attributes(torch.zeros(2, 16, 16))


def test_bins_and_captions_round_trip():
    values = np.array([[1.0, 0.0, 1.0], [2.0, 0.1, 2.0], [3.0, 0.2, 3.0]] * 2)
    labels = np.array([7, 7, 7, 2, 2, 2])
    edges = np.zeros((10, 3, 2))
    edges[:] = [[1.5, 2.5], [0.05, 0.15], [1.5, 2.5]]
    b = AttributeBins(edges).bin(values, labels)
    assert b[:3].tolist() == [[LOW] * 3, [MID] * 3, [HIGH] * 3]
    assert caption(7, (HIGH, HIGH, MID)) == "a thick, slanted seven"
    assert caption(2, (LOW, LOW, MID), TRAIN_TEMPLATES[1]) == "two, thin and upright"
    assert caption(7, (MID, MID, MID)) == "a seven"
    assert parse_caption_attributes("please draw the number 2; make it thin and wide") == {"thickness": LOW, "width": HIGH}
    with pytest.raises(ValueError, match="label must be a digit"):
        caption(12, (MID, MID, MID))


def test_eval_prompts_use_held_out_phrasings():
    items = eval_prompts(40, seed=0)
    train_set = {caption(d, b, t) for _, d, b in items for t in TRAIN_TEMPLATES}
    assert all(p not in train_set for p, _, _ in items)
    assert [d for _, d, _ in items][:10] == list(range(10))
    assert all(any(b != MID for b in bins) for _, _, bins in items)
    assert len(EVAL_TEMPLATES) >= 2

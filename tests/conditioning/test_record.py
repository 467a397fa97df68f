import pytest
import torch

from conditioning import ClassLabelEncoder, ConditioningRecord
from conditioning.record import drop_mask


def _rec(b: int, length: int, d: int = 4, fill: float = 1.0) -> ConditioningRecord:
    return ConditioningRecord(torch.full((b, length, d), fill), torch.ones(b, length, dtype=torch.bool), torch.full((b, d), fill))


def test_cat_pads_shorter_record_with_masked_zeros():
    out = _rec(2, 3).cat(_rec(1, 1, fill=2.0))
    assert out.tokens.shape == (3, 3, 4)
    assert out.mask.tolist()[2] == [True, False, False]
    assert torch.equal(out.tokens[2, 1:], torch.zeros(2, 4))


def test_where_takes_other_where_keep_is_false():
    a, null = _rec(3, 2), _rec(1, 1, fill=-1.0)
    out = a.where(torch.tensor([True, False, True]), null)
    assert torch.equal(out.pooled[1], torch.full((4,), -1.0))
    assert out.mask[1].tolist() == [True, False]
    assert torch.equal(out.tokens[0], a.tokens[0])


def test_drop_mask_extremes_and_bad_p():
    assert drop_mask(50, 0.0).all() and not drop_mask(50, 1.0).any()
    with pytest.raises(ValueError, match="p must be in"):
        drop_mask(3, 1.5)


def test_mask_shape_checked():
    with pytest.raises(ValueError, match="mask"):
        ConditioningRecord(torch.zeros(2, 3, 4), torch.ones(2, 2, dtype=torch.bool), torch.zeros(2, 4))


def test_class_label_record_cat_with_guidance_batching():
    enc = ClassLabelEncoder(num_classes=10, embedding_dim=8)
    rec = enc(torch.tensor([1, 2])).cat(enc(enc.null(2)))
    assert rec.tokens.shape == (4, 1, 8)

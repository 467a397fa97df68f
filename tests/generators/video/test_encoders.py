"""The two encoders this family added to conditioning/: a scalar (motion) and known frames."""
import pytest
import torch

from conditioning.frames import check_known, known_frames, no_known_frames
from conditioning.scalar import ScalarEncoder


def test_scalar_encoder_record_null_and_drop():
    torch.manual_seed(0)
    enc = ScalarEncoder(dim=8, min_value=0.0, max_value=4.0, name="motion")
    rec = enc([0.5, 3.0])
    assert rec.tokens.shape == (2, 1, 8) and rec.pooled.shape == (2, 8) and rec.mask.all()
    assert not torch.allclose(rec.pooled[0], rec.pooled[1])
    null = enc.null(2)
    dropped = enc.drop(rec, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(dropped.pooled, null.pooled)
    assert torch.equal(enc.drop(rec, 0.0).pooled, rec.pooled)


@pytest.mark.parametrize("values", [[5.0], [-1.0], [float("nan")], [], "fast"])
def test_scalar_encoder_refuses_bad_values(values):
    enc = ScalarEncoder(dim=8, max_value=4.0, name="motion")
    with pytest.raises(ValueError, match="motion"):
        enc(values)


def test_known_frames_places_frames_and_mask():
    frames = torch.randn(2, 3, 5, 4, 4)
    known = torch.tensor([[True, False, False, False, False], [True, False, True, False, True]])
    ctx = known_frames(frames, known)
    assert ctx.shape == (2, 4, 5, 4, 4)
    assert torch.equal(ctx[0, :3, 0], frames[0, :, 0]) and (ctx[0, :3, 1:] == 0).all()
    assert torch.equal(ctx[:, 3, :, 0, 0], known.float())
    assert torch.equal(ctx[1, :3, 2], frames[1, :, 2]) and (ctx[1, :3, 3] == 0).all()
    noisy = known_frames(frames, known, aug_level=0.5, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(noisy[0, :3, 0], frames[0, :, 0]) and (noisy[0, :3, 1:] == 0).all()
    assert (no_known_frames(2, 3, 5, 4, 4) == 0).all()


def test_known_frames_checks_its_arguments():
    with pytest.raises(ValueError, match="frames"):
        check_known(torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="known"):
        check_known(torch.zeros(2, 1, 3, 4, 4), torch.zeros(2, 4, dtype=torch.bool))

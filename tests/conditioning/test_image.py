import pytest
import torch

from conditioning.image import FirstFrameEncoder, FrameRecognizer, LowResConditioner, noise_augment


def test_low_res_upsampled_and_level_zero_is_clean():
    cond = LowResConditioner(channels=1, embedding_dim=16).eval()
    low = torch.rand(2, 1, 4, 4) * 2 - 1
    out = cond(low, 8, aug_level=0.0)
    assert out.image.shape == (2, 1, 8, 8) and out.record.pooled.shape == (2, 16)
    assert torch.allclose(out.image, cond.upsample(low, 8))
    noisy = cond(low, 8, aug_level=0.5, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(noisy.image, out.image)
    assert not torch.allclose(noisy.record.pooled, out.record.pooled)


def test_training_mode_draws_levels_eval_uses_sample_level():
    cond = LowResConditioner(channels=1, embedding_dim=8, sample_aug_level=0.2)
    low = torch.zeros(4, 1, 4, 4)
    train = cond.train()(low, 8, generator=torch.Generator().manual_seed(0)).record.pooled
    assert not torch.allclose(train[0], train[1])
    evald = cond.eval()(low, 8).record.pooled
    assert torch.allclose(evald, cond(low, 8, aug_level=0.2).record.pooled)


def test_noise_augment_variance():
    x = torch.zeros(4000, 1, 1, 1)
    z = noise_augment(x, torch.full((4000,), 1.0), torch.Generator().manual_seed(0))
    assert abs(z.std().item() - 1.0) < 0.05


def test_low_res_drop_and_null():
    cond = LowResConditioner(channels=1, embedding_dim=8).eval()
    c = cond(torch.rand(3, 1, 4, 4), 8)
    d = cond.drop_condition(c, 1.0)
    assert torch.equal(d.image, torch.zeros_like(c.image))
    assert torch.equal(d.record.pooled, cond.null(3).pooled)
    assert cond.null_condition(2, 8).cat(c).image.shape == (5, 1, 8, 8)


def test_low_res_bad_inputs():
    cond = LowResConditioner(channels=1, embedding_dim=8)
    with pytest.raises(ValueError, match="low_res must have 1 channel"):
        cond(torch.zeros(1, 3, 4, 4), 8)
    with pytest.raises(ValueError, match="only upsamples"):
        cond(torch.zeros(1, 1, 8, 8), 4)
    with pytest.raises(ValueError, match="aug_level"):
        cond(torch.zeros(1, 1, 4, 4), 8, aug_level=2.0)
    with pytest.raises(ValueError, match="mode"):
        LowResConditioner(mode="lanczos")


def test_first_frame_tokens_and_concat():
    enc = FirstFrameEncoder(channels=1, dim=16, patch_size=4)
    rec = enc(torch.rand(2, 1, 8, 8))
    assert rec.tokens.shape == (2, 4, 16) and rec.mask.all() and rec.pooled.shape == (2, 16)
    frame = torch.rand(2, 1, 8, 8)
    frames = enc.concat_frames(frame, num_frames=5)
    assert frames.shape == (2, 1, 5, 8, 8) and torch.equal(frames[:, :, 3], frame)
    assert torch.equal(enc.drop(rec, 1.0).pooled, enc.null(2).pooled)
    with pytest.raises(ValueError, match="multiples of patch_size=4"):
        enc(torch.rand(1, 1, 6, 6))
    with pytest.raises(ValueError, match="num_frames"):
        enc.concat_frames(frame, 0)


def test_frame_recognizer_labels_and_its_null():
    torch.manual_seed(0)
    rec = FrameRecognizer(channels=1, num_classes=10, width=4)
    frames = torch.rand(3, 1, 16, 16) * 2 - 1
    assert rec(frames).shape == (3, 11)
    with torch.no_grad():  # class 7 at p = e^3 / (e^3 + 10) = 0.67 for every frame
        rec.head.weight.zero_()
        rec.head.bias.copy_(torch.arange(11) == 7).mul_(3.0)
    labels, top = rec.labels(frames)
    assert labels.tolist() == [7, 7, 7] and torch.allclose(top, torch.full((3,), 0.6676), atol=1e-3)
    labels, _ = rec.labels(frames, min_confidence=0.9)  # not sure enough: the null label
    assert labels.tolist() == [10, 10, 10]
    with torch.no_grad():  # "none of them" wins: the null label
        rec.head.bias.copy_(torch.arange(11) == 10).mul_(20.0)
    assert rec.labels(frames)[0].tolist() == [10, 10, 10]
    with pytest.raises(ValueError, match="min_confidence"):
        rec.labels(frames, min_confidence=1.5)
    with pytest.raises(ValueError, match="channel"):
        rec(torch.zeros(1, 3, 16, 16))


def test_low_res_degradation_kind_is_embedded_and_starts_neutral():
    cond = LowResConditioner(channels=1, embedding_dim=8, num_degradations=2).eval()
    low = torch.rand(2, 1, 4, 4)
    # zero-initialised: a kind added to a trained conditioner changes nothing until training moves it
    assert torch.equal(cond(low, 8, degradation=1).record.pooled, cond(low, 8).record.pooled)
    with torch.no_grad():
        cond.degradation_embedding.weight.normal_()
    a, b = cond(low, 8, degradation=0).record.pooled, cond(low, 8, degradation=1).record.pooled
    assert not torch.allclose(a, b)
    mixed = cond(low, 8, degradation=torch.tensor([0, 1])).record.pooled
    assert torch.allclose(mixed[0], a[0]) and torch.allclose(mixed[1], b[1])
    with pytest.raises(ValueError, match="degradation must be an index"):
        cond(low, 8, degradation=2)
    with pytest.raises(ValueError, match="num_degradations=0"):
        LowResConditioner(channels=1, embedding_dim=8)(low, 8, degradation=0)
    with pytest.raises(ValueError, match="num_degradations"):
        LowResConditioner(num_degradations=-1)

"""Moving-digits data: determinism, ground truth of captions and motion, bad specs."""
import numpy as np
import pytest
import torch

from evaluation.video import motion_directions
from generators.video.captions import DIRECTIONS, RELATIONS, CaptionSet, eval_prompts
from generators.video.data import ClipSpec, MovingDigits, bounce, digit_sprites, from_uint8, to_uint8
from generators.video.objective import VideoBatches
from generators.video.presets import ConditionMix

SPEC = ClipSpec()


@pytest.fixture(scope="module")
def clips():
    return MovingDigits(SPEC, CaptionSet(SPEC.directions, True), "train")


def test_batches_depend_only_on_the_generator(clips):
    a = clips.sample(torch.Generator().manual_seed(3), 6)
    b = clips.sample(torch.Generator().manual_seed(3), 6)
    c = clips.sample(torch.Generator().manual_seed(4), 6)
    for name in ("clips", "caption_ids", "labels", "motion", "directions", "digits"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert not torch.equal(a.clips, c.clips)
    source = VideoBatches(clips, ConditionMix())
    x1 = source.batch(torch.Generator().manual_seed(9), 3)
    x2 = source.batch(torch.Generator().manual_seed(9), 3)
    assert all(torch.equal(u, v) for u, v in zip(x1, x2))


def test_clip_format_and_captions_match_the_parameters(clips):
    b = clips.sample(torch.Generator().manual_seed(0), 40)
    assert b.clips.shape == (40, 1, 16, 32, 32) and b.clips.min() >= -1 and b.clips.max() <= 1
    names = list(DIRECTIONS)
    for cid, label, d, digits in zip(b.caption_ids.tolist(), b.labels.tolist(), b.directions.tolist(), b.digits.tolist()):
        text = clips.captions.captions[cid]
        if label >= 0:
            assert str(label) in text or ("zero one two three four five six seven eight nine".split()[label] in text)
            assert text.endswith(names[d])
        else:
            assert d >= len(DIRECTIONS) and str(digits[0]) in text and str(digits[1]) in text
    assert (b.labels == -1).any() and (b.labels >= 0).any()


def test_caption_direction_holds_for_the_first_half(clips):
    """No digit meets a wall before frame T/2, so the measured move equals the caption's direction."""
    b = clips.sample(torch.Generator().manual_seed(1), 60)
    one = b.labels >= 0
    vectors = np.array(list(DIRECTIONS.values()))
    moved = motion_directions(b.clips[one, 0], vectors, SPEC.half)
    assert (moved == b.directions[one].numpy()).all()
    assert (b.motion >= SPEC.min_speed - 1e-6).all() and (b.motion <= SPEC.max_speed + 1e-6).all()


def test_held_out_digits_are_other_samples():
    train, _ = digit_sprites("train", 12)
    test, _ = digit_sprites("test", 12)
    assert len(train) + len(test) == 1797
    assert not any(torch.equal(test[0], t) for t in train)


def test_bounce_reflects_off_both_walls():
    path = bounce(torch.tensor([9.0]), torch.tensor([2.0]), 8, 10)[0]
    assert path.tolist() == [9.0, 9.0, 7.0, 5.0, 3.0, 1.0, 1.0, 3.0]


def test_uint8_round_trip(clips):
    x = clips.sample(torch.Generator().manual_seed(0), 2).clips
    u = to_uint8(x)
    assert u.shape == (2, 16, 32, 32, 1) and u.dtype == np.uint8
    assert (from_uint8(u) - x).abs().max() <= 1 / 127.5


def test_eval_prompts_use_held_out_phrasings():
    train = set(CaptionSet(SPEC.directions, True).captions)
    prompts = eval_prompts(30, SPEC.directions) + eval_prompts(6, SPEC.directions, two_digit=True)
    assert not any(p.prompt in train for p in prompts)
    assert [p.digits[0] for p in prompts[:10]] == list(range(10))
    assert {p.direction for p in prompts[30:]} == {len(DIRECTIONS) + i for i in range(len(RELATIONS))}


@pytest.mark.parametrize("kwargs, word", [
    (dict(frame_size=12, digit_size=12), "frame_size"),
    (dict(num_frames=1), "num_frames"),
    (dict(max_speed=9.0), "max_speed"),
    (dict(min_speed=0.0), "speeds"),
    (dict(directions=("sideways",)), "directions"),
    (dict(two_digit_prob=1.5), "two_digit_prob"),
])
def test_bad_clip_specs_name_the_field(kwargs, word):
    with pytest.raises(ValueError, match=word):
        ClipSpec(**kwargs)


def test_two_digit_ids_need_two_digit_captions():
    with pytest.raises(ValueError, match="two_digit_prob"):
        CaptionSet(SPEC.directions, False).pair_id(1, 2, 0, torch.Generator())

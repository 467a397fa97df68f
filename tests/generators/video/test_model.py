"""The spatio-temporal denoiser: shapes, temporal mixing, conditions, the training loss."""
import pytest
import torch

from conditioning.frames import known_frames
from generators.core.losses import DiffusionLoss
from generators.core.schedules import NoiseSchedule
from generators.video import PRESETS
from generators.video.captions import CaptionSet
from generators.video.data import MovingDigits
from generators.video.model import SpatioTemporalUNet, VideoCondition
from generators.video.objective import CaptionTable, VideoDiffusionLoss, known_mask
from generators.video.presets import ConditionMix
from generators.video.autoencoder import build_autoencoder
from generators.video.train import build_model


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    p = PRESETS["tiny"]
    return build_model(p, build_autoencoder(p.autoencoder, 1, p.clip.frame_size), latent_scale=1.0).eval()


def condition(net, b, t, h=8, prompt="a two moving up"):
    c = net.config.in_channels
    rec = net.text_encoder([prompt] * b)
    known = torch.zeros(b, t, dtype=torch.bool)
    return VideoCondition(rec, torch.ones(b, dtype=torch.bool), torch.full((b,), 2), torch.ones(b),
                          torch.ones(b, dtype=torch.bool), known_frames(torch.zeros(b, c, t, h, h), known))


def test_forward_shape_and_single_frames(net):
    x = torch.randn(2, 2, 4, 8, 8)
    with torch.no_grad():
        assert net(x, torch.tensor([10.0, 500.0]), condition(net, 2, 4)).shape == x.shape
        assert net(x[:, :, :1], torch.tensor([10.0, 500.0]), condition(net, 2, 1)).shape == (2, 2, 1, 8, 8)


def test_frames_see_each_other_and_conditions_matter(net):
    """Temporal attention: changing frame 3 changes the output at frame 0; a different prompt changes it too."""
    torch.manual_seed(1)
    # make the zero-initialised pieces non-trivial so the test sees the wiring, not the initialisation
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = torch.randn(1, 2, 4, 8, 8)
    y = x.clone()
    y[:, :, 3] += 1.0
    t = torch.tensor([300.0])
    with torch.no_grad():
        a, b = net(x, t, condition(net, 1, 4)), net(y, t, condition(net, 1, 4))
        c = net(x, t, condition(net, 1, 4, prompt="a seven moving left"))
    assert (a[:, :, 0] - b[:, :, 0]).abs().max() > 1e-4
    assert (a - c).abs().max() > 1e-4


def test_temporal_layers_cross_attend_to_the_prompt_and_older_configs_do_not():
    """With temporal_cross_attention the prompt reaches the temporal layers themselves: with the spatial and
    pooled paths cut (no spatial attention, cond_embedding zeroed), the prompt still changes the output, and
    its gradient reaches the temporal attn2 weights. A config without the key builds the older network."""
    torch.manual_seed(0)
    kw = dict(in_channels=2, block_out_channels=(8, 16), attention_levels=(), temporal_levels=(0, 1), num_heads=2,
              norm_num_groups=4, cond_dim=16)
    cross = SpatioTemporalUNet(**kw, temporal_cross_attention=True)
    with torch.no_grad():
        for name, p in cross.named_parameters():
            p.copy_(torch.zeros_like(p) if name.startswith("cond_embedding") else p + 0.05 * torch.randn_like(p))
    x, t = torch.randn(1, 2, 4, 8, 8), torch.tensor([300.0])
    up, left = condition(cross, 1, 4, prompt="a two moving up"), condition(cross, 1, 4, prompt="a two moving left")
    out = cross(x, t, up)
    assert (out - cross(x, t, left)).abs().max() > 1e-4
    out.square().mean().backward()
    attn2 = [m.temporal.transformer_blocks[0].attn2 for m in cross.modules() if getattr(m, "temporal", None) is not None]
    assert attn2 and all(a is not None and a.to_k.weight.grad.abs().sum() > 0 for a in attn2)
    plain = SpatioTemporalUNet(**kw)
    assert not plain.config.temporal_cross_attention
    assert all(m.temporal.transformer_blocks[0].attn2 is None for m in plain.modules()
               if getattr(m, "temporal", None) is not None)


def test_clips_with_known_frames_drop_their_text_at_their_own_rate():
    """ConditionMix.known_text_drop: image-to-video without a prompt is trained as often as asked."""
    table = CaptionTable(torch.zeros(1, 2, 4), torch.ones(1, 2, dtype=torch.bool), torch.zeros(1, 4))
    mix = ConditionMix(uncond=0.0, text_drop=0.0, first_frame=0.5, prefix=0.0, interleave=0.0, known_text_drop=1.0)
    loss = VideoDiffusionLoss(None, table, mix)
    b = 400
    cond, known = loss.conditions(torch.zeros(b, 2, 4, 8, 8), torch.zeros(b, dtype=torch.long),
                                  torch.zeros(b, dtype=torch.long), torch.ones(b), 10, torch.Generator().manual_seed(0))
    has_known = known.any(1)
    assert 100 < int(has_known.sum()) < 300
    assert not cond.text_keep[has_known].any() and cond.text_keep[~has_known].all()
    with pytest.raises(ValueError, match="known_text_drop"):
        ConditionMix(known_text_drop=1.5)


def test_condition_and_context_shapes_are_checked(net):
    cond = condition(net, 2, 4)
    with pytest.raises(ValueError, match="labels"):
        VideoCondition(cond.text, cond.text_keep, torch.zeros(3, dtype=torch.long), cond.motion, cond.motion_keep,
                       cond.context)
    with pytest.raises(ValueError, match="context"):
        net(torch.randn(2, 2, 3, 8, 8), torch.tensor([1.0, 2.0]), cond)
    with pytest.raises(TypeError, match="VideoCondition"):
        net(torch.randn(2, 2, 4, 8, 8), torch.tensor([1.0, 2.0]), None)
    both = cond.cat(cond)
    assert both.text.batch_size == 4 and both.context.shape[0] == 4


def test_widths_must_fit_heads_and_groups():
    with pytest.raises(ValueError, match="num_heads"):
        SpatioTemporalUNet(in_channels=1, block_out_channels=(6, 12), num_heads=4, norm_num_groups=2)


def test_known_masks():
    mode = torch.tensor([0, 1, 2, 3])
    m = known_mask(6, mode, torch.tensor([1, 1, 3, 1]))
    assert m.tolist() == [[False] * 6, [True] + [False] * 5, [True] * 3 + [False] * 3,
                          [True, False, True, False, True, False]]


def test_loss_excludes_known_frames_and_draws_conditions_from_the_generator(net):
    p = PRESETS["tiny"]
    captions = CaptionSet(p.clip.directions, False)
    table = CaptionTable.build(net.text_encoder, captions.captions)
    clips = MovingDigits(p.clip, captions, "train").sample(torch.Generator().manual_seed(0), 8)
    mix = ConditionMix(uncond=0.0, first_frame=1.0, prefix=0.0, interleave=0.0)
    loss = VideoDiffusionLoss(DiffusionLoss(NoiseSchedule.create()), table, mix)
    x = clips.clips
    cond, known = loss.conditions(x, clips.caption_ids, clips.labels, clips.motion, 10, torch.Generator().manual_seed(0))
    assert known[:, 0].all() and not known[:, 1:].any()
    assert torch.equal(cond.context[:, :1, 0], x[:, :, 0])
    pixel_net = build_model(PRESETS["tiny-pixel"])
    args = (pixel_net, x, clips.caption_ids, clips.labels, clips.motion)
    l1 = loss(*args, generator=torch.Generator().manual_seed(5))
    l2 = loss(*args, generator=torch.Generator().manual_seed(5))
    assert torch.isfinite(l1) and l1.item() == l2.item()
    cond_uncond = ConditionMix(uncond=1.0)
    plain = VideoDiffusionLoss(DiffusionLoss(NoiseSchedule.create()), table, cond_uncond)
    c2, k2 = plain.conditions(x, clips.caption_ids, clips.labels, clips.motion, 10, torch.Generator().manual_seed(0))
    assert not k2.any() and not c2.text_keep.any() and (c2.labels == 10).all() and not c2.motion_keep.any()


def test_latent_presets_carry_their_autoencoder(net):
    assert net.autoencoder is not None and not any(p.requires_grad for p in net.autoencoder.parameters())
    with pytest.raises(ValueError, match="autoencoder"):
        build_model(PRESETS["tiny"])


def test_first_frame_tokens_carry_the_given_frame_to_every_frame():
    """With first_frame_tokens a known frame 0 changes the output at the last frame through the tokens
    alone (temporal layers cut); an unknown frame 0 takes the encoder's null, whatever its pixels."""
    torch.manual_seed(0)
    p = PRESETS["tiny-pixel"]
    from dataclasses import replace
    net = build_model(replace(p, first_frame_tokens=True, first_frame_patch=4, temporal_levels=(),
                              temporal_cross_attention=False)).eval()
    concat = build_model(replace(p, first_frame_concat=True, temporal_levels=(), temporal_cross_attention=False))
    with torch.no_grad():
        for q in net.parameters():
            q.add_(0.05 * torch.randn_like(q))
    assert all(lay.temporal is None for lay in net.down[0]) and net.mid[0].temporal is not None
    for lay in net.mid:  # the mid block always has temporal attention: cut it too
        lay.temporal = None
    b, t = 1, 4
    x = torch.randn(b, 1, t, 16, 16)
    frames = torch.zeros(b, 1, t, 16, 16)
    frames[:, :, 0, 4:12, 4:12] = 1.0
    given = torch.zeros(b, t, dtype=torch.bool)
    given[:, 0] = True

    def cond(context):
        rec = net.text_encoder(["a two moving up"] * b)
        return VideoCondition(rec, torch.ones(b, dtype=torch.bool), torch.full((b,), 2), torch.ones(b),
                              torch.ones(b, dtype=torch.bool), context)

    with torch.no_grad():
        with_frame = net(x, torch.tensor([300.0]), cond(known_frames(frames, given)))
        other = net(x, torch.tensor([300.0]), cond(known_frames(-frames, given)))
        none = net(x, torch.tensor([300.0]), cond(known_frames(frames, torch.zeros_like(given))))
        none2 = net(x, torch.tensor([300.0]), cond(known_frames(-frames, torch.zeros_like(given))))
    assert (with_frame[:, :, -1] - other[:, :, -1]).abs().max() > 1e-4
    assert torch.equal(none, none2)
    rec = net.encode_first_frame(known_frames(frames, torch.zeros_like(given)))
    assert torch.equal(rec.pooled, net.frame_encoder.null(1).pooled)
    # first_frame_concat: frame 0 reaches the last frame through the input channels alone
    for lay in concat.mid:
        lay.temporal = None
    with torch.no_grad():
        for q in concat.parameters():
            q.add_(0.05 * torch.randn_like(q))
        a = concat(x, torch.tensor([300.0]), cond(known_frames(frames, given)))
        b2 = concat(x, torch.tensor([300.0]), cond(known_frames(-frames, given)))
    assert (a[:, :, -1] - b2[:, :, -1]).abs().max() > 1e-4

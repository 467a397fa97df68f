import pytest
import torch
from diffusers import UNet2DModel

from conditioning.control import ControlNetAdapter, unet2d_forward
from generators.image.controlled_unet import ControlledUNet
from generators.core.losses import DiffusionLoss
from generators.core.schedules import NoiseSchedule
from generators.core.training import TrainConfig, train
from generators.image.model import build_model


@pytest.fixture
def base():
    torch.manual_seed(0)
    return build_model("tiny").eval()


def _inputs(b=3):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(b, 1, 8, 8, generator=g)
    control = (torch.rand(b, 1, 8, 8, generator=g) > 0.5).float()
    return x, torch.tensor([3.0, 400.0, 990.0])[:b], control, torch.tensor([1, 7, 10])[:b]


def test_reimplemented_forward_matches_diffusers(base):
    x, t, _, labels = _inputs()
    emb = base.label_encoder(labels).pooled
    assert torch.allclose(unet2d_forward(base.unet, x, t, emb), base.unet(x, t, class_labels=emb).sample, atol=1e-6)
    plain = UNet2DModel(sample_size=8, in_channels=1, out_channels=1, block_out_channels=(8, 16), norm_num_groups=4,
                        down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
                        attention_head_dim=4, layers_per_block=2).eval()
    assert torch.allclose(unet2d_forward(plain, x, t), plain(x, t).sample, atol=1e-6)


def test_zero_convolutions_leave_base_output_unchanged_at_init(base):
    x, t, control, labels = _inputs()
    net = ControlledUNet(base.unet, ControlNetAdapter.from_unet(base.unet), base.label_encoder).eval()
    ref = base(x, t, labels)
    assert torch.equal(net(x, t, {"control": control, "labels": labels}), ref)
    # the adapter is wired in: once the zero convolutions move, the control changes the output
    with torch.no_grad():
        for p in net.adapter.parameters():
            p.add_(0.05 * torch.randn_like(p))
    assert not torch.allclose(net(x, t, {"control": control, "labels": labels}), ref, atol=1e-4)


def test_adapter_copies_encoder_weights(base):
    adapter = ControlNetAdapter.from_unet(base.unet)
    assert torch.equal(adapter.encoder.conv_in.weight, base.unet.conv_in.weight)
    assert torch.equal(adapter.encoder.down_blocks[0].resnets[0].conv1.weight, base.unet.down_blocks[0].resnets[0].conv1.weight)
    assert adapter.encoder.conv_in.weight.data_ptr() != base.unet.conv_in.weight.data_ptr()
    assert all(float(p.detach().abs().max()) == 0 for p in adapter.zero_convs.parameters())
    assert not any(k.startswith("encoder.up_blocks") for k in adapter.state_dict())


def test_training_updates_only_the_adapter(base, tmp_path):
    net = ControlledUNet(base.unet, ControlNetAdapter.from_unet(base.unet), base.label_encoder)
    base_before = {k: v.clone() for k, v in base.state_dict().items()}
    adapter_before = {k: v.clone() for k, v in net.adapter.state_dict().items()}
    loss = DiffusionLoss(NoiseSchedule.create("linear", 1000), "epsilon")
    g = torch.Generator().manual_seed(0)
    images = torch.rand(16, 1, 8, 8, generator=g) * 2 - 1
    labels = torch.randint(0, 10, (16,), generator=g)

    def loss_fn(model, x0, y, generator=None):
        return loss(model, x0, {"control": (x0 > 0).float(), "labels": y}, generator=generator)

    config = TrainConfig(max_steps=2, batch_size=8, learning_rate=1e-2, warmup_steps=1, checkpoint_every=2, cpu=True)
    train(net, loss_fn, (images, labels), config, tmp_path, progress=False)
    for k, v in base.state_dict().items():
        assert torch.equal(v, base_before[k]), f"base weight {k} changed during adapter training"
    changed = [k for k, v in net.adapter.state_dict().items() if not torch.equal(v, adapter_before[k])]
    assert any(k.startswith("zero_convs") for k in changed) and any(k.startswith("encoder.") for k in changed)


def test_adapter_save_load_round_trip(base, tmp_path):
    adapter = ControlNetAdapter.from_unet(base.unet)
    with torch.no_grad():
        adapter.mid_zero_conv.weight.fill_(0.1)
    adapter.save_pretrained(tmp_path)
    again = ControlNetAdapter.from_pretrained(tmp_path)
    x, t, control, labels = _inputs()
    emb = base.label_encoder(labels).pooled
    assert torch.allclose(again(x, t, control, emb)[1], adapter(x, t, control, emb)[1])


def test_bad_inputs_are_named(base):
    net = ControlledUNet(base.unet, ControlNetAdapter.from_unet(base.unet), base.label_encoder)
    x, t, control, labels = _inputs()
    with pytest.raises(ValueError, match="control must be"):
        net(x, t, {"control": control[:, :, :4, :4], "labels": labels})
    with pytest.raises(ValueError, match="'control'"):
        net(x, t, labels)
    with pytest.raises(ValueError, match="'labels'"):
        net(x, t, {"control": control})
    with pytest.raises(TypeError, match="UNet2DModel"):
        ControlNetAdapter.from_unet(base)
    other = build_model("small")
    with pytest.raises(ValueError, match="block_out_channels"):
        ControlledUNet(other.unet, ControlNetAdapter.from_unet(base.unet))

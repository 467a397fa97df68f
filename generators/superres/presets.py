"""Named presets: network size, data and training budget of a super-resolution stage and of the cascade.

``tiny`` runs in seconds for the tests; ``small-hybrid`` (``small`` fine-tuned as ``small-tuned``, plus a
regression copy it diffuses around) is the shipped CPU checkpoint ``data/checkpoints/sr-x4`` and the cascade
preset ``small`` is ``data/checkpoints/cascade``; ``base`` is for a GPU. A preset with ``init_preset`` is a
fine-tune: ``train_superres`` trains (or reuses) that preset first; one with ``mean_steps`` is a hybrid.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from .data import CASCADE_TRAIN, SR_TRAIN, SR_TRAIN_ALL


@dataclass(frozen=True)
class SRPreset:
    """One super-resolution stage: the network, its data and its optimisation."""

    scale: int
    size: int                          # training crop side, high-res pixels
    patch_size: int                    # pixel-unshuffle factor of the network input
    block_channels: tuple[int, ...]
    blocks_per_level: int
    max_steps: int
    batch_size: int
    learning_rate: float
    warmup_steps: int
    checkpoint_every: int
    zoom: tuple[float, float] = (1.0, 1.5)   # photo pixels per training pixel (downscaling augments detail)
    grey_prob: float = 0.2
    max_aug_level: float = 0.1
    sample_aug_level: float = 0.02
    cond_drop_prob: float = 0.0
    prediction_type: str = "v_prediction"
    beta_schedule: str = "linear"
    weighting: str = "min_snr"
    ema_decay: float = 0.999
    num_degradations: int = 0          # 2: the network is told which degradation made its input
    photos: tuple[str, ...] | None = None   # training photos; None: data.SR_TRAIN
    lr_schedule: str = "constant"      # or "cosine" (to 5% of the rate at max_steps)
    init_preset: str | None = None     # fine-tune: train (or reuse) this preset first, start from its weights
    mean_steps: int = 0                # hybrid: first train a regression copy this long (R(y), frozen), then
    mean_learning_rate: float = 3e-4   # diffuse the residual over it; both start from the init_preset's weights
    continues: bool = False            # start from a published checkpoint (train_superres's init_checkpoint)

    @property
    def train_photos(self) -> tuple[str, ...]:
        return tuple(self.photos) if self.photos is not None else SR_TRAIN


@dataclass(frozen=True)
class BasePreset:
    """The cascade's base generator (a class-conditional U-Net at the first resolution)."""

    size: int
    block_out_channels: tuple[int, ...]
    layers_per_block: int
    attention_levels: tuple[int, ...]
    norm_num_groups: int
    max_steps: int
    batch_size: int
    learning_rate: float
    warmup_steps: int
    checkpoint_every: int
    cond_drop_prob: float = 0.1
    prediction_type: str = "epsilon"
    beta_schedule: str = "cosine"
    ema_decay: float = 0.999


@dataclass(frozen=True)
class CascadePreset:
    """A base generator and the super-resolution stages that take it to the final resolution.

    ``zoom`` is the number of photo pixels per final-resolution pixel: a final crop covers
    ``final * zoom`` photo pixels, and every stage is trained on the same views at its own resolution.
    """

    base: BasePreset
    stages: tuple[SRPreset, ...]
    zoom: tuple[float, float]
    names: tuple[str, ...] = CASCADE_TRAIN
    classifier_crops: int = 2400          # real crops per resolution for the feature classifier
    classifier_epochs: int = 8

    @property
    def resolutions(self) -> tuple[int, ...]:
        sizes = [self.base.size]
        for stage in self.stages:
            sizes.append(sizes[-1] * stage.scale)
        return tuple(sizes)

    def zoom_at(self, size: int) -> tuple[float, float]:
        """Photo pixels per pixel for crops of side ``size`` showing the same views as the final crops."""
        factor = self.resolutions[-1] / size
        return (self.zoom[0] * factor, self.zoom[1] * factor)

    def __post_init__(self) -> None:
        for stage, size in zip(self.stages, self.resolutions[1:]):
            if stage.size != size:
                raise ValueError(f"a stage of scale {stage.scale} must train at {size} px, not {stage.size}")


SR_PRESETS: dict[str, SRPreset] = {
    # tests: seconds on one CPU core; condition dropout on, so guidance is exercised
    "tiny": SRPreset(scale=4, size=16, patch_size=4, block_channels=(8, 16), blocks_per_level=1, max_steps=6,
                     batch_size=4, learning_rate=1e-3, warmup_steps=2, checkpoint_every=3, cond_drop_prob=0.1),
    # the first CPU checkpoint (12,000 steps from scratch); "small-tuned" starts from it
    "small": SRPreset(scale=4, size=64, patch_size=4, block_channels=(48, 96, 96), blocks_per_level=2,
                      max_steps=12_000, batch_size=32, learning_rate=4e-4, warmup_steps=300, checkpoint_every=500),
    # for a GPU: larger crops, a finer grid, a wider network
    "base": SRPreset(scale=4, size=128, patch_size=2, block_channels=(128, 256, 256, 512), blocks_per_level=2,
                     max_steps=200_000, batch_size=64, learning_rate=1e-4, warmup_steps=1000, checkpoint_every=5000,
                     zoom=(1.0, 2.0)),
}
# Fine-tunes (init_preset): the same network plus the degradation condition, a cosine learning rate.
# tests: "tiny" fine-tuned
SR_PRESETS["tiny-tuned"] = replace(SR_PRESETS["tiny"], max_steps=4, warmup_steps=1, checkpoint_every=2,
                                   num_degradations=2, lr_schedule="cosine", init_preset="tiny")
# the previous sr-x4: "small" fine-tuned, with scikit-learn's two photos added
SR_PRESETS["small-tuned"] = replace(SR_PRESETS["small"], max_steps=8000, learning_rate=3e-4, warmup_steps=100,
                                    num_degradations=2, photos=SR_TRAIN_ALL, lr_schedule="cosine",
                                    init_preset="small")
# Hybrids (mean_steps): a regression network R(y) trained from the fine-tune's weights, then the fine-tune
# continued as a diffusion of the residual x - R(y) (SRDiff, ResShift). tests: "tiny-tuned" made hybrid
SR_PRESETS["tiny-hybrid"] = replace(SR_PRESETS["tiny-tuned"], mean_steps=3, init_preset="tiny-tuned")
# the shipped data/checkpoints/sr-x4: "small-tuned" made hybrid
SR_PRESETS["small-hybrid"] = replace(SR_PRESETS["small-tuned"], max_steps=8000, mean_steps=9000,
                                     init_preset="small-tuned")
# Continuing a published checkpoint (``init_checkpoint``): a hybrid's regressor trains on as the regression
# stage and its diffusion network as the diffusion stage, over the new regressor, at a lower rate.
SR_PRESETS["small-hybrid-continue"] = replace(SR_PRESETS["small-hybrid"], init_preset=None, continues=True,
                                              mean_steps=3000, mean_learning_rate=1e-4, max_steps=2000,
                                              learning_rate=1e-4, warmup_steps=50)
SR_PRESETS["tiny-hybrid-continue"] = replace(SR_PRESETS["tiny-hybrid"], init_preset=None, continues=True)
# The regressor continued as above, the diffusion network only re-fitted to the new residual scale (a short
# run at a fifth of the rate): "small-hybrid-continue"'s 2,000 diffusion steps at 1e-4 lost more than the
# better regressor gained (README, super-resolution).
SR_PRESETS["small-hybrid-refit"] = replace(SR_PRESETS["small-hybrid-continue"], max_steps=300,
                                           learning_rate=2e-5, warmup_steps=20)

_STAGE = dict(grey_prob=0.0, max_aug_level=0.3, sample_aug_level=0.1, cond_drop_prob=0.1)
CASCADE_PRESETS: dict[str, CascadePreset] = {
    "tiny": CascadePreset(
        base=BasePreset(8, (8, 16), 1, (), 4, max_steps=4, batch_size=4, learning_rate=1e-3, warmup_steps=2,
                        checkpoint_every=2),
        stages=(SRPreset(2, 16, 2, (8, 16), 1, 4, 4, 1e-3, 2, 2, **_STAGE),
                SRPreset(2, 32, 4, (8, 16), 1, 4, 4, 1e-3, 2, 2, **_STAGE)),
        zoom=(2.0, 3.0), names=("brick", "grass", "gravel"), classifier_crops=24, classifier_epochs=1),
    # 16 -> 32 -> 64 px, the shipped data/checkpoints/cascade
    "small": CascadePreset(
        base=BasePreset(16, (48, 96, 96), 1, (2,), 16, max_steps=5000, batch_size=48, learning_rate=5e-4,
                        warmup_steps=200, checkpoint_every=500),
        stages=(SRPreset(2, 32, 2, (48, 96), 2, 3000, 32, 4e-4, 200, 500, **_STAGE),
                SRPreset(2, 64, 4, (64, 96, 128), 2, 3000, 32, 4e-4, 200, 500, **_STAGE)),
        zoom=(2.0, 3.0)),
}


def _check_init(name: str, p: SRPreset) -> None:
    if p.init_preset is None:
        return
    if p.continues:
        raise ValueError(f"preset {name!r}: a preset continues a checkpoint or starts from an init_preset, not both")
    first = SR_PRESETS.get(p.init_preset)
    if first is None or first is p:
        raise ValueError(f"preset {name!r}: init_preset must name another preset, got {p.init_preset!r}")
    if first.mean_steps:
        raise ValueError(f"preset {name!r}: init_preset {p.init_preset!r} is a hybrid; start from a plain network")
    same = ("scale", "size", "patch_size", "block_channels", "blocks_per_level", "prediction_type", "beta_schedule")
    if any(getattr(first, f) != getattr(p, f) for f in same):
        raise ValueError(f"preset {name!r} must keep {same} of its init_preset {p.init_preset!r}")


for _name, _p in SR_PRESETS.items():
    _check_init(_name, _p)


def sr_preset(name: str) -> SRPreset:
    if name not in SR_PRESETS:
        raise ValueError(f"preset must be one of {tuple(SR_PRESETS)}, got {name!r}")
    return SR_PRESETS[name]


def cascade_preset(name: str) -> CascadePreset:
    if name not in CASCADE_PRESETS:
        raise ValueError(f"preset must be one of {tuple(CASCADE_PRESETS)}, got {name!r}")
    return CASCADE_PRESETS[name]

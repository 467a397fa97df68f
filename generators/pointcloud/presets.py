"""Named presets of the point-cloud family: network sizes, data sizes and the budget of each stage."""
from __future__ import annotations

from dataclasses import dataclass, replace

from .losses import POINT_PRIOR_TARGETS
from .shapes import CATEGORIES

STAGES: tuple[str, ...] = ("vae", "global_prior", "point_prior")  # trained in this order (train.train_pointcloud)


@dataclass(frozen=True)
class StageBudget:
    """Optimisation budget of one training stage (VAE, global prior or point prior)."""

    max_steps: int
    batch_size: int
    learning_rate: float
    checkpoint_every: int
    lr_schedule: str = "constant"  # or "cosine" (generators.core.training.learning_rate_at)


@dataclass(frozen=True)
class PointCloudPreset:
    """Everything a named preset fixes; the VAE/prior sizes follow LION's (Zeng et al. 2022) layout."""

    categories: tuple[str, ...]
    num_points: int            # points per training shape (generation may ask for more)
    train_per_category: int
    latent_dim: int            # global shape latent z
    point_feature_dim: int     # d of the latent points (3 + d channels; LION uses d = 1)
    vae_hidden: int
    vae_depth: int
    global_hidden: int
    global_depth: int
    point_hidden: int
    point_depth: int
    text: bool                 # text-conditioned global prior (frozen all-MiniLM-L6-v2)
    kl_weight_z: float
    kl_weight_h: float
    vae: StageBudget
    global_prior: StageBudget
    point_prior: StageBudget
    h_std: float = 0.0         # fixed posterior std of the latent points (0: learned); see PointVAE
    local_k: int = 0           # kNN local context in the VAE and the point prior (0: per point); see LocalEdge
    point_local_k: int | None = None  # the point prior's own k (None: local_k), so the prior alone can change
    point_prior_points: int = 0  # latent points per shape in a point-prior batch, drawn from all stored ones (0: a fixed num_points)
    finetune_of: str | None = None  # budgets of a fine-tune of a finished folder of this preset (None: from scratch)
    scratch_stages: tuple[str, ...] = ()  # with finetune_of: stages whose budget is a full one, which may train from scratch
    point_prior_target: str = "sample"  # the point prior learns q(h | x, z)'s samples (LION) or its means ("mean")

    def __post_init__(self) -> None:
        if self.point_prior_target not in POINT_PRIOR_TARGETS:
            raise ValueError(f"point_prior_target must be one of {POINT_PRIOR_TARGETS}, got {self.point_prior_target!r}")
        unknown = [s for s in self.scratch_stages if s not in STAGES]
        if unknown or (self.scratch_stages and self.finetune_of is None):
            raise ValueError(f"scratch_stages names stages of a fine-tune preset (finetune_of set) among {STAGES}; "
                             f"got {list(self.scratch_stages)} with finetune_of={self.finetune_of!r}")


PRESETS: dict[str, PointCloudPreset] = {
    # tests: seconds on one CPU core
    "tiny": PointCloudPreset(
        categories=("chair", "table", "mug"), num_points=64, train_per_category=4, latent_dim=8, point_feature_dim=1,
        vae_hidden=16, vae_depth=1, global_hidden=16, global_depth=1, point_hidden=16, point_depth=1, text=True,
        kl_weight_z=1e-4, kl_weight_h=0.1,
        vae=StageBudget(6, 4, 2e-3, 3), global_prior=StageBudget(6, 8, 2e-3, 3), point_prior=StageBudget(6, 4, 2e-3, 3),
    ),
    # the CPU budget (the shipped checkpoint is its variant small-fixed-h-sharp-means): all eleven categories, 512 training points per shape. One thread, shared
    # machine: VAE 0.20-0.64 s/step, global prior 0.03-0.15, point prior 0.10-0.55 (measured; see README),
    # so 8000 + 10000 + 6000 steps take 42 min at the low end and ~1.9 h at the high end.
    "small": PointCloudPreset(
        categories=CATEGORIES, num_points=512, train_per_category=200, latent_dim=32, point_feature_dim=1,
        vae_hidden=128, vae_depth=3, global_hidden=256, global_depth=4, point_hidden=128, point_depth=4, text=True,
        kl_weight_z=1e-4, kl_weight_h=0.1,
        vae=StageBudget(8000, 16, 1e-3, 500), global_prior=StageBudget(10000, 128, 1e-3, 1000),
        point_prior=StageBudget(6000, 16, 1e-3, 500),
    ),
    # for a GPU: 2,048 points per shape and wider networks
    "base": PointCloudPreset(
        categories=CATEGORIES, num_points=2048, train_per_category=1000, latent_dim=128, point_feature_dim=1,
        vae_hidden=256, vae_depth=6, global_hidden=512, global_depth=8, point_hidden=256, point_depth=8, text=True,
        kl_weight_z=1e-4, kl_weight_h=0.1,
        vae=StageBudget(100_000, 64, 1e-3, 5000), global_prior=StageBudget(100_000, 256, 5e-4, 5000),
        point_prior=StageBudget(100_000, 64, 5e-4, 5000),
    ),
}
# "small" with the latent points' posterior spread fixed at 0.1 (PointVAE h_std; README: "Why the VAE
# blurs"): at a short budget it lowered 1-NNA-CD from 0.969 to 0.912 over five categories
PRESETS["small-fixed-h"] = replace(PRESETS["small"], h_std=0.1)
# "small-fixed-h" with twice the prior steps (the VAE's 8,000 unchanged, so a finished small-fixed-h folder
# resumes into it): its reconstructions reach 1-NNA-CD 0.59 on shelves where generated shelves get 0.94
PRESETS["small-fixed-h-long"] = replace(
    PRESETS["small-fixed-h"], global_prior=replace(PRESETS["small"].global_prior, max_steps=20000),
    point_prior=replace(PRESETS["small"].point_prior, max_steps=12000))
# "small-fixed-h" with a point prior twice as wide (VAE and global prior unchanged, so their finished stages
# are reused): given the true global latent, its bathtubs are as far from real ones as fully sampled ones
PRESETS["small-fixed-h-wide"] = replace(PRESETS["small-fixed-h"], point_hidden=256)
# "small-fixed-h-wide" with local context (16 nearest neighbours, max-pooled in every block of the VAE's
# encoder and decoder and of the point prior; model.LocalEdge, DGCNN-style): its per-point networks see
# each other only through the set mean, so reconstructions scatter off the surface and thin parts blur
# (README: "Where small-fixed-h loses"), where LION's PVCNN has neighbourhood context. The VAE changes, so
# all three stages train from scratch (a new --out folder). Measured on one shared thread: a VAE step
# (batch 16, 512 points) 1.5-2.1x as long, a 2,048-point prior forward at batch 32 1.35-1.9x.
# Trained and evaluated (README: "Local context"): mean 1-NNA-CD 0.811 and COV-CD 0.429 against 0.791 and
# 0.469 for small-fixed-h-wide, so it is not the shipped preset.
PRESETS["small-local"] = replace(PRESETS["small-fixed-h-wide"], local_k=16)
# "small-fixed-h-wide" with the local context in the point prior only: the VAE and the global prior are those
# of small-fixed-h-wide, so they can be kept from a finished folder (``--init-checkpoint
# data/checkpoints/pointcloud-shapes --keep-stages vae global_prior``) and only the point prior trains. Where
# small-local helped (bathtub 0.98 -> 0.92) the gap belongs to the point prior, and where it lost its VAE
# reconstructed worse (README: "Local context"). Trained and evaluated: mean 1-NNA-CD 0.812 and COV-CD 0.443
# against 0.791 and 0.469 (README: "Local context in the point prior only"), so not shipped.
PRESETS["small-local-prior"] = replace(PRESETS["small-fixed-h-wide"], point_local_k=16)
# "small-fixed-h-wide" with the latent points' spread at 0.06 instead of 0.1: the VAE's decoder removes noise
# of that size and blurs thin parts by it. Reconstructions of airplanes and bathtubs (1-NNA-CD 0.78-0.81)
# already miss the bar, and real airplanes lie 1.7e-3 (CD) from their nearest other airplane while a
# spread of 0.1 left chair reconstructions 1.8e-3 from their shape and 0.06 left 5.8e-4 (README: "Why the VAE
# blurs"; at a short budget both spreads generated equally well). All three stages train. Trained and
# evaluated (README: "A sharper VAE"): reconstructions 1-NNA-CD 0.577 against 0.662, but generated 0.803
# against 0.791 and COV-CD below 0.40 for car and shelf, so not shipped; its point prior is the limit.
PRESETS["small-fixed-h-sharp"] = replace(PRESETS["small-fixed-h-wide"], h_std=0.06)
# "small-fixed-h-sharp" with the point prior trained 14,000 steps instead of 6,000 and its learning rate
# falling on a cosine to 5 % at the end (constant before): VAE and global prior unchanged, so a finished
# small-fixed-h-sharp folder resumes into it at step 6,000 (training.json records both commands). Trained
# that way and evaluated (README: "A longer point prior"): mean 1-NNA-CD 0.719 and COV-CD 0.534 (worst 0.906
# and 0.438) against 0.791 and 0.469 for small-fixed-h-wide: the point prior was undertrained.
PRESETS["small-fixed-h-sharp-long"] = replace(
    PRESETS["small-fixed-h-sharp"],
    point_prior=replace(PRESETS["small-fixed-h-sharp"].point_prior, max_steps=14000, lr_schedule="cosine"))

# "small-fixed-h-sharp-long" with each point-prior batch made of 64 shapes x 128 latent points, drawn every step
# from each shape's 1,024 stored points (PointPriorLoss.points_per_shape), instead of 16 shapes x a fixed 512:
# the same points per step, four times the global latents and noise levels, and no fixed subset to memorise.
# VAE and global prior are small-fixed-h-sharp's, so they can be kept from its folder. Trained and evaluated
# (README: "Random point subsets"): mean 1-NNA-CD 0.706 (worst 0.875), COV-CD 0.528 (worst 0.406), within the
# noise of small-fixed-h-sharp-long and ahead of it on 1-NNA-CD: shipped until small-fixed-h-sharp-subsets-long.
PRESETS["small-fixed-h-sharp-subsets"] = replace(
    PRESETS["small-fixed-h-sharp-long"], point_prior_points=128,
    point_prior=replace(PRESETS["small-fixed-h-sharp-long"].point_prior, batch_size=64))

# "small-fixed-h-sharp-subsets" with the point prior's cosine stretched to 30,000 steps: VAE and global prior
# unchanged, so a finished small-fixed-h-sharp-subsets folder resumes into it at step 14,000, where the
# stretched cosine puts the learning rate back at 58 % of its peak (a warm restart, SGDR, Loshchilov &
# Hutter 2017) and decays it to 5 % again at 30,000. The longer schedule is what moved the point prior before.
# Resumed that way (16,000 steps, 58 min on two threads) and evaluated (README: "The point prior's cosine
# stretched"): mean 1-NNA-CD 0.670 (worst 0.859 shelf), COV-CD 0.548 (worst 0.469) against 0.706 and 0.528:
# shipped until small-fixed-h-sharp-subsets-xlong.
PRESETS["small-fixed-h-sharp-subsets-long"] = replace(
    PRESETS["small-fixed-h-sharp-subsets"],
    point_prior=replace(PRESETS["small-fixed-h-sharp-subsets"].point_prior, max_steps=30000))

# "small-fixed-h-sharp-subsets-long" with the point prior's cosine stretched again, to 50,000 steps: a finished
# subsets-long folder resumes into it at step 30,000 (learning rate back at 38 % of its peak). Resumed that way
# and evaluated (README: "Stretched again"): mean 1-NNA-CD 0.659 (worst 0.859 shelf), COV-CD 0.551 (worst
# 0.531) against 0.670 and 0.548: shipped until small-fixed-h-sharp-annealed. The categories that miss the bar
# did not move.
PRESETS["small-fixed-h-sharp-subsets-xlong"] = replace(
    PRESETS["small-fixed-h-sharp-subsets-long"],
    point_prior=replace(PRESETS["small-fixed-h-sharp-subsets-long"].point_prior, max_steps=50000))


# "small-fixed-h-sharp-subsets-xlong" fine-tuned (``--init-checkpoint <a finished xlong folder> --finetune-stages
# vae --finetune-stages global_prior --finetune-stages point_prior``): its VAE trained at a constant 1e-3, so
# this anneals it, 4,000 more steps on a cosine from 3e-4 to 5 % of that, and then fine-tunes both priors over
# the moved latents from their xlong weights (4,000 and 10,000 steps, cosine from 3e-4). The budgets are those
# of a fine-tune; from scratch this preset would train far too little. Airplane reconstructions (1-NNA-CD 0.75)
# miss the bar before any prior, so the VAE is where airplanes must gain. Trained that way (55 min on two
# threads) and evaluated (README: "The VAE annealed"): reconstructions 0.553 against 0.577 (airplane 0.69),
# generated mean 1-NNA-CD 0.652 (worst 0.844 shelf), COV-CD 0.545 (worst 0.469): shipped until
# small-fixed-h-sharp-means.
PRESETS["small-fixed-h-sharp-annealed"] = replace(
    PRESETS["small-fixed-h-sharp-subsets-xlong"],
    finetune_of="small-fixed-h-sharp-subsets-xlong",
    vae=StageBudget(4000, 16, 3e-4, 500, "cosine"),
    global_prior=StageBudget(4000, 128, 3e-4, 1000, "cosine"),
    point_prior=replace(PRESETS["small-fixed-h-sharp-subsets-xlong"].point_prior, max_steps=10000, learning_rate=3e-4))

# "small-fixed-h-sharp-annealed" with the point prior learning the posterior means of the latent points instead
# of their samples (PointPriorLoss target="mean"), fine-tuned from an annealed folder's point prior over its
# kept VAE, and the global prior trained from scratch at the full budget of "small" over the annealed VAE's
# latents (the fine-tune had cost chair and lamp 1-NNA: README "The VAE annealed"):
# ``--init-checkpoint <a finished annealed folder> --keep-stages vae --finetune-stages point_prior``. The decoder
# removes noise of the VAE's spread (0.06) only in part (decoded posterior samples land 3.9x as far from their
# shelves as decoded means); a prior of samples adds its own error on top of that noise, one of means puts its
# error in the noise's place. Trained that way and evaluated (README: "The point prior learns the
# posterior means"): mean 1-NNA-CD 0.641 (worst 0.797 shelf), COV-CD 0.554 (worst 0.50), the shipped checkpoint;
# --breakdown puts the gain in the global prior (chair, lamp), the point prior given z staying at 0.66.
PRESETS["small-fixed-h-sharp-means"] = replace(
    PRESETS["small-fixed-h-sharp-annealed"], finetune_of="small-fixed-h-sharp-annealed", point_prior_target="mean",
    scratch_stages=("global_prior",), global_prior=PRESETS["small"].global_prior)

# "small-fixed-h-sharp-means" with a point prior of 6 blocks instead of 4, grown from a finished means folder's
# (``--init-checkpoint <that folder> --keep-stages vae --keep-stages global_prior --finetune-stages point_prior``):
# its 4 blocks are copied and the 2 added ones start as identities (train._load_grown), so training starts at the
# means folder's point prior and only has to learn what the new depth adds. --breakdown put the limit in the point
# prior given z (shelf 0.80, mug 0.81, bathtub 0.73 against reconstructions 0.45-0.70), whichever target it
# learned, and longer training had moved that row by only 0.03-0.04 per 20,000 steps. Its budget is a fine-tune's:
# 5,000 steps on a cosine from 5e-4 (a 6-block step took 0.68 s on two threads). Trained that way and evaluated
# (README: "A deeper point prior"): mean 1-NNA-CD 0.634 (worst 0.781 shelf) against 0.641 (0.797), every category
# within 3 of its 64 shapes of the shipped one, COV-CD 0.551 against 0.554: within the noise, and slower to sample,
# so not shipped.
PRESETS["small-fixed-h-sharp-deep"] = replace(
    PRESETS["small-fixed-h-sharp-means"], finetune_of="small-fixed-h-sharp-means", point_depth=6, scratch_stages=(),
    point_prior=replace(PRESETS["small-fixed-h-sharp-means"].point_prior, max_steps=5000, learning_rate=5e-4))


def get_preset(name: str) -> PointCloudPreset:
    """The preset called ``name``; a ValueError lists the known ones."""
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {name!r}")
    return PRESETS[name]

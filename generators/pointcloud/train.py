"""Train the LION-style model in its three stages (``mmdiff train pointcloud --preset small``).

Stage 1 trains the VAE; stage 2 the global prior on z ~ q(z | x); stage 3 the point prior on
h ~ q(h | x, z) (Zeng et al. 2022, sec. 3.2: the priors are trained after the VAE, on its latents).
Each stage runs ``generators.core.training.train`` in ``output_dir/stages/<stage>/`` and resumes
from its ``training_state/``; a finished stage is not run again, and its EMA weights are reloaded.
The loadable folder (``output_dir``) is republished at every checkpoint of every stage.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from generators.core.checkpoint import init_checkpoint_record, load_tensors
from generators.core.pipeline import DiffusionConfig
from generators.core.training import STATE_DIR, TrainConfig, TrainResult, seeded, train, write_train_record

from .data import PointCloudSet, load_pointflow_shapenet, procedural_split
from .generator import PointCloudGenerator
from .losses import GlobalPriorLoss, PointPriorLoss, PointSubsets, VAELoss
from .model import LionModel
from .presets import STAGES, PointCloudPreset, StageBudget, get_preset


def build_model(preset: PointCloudPreset, categories: tuple[str, ...] | None = None,
                diffusion: DiffusionConfig = DiffusionConfig()) -> LionModel:
    """The untrained :class:`LionModel` of a preset, for the forward process of ``diffusion``."""
    p = preset
    return LionModel(
        beta_schedule=diffusion.beta_schedule, num_train_timesteps=diffusion.num_train_timesteps,
        vae_config={"latent_dim": p.latent_dim, "point_feature_dim": p.point_feature_dim, "hidden": p.vae_hidden, "depth": p.vae_depth,
                    "h_std": p.h_std, "local_k": p.local_k},
        global_prior_config={"hidden": p.global_hidden, "depth": p.global_depth, "text": p.text},
        point_prior_config={"hidden": p.point_hidden, "depth": p.point_depth,
                            "local_k": p.local_k if p.point_local_k is None else p.point_local_k},
        categories=tuple(categories or p.categories), num_points=p.num_points,
    )


def stage_config(budget: StageBudget, max_steps: int | None, seed: int, mixed_precision: str,
                 checkpoint_every: int | None, device: str | None) -> TrainConfig:
    steps = max_steps or budget.max_steps
    return TrainConfig(
        max_steps=steps, batch_size=budget.batch_size, learning_rate=budget.learning_rate,
        lr_schedule=budget.lr_schedule,
        warmup_steps=min(200, max(1, steps // 10)), ema_decay=0.999,
        checkpoint_every=min(checkpoint_every or budget.checkpoint_every, steps), mixed_precision=mixed_precision,
        seed=seed, cpu=device == "cpu",
    )


def load_ema(module: nn.Module, stage_dir: Path) -> None:
    """Load a finished stage's EMA parameters (and its buffers) from ``stage_dir/training_state``."""
    state = dict(load_tensors(stage_dir / STATE_DIR / "model.safetensors"))
    state.update(load_tensors(stage_dir / STATE_DIR / "ema.safetensors"))
    module.load_state_dict(state, strict=True)


def check_keep_stages(keep_stages: tuple[str, ...] | list[str], init_checkpoint: object,
                      finetune_stages: tuple[str, ...] | list[str] = ()) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Validate ``keep_stages`` and ``finetune_stages``: known names, a folder to take them from, no stage in both,
    and no prior kept over a VAE that trains (retrained or fine-tuned: its latents move under the prior).

    Returns:
        The kept and the fine-tuned stages, each without repeats.
    """
    keep, tune = tuple(dict.fromkeys(keep_stages)), tuple(dict.fromkeys(finetune_stages))
    for name, stages in (("keep_stages", keep), ("finetune_stages", tune)):
        unknown = [s for s in stages if s not in STAGES]
        if unknown:
            raise ValueError(f"{name} must name stages among {STAGES}, got {unknown}")
        if stages and init_checkpoint is None:
            raise ValueError(f"{name} needs init_checkpoint: the published folder the "
                             f"{'kept' if name == 'keep_stages' else 'fine-tuned'} stages come from")
    both = [s for s in keep if s in tune]
    if both:
        raise ValueError(f"keep_stages and finetune_stages both name {both}; a stage is either kept as it is "
                         "or fine-tuned, so name it in one of them")
    if init_checkpoint is not None and not keep and not tune:
        raise ValueError("init_checkpoint is only read for keep_stages or finetune_stages; name the stages to keep "
                         "(e.g. vae global_prior) or to fine-tune")
    if set(keep) == set(STAGES):
        raise ValueError("keep_stages names every stage, which leaves nothing to train; copy the folder instead")
    if keep and "vae" not in keep:
        raise ValueError(f"keep_stages {list(keep)} keeps a prior but retrains the VAE, whose latents the priors model; "
                         "add vae to keep_stages, or fine-tune the prior with finetune_stages, or keep nothing")
    return keep, tune


def _public_config(module: nn.Module) -> dict[str, Any]:
    return {k: v for k, v in dict(module.config).items() if not k.startswith("_")}


def _grown_depth(mine: dict[str, Any], theirs: dict[str, Any]) -> int | None:
    """The folder's depth when the preset's configuration differs from the folder's only by more blocks, else None."""
    if set(mine) != set(theirs) or "depth" not in mine:
        return None
    if any(mine[k] != theirs[k] for k in mine if k != "depth") or not int(mine["depth"]) > int(theirs["depth"]):
        return None
    return int(theirs["depth"])


def _load_grown(module: nn.Module, state: dict[str, torch.Tensor], depth: int, stage: str) -> None:
    """Load a shallower network's ``state`` into ``module``: every parameter but those of blocks ``depth`` and up.

    The blocks left out keep their initialisation, in which :class:`~generators.pointcloud.model.AdaBlock`'s
    zero ``fc2`` makes each the identity, so the grown network computes exactly what the folder's did and training
    starts there (Net2DeeperNet, Chen et al. 2016: a network deepened by identity layers).
    """
    result = module.load_state_dict(state, strict=False)
    added = re.compile(r"(^|\.)blocks\.(\d+)\.")
    stray = [k for k in result.missing_keys if not ((m := added.search(k)) and int(m.group(2)) >= depth)]
    if stray or result.unexpected_keys:
        raise ValueError(f"finetune_stages: the {stage} of the folder does not match the first {depth} blocks of the "
                         f"preset's; missing {stray}, unexpected {result.unexpected_keys}")


def load_kept_stages(model: LionModel, init_checkpoint: str | os.PathLike, keep: tuple[str, ...],
                     finetune: tuple[str, ...] = ()) -> dict[str, int]:
    """Copy the weights of the stages in ``keep`` and ``finetune`` (and, with a kept VAE, its latent scales) from a
    published folder; the kept ones are frozen, the fine-tuned ones then train from these weights.

    Every such stage must have the same configuration in the folder and in the preset, and the folder the same
    categories, so the copied networks are exactly those the preset would have trained. One exception: a
    fine-tuned stage may be deeper than the folder's (``depth`` is the only difference); it is grown, the folder's
    blocks copied and the added ones starting as identities (:func:`_load_grown`).

    Returns:
        ``{stage: the folder's depth}`` for every grown stage.
    """
    init = PointCloudGenerator.from_pretrained(Path(init_checkpoint)).model
    if init.categories != model.categories:
        raise ValueError(f"init_checkpoint's categories {init.categories} differ from the training data's "
                         f"{model.categories}; take stages only from a folder trained on the same categories")
    grown: dict[str, int] = {}
    for stage in keep + finetune:
        option = "keep_stages" if stage in keep else "finetune_stages"
        mine, theirs = _public_config(getattr(model, stage)), _public_config(getattr(init, stage))
        depth = None
        if mine != theirs:
            depth = _grown_depth(mine, theirs) if stage in finetune else None
            if depth is None:
                diff = {k: (theirs.get(k), mine.get(k)) for k in sorted(set(mine) | set(theirs))
                        if mine.get(k) != theirs.get(k)}
                raise ValueError(f"{option}: the {stage} of {init_checkpoint} differs from the preset's "
                                 f"(folder, preset): {diff}; name only the stages the preset shares with that folder "
                                 "(a fine-tuned stage may only be deeper)")
        if depth is None:
            getattr(model, stage).load_state_dict(getattr(init, stage).state_dict(), strict=True)
        else:
            _load_grown(getattr(model, stage), getattr(init, stage).state_dict(), depth, stage)
            grown[stage] = depth
        if stage in keep:
            getattr(model, stage).eval()
    if "vae" in keep:
        model.z_scale.copy_(init.z_scale)
        model.h_scale.copy_(init.h_scale)
    return grown


def training_data(preset: PointCloudPreset, seed: int, data_root: str | os.PathLike | None) -> PointCloudSet:
    """The train split with twice the preset's points per shape (each batch draws a random half)."""
    if data_root is not None:
        return load_pointflow_shapenet(data_root, "train", 2 * preset.num_points, preset.categories, seed=seed)
    return procedural_split("train", preset.train_per_category, 2 * preset.num_points, seed, preset.categories)


@torch.no_grad()
def encode_global_latents(model: LionModel, points: torch.Tensor, batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """q(z | x) parameters (z_mu, z_logvar) of every training shape."""
    outs = [model.vae.global_encoder(points[i:i + batch_size]) for i in range(0, len(points), batch_size)]
    return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])


@torch.no_grad()
def encode_point_latents(model: LionModel, points: torch.Tensor, z_mu: torch.Tensor,
                         batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """q(h | x, z) parameters (h_mu, h_logvar) of every point of ``points`` (M, N, 3) given the shapes' ``z_mu``."""
    outs = [model.vae.encode_points(points[i:i + batch_size], z_mu[i:i + batch_size])
            for i in range(0, len(points), batch_size)]
    return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])


def _run_stage(name: str, model: LionModel, module: nn.Module, loss: Callable, data: Any, config: TrainConfig,
               output_dir: Path, diffusion: DiffusionConfig, progress: bool) -> TrainResult:
    stage_dir = output_dir / "stages" / name

    def publish(step: int, inner: nn.Module, ema_state: dict[str, torch.Tensor]) -> None:
        full = dict(model.state_dict())
        full.update({f"{name}.{k}": v for k, v in ema_state.items()})
        PointCloudGenerator(model, diffusion).save_pretrained(output_dir, full)
        inner.train()

    result = train(module, loss, data, config, stage_dir, on_checkpoint=publish, progress=progress)
    load_ema(module, stage_dir)
    module.eval()
    return result


def train_pointcloud(
    output_dir: str | os.PathLike,
    preset: str = "small",
    max_steps: int | None = None,
    seed: int = 0,
    mixed_precision: str = "no",
    checkpoint_every: int | None = None,
    device: str | None = None,
    command: str = "",
    progress: bool = True,
    data_root: str | os.PathLike | None = None,
    cond_drop_prob: float = 0.1,
    init_checkpoint: str | os.PathLike | None = None,
    keep_stages: tuple[str, ...] | list[str] = (),
    finetune_stages: tuple[str, ...] | list[str] = (),
) -> TrainResult:
    """Train the VAE, then the global prior, then the point prior; ``output_dir`` becomes a generator folder.

    Args:
        output_dir: the checkpoint folder; ``output_dir/stages/<stage>/training_state`` makes it resumable.
        preset: a name in :data:`~generators.pointcloud.presets.PRESETS`.
        max_steps: overrides every stage's step count (tests, quick runs).
        seed: fixes the initial weights, the batches and the noise of every stage.
        mixed_precision, checkpoint_every, device: passed to the core training loop ("cpu" forces the CPU).
        data_root: a PointFlow ShapeNet folder (``<synset>/<split>/*.npy``) instead of the procedural shapes.
        cond_drop_prob: probability of dropping both label and text (classifier-free guidance).
        init_checkpoint, keep_stages: take the stages named in ``keep_stages`` (e.g. ``("vae", "global_prior")``)
            finished from the published folder ``init_checkpoint`` and train only the others; the kept stages'
            configurations must be the preset's.
        finetune_stages: stages that start from ``init_checkpoint``'s weights instead of the seed's and then train
            their preset budget, from step 0 with a fresh optimizer (fine-tuning). A fine-tuned VAE moves the
            latents, so the priors over it must train or be fine-tuned too, not be kept.
    Returns:
        The point prior's TrainResult; ``training.json`` records every stage.
    """
    p = get_preset(preset)
    keep, tune = check_keep_stages(keep_stages, init_checkpoint, finetune_stages)
    untuned = [stage for stage in STAGES if stage not in keep and stage not in tune and stage not in p.scratch_stages]
    if p.finetune_of is not None and untuned:
        raise ValueError(f"preset {preset!r} has the budgets of a fine-tune of a finished {p.finetune_of!r} folder, "
                         f"too short to train {untuned} from scratch; pass --init-checkpoint that folder and name "
                         f"{untuned} in finetune_stages (or keep_stages)")
    output_dir = Path(output_dir)
    data = training_data(p, seed, data_root)
    points = torch.from_numpy(data.points)
    diffusion = DiffusionConfig(cond_drop_prob=cond_drop_prob)
    with seeded(seed):
        model = build_model(p, data.categories, diffusion)
    schedule = diffusion.schedule()
    args = (max_steps, seed, mixed_precision, checkpoint_every, device)
    results: dict[str, TrainResult] = {}
    t0 = time.perf_counter()

    configs = {s: stage_config(getattr(p, s), *args) for s in STAGES}
    grown = load_kept_stages(model, init_checkpoint, keep, tune) if keep or tune else {}  # type: ignore[arg-type]

    def run(name: str, module: nn.Module, loss: Callable, batches: Any) -> None:
        if name in keep:
            results[name] = TrainResult(steps=0, resumed_from=0, losses=[], seconds=0.0, samples_per_second=0.0,
                                        peak_memory_mb=None)
            return
        results[name] = _run_stage(name, model, module, loss, batches, configs[name], output_dir, diffusion, progress)

    run("vae", model.vae, VAELoss(p.kl_weight_z, p.kl_weight_h), PointSubsets(points, p.num_points))
    fixed = points[:, : p.num_points]  # a fixed half of each shape's points for the latents
    if "vae" in keep:
        z_scale, h_scale = float(model.z_scale), float(model.h_scale)
    else:
        z_scale, h_scale = model.set_latent_scales(fixed)
    z_mu, z_logvar = encode_global_latents(model, fixed)
    # h given the posterior mean of z (PointVAE.encode); with point_prior_points every stored point's latent,
    # for random subsets per step
    h_mu, h_logvar = encode_point_latents(model, points if p.point_prior_points else fixed, z_mu)
    caption_ids = torch.arange(len(data.captions))
    run("global_prior", model.global_prior, GlobalPriorLoss(schedule, z_scale, data.captions, cond_drop_prob),
        (z_mu, z_logvar, torch.from_numpy(data.labels), caption_ids))
    point_loss = PointPriorLoss(schedule, z_scale, h_scale, points_per_shape=p.point_prior_points,
                                target=p.point_prior_target)
    run("point_prior", model.point_prior, point_loss, (h_mu, h_logvar, z_mu, z_logvar))

    PointCloudGenerator(model, diffusion).save_pretrained(output_dir, dict(model.state_dict()))
    final = results["point_prior"]
    write_train_record(output_dir, command or f"mmdiff train pointcloud --preset {preset} --out {output_dir}",
                       configs["point_prior"], final, {
                           "preset": preset, "preset_config": asdict(p), "seconds_total_this_run": round(time.perf_counter() - t0, 1),
                           "stages": {s: {"kept_from": str(init_checkpoint)} if s in keep else
                                      {**({"finetuned_from": str(init_checkpoint)} if s in tune else {}),
                                       **({"grown_from_depth": grown[s]} if s in grown else {}),
                                       "train_config": asdict(configs[s]), "steps": r.steps, "resumed_from": r.resumed_from,
                                       "seconds_this_run": round(r.seconds, 1),
                                       "final_loss_mean_last_100": float(np.mean(r.losses[-100:])) if r.losses else None}
                                      for s, r in results.items()},
                           **(init_checkpoint_record(init_checkpoint) if init_checkpoint is not None else {}),
                           "latent_scales": {"z": z_scale, "h": h_scale},
                           "dataset": str(data_root) if data_root else f"procedural ({len(data.categories)} categories, "
                                                                       f"{p.train_per_category} train shapes each)",
                       })
    return final

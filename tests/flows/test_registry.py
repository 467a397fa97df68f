"""A family joins with one registry record: its CLI command, deployment, composed step and gallery row appear
without any shared file being edited (a dummy family defined here, a tiny generator on the core)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from click.testing import CliRunner
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from prefect import flow
from pydantic import Field
from torch import nn

from flows import registry
from flows.params import FlowParams
from generators.core.denoiser import VPDenoiser
from generators.core.pipeline import DiffusionConfig, DiffusionGenerator, GeneratorOutput, png_bytes


class TinyNet(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, size: int = 4) -> None:
        super().__init__()
        self.lin = nn.Linear(size * size, size * size)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: Any = None) -> torch.Tensor:
        return self.lin(x.flatten(1)).view_as(x)


class DotsOutput(GeneratorOutput):
    file_formats = (".png",)

    def __init__(self, images: np.ndarray) -> None:
        self.images = images

    def _items(self, prefix: str):
        for i, img in enumerate(self.images):
            yield f"{prefix}_{i}.png", png_bytes(img)


class DotsGenerator(DiffusionGenerator):
    model_class = TinyNet

    def __call__(self, *, num_images: int = 2, num_inference_steps: int = 2, sampler: str = "ddim",
                 guidance_scale: float = 1.0, guidance_interval=None, seed: int = 0) -> DotsOutput:
        self.check_call(num_inference_steps, sampler, guidance_scale, seed, guidance_interval)
        size = self.model.config.size
        generator, noise = self.noise((num_images, 1, size, size), seed)
        denoise = VPDenoiser(self.model, self.schedule, clip_x0=1.0)
        x = self.run_sampler(lambda x, s: denoise(x, s), noise, generator, num_inference_steps, sampler)
        return DotsOutput(((x[:, 0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy())


class DotsParams(FlowParams):
    num_images: int = Field(2, ge=1, le=8)
    checkpoint: str = ""


def _generate(params: DotsParams, out: Path | None) -> list[str]:
    gen = DotsGenerator.from_pretrained(params.checkpoint)
    return [str(p) for p in gen(num_images=params.num_images).save(out)]


@flow(name="generate_dots")
def generate_dots_flow(params: DotsParams = DotsParams()) -> int:
    return params.num_images


def _step(section: DotsParams, context: registry.StepContext) -> registry.StepResult:
    paths = DotsGenerator.from_pretrained(section.checkpoint)(num_images=section.num_images).save(
        Path(context.run_dir) / "dots")
    return registry.StepResult([{"title": "dots", "images": [[str(p.relative_to(context.run_dir)), "dot"]
                                                             for p in paths], "kind": "image"}], {"n": len(paths)})


def dummy_family(checkpoint: str) -> registry.Family:
    section = type("DotsSection", (DotsParams,), {"__annotations__": {}})
    section.model_fields["checkpoint"].default = checkpoint
    section.model_rebuild(force=True)
    return registry.Family(
        name="dots", description="a dummy family",
        commands=(registry.Command("generate", "dots", DotsParams, _generate, "Generate dots.", out="folder"),),
        deployments=lambda defaults: [generate_dots_flow.to_deployment(name="generate-dots")],
        warm_flows=lambda: (generate_dots_flow,),
        loaders={"dots": lambda path, device: DotsGenerator.from_pretrained(path, device=device)},
        composed_section=section,
        composed_steps=(registry.ComposedStep("dots-step", "dots for the gallery", 500, _step),),
        code_paths=(),
    )


def test_a_registered_family_appears_everywhere(tmp_path):
    checkpoint = tmp_path / "dots-ck"
    DotsGenerator(TinyNet(), DiffusionConfig()).save_pretrained(checkpoint)
    family = registry.register(dummy_family(str(checkpoint)))
    try:
        # the CLI grid
        from mmdiff.cli import build_cli

        res = CliRunner().invoke(build_cli(), ["generate", "dots", "--checkpoint", str(checkpoint),
                                               "--num-images", "3", "--out", str(tmp_path / "out")])
        assert res.exit_code == 0, res.output
        assert len(list((tmp_path / "out").glob("*.png"))) == 3
        res = CliRunner().invoke(build_cli(), ["generate", "dots", "--num-images", "99", "--out", str(tmp_path / "x")])
        assert res.exit_code == 2 and "--num-images" in res.output
        # the deployments and the warm runner
        from flows.serve import build_deployments, warm_flows

        assert "generate-dots" in {d.name for d in build_deployments({"schedules": False})}
        assert "generate_dots" in warm_flows()
        # the model cache
        from flows import model_cache

        assert model_cache.load("dots", str(checkpoint)) is model_cache.load("dots", str(checkpoint))
        # the composed flow: its section, its step, its gallery row
        from flows.composed import composed_params_model, plan, run_composed

        assert ("dots", "dots-step") in {(f.name, s.name) for f, s in plan()}
        params = composed_params_model()(steps=["dots-step"], output_root=str(tmp_path / "runs"))
        assert params.dots.checkpoint == str(checkpoint)

        @flow
        def composed_with_dots():
            return run_composed(params)

        result = composed_with_dots()
        status = {s["step"]: s["status"] for s in result["steps"]}
        assert status["dots-step"] == "ran"
        html = Path(result["report"]).read_text()
        assert "<h2>dots</h2>" in html and html.count("class='image' src='dots/") == 2
    finally:
        registry.unregister(family.name)
        from flows import model_cache

        model_cache.clear()
    assert "dots" not in {f.name for f in registry.families()}
    assert json.loads(json.dumps([f.name for f in registry.families()]))


def test_a_step_without_its_checkpoint_is_skipped_with_a_note(tmp_path):
    from flows.composed import composed_params_model, run_composed
    from generators.core.checkpoint import CheckpointError

    def missing(section, context):
        raise CheckpointError("checkpoint folder /nowhere does not exist; train one or pass an existing folder")

    family = registry.register(registry.Family(
        name="ghost", description="a family without a trained checkpoint",
        composed_steps=(registry.ComposedStep("ghost-step", "needs a checkpoint", 600, missing),)))
    try:
        params = composed_params_model()(steps=["ghost-step"], output_root=str(tmp_path))

        @flow
        def composed_with_ghost():
            return run_composed(params)

        result = composed_with_ghost()
        status = {s["step"]: s["status"] for s in result["steps"]}
        assert status["ghost-step"].startswith("skipped: its checkpoint is not available")
        assert "/nowhere does not exist" in Path(result["report"]).read_text()
    finally:
        registry.unregister(family.name)

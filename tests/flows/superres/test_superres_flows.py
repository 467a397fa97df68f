"""The super-resolution family's flows end to end with the tiny presets: train (resume, reuse, publish) ->
upscale -> evaluate, the cascade's flows, the composed step, and the command functions' bad input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from prefect import flow

from flows.composed import composed_params_model, run_composed
from flows.superres import FAMILY
from flows.superres.commands import generate_cascade, upscale
from flows.superres.flows import (
    evaluate_cascade_flow,
    evaluate_superres_flow,
    generate_cascade_flow,
    train_superres_flow,
    upscale_flow,
)
from flows.superres.gallery import superres_gallery_task
from flows.superres.params import SuperresSection, TrainSuperresParams, UpscaleParams
from flows.superres.tasks import fingerprint_task


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A tiny model trained through the flow (after a "killed" first run), then published; and a tiny cascade."""
    from generators.superres.evaluate import train_crop_classifier
    from generators.superres.train import train_cascade, train_superres

    root = tmp_path_factory.mktemp("superres-flows")
    params = TrainSuperresParams(preset="tiny", max_steps=4, checkpoint_every=2, cache_root=str(root / "cache"),
                                 publish_dir=str(root / "published"), output_root=str(root / "runs"), eval_samples=2,
                                 eval_crop=32, eval_steps=2)
    folder = fingerprint_task.fn(params)["folder"]
    train_superres(folder, "tiny", max_steps=2, checkpoint_every=2, progress=False)  # killed after step 2
    first = train_superres_flow(params)
    second = train_superres_flow(params)
    train_cascade(root / "cascade", "tiny", progress=False)
    train_crop_classifier(root / "classifier", "tiny")
    return root, first, second


@pytest.fixture()
def photo(tmp_path):
    path = tmp_path / "small.png"
    Image.fromarray(np.random.default_rng(0).integers(40, 220, (8, 10, 3), dtype=np.uint8)).save(path)
    return path


def test_train_flow_resumes_reuses_and_publishes(published):
    from generators.superres import SuperResolver

    _, first, second = published
    assert first["metrics"]["resumed_from"] == 2 and first["metrics"]["steps"] == 4 and not first["metrics"]["reused"]
    assert second["metrics"]["reused"] and second["metrics"]["train_seconds"] == 0.0
    assert first["metrics"]["bicubic_consistency_single"] > 35
    folder = Path(first["checkpoint"])
    assert not (folder / "training_state").exists() and SuperResolver.from_pretrained(folder).scale == 4
    html = Path(first["report"]).read_text()
    assert "diffusion.png" in html and "bicubic.png" in html and "low-res.png" in html


def test_upscale_flow_writes_side_by_side_report(published, photo, tmp_path):
    _, first, _ = published
    result = upscale_flow({"image": [str(photo)], "num_inference_steps": 2, "checkpoint": first["checkpoint"],
                           "output_root": str(tmp_path)})
    (out,) = result["outputs"]
    assert np.asarray(Image.open(out)).shape == (32, 40, 3)
    assert "000_diffusion.png" in Path(result["report"]).read_text()


def test_evaluate_flow(published, tmp_path):
    _, first, _ = published
    result = evaluate_superres_flow({"checkpoint": first["checkpoint"], "crop": 32, "num_samples": 2,
                                     "num_inference_steps": 2, "output_root": str(tmp_path)})
    m = result["metrics"]
    assert m["bicubic"]["consistency_single"] > 35 and 0 < m["area"]["psnr_mean"] < 100
    assert Path(result["report"]).is_file()


def test_cascade_flows(published, tmp_path):
    root, _, _ = published
    gen = generate_cascade_flow({"prompt": ["gravel"], "num": 2, "num_inference_steps": 2,
                                 "checkpoint": str(root / "cascade"), "output_root": str(tmp_path)})
    assert any(p.endswith("contact_sheet.png") for p in gen["outputs"])
    html = Path(gen["report"]).read_text()
    assert "stage0_8px" in html and "stage2_32px" in html
    ev = evaluate_cascade_flow({"checkpoint": str(root / "cascade"), "classifier": str(root / "classifier"),
                                "preset": "tiny", "per_prompt": 2, "num_inference_steps": 2,
                                "output_root": str(tmp_path)})
    assert ev["metrics"]["stage2_32px"]["fd"] >= 0


def test_composed_upscale_step(published, photo, tmp_path):
    root, first, _ = published
    Params = composed_params_model([FAMILY])
    params = Params(output_root=str(tmp_path), superres=SuperresSection(
        checkpoint=first["checkpoint"], images=[str(photo)], num_inference_steps=2,
        cascade_checkpoint=str(root / "cascade")))

    @flow(name="composed-superres-test")
    def composed() -> dict:
        return run_composed(params, [FAMILY])

    result = composed()
    assert [s["status"] for s in result["steps"]] == ["ran"]
    html = Path(result["report"]).read_text()
    assert "low-res / bicubic / diffusion x4" in html and "stage 2 (32x32)" in html


def test_composed_step_without_images_upscales_held_out_photos(published, tmp_path):
    """No previews and no images in the brief: the step shows crops of held-out photos (never trained on)."""
    from flows.registry import StepContext
    from flows.superres.gallery import run_gallery_step
    from generators.superres.data import HELD_OUT

    _, first, _ = published
    section = SuperresSection(checkpoint=first["checkpoint"], num_inference_steps=2, cascade_checkpoint="",
                              held_out_photos=1, max_input_side=16)
    result = run_gallery_step(section, StepContext(str(tmp_path), None, 0, {}))
    assert len(result.rows) == 1 and HELD_OUT[0] in result.rows[0]["title"]
    assert (tmp_path / "superres" / "inputs" / f"{HELD_OUT[0]}.png").is_file()
    assert len(result.outputs["images"]) == 1


def test_gallery_task_logic(published, photo, tmp_path):
    _, first, _ = published
    section = SuperresSection(checkpoint=first["checkpoint"], num_inference_steps=2, cascade_checkpoint="")
    rows = superres_gallery_task.fn(section, [str(photo)], str(tmp_path), 0)
    assert len(rows) == 1 and [c for _, c in rows[0]["images"]] == ["low-res", "bicubic", "diffusion"]
    assert all((tmp_path / p).is_file() for p, _ in rows[0]["images"])


def test_commands_refuse_bad_input_and_leave_nothing(published, photo, tmp_path):
    root, first, _ = published
    params = UpscaleParams(image=[str(photo)], num_inference_steps=2, checkpoint=first["checkpoint"])
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValueError, match="supported extensions"):
        upscale(params, out / "photo_x4.gif")
    with pytest.raises(ValueError, match="supported scales: 4"):
        upscale(params.model_copy(update={"scale": 3}), out / "photo_x4.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ValueError, match="truncated or corrupted|not an image"):
        upscale(params.model_copy(update={"image": [str(tmp_path / "broken.png")]}), out / "x.png")
    with pytest.raises(ValueError, match="not one this cascade knows"):
        from flows.superres.params import GenerateCascadeParams

        generate_cascade(GenerateCascadeParams(prompt=["a dragon"], checkpoint=str(root / "cascade"),
                                               num_inference_steps=2), out / "cascade")
    assert list(out.iterdir()) == []
    with pytest.raises(ValueError, match="image file not found"):
        UpscaleParams(image=[str(tmp_path / "missing.png")])


def test_the_train_form_offers_every_preset(tmp_path):
    """The dashboard form's preset list is a Literal kept by hand: it must name every SR preset."""
    from typing import get_args

    from flows.superres.params import SRPresetName
    from generators.superres.presets import SR_PRESETS
    from generators.superres.train import train_superres

    assert set(get_args(SRPresetName)) == set(SR_PRESETS)
    assert SR_PRESETS["small-hybrid-refit"].continues  # the shipped sr-x4's last step starts from a folder
    with pytest.raises(ValueError, match="init_checkpoint"):
        train_superres(tmp_path / "out", "small-hybrid-refit")
    assert not (tmp_path / "out").exists()

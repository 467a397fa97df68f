"""The ``mmdiff`` command line: train, generate, evaluate, demo."""
from __future__ import annotations

import json
import sys
from functools import wraps
from pathlib import Path
from typing import Callable, Optional

import typer

from generators.core.sampling import SAMPLERS

from . import params as _params

# The shipped checkpoint folders (defined once, in flows.params), as the options' Path defaults.
IMAGE_CHECKPOINT = Path(_params.IMAGE_CHECKPOINT)
CLASSIFIER_CHECKPOINT = Path(_params.CLASSIFIER_CHECKPOINT)
TEXT2IMG_CHECKPOINT = Path(_params.TEXT2IMG_CHECKPOINT)
CONTROLNET_CHECKPOINT = Path(_params.CONTROLNET_CHECKPOINT)

app = typer.Typer(help="mmdiff: multi-modal diffusion generators on one core.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
train_app = typer.Typer(help="Train a model.", no_args_is_help=True)
generate_app = typer.Typer(help="Generate samples.", no_args_is_help=True)
evaluate_app = typer.Typer(help="Evaluate a model.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(generate_app, name="generate")
app.add_typer(evaluate_app, name="evaluate")


def friendly_errors(fn: Callable) -> Callable:
    """Turn ValueErrors (bad parameters, broken checkpoints) into one clear line and exit code 2."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from None

    return wrapper


def parse_labels(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--labels must be comma-separated integers like 3,7; got {text!r}") from None


@train_app.command("image")
@friendly_errors
def train_image_cmd(
    preset: str = typer.Option("small", help="tiny | small | base"),
    out: Path = typer.Option(IMAGE_CHECKPOINT, help="checkpoint folder (resumes if it holds training_state/)"),
    steps: Optional[int] = typer.Option(None, help="override the preset's number of steps"),
    seed: int = typer.Option(0),
    mixed_precision: str = typer.Option("no", help="no | bf16 | fp16"),
    checkpoint_every: Optional[int] = typer.Option(None),
) -> None:
    """Train the class-conditional digits generator."""
    from generators.image.train import train_image

    command = "mmdiff " + " ".join(sys.argv[1:])
    result = train_image(out, preset, steps, seed, mixed_precision, checkpoint_every, command=command)
    typer.echo(json.dumps({"out": str(out), "steps": result.steps, "resumed_from": result.resumed_from,
                           "images_per_second": round(result.samples_per_second, 1)}))


@train_app.command("digit-classifier")
@friendly_errors
def train_classifier_cmd(out: Path = typer.Option(CLASSIFIER_CHECKPOINT), epochs: int = typer.Option(30)) -> None:
    """Train the evaluation digit classifier on the train split."""
    from evaluation.digits import train_digit_classifier

    typer.echo(json.dumps(train_digit_classifier(out, epochs=epochs)))


@generate_app.command("image")
@friendly_errors
def generate_image_cmd(
    labels: Optional[str] = typer.Option(None, help="comma-separated digits (default 0..9; with --control, one per map)"),
    control: Optional[list[Path]] = typer.Option(None, help="edge-map PNG (white edges on black), repeatable: "
                                                 "image-to-image translation with the ControlNet adapter"),
    steps: int = typer.Option(25, help="sampler steps"),
    sampler: str = typer.Option("dpmsolver++", help=" | ".join(SAMPLERS)),
    guidance: float = typer.Option(3.0, help="classifier-free guidance scale (0 = unconditional)"),
    seed: int = typer.Option(0),
    checkpoint: Optional[Path] = typer.Option(None, help="checkpoint folder (default: image-digits, or "
                                              "image-controlnet-edges with --control)"),
    out: Path = typer.Option(Path("outputs/generate"), help="folder for the PNGs"),
) -> None:
    """Generate digits for the given labels, or from edge maps with --control, and write PNGs."""
    if control:
        paths = _control_translate(control, labels, steps, sampler, guidance, seed,
                                   checkpoint or CONTROLNET_CHECKPOINT, out)
    else:
        from generators.image import ImageGenerator

        gen = ImageGenerator.from_pretrained(checkpoint or IMAGE_CHECKPOINT)
        result = gen(parse_labels(labels or "0,1,2,3,4,5,6,7,8,9"), num_inference_steps=steps, sampler=sampler,
                     guidance_scale=guidance, seed=seed, progress=True)
        paths = result.save(out)
    for path in paths:
        typer.echo(str(path))


def _control_translate(control: list[Path], labels: Optional[str], steps: int, sampler: str, guidance: float,
                       seed: int, checkpoint: Path, out: Path) -> list[Path]:
    """Edge maps -> digits with the ControlNet adapter on its frozen base (``generate image --control``)."""
    import numpy as np
    from PIL import Image

    from generators.image.controlnet import ControlNetImageGenerator

    missing = [str(p) for p in control if not p.is_file()]
    if missing:
        raise ValueError(f"--control file(s) not found: {missing}; pass edge-map PNGs (white edges on black)")
    gen = ControlNetImageGenerator.from_pretrained(checkpoint)
    maps = np.stack([np.asarray(Image.open(p).convert("L")) for p in control])
    label_list = parse_labels(labels) if labels else None
    result = gen(maps, label_list, steps, sampler=sampler, guidance_scale=guidance, seed=seed)
    return result.save(out)


@evaluate_app.command("image")
@friendly_errors
def evaluate_image_cmd(
    checkpoint: Path = typer.Option(IMAGE_CHECKPOINT),
    per_class: int = typer.Option(100, help="generated digits per label"),
    sampler: str = typer.Option("dpmsolver++"),
    steps: int = typer.Option(25),
    guidance: float = typer.Option(3.0),
    seed: int = typer.Option(0),
    write_metrics: bool = typer.Option(False, help="write metrics.json into the checkpoint folder"),
    full_range_guidance: bool = typer.Option(False, help="guide at every noise level, not only in the default interval"),
) -> None:
    """Accuracy, Frechet distance and CAS of generated digits against held-out real digits."""
    from generators.core.checkpoint import atomic_write_json
    from generators.image import ImageGenerator
    from generators.image.evaluate import evaluate_image_generator

    gen = ImageGenerator.from_pretrained(checkpoint)
    from generators.image.generator import DEFAULT_GUIDANCE_INTERVAL

    interval = None if full_range_guidance else DEFAULT_GUIDANCE_INTERVAL
    metrics = evaluate_image_generator(gen, per_class, sampler, steps, guidance, seed, guidance_interval=interval)
    metrics["command"] = "mmdiff " + " ".join(sys.argv[1:])
    if write_metrics:
        atomic_write_json(Path(checkpoint) / "metrics.json", metrics)
    typer.echo(json.dumps(metrics, indent=2))


@train_app.command("text2img")
@friendly_errors
def train_text2img_cmd(base: Path = typer.Option(IMAGE_CHECKPOINT), out: Path = typer.Option(TEXT2IMG_CHECKPOINT),
                       steps: int = typer.Option(1500), batch_size: int = typer.Option(64), lr: float = typer.Option(1e-3),
                       seed: int = typer.Option(0), checkpoint_every: int = typer.Option(100)) -> None:
    """Fine-tune the digits model into a text-conditioned one (captions from measured attributes)."""
    from generators.image.text2img import train_text2img

    result = train_text2img(out, base, steps, batch_size, lr, seed=seed, checkpoint_every=checkpoint_every,
                    command="mmdiff " + " ".join(sys.argv[1:]))
    typer.echo(f"trained {result.steps} steps -> {out}")


@train_app.command("controlnet")
@friendly_errors
def train_controlnet_cmd(base: Path = typer.Option(IMAGE_CHECKPOINT), out: Path = typer.Option(CONTROLNET_CHECKPOINT),
                         steps: int = typer.Option(1500), batch_size: int = typer.Option(64), lr: float = typer.Option(1e-3),
                         seed: int = typer.Option(0), checkpoint_every: int = typer.Option(100)) -> None:
    """Train an edge-map ControlNet adapter on the frozen digits model."""
    from generators.image.controlnet import train_controlnet

    result = train_controlnet(out, base, steps, batch_size, lr, seed=seed, checkpoint_every=checkpoint_every,
                    command="mmdiff " + " ".join(sys.argv[1:]))
    typer.echo(f"trained {result.steps} steps -> {out}")


@generate_app.command("text2img")
@friendly_errors
def generate_text2img_cmd(prompt: list[str] = typer.Option(..., help="a prompt, e.g. 'a thin upright two' (repeatable)"),
                          steps: int = typer.Option(25), guidance: float = typer.Option(3.0), seed: int = typer.Option(0),
                          checkpoint: Path = typer.Option(TEXT2IMG_CHECKPOINT),
                          out: Path = typer.Option(Path("outputs/text2img"))) -> None:
    """Generate one digit per prompt with classifier-free guidance."""
    from generators.image.text2img import TextImageGenerator

    result = TextImageGenerator.from_pretrained(checkpoint)(prompt, steps, guidance_scale=guidance, seed=seed)
    for path in result.save(out):
        typer.echo(str(path))


@evaluate_app.command("text2img")
@friendly_errors
def evaluate_text2img_cmd(checkpoint: Path = typer.Option(TEXT2IMG_CHECKPOINT), base: Path = typer.Option(IMAGE_CHECKPOINT),
                          prompts: int = typer.Option(200), steps: int = typer.Option(25), seed: int = typer.Option(0)) -> None:
    """Digit and attribute accuracy on held-out prompt phrasings (writes metrics.json)."""
    from generators.image.evaluate_conditioning import evaluate_text2img

    typer.echo(json.dumps(evaluate_text2img(checkpoint, base, prompts, steps, seed=seed), indent=2))


@evaluate_app.command("controlnet")
@friendly_errors
def evaluate_controlnet_cmd(checkpoint: Path = typer.Option(CONTROLNET_CHECKPOINT), images: int = typer.Option(200),
                            steps: int = typer.Option(25), seed: int = typer.Option(0)) -> None:
    """Edge F1 of ControlNet outputs vs the input maps, beside the unconditioned base (writes metrics.json)."""
    from generators.image.evaluate_conditioning import evaluate_controlnet

    typer.echo(json.dumps(evaluate_controlnet(checkpoint, images, steps, seed), indent=2))


@app.command("demo")
@friendly_errors
def demo_cmd(out: Path = typer.Option(Path("outputs")), seed: int = typer.Option(0)) -> None:
    """Run the main job on the shipped checkpoints and write outputs/<run-id>/index.html."""
    from flows.demo import run_demo

    path = run_demo(out, seed=seed)
    typer.echo(f"gallery: {path.resolve()}")


@app.command("serve")
@friendly_errors
def serve_cmd(
    params_file: Optional[Path] = typer.Option(None, help="JSON parameters of the nightly generation run"),
    checkpoint: Optional[Path] = typer.Option(None, help="default image checkpoint in the forms (shipped one if unset)"),
    output_root: Optional[Path] = typer.Option(None, help="default folder for run folders (outputs/ if unset)"),
    schedules: bool = typer.Option(True, help="attach the example nightly schedules"),
    limit: int = typer.Option(2, help="subprocess flow runs (training, ...) executed at once"),
    warm: bool = typer.Option(True, "--warm/--isolate",
                              help="--warm (default): generation, evaluation and composed runs execute in this "
                              "process with the models kept loaded; --isolate: every run gets a subprocess"),
) -> None:
    """Register deployments for every flow (with example schedules) on PREFECT_API_URL and serve them.

    Generation, evaluation and composed runs execute in this process with the models kept loaded;
    training runs get a subprocess each. ``--isolate`` gives every run a subprocess of its own.
    """
    from flows.serve import DEFAULT_PARAMS_FILE, serve_all

    serve_all(params_file or DEFAULT_PARAMS_FILE, None if checkpoint is None else str(checkpoint),
              None if output_root is None else str(output_root), schedules, limit, isolate=not warm)


@app.command("dashboard")
@friendly_errors
def dashboard_cmd(port: int = typer.Option(4200, help="port on 127.0.0.1")) -> None:
    """Start a local Prefect server (SQLite unless PREFECT_SERVER_DATABASE_CONNECTION_URL is set) and serve."""
    from flows.dashboard import run_dashboard

    run_dashboard(port)


if __name__ == "__main__":
    app()

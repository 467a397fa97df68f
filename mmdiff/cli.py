"""``mmdiff``: the command line, built from the family registry (:mod:`flows.registry`).

``mmdiff <verb> <target> [options]`` for every registered :class:`~flows.registry.Command`: the options
are the fields of the command's parameter model, spelled ``--field-name``, with the model's defaults, so
the CLI, the Python API and the dashboard forms validate alike. Every expected failure (a bad value, a
path that cannot be written, a damaged checkpoint) ends as one ``error: ...`` line and exit code 2;
``--debug`` (or ``MMDIFF_DEBUG=1``) shows the traceback instead.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import types
import typing
from functools import wraps
from pathlib import Path
from typing import Any, Callable, Literal

import click
from pydantic import BaseModel, ValidationError

from flows import registry

from .outputs import output_transaction

EXIT_ERROR = 2


class UserError(Exception):
    """An expected failure, printed as one line."""


def _debug() -> bool:
    return os.environ.get("MMDIFF_DEBUG", "") not in ("", "0")


def _describe_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ()) if not isinstance(x, int)]
        name = "--" + loc[0].replace("_", "-") if loc else "parameters"
        parts.append(f"{name}: {str(err.get('msg', 'invalid')).removeprefix('Value error, ')}")
    return "; ".join(parts)


def describe(exc: BaseException) -> str | None:
    """One line for an expected failure; None for a bug (shown as a traceback)."""
    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, ValidationError):
        return _describe_validation(exc)
    if isinstance(exc, UnicodeError):
        return f"text is not valid UTF-8 ({exc.reason}); pass prompts and paths as UTF-8"
    if isinstance(exc, KeyError):
        return str(exc.args[0]) if exc.args else "missing key"
    if isinstance(exc, ValueError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory; ask for fewer items at once (e.g. a smaller --batch-size)"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}"
    return None


def error_boundary(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Expected failures -> ``error: ...`` on stderr and exit 2; Ctrl-C -> exit 130."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            raise click.exceptions.Exit(130) from None
        except Exception as exc:
            line = describe(exc)
            if line is None or _debug():
                raise
            click.echo(f"error: {line}", err=True)
            raise click.exceptions.Exit(EXIT_ERROR) from None

    return wrapper


def check_output_path(out: Path, folder: bool) -> None:
    """Refuse an output path before any work: a file where a folder is needed, a file on the way, no write access."""
    if folder and out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is a file; give a folder path")
    probe = out if (folder and out.is_dir()) else out.parent
    existing = probe
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"--out {out}: {existing} is a file, not a folder; choose another path")
    try:
        fd, tmp = tempfile.mkstemp(dir=existing, prefix=".mmdiff-write-check-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write in {existing} ({exc.strerror or exc}); choose a writable path") from None


# ----------------------------------------------------------------- options from models
def _unwrap_optional(ann: Any) -> Any:
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return ann


def _parse_int_list(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"must be comma-separated integers like 3,7; got {value!r}") from None


def field_option(name: str, field: Any) -> click.Option:
    """A click option for one pydantic field; its default stays the model's (None = not given)."""
    ann = _unwrap_optional(field.annotation)
    flag = "--" + name.replace("_", "-")
    default = field.get_default(call_default_factory=True)
    shown = ",".join(map(str, default)) if isinstance(default, list) else default
    help_text = (field.description or "") + ("" if field.is_required() else f"  [default: {shown}]")
    if ann is bool:
        return click.Option([f"{flag}/--no-{flag[2:]}", name], default=None, help=help_text)
    if typing.get_origin(ann) is Literal:
        return click.Option([flag, name], type=click.Choice([str(a) for a in typing.get_args(ann)]), default=None,
                            help=help_text)
    if typing.get_origin(ann) is list:
        (item,) = typing.get_args(ann)
        if item is int:
            return click.Option([flag, name], type=str, default=None, callback=_parse_int_list,
                                help=help_text + " (comma-separated)")
        return click.Option([flag, name], type=str, multiple=True, default=None, required=field.is_required(),
                            help=help_text + " (repeatable)")
    kind = {int: int, float: float, str: str}.get(ann, str)
    return click.Option([flag, name], type=kind, default=None, required=field.is_required(), help=help_text)


def field_argument(name: str, field: Any) -> click.Argument:
    """A positional argument for one pydantic field (a list field takes one or more values)."""
    many = typing.get_origin(_unwrap_optional(field.annotation)) is list
    return click.Argument([name], nargs=-1 if many else 1, required=field.is_required())


def build_params(model: type[BaseModel], values: dict[str, Any]) -> BaseModel:
    """The parameter model from the options the user gave (the rest keep the model's defaults)."""
    given = {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items()
             if v is not None and not (isinstance(v, tuple) and not v)}
    return model(**given)


def command_for(cmd: registry.Command) -> click.Command:
    """The click command of one registry cell."""
    fields = cmd.params.model_fields
    params: list[click.Parameter] = [field_argument(n, fields[n]) for n in cmd.arguments]
    params += [field_option(n, f) for n, f in fields.items() if n not in cmd.cli_skip and n not in cmd.arguments]
    if cmd.out is not None:
        params.append(click.Option(["--out", "out"], type=click.Path(path_type=Path), required=cmd.out_required,
                                   default=None, help=cmd.out))

    @error_boundary
    def callback(out: Path | None = None, **values: Any) -> None:
        model = build_params(cmd.params, values)
        if out is not None:
            suffix = out.suffix.lower() if not out.is_dir() else ""
            if suffix not in cmd.out_formats:
                shown = ", ".join(f or "a folder" for f in cmd.out_formats)
                raise UserError(f"--out {out}: {suffix or 'a folder'} is not supported here; give {shown}")
            check_output_path(out, folder=not suffix)
        with output_transaction(out if cmd.all_or_nothing else None):
            result = cmd.run(model, out)
        if isinstance(result, list):
            click.echo("\n".join(map(str, result)))
        else:
            click.echo(json.dumps(result, indent=2, default=str))

    return click.Command(cmd.target or cmd.verb, params=params, callback=callback, help=cmd.help)


VERB_HELP = {"train": "Train a model.", "generate": "Generate samples.", "evaluate": "Evaluate a model."}


def build_cli(families: list[registry.Family] | None = None) -> click.Group:
    """The whole CLI: the verb groups of every registered command, plus demo, serve, dashboard and check."""
    app = click.Group("mmdiff", help="mmdiff: multi-modal diffusion generators on one core.",
                      context_settings={"help_option_names": ["-h", "--help"]})
    app.params.append(click.Option(["--debug"], is_flag=True, expose_value=False, is_eager=True,
                                   callback=lambda ctx, p, v: os.environ.__setitem__("MMDIFF_DEBUG", "1") if v else None,
                                   help="show tracebacks instead of one-line errors"))
    groups: dict[str, click.Group] = {}
    for fam in families if families is not None else registry.families():
        for cmd in fam.commands:
            if cmd.target is None:
                app.add_command(command_for(cmd))
                continue
            group = groups.get(cmd.verb)
            if group is None:
                group = groups[cmd.verb] = click.Group(cmd.verb, help=VERB_HELP.get(cmd.verb, f"{cmd.verb}."))
                app.add_command(group)
            group.add_command(command_for(cmd))
    for extra in (demo_cmd, serve_cmd, dashboard_cmd, check_cmd):
        app.add_command(extra)
    return app


# ------------------------------------------------------------------------ the rest
def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, path = v.partition("=")
        if not sep or not name or not path:
            raise UserError(f"{option} must be FAMILY=PATH, e.g. image=data/checkpoints/image-digits; got {v!r}")
        out[name] = path
    return out


@click.command("demo")
@click.option("--out", type=click.Path(path_type=Path), default=Path("outputs"), help="folder for the run folder")
@click.option("--seed", type=click.IntRange(0), default=0)
@error_boundary
def demo_cmd(out: Path, seed: int) -> None:
    """Run the composed flow on the shipped checkpoints and write outputs/<run-id>/index.html."""
    from flows.demo import run_demo

    check_output_path(out, folder=True)
    click.echo(f"gallery: {run_demo(out, seed=seed).resolve()}")


def _serve_defaults(checkpoint: tuple[str, ...], params_file: tuple[str, ...], output_root: Path | None,
                    schedules: bool) -> dict[str, Any]:
    return {"checkpoints": _pairs(checkpoint, "--checkpoint"), "params_files": _pairs(params_file, "--params-file"),
            "output_root": None if output_root is None else str(output_root), "schedules": schedules}


SERVE_OPTIONS = [
    click.option("--checkpoint", multiple=True, help="FAMILY=PATH: the default checkpoint in a family's forms"),
    click.option("--params-file", multiple=True, help="FAMILY=PATH: JSON parameters of a family's scheduled run"),
    click.option("--output-root", type=click.Path(path_type=Path), default=None, help="default folder for run folders"),
    click.option("--schedules/--no-schedules", default=True, help="attach the example nightly schedules"),
]


def _with_serve_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(SERVE_OPTIONS):
        fn = option(fn)
    return fn


@click.command("serve")
@_with_serve_options
@click.option("--limit", type=click.IntRange(1), default=2, help="subprocess flow runs (training, ...) at once")
@click.option("--warm/--isolate", default=True, help="--warm (default): inference runs execute in this process with "
              "the models kept loaded; --isolate: every run gets a subprocess")
@error_boundary
def serve_cmd(checkpoint: tuple[str, ...], params_file: tuple[str, ...], output_root: Path | None, schedules: bool,
              limit: int, warm: bool) -> None:
    """Register every family's deployments (with example schedules) on PREFECT_API_URL and serve them."""
    from flows.serve import serve_all

    serve_all(_serve_defaults(checkpoint, params_file, output_root, schedules), limit, isolate=not warm)


@click.command("dashboard")
@click.option("--port", type=click.IntRange(1, 65535), default=4200, help="port on 127.0.0.1")
@_with_serve_options
@error_boundary
def dashboard_cmd(port: int, checkpoint: tuple[str, ...], params_file: tuple[str, ...], output_root: Path | None,
                  schedules: bool) -> None:
    """Start a local Prefect server (SQLite unless PREFECT_SERVER_DATABASE_CONNECTION_URL is set) and serve."""
    from flows.dashboard import run_dashboard

    run_dashboard(port, _serve_defaults(checkpoint, params_file, output_root, schedules))


@click.command("check")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--kind", default=None, help="the model loader to use (e.g. image, text2img); default: every loader "
              "in turn, until one reads the folder")
@error_boundary
def check_cmd(checkpoint: Path, kind: str | None) -> None:
    """Verify a checkpoint folder against its manifest (sha256 of every file) and load it with a registered loader."""
    if not checkpoint.is_dir():
        raise UserError(f"checkpoint {checkpoint} is a file; pass the checkpoint folder" if checkpoint.exists()
                        else f"checkpoint folder {checkpoint} does not exist")
    from generators.core.checkpoint import verify_manifest

    verified = sorted(verify_manifest(checkpoint, full=True))
    for manifest in sorted(checkpoint.rglob("manifest.json")):  # the parts of a composite checkpoint (a cascade)
        part = manifest.parent
        if part == checkpoint or any(x.startswith((".", "training_state")) for x in part.relative_to(checkpoint).parts):
            continue
        verified += [f"{part.relative_to(checkpoint)}/{name}" for name in sorted(verify_manifest(part, full=True))]
    kinds = [kind] if kind else [k for f in registry.families() for k in f.loaders]
    errors = []
    for k in kinds:
        try:
            model = registry.loader(k)(str(checkpoint), "cpu")
        except ValueError as exc:
            errors.append(f"{k}: {exc}")
            continue
        files = sorted(p.name for p in checkpoint.iterdir() if p.is_file())
        click.echo(json.dumps({"checkpoint": str(checkpoint), "kind": k, "loaded": type(model).__name__,
                               "files": files, "verified_sha256": verified or "no manifest.json"}, indent=2))
        return
    raise UserError(f"no loader reads {checkpoint}: " + " | ".join(errors))


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    build_cli().main(args=argv, prog_name="mmdiff")


app = build_cli
if __name__ == "__main__":
    main(sys.argv[1:])

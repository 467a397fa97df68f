"""The family registry: one record per generator family, the only place the shared layers learn of families.

The CLI (``mmdiff``), ``mmdiff serve``, the model cache, the composed flow, the demo and the reuse
fingerprint iterate over :func:`families`; none of them names a family. A family joins with its
own folder ``flows/<family>/`` (whose ``FAMILY`` is a :class:`Family`) and one line in
:data:`FAMILY_MODULES`. Tests register a family at run time with :func:`register`.
"""
from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from pydantic import BaseModel

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment
    from prefect.flows import Flow

# The registry lines: one module per family, each defining ``FAMILY``.
FAMILY_MODULES: tuple[str, ...] = (
    "flows.image",
    "flows.superres",
    "flows.floorplan",
    "flows.video",
    "flows.pointcloud",
)


@dataclass(frozen=True)
class Command:
    """One cell of the CLI grid: ``mmdiff <verb> <target>``.

    Args:
        verb: ``train``, ``generate``, ``evaluate``, or a verb of the family's own (``upscale``, ``refine``).
        target: the second word (the family's name, or one of its models); None for a top-level verb.
        params: the pydantic model whose fields are the command's options (``--num-inference-steps``),
            with their defaults; the same model validates the flow's parameters.
        run: ``run(params, out)`` -> a JSON-able summary; the function the family's flow calls too.
        help: one line for ``--help``.
        out: help of the command's ``--out`` path; None when the command takes none.
        out_required: ``--out`` has no default.
        cli_skip: fields of ``params`` that only the flow uses (not offered as CLI options).
        out_formats: the extensions ``--out`` may have ("" for a folder), checked before any work.
        arguments: fields given as positional arguments instead of options (``mmdiff upscale a.png b.png``).
        resumable_out: ``--out`` is a checkpoint folder that a rerun resumes (training). Otherwise the
            command's output is all or nothing: if it fails, what it wrote at ``--out`` is removed.
    """

    verb: str
    target: str | None
    params: type[BaseModel]
    run: Callable[[Any, Path | None], Any]
    help: str
    out: str | None = None
    out_required: bool = False
    cli_skip: tuple[str, ...] = ()
    out_formats: tuple[str, ...] = ("",)
    arguments: tuple[str, ...] = ()
    resumable_out: bool | None = None

    @property
    def all_or_nothing(self) -> bool:
        """Whether a failed run's output is taken back (every verb but ``train``, unless set)."""
        return not self.resumable_out if self.resumable_out is not None else self.verb != "train"


@dataclass(frozen=True)
class StepContext:
    """What a composed step sees: the run folder, the brief, the shared seed and earlier steps' outputs."""

    run_dir: str
    brief: Any
    seed: int
    outputs: dict[str, Any]


@dataclass(frozen=True)
class StepResult:
    """A composed step's gallery rows (``flows.report.GalleryRow`` as dicts) and outputs for later steps."""

    rows: list[dict[str, Any]]
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ComposedStep:
    """One step of the composed flow; steps run in ``order`` across families.

    ``run(section, context)`` gets the family's section of ``ComposedParams`` and a :class:`StepContext`.
    """

    name: str
    description: str
    order: int
    run: Callable[[Any, StepContext], StepResult]


@dataclass(frozen=True)
class Family:
    """Everything the shared layers need from one generator family."""

    name: str
    description: str
    commands: tuple[Command, ...] = ()
    deployments: Callable[[Mapping[str, Any]], list["RunnerDeployment"]] | None = None
    warm_flows: Callable[[], tuple["Flow[..., Any]", ...]] | None = None
    loaders: Mapping[str, Callable[[str, str], Any]] = field(default_factory=dict)
    preload: tuple[tuple[str, str], ...] = ()
    composed_section: type[BaseModel] | None = None
    composed_steps: tuple[ComposedStep, ...] = ()
    checkpoints: Mapping[str, str] = field(default_factory=dict)
    code_paths: tuple[str, ...] = ()


_lock = threading.Lock()
_families: dict[str, Family] = {}
_loaded = False


def _load_builtin() -> None:
    global _loaded
    with _lock:
        if _loaded:
            return
        _loaded = True
    for module in FAMILY_MODULES:
        register(importlib.import_module(module).FAMILY)


def register(family: Family) -> Family:
    """Add (or replace) a family; returns it. Names are unique and lower-case words."""
    if not family.name.replace("_", "").replace("-", "").isalnum() or family.name != family.name.lower():
        raise ValueError(f"family name must be a lower-case word, got {family.name!r}")
    with _lock:
        _families[family.name] = family
    return family


def unregister(name: str) -> None:
    """Remove a family (tests)."""
    with _lock:
        _families.pop(name, None)


def families() -> list[Family]:
    """Every registered family, built-in ones first, in registration order."""
    _load_builtin()
    with _lock:
        return list(_families.values())


def family(name: str) -> Family:
    """The family called ``name``; KeyError lists the registered ones."""
    for fam in families():
        if fam.name == name:
            return fam
    raise KeyError(f"no generator family {name!r}; registered: {[f.name for f in families()]}")


def loader(kind: str) -> Callable[[str, str], Any]:
    """The model-cache loader of ``kind`` from whichever family provides it."""
    for fam in families():
        if kind in fam.loaders:
            return fam.loaders[kind]
    raise KeyError(f"no family provides a model loader {kind!r}")

"""Multi-process training through ``accelerate launch`` (DDP), and the entry point it runs.

``accelerate_train(out, preset, ..., num_processes=2)`` starts
``python -m accelerate.commands.launch --multi_gpu --num_processes N -m flows.image.launch ...``.
``--multi_gpu`` selects accelerate's torchrun launcher; on a machine without CUDA the
environment variable ``ACCELERATE_USE_CPU=true`` makes every process a CPU worker, and accelerate
joins them with the gloo backend (``DistributedType.MULTI_CPU``). ``accelerate launch --cpu``
would instead start one process unless MPI is installed.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(output_dir: Path, preset: str, max_steps: int | None, seed: int, mixed_precision: str,
                   checkpoint_every: int | None, num_processes: int) -> list[str]:
    """The ``accelerate launch`` argv for :func:`accelerate_train`."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(num_processes),
           "--num_machines", "1", "--mixed_precision", mixed_precision, "--dynamo_backend", "no",
           "--main_process_port", str(free_port()), "-m", "flows.image.launch",
           "--output-dir", str(output_dir), "--preset", preset, "--seed", str(seed), "--mixed-precision", mixed_precision]
    if max_steps is not None:
        cmd += ["--max-steps", str(max_steps)]
    if checkpoint_every is not None:
        cmd += ["--checkpoint-every", str(checkpoint_every)]
    return cmd


def accelerate_train(output_dir: str | os.PathLike, preset: str, max_steps: int | None, seed: int = 0,
                     mixed_precision: str = "no", checkpoint_every: int | None = None, num_processes: int = 2,
                     timeout: float | None = None) -> dict:
    """Run ``train_image`` in ``num_processes`` DDP processes; returns the main process's summary.

    Raises:
        RuntimeError: the launch failed; the message carries the tail of its output.
    """
    if num_processes < 2:
        raise ValueError(f"num_processes must be >= 2 for accelerate launch, got {num_processes}")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    summary = output_dir / "launch_summary.json"
    summary.unlink(missing_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    if not torch.cuda.is_available():
        env["ACCELERATE_USE_CPU"] = "true"
    cmd = launch_command(output_dir, preset, max_steps, seed, mixed_precision, checkpoint_every, num_processes)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not summary.is_file():
        tail = (proc.stdout + proc.stderr)[-3000:]
        raise RuntimeError(f"accelerate launch with num_processes={num_processes} failed (exit {proc.returncode}):\n{tail}")
    return json.loads(summary.read_text())


def main(argv: list[str] | None = None) -> None:
    """Entry point run in every process by ``accelerate launch``."""
    from accelerate import PartialState

    from generators.core.checkpoint import atomic_write_json
    from generators.image.train import train_image

    p = argparse.ArgumentParser(description="train_image under accelerate launch")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--preset", default="tiny")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mixed-precision", default="no")
    p.add_argument("--checkpoint-every", type=int, default=None)
    args = p.parse_args(argv)
    result = train_image(args.output_dir, args.preset, args.max_steps, args.seed, args.mixed_precision,
                         args.checkpoint_every, command="accelerate launch -m flows.image.launch " + " ".join(sys.argv[1:]),
                         progress=False)
    state = PartialState()
    state.wait_for_everyone()
    if state.is_main_process:
        atomic_write_json(Path(args.output_dir) / "launch_summary.json", {
            "steps": result.steps, "resumed_from": result.resumed_from, "seconds": result.seconds,
            "samples_per_second": result.samples_per_second, "num_processes": state.num_processes,
            "distributed_type": str(state.distributed_type), "backend": state.backend,
        })


if __name__ == "__main__":
    main()

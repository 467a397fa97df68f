"""The main job (``make demo``): the composed flow on the shipped checkpoints, one gallery report."""
from __future__ import annotations

import os
from pathlib import Path


def run_demo(output_root: str | Path = "outputs", seed: int = 0) -> Path:
    """Run the composed flow on the shipped checkpoints; returns ``outputs/<run-id>/index.html``.

    Every registered family adds its rows to the one report.
    """
    # Without PREFECT_API_URL, Prefect starts a temporary local server for this run. On the first
    # run it creates its SQLite database, which takes longer than Prefect's 20 s start-up limit on a
    # small machine; and it should not try to send telemetry (offline machines log errors for it).
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from .composed import ComposedParams, composed_flow

    result = composed_flow(ComposedParams(output_root=str(output_root), seed=seed))
    return Path(result["report"])

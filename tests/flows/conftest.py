"""Flow tests run against one temporary Prefect API for the whole session (``prefect_test_harness``)."""
from __future__ import annotations

import os

# The harness's temporary server would try to send telemetry (no network here) and, on a fresh
# SQLite file, race its own migrations for the lock; the tests need neither.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import pytest
import torch
from prefect.testing.utilities import prefect_test_harness


@pytest.fixture(scope="package", autouse=True)
def one_torch_thread():
    """Tiny 8x8 models run fastest on one thread; on a shared 2-core machine two threads spin against
    each other (20 tiny training steps: 1.4 s with one thread, ~100 s with two under load)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session", autouse=True)
def prefect_api():
    """One SQLite-backed Prefect server for every test in tests/flows (startup is the slow part)."""
    with prefect_test_harness(server_startup_timeout=180):
        yield

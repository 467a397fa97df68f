"""Progress artifacts: updates never block the caller; the latest value and the final 100 % reach the API."""
from __future__ import annotations

import time

from prefect import flow

import flows.artifacts as artifacts
from flows.artifacts import Progress, artifact_key


def test_progress_updates_do_not_wait_for_the_api(monkeypatch):
    posted: list[float] = []

    def slow_update(artifact_id, value):  # a server answering in 200 ms
        time.sleep(0.2)
        posted.append(value)

    monkeypatch.setattr(artifacts, "update_progress_artifact", slow_update)

    @flow
    def sampling() -> float:
        progress = Progress("progress-test", "sampling", min_interval=0.05)
        t0 = time.perf_counter()
        for i in range(100):
            progress.update((i + 1) / 200)
        elapsed = time.perf_counter() - t0
        time.sleep(0.5)  # the poster thread posts the latest value meanwhile
        progress.update(1.0, force=True)
        return elapsed

    elapsed = sampling()
    assert elapsed < 0.1, f"100 updates took {elapsed:.2f} s: update() waited for the API"
    assert posted[-1] == 100.0
    assert 50.0 in posted  # the last value before the final one was posted by the background thread
    assert len(posted) < 10  # throttled: not one request per update
    assert posted == sorted(posted)


def test_the_final_value_is_posted_last_even_behind_a_slow_background_post(monkeypatch):
    posted: list[float] = []

    def update(artifact_id, value):  # the background post of 50 % is slow, the final one fast
        time.sleep(0.4 if value < 100 else 0.0)
        posted.append(value)

    monkeypatch.setattr(artifacts, "update_progress_artifact", update)

    @flow
    def sampling() -> None:
        progress = Progress("progress-order", "sampling", min_interval=0.05)
        progress.update(0.5)
        time.sleep(0.15)  # the poster thread is now inside its slow request
        progress.update(1.0, force=True)

    sampling()
    time.sleep(0.5)
    assert posted == [50.0, 100.0], "a stale background post must not land after the final 100 %"


def test_progress_outside_a_run_is_a_no_op():
    progress = Progress("x", "outside")
    progress.update(0.5)
    progress.update(1.0, force=True)
    assert progress.artifact_id is None
    assert artifact_key("Generate Shard", "3", "progress") == "generate-shard-3-progress"

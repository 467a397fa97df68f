"""Task logic through ``.fn()``, GPU slots, checkpoint reuse helpers and the composed flow's plan."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from prefect import flow, task

from flows.common import IO_RETRIES
from flows.gpu import device_slot, slot_name
from flows.image.tasks import (
    fingerprint_task,
    generate_shard_task,
    score_samples_task,
    shard_labels,
    shard_seed,
    write_report_task,
)
from flows.image.params import CLASSIFIER_CHECKPOINT, TrainImageParams
from flows.reuse import fingerprint, is_complete, mark_complete, publish_folder
from flows.warm import RunCancelled


def test_shard_seeds_depend_on_seed_and_index_only():
    assert shard_seed(0, 1) == shard_seed(0, 1)
    assert len({shard_seed(0, i) for i in range(50)} | {shard_seed(1, i) for i in range(50)}) == 100
    assert shard_labels([1, 2, 3, 4, 5], 2) == [(0, 0, [1, 2]), (1, 2, [3, 4]), (2, 4, [5])]
    with pytest.raises(ValueError, match="shard_size"):
        shard_labels([1], 0)


def test_generate_shard_writes_pngs_reproducibly(tiny_checkpoint, tmp_path):
    args = (str(tiny_checkpoint), 3, 6, [1, 7], 11, "ddim", 3, 2.0)
    rows = generate_shard_task.fn(*args, str(tmp_path / "a"))
    again = generate_shard_task.fn(*args, str(tmp_path / "b"))
    assert [r["index"] for r in rows] == [6, 7] and [r["label"] for r in rows] == [1, 7]
    assert all(r["seed"] == shard_seed(11, 3) for r in rows)
    for r, s in zip(rows, again):
        a, b = np.asarray(Image.open(r["path"])), np.asarray(Image.open(s["path"]))
        assert a.shape == (8, 8) and np.array_equal(a, b)
    from generators.image import ImageGenerator

    direct = ImageGenerator.from_pretrained(tiny_checkpoint)([1, 7], num_inference_steps=3, sampler="ddim",
                                                              guidance_scale=2.0, seed=shard_seed(11, 3))
    assert np.array_equal(direct.images[0, ..., 0], np.asarray(Image.open(rows[0]["path"])))


def test_score_samples_and_report(tiny_checkpoint, tmp_path):
    rows = generate_shard_task.fn(str(tiny_checkpoint), 0, 0, [0, 5], 0, "dpmsolver++", 3, 3.0, str(tmp_path / "images"))
    scored = score_samples_task.fn(rows, CLASSIFIER_CHECKPOINT)
    assert all(0 <= r["predicted"] <= 9 and 0.0 < r["confidence"] <= 1.0 for r in scored)
    assert [r["correct"] for r in scored] == [r["predicted"] == r["label"] for r in scored]
    page = write_report_task.fn(str(tmp_path), "t", [("run", {"images": 2})], scored)
    html = open(page).read()
    assert "images/shard000_000_label0.png" in html and "pred" in html


def test_fingerprint_changes_with_config_and_marks_completion(tmp_path):
    a = fingerprint_task.fn(TrainImageParams(max_steps=20, cache_root=str(tmp_path)))
    b = fingerprint_task.fn(TrainImageParams(max_steps=21, cache_root=str(tmp_path)))
    assert a["folder"] != b["folder"] and a["fingerprint"] == fingerprint(a["config"], *_versions("tiny"))
    folder = tmp_path / "f"
    folder.mkdir()
    assert not is_complete(folder, a["fingerprint"])
    mark_complete(folder, a["fingerprint"], {"steps": 20})
    assert is_complete(folder, a["fingerprint"]) and not is_complete(folder, b["fingerprint"])


def _versions(preset):
    from flows.image.tasks import CODE_PATHS, dataset_version
    from flows.reuse import code_version

    return dataset_version(preset), code_version(CODE_PATHS)


def test_publish_is_a_clean_copy_that_replaces_the_target(tiny_checkpoint, tmp_path):
    target = tmp_path / "pub"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    publish_folder(tiny_checkpoint, target)
    assert (target / "config.json").is_file() and not (target / "stale.txt").exists()
    assert not (target / "training_state").exists() and (tiny_checkpoint / "training_state").exists()
    assert not list(tmp_path.glob(".pub*"))
    with pytest.raises(ValueError, match="not a checkpoint folder"):
        publish_folder(tmp_path / "empty", tmp_path / "x")


def test_slot_names(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert slot_name("cpu") is None
    assert slot_name("cuda") == slot_name("cuda:0") == "gpu-cuda-0"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert slot_name("cuda:1") == "gpu-cuda-5"
    with pytest.raises(ValueError, match="device"):
        slot_name("tpu")


def test_device_slot_is_exclusive_and_released_on_failure():
    from prefect.client.orchestration import get_client

    name = "gpu-test-slot"

    def active() -> int:
        with get_client(sync_client=True) as client:
            return client.read_global_concurrency_limit_by_name(name).active_slots

    with device_slot("cuda:0", name=name):
        assert active() == 1
        with pytest.raises(TimeoutError):
            with device_slot("cuda:0", timeout_seconds=1, name=name):
                pass
    assert active() == 0
    with pytest.raises(RuntimeError, match="boom"):
        with device_slot("cuda:0", name=name):
            raise RuntimeError("boom")
    assert active() == 0
    with device_slot("cpu") as held:
        assert held is None


ATTEMPTS: dict[str, int] = {}


@task(**IO_RETRIES)
def flaky(kind: str) -> str:
    """Fails on its first attempt with ``kind`` ('io': an OSError, 'cancel': a warm run's cancellation)."""
    ATTEMPTS[kind] = ATTEMPTS.get(kind, 0) + 1
    if ATTEMPTS[kind] == 1:
        raise OSError("disk hiccup") if kind == "io" else RunCancelled("cancelled from the dashboard")
    return "ok"


@flow
def flaky_flow(kind: str) -> str:
    return flaky(kind, return_state=True).type.value


def test_io_tasks_retry_transient_errors_but_not_a_cancellation():
    assert flaky_flow("io") == "COMPLETED" and ATTEMPTS["io"] == 2
    assert flaky_flow("cancel") == "FAILED" and ATTEMPTS["cancel"] == 1, "a cancelled run must not be retried"

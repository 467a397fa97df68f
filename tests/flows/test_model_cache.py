"""The per-process model cache: one load per checkpoint version, shared across threads."""
import os
import threading
import time

import pytest

from flows import model_cache


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts empty and leaves nothing behind (stand-in objects must not reach other tests)."""
    model_cache.clear()
    yield
    model_cache.clear()


def test_loads_once_and_reloads_when_a_file_changes(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"v1")
    loads = []

    def load():
        loads.append(1)
        return object()

    a = model_cache.cached("k", tmp_path, "cpu", load)
    assert model_cache.cached("k", tmp_path, "cpu", load) is a and len(loads) == 1
    assert model_cache.cached("k", tmp_path, "cuda:0", load) is not a and len(loads) == 2  # per device
    (tmp_path / "model.safetensors").write_bytes(b"version 2")
    os.utime(tmp_path / "model.safetensors", ns=(1, 1))
    assert model_cache.cached("k", tmp_path, "cpu", load) is not a and len(loads) == 3


def test_concurrent_callers_share_one_load(tmp_path):
    loads = []

    def slow_load():
        loads.append(1)
        time.sleep(0.2)
        return object()

    results = []
    threads = [threading.Thread(target=lambda: results.append(model_cache.cached("k", tmp_path, "cpu", slow_load)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and len({id(r) for r in results}) == 1


def test_least_recently_used_entries_are_dropped(tmp_path):
    first = model_cache.cached("k0", tmp_path, "cpu", object)
    for i in range(1, model_cache.MAX_ENTRIES + 1):
        model_cache.cached(f"k{i}", tmp_path, "cpu", object)
    assert model_cache.cached("k0", tmp_path, "cpu", object) is not first


def test_registered_loaders_are_cached(tmp_path):
    from flows import registry

    loads = []
    registry.register(registry.Family("cachetest", "a test family",
                                      loaders={"cachetest": lambda path, device: loads.append(device) or object()}))
    try:
        assert model_cache.load("cachetest", str(tmp_path)) is model_cache.load("cachetest", tmp_path)
        model_cache.load("cachetest", tmp_path, "cuda:0")
        model_cache.load("cachetest", tmp_path, "cuda:0")
        # a GPU model must not outlive the task holding the GPU's slot: it is loaded afresh each time
        assert loads == ["cpu", "cuda:0", "cuda:0"]
    finally:
        registry.unregister("cachetest")
        model_cache.clear()


def test_a_failed_load_is_not_cached_and_can_be_retried(tmp_path):
    def broken():
        raise OSError("disk hiccup")

    try:
        model_cache.cached("k", tmp_path, "cpu", broken)
    except OSError:
        pass
    else:
        raise AssertionError("the load's error must reach the caller")
    value = object()
    assert model_cache.cached("k", tmp_path, "cpu", lambda: value) is value
    assert not model_cache._key_locks

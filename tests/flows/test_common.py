"""``flows/common.py``: a failed flow run settles its run folder (no empty folders, partial runs marked)."""
import json

import pytest

from flows.common import FAILED_SUFFIX, family_flow, run_dir_task


@family_flow("test_failing_flow")
def failing_flow(root: str, write: bool) -> None:
    run_dir = run_dir_task(root, "failing")
    if write:
        with open(f"{run_dir}/partial.png", "wb") as fh:
            fh.write(b"x")
    raise RuntimeError("boom")


@family_flow("test_fine_flow")
def fine_flow(root: str) -> str:
    return run_dir_task(root, "fine")


def test_a_failed_run_leaves_no_empty_folder(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        failing_flow(str(tmp_path), write=False)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_run_with_outputs_is_marked_failed(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        failing_flow(str(tmp_path), write=True)
    (folder,) = tmp_path.iterdir()
    assert folder.name.endswith(FAILED_SUFFIX)
    assert (folder / "partial.png").read_bytes() == b"x"
    assert "boom" in json.loads((folder / "failure.json").read_text())["message"]


def test_a_finished_run_keeps_its_folder(tmp_path):
    run_dir = fine_flow(str(tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == [run_dir.rsplit("/", 1)[-1]]

"""VideoOutput.save: MP4, GIF, a folder of PNGs, errors, and nothing half-written."""
import imageio.v2 as iio2
import imageio.v3 as iio
import numpy as np
import pytest

from generators.video import VideoOutput


@pytest.fixture
def clip():
    rng = np.random.default_rng(0)
    frames = np.zeros((6, 32, 32, 1), np.uint8)
    for t in range(6):
        frames[t, 8:20, 4 + 3 * t:16 + 3 * t] = rng.integers(128, 256, (12, 12, 1))
    return VideoOutput(frames[None], fps=8)


def test_mp4_has_every_frame(clip, tmp_path):
    [path] = clip.save(tmp_path / "clip.mp4")
    reader = iio2.get_reader(path, format="FFMPEG")
    frames = np.stack([frame for frame in reader])
    assert frames.shape == (6, 32, 32, 3) and reader.get_meta_data()["fps"] == 8
    # lossy, but the moving square is where it was drawn
    assert abs(frames[..., 0].astype(float).mean() - clip.frames[..., 0].astype(float).mean()) < 4


def test_gif_round_trip(clip, tmp_path):
    [path] = clip.save(tmp_path / "clip.gif")
    frames = iio.imread(path, index=None)
    assert frames.shape[:3] == (6, 32, 32)
    assert np.abs(frames[..., 0].astype(int) - clip.frames[..., 0]).max() <= 8


def test_folder_of_pngs_is_exact(clip, tmp_path):
    paths = clip.save(tmp_path / "frames")
    assert [p.name for p in paths] == [f"sample_frame_{t:03d}.png" for t in range(6)]
    assert np.array_equal(iio.imread(paths[2]), clip.frames[2, ..., 0])
    batch = VideoOutput(np.repeat(clip.videos, 2, axis=0), fps=8)
    assert len(batch.save(tmp_path / "batch")) == 12 and (tmp_path / "batch" / "sample_001" / "frame_005.png").is_file()


def test_unknown_extension_lists_the_supported_ones(clip, tmp_path):
    with pytest.raises(ValueError, match=r"\.mp4, \.gif"):
        clip.save(tmp_path / "clip.avi")
    assert not (tmp_path / "clip.avi").exists()


def test_a_batch_needs_a_folder_and_leaves_nothing(clip, tmp_path):
    batch = VideoOutput(np.repeat(clip.videos, 2, axis=0), fps=8)
    with pytest.raises(ValueError, match="folder"):
        batch.save(tmp_path / "two.gif")
    assert list(tmp_path.iterdir()) == []


def test_output_checks_its_arrays():
    with pytest.raises(ValueError, match="uint8"):
        VideoOutput(np.zeros((1, 2, 4, 4, 1), np.float32))
    with pytest.raises(ValueError, match="fps"):
        VideoOutput(np.zeros((1, 2, 4, 4, 1), np.uint8), fps=0)

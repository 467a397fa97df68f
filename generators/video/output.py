"""Generated clips and their files: MP4 (imageio-ffmpeg's bundled ffmpeg, H.264), GIF (Pillow) or a folder of PNGs."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Iterator

import numpy as np

from generators.core.pipeline import GeneratorOutput, png_bytes


def gif_bytes(frames: np.ndarray, fps: float) -> bytes:
    """uint8 (T, H, W, C) -> an endlessly looping GIF."""
    import imageio.v3 as iio

    arr = frames[..., 0] if frames.shape[-1] == 1 else frames
    return iio.imwrite("<bytes>", arr, extension=".gif", duration=1000.0 / fps, loop=0)


def mp4_bytes(frames: np.ndarray, fps: float) -> bytes:
    """uint8 (T, H, W, C) -> H.264 MP4 (yuv420p), through imageio's ffmpeg plugin."""
    import imageio.v2 as iio2

    try:
        import imageio_ffmpeg  # noqa: F401  (imageio's FFMPEG plugin needs it; it bundles the binary)
    except ImportError as exc:
        raise ImportError("writing .mp4 needs the package imageio-ffmpeg (pip install imageio-ffmpeg)") from exc
    rgb = np.repeat(frames, 3, axis=-1) if frames.shape[-1] == 1 else frames[..., :3]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "clip.mp4")
        writer = iio2.get_writer(path, format="FFMPEG", mode="I", fps=fps, codec="libx264", pixelformat="yuv420p",
                                 macro_block_size=2, ffmpeg_log_level="error")
        try:
            for frame in rgb:
                writer.append_data(np.ascontiguousarray(frame))
        finally:
            writer.close()
        return Path(path).read_bytes()


@dataclass
class VideoOutput(GeneratorOutput):
    """Generated clips: ``videos`` uint8 (B, T, H, W, C) at ``fps`` frames per second.

    ``frames`` is the one clip (T, H, W, C) when one was asked for, else all of them (B, T, H, W, C).
    ``save("clip.mp4")`` / ``save("clip.gif")`` writes one clip; ``save("dir/")`` writes PNG frames
    (``dir/sample_frame_000.png``, or ``dir/sample_000/frame_000.png`` for a batch).
    """

    videos: np.ndarray
    fps: float = 8.0
    prompts: list[str | None] = field(default_factory=list)
    file_formats: ClassVar[tuple[str, ...]] = (".mp4", ".gif")

    def __post_init__(self) -> None:
        if self.videos.ndim != 5 or self.videos.dtype != np.uint8:
            raise ValueError(f"videos must be uint8 (B, T, H, W, C), got {self.videos.dtype} {self.videos.shape}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")

    @property
    def frames(self) -> np.ndarray:
        return self.videos[0] if len(self.videos) == 1 else self.videos

    def _items(self, prefix: str) -> Iterator[tuple[str, bytes]]:
        for i, clip in enumerate(self.videos):
            for t, frame in enumerate(clip):
                name = f"{prefix}_frame_{t:03d}.png" if len(self.videos) == 1 else f"{prefix}_{i:03d}/frame_{t:03d}.png"
                yield name, png_bytes(frame)

    def _encode(self, suffix: str) -> bytes:
        if len(self.videos) != 1:
            raise ValueError(f"{len(self.videos)} clips cannot go into one {suffix} file; give a folder path instead")
        encode = mp4_bytes if suffix == ".mp4" else gif_bytes
        return encode(self.videos[0], self.fps)

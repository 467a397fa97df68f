"""The video family's rows of the composed flow (``make demo``): text-to-video and image-to-video GIFs."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from prefect import task

from ..common import IO_RETRIES
from ..gpu import device_slot
from ..registry import StepContext, StepResult
from ..report import GalleryRow
from .params import VideoSection
from .tasks import video_generator

DEFAULT_PROMPT = "the digit 3 moves to the right"


def held_out_first_frame(gen: Any, seed: int) -> tuple[np.ndarray, int]:
    """The first frame (uint8 (H, W)) of a held-out real clip in the model's format, and its digit."""
    import torch

    from generators.video.captions import CaptionSet
    from generators.video.data import ClipSpec, MovingDigits

    spec: ClipSpec = gen.clip
    clips = MovingDigits(spec, CaptionSet(spec.directions, False), "test")
    generator = torch.Generator().manual_seed(seed)
    while True:
        batch = clips.sample(generator, 1)
        if int(batch.labels[0]) >= 0:
            return ((batch.clips[0, 0, 0].numpy() + 1) * 127.5).round().astype(np.uint8), int(batch.labels[0])


@task(name="video-gallery", **IO_RETRIES)
def video_gallery_task(section: VideoSection, prompt: str, run_dir: str, seed: int,
                       device: str = "cpu") -> list[dict[str, Any]]:
    """GIFs under ``run_dir/video``: one clip for ``prompt``, and one from a held-out first frame."""
    run = Path(run_dir)
    common = dict(num_frames=section.frames, num_inference_steps=section.num_inference_steps,
                  guidance_scale=section.guidance_scale, seed=seed)
    with device_slot(device):
        gen = video_generator(section.checkpoint, device)
        [t2v] = gen(prompt=prompt, **common).save(run / "video" / "text2video.gif")
        rows = [GalleryRow("text -> video", [(str(t2v.relative_to(run)), prompt)], kind="gif")]
        if section.image_to_video:
            frame, digit = held_out_first_frame(gen, seed)
            [i2v] = gen(image=frame, **common).save(run / "video" / "image2video.gif")
            rows.append(GalleryRow("image -> video (first frame: a held-out digit, no prompt)",
                                   [(str(i2v.relative_to(run)), f"starts from a held-out {digit}")], kind="gif"))
    return [r.to_dict() for r in rows]


def run_gallery_step(section: VideoSection, context: StepContext) -> StepResult:
    """The composed flow's ``video`` step: the prompt is the section's, else the brief's ``video_prompt``."""
    prompt = section.prompt or getattr(context.brief, "video_prompt", "") or DEFAULT_PROMPT
    return StepResult(video_gallery_task(section, prompt, context.run_dir, context.seed),
                      {"video_prompt": prompt})

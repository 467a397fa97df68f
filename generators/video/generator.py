"""Text-, class-, motion- and image-conditioned video generation, long videos and frame interpolation.

>>> gen = VideoGenerator.from_pretrained("data/checkpoints/video-moving-digits")
>>> out = gen(prompt="the digit 3 moves to the right", num_frames=16, num_inference_steps=25, seed=0)
>>> out.frames.shape                    # uint8 (T, H, W, C)
>>> out = gen(image=first_frame, prompt="...")   # image-to-video: the clip starts from the given frame
>>> out.save("clip.mp4")                # or .gif, or a folder of PNGs

Every clip is sampled in windows of the model's ``num_frames`` by any core sampler. Known frames
(a first frame, the last frames of the previous window, every other frame for interpolation) enter
the network as a channel-wise condition (MCVD, Voleti et al. 2022) and are also imposed on the
denoiser's estimate, D(x, sigma)[known] = z_known, so every sampler ends on them; clips longer than a
window grow autoregressively from their last frames (Ho et al. 2022, sec. 3.1, conditional
extension). Guidance is classifier-free over all conditions at once (Ho & Salimans 2022, eq. 6).
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch
from conditioning.frames import known_frames
from generators.core.checkpoint import CheckpointError, read_json
from generators.core.denoiser import DenoiseFn, VPDenoiser
from generators.core.guidance import classifier_free_guidance
from generators.core.latent import LatentSpace
from generators.core.pipeline import DiffusionConfig, DiffusionGenerator
from generators.core.sampling import SamplerOptions
from generators.core.validation import check_int

from .autoencoder import PerFrameAutoencoder
from .data import ClipSpec, to_uint8
from .inputs import as_list, batch_size, check_image, check_labels, check_prompts, check_video
from .model import SpatioTemporalUNet, VideoCondition
from .output import VideoOutput

logger = logging.getLogger(__name__)

VIDEO_JSON = "video.json"
MAX_FRAMES = 1024
MAX_CLIPS = 64


@dataclass(frozen=True)
class _Request:
    """The conditions of one call, validated and batched."""

    text: Any  # ConditioningRecord of the frozen text encoder
    text_keep: torch.Tensor
    labels: torch.Tensor
    motion: torch.Tensor
    motion_keep: torch.Tensor
    prompts: list[str | None]

    @property
    def size(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class _Sampling:
    """The sampler keywords of a call, shared by its windows."""

    steps: int
    sampler: str
    guidance_scale: float
    guidance_interval: tuple[float, float] | None
    options: SamplerOptions
    callback: Callable[[int, int, torch.Tensor], None] | None
    progress: bool


def keep_known(denoise: DenoiseFn, z_known: torch.Tensor, known: torch.Tensor) -> DenoiseFn:
    """D'(x, sigma) = z_known on the known frames (``known`` (B, T)), D(x, sigma) elsewhere."""
    mask = known[:, None, :, None, None]  # (B, 1, T, 1, 1)
    return lambda x, sigma: torch.where(mask, z_known, denoise(x, sigma))


class VideoGenerator(DiffusionGenerator):
    """A trained moving-digits video model (latent or pixel space) and everything that samples from it.

    The folder holds the network (with, for a latent model, its frozen per-frame AutoencoderKL and
    latent scale) and ``video.json`` (the clip format). ``model.safetensors`` holds the EMA weights.
    """

    model_class = SpatioTemporalUNet
    store_training_weights = False
    storage_dtype = torch.float16  # the shipped folder stays small (12 MB, not 24); weights load back as float32

    def __init__(self, model: SpatioTemporalUNet, diffusion: DiffusionConfig, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, *, clip: ClipSpec = ClipSpec()) -> None:
        super().__init__(model, diffusion, device, dtype)
        self.clip = clip
        self.latent: LatentSpace | None = None
        if self.model.autoencoder is not None:
            c = self.model.config
            self.latent = LatentSpace(PerFrameAutoencoder(self.model.autoencoder), float(c.latent_scale),
                                      float(c.latent_shift))
        self.denoiser = VPDenoiser(self._net, self.schedule, diffusion.prediction_type,
                                   clip_x0=None if self.latent else 1.0)

    # ------------------------------------------------------------------ folders
    def sidecars(self) -> dict[str, dict[str, Any]]:
        return {VIDEO_JSON: {"clip": asdict(self.clip)}}

    @classmethod
    def _from_folder(cls, path: Path, model, diffusion, device, dtype) -> "VideoGenerator":
        meta = read_json(path / VIDEO_JSON, "video sidecar")
        try:
            clip = ClipSpec(**{**meta["clip"], "directions": tuple(meta["clip"]["directions"])})
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path / VIDEO_JSON} is malformed ({exc}); re-save the checkpoint") from exc
        return cls(model, diffusion, device, dtype, clip=clip)

    # ------------------------------------------------------------------ shapes
    @property
    def num_frames(self) -> int:
        """Frames the model makes in one window."""
        return self.clip.num_frames

    @property
    def frame_size(self) -> int:
        return self.clip.frame_size

    def model_shape(self, frames: int) -> tuple[int, ...]:
        """(c, T, h, w) of the diffused tensor for ``frames`` frames."""
        c = int(self.model.config.in_channels)
        if self.latent is None:
            return (c, frames, self.frame_size, self.frame_size)
        f = 2 ** (len(self.model.autoencoder.config.block_out_channels) - 1)
        return (c, frames, self.frame_size // f, self.frame_size // f)

    def _net(self, x: torch.Tensor, t: torch.Tensor, cond: VideoCondition) -> torch.Tensor:
        return self.model(x.to(self.dtype), t.to(self.dtype), cond).float()

    @torch.no_grad()
    def encode(self, clips: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, H, W) in [-1, 1] -> the diffused space (latents, or the pixels themselves)."""
        clips = clips.to(self.device, self.dtype)
        return (self.latent.encode(clips) if self.latent is not None else clips).float()

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The diffused space -> (B, 1, T, H, W) in [-1, 1]."""
        x = self.latent.decode(z.to(self.dtype)) if self.latent is not None else z
        return x.float().clamp(-1, 1)

    # --------------------------------------------------------------- conditions
    def _given(self, req: _Request, clips: torch.Tensor) -> tuple[_Request, torch.Tensor]:
        """Given frames (1 or B, 1, T, H, W) in [-1, 1]: the request with their recognized labels, and the
        frames in the diffused space, one clip per request."""
        clips = clips.expand(req.size, -1, -1, -1, -1) if len(clips) == 1 else clips
        return self._recognize(req, clips[:, :, 0]), self.encode(clips)

    def _recognize(self, req: _Request, first: torch.Tensor) -> _Request:
        """Clips given a first frame (B, C, H, W) but neither text nor label take the label the model's frozen
        first-frame recognizer reads in it (null where it is unsure or sees no single digit)."""
        recognizer = getattr(self.model, "recognizer", None)
        null = int(self.model.config.num_classes)
        open_ = ~req.text_keep & (req.labels == null)
        if recognizer is None or not bool(open_.any()):
            return req
        read, confidence = recognizer.labels(first.to(self.device, self.dtype))
        read = read.cpu()
        labels = torch.where(open_, read, req.labels)
        for i in open_.nonzero()[:, 0].tolist():
            if int(read[i]) == null:
                logger.warning("clip %d: no prompt and the first frame shows no single digit the recognizer is sure of "
                               "(p=%.2f): the clip continues it without a label", i, float(confidence[i]))
            else:
                logger.warning("clip %d: no prompt: the first frame reads as the digit %d (p=%.2f), used as its label",
                               i, int(read[i]), float(confidence[i]))
        return replace(req, labels=labels)

    def _request(self, prompt: Any, labels: Any, motion: Any, images: int | None = None) -> _Request:
        prompts, label_list, motion_list = as_list("prompt", prompt), as_list("labels", labels), as_list("motion", motion)
        sizes = dict(prompt=prompts, labels=label_list, motion=motion_list)
        if images is not None:
            sizes["image"] = [None] * images
        b = batch_size(**sizes)
        if b > MAX_CLIPS:
            raise ValueError(f"at most {MAX_CLIPS} clips per call, asked for {b}; split the request")
        texts, keep = check_prompts(prompt, b)
        net = self.model
        record = net.text_encoder([t or "." for t in texts])
        label_t = check_labels(labels, b, int(net.config.num_classes))
        if motion_list is None:
            motion_t, motion_keep = torch.zeros(b), torch.zeros(b, dtype=torch.bool)
        else:
            motion_t = net.motion_encoder.check(motion_list).cpu()
            motion_t = motion_t.expand(b).clone() if len(motion_t) == 1 else motion_t
            motion_keep = torch.ones(b, dtype=torch.bool)
        return _Request(record, torch.tensor(keep), label_t, motion_t, motion_keep, [t or None for t in texts])

    def _window(self, req: _Request, z_known: torch.Tensor, known: torch.Tensor, seed: int, s: _Sampling) -> torch.Tensor:
        """One window (B, c, T, h, w) with the frames where ``known`` (B, T) is True fixed to ``z_known``."""
        d = self.device
        context = known_frames(z_known.to(d), known.to(d))
        cond = VideoCondition(req.text, req.text_keep, req.labels, req.motion, req.motion_keep, context).to(d)
        b = req.size
        null_labels = torch.full_like(req.labels, int(self.model.config.num_classes))
        null = VideoCondition(req.text, torch.zeros(b, dtype=torch.bool), null_labels, torch.zeros(b),
                              torch.zeros(b, dtype=torch.bool), torch.zeros_like(context)).to(d)
        generator, noise = self.noise(tuple(z_known.shape), seed)
        denoise = classifier_free_guidance(self.denoiser, cond, null, s.guidance_scale, s.guidance_interval)
        if bool(known.any()):
            denoise = keep_known(denoise, z_known.to(d), known.to(d))
        return self.run_sampler(denoise, noise, generator, s.steps, s.sampler, s.options, s.callback, s.progress)

    def _rollout(self, req: _Request, start: torch.Tensor | None, num_frames: int, seed: int, s: _Sampling,
                 context_frames: int) -> torch.Tensor:
        """Grow ``start`` (B, c, n, h, w) or nothing to ``num_frames`` frames, window by window."""
        window = self.num_frames
        c, _, h, w = self.model_shape(window)
        z = start if start is not None else torch.zeros(req.size, c, 0, h, w, device=self.device)
        k_max = min(context_frames, window - 1)
        i = 0
        while z.shape[2] < num_frames:
            k = min(z.shape[2], k_max)
            z_known = torch.zeros(req.size, c, window, h, w, device=self.device)
            z_known[:, :, :k] = z[:, :, z.shape[2] - k:]
            known = torch.zeros(req.size, window, dtype=torch.bool)
            known[:, :k] = True
            new = self._window(req, z_known, known, seed + i, s)
            z = torch.cat([z, new[:, :, k:]], dim=2)
            i += 1
        return z[:, :, :num_frames]

    # ----------------------------------------------------------------- sampling
    def _sampling(self, num_inference_steps: int, sampler: str, guidance_scale: float, seed: int,
                  guidance_interval: tuple[float, float] | None, options: SamplerOptions,
                  callback: Callable[[int, int, torch.Tensor], None] | None, progress: bool) -> _Sampling:
        self.check_call(num_inference_steps, sampler, guidance_scale, seed, guidance_interval)
        return _Sampling(num_inference_steps, sampler, float(guidance_scale), guidance_interval, options, callback, progress)

    def _frames_arg(self, num_frames: int | None, default: int) -> int:
        n = default if num_frames is None else check_int("num_frames", num_frames, 1, MAX_FRAMES)
        if n > self.num_frames:
            logger.info("num_frames=%d exceeds the model's %d-frame window: extending autoregressively", n, self.num_frames)
        return n

    def _context_arg(self, context_frames: int | None) -> int:
        if context_frames is None:
            return max(1, self.num_frames // 4)
        return check_int("context_frames", context_frames, 1, self.num_frames - 1)

    def _output(self, z: torch.Tensor, req: _Request, fps: float) -> VideoOutput:
        return VideoOutput(to_uint8(self.decode(z)), fps, req.prompts)

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        *,
        labels: int | list[int] | None = None,
        image: Any = None,
        motion: float | list[float] | None = None,
        num_frames: int | None = None,
        num_inference_steps: int = 25,
        sampler: str = "dpmsolver++",
        guidance_scale: float = 4.0,
        guidance_interval: tuple[float, float] | None = None,
        seed: int = 0,
        context_frames: int | None = None,
        options: SamplerOptions = SamplerOptions(),
        progress: bool = False,
        callback: Callable[[int, int, torch.Tensor], None] | None = None,
    ) -> VideoOutput:
        """Generate clips from any mix of conditions (none at all samples unconditionally).

        Args:
            prompt: a string or a list (one clip each); an empty prompt samples without text.
            labels: digit class(es) 0..9.
            image: the first frame(s), image-to-video: PIL images or arrays (H, W[, C]) (uint8, or float
                in [0, 1]), a list of them, or a float tensor (B, C, H, W) in [-1, 1]; another size or
                channel count is converted. The clip starts from it.
            motion: speed in pixels per frame (the model's ``max_motion`` bounds it).
            num_frames: clip length (default the model's window); longer clips are extended
                autoregressively from their last ``context_frames`` frames (default a quarter window).
            num_inference_steps, sampler, guidance_scale, guidance_interval, seed, options, progress,
                callback: the contract's keywords (``generators/README.md``); window i uses ``seed + i``.
        Returns:
            :class:`VideoOutput` with ``frames`` (T, H, W, C) for one clip, (B, T, H, W, C) for several.
        """
        s = self._sampling(num_inference_steps, sampler, guidance_scale, seed, guidance_interval, options, callback,
                           progress)
        n = self._frames_arg(num_frames, self.num_frames)
        ctx = self._context_arg(context_frames)
        first = check_image(image, self.frame_size) if image is not None else None
        req = self._request(prompt, labels, motion, None if first is None else len(first))
        start = None
        if first is not None:
            req, start = self._given(req, first[:, :, None])  # (B, c, 1, h, w)
        z = self._rollout(req, start, n, seed, s, ctx)
        return self._output(z, req, self.clip.fps)

    @torch.no_grad()
    def extend(self, video: Any, num_frames: int, prompt: str | list[str] | None = None, *,
               labels: int | list[int] | None = None, motion: float | list[float] | None = None,
               num_inference_steps: int = 25, sampler: str = "dpmsolver++", guidance_scale: float = 4.0,
               guidance_interval: tuple[float, float] | None = None, seed: int = 0, context_frames: int | None = None,
               options: SamplerOptions = SamplerOptions(), progress: bool = False,
               callback: Callable[[int, int, torch.Tensor], None] | None = None) -> VideoOutput:
        """Continue ``video`` (a VideoOutput, (T, H, W[, C]) or (B, T, H, W, C)) to ``num_frames`` frames in total.

        Each new window is conditioned on the last ``context_frames`` frames so far; the given frames
        come back first (through the autoencoder for a latent model).
        """
        s = self._sampling(num_inference_steps, sampler, guidance_scale, seed, guidance_interval, options, callback,
                           progress)
        clips = check_video(video, self.frame_size)
        n = check_int("num_frames", num_frames, clips.shape[2], MAX_FRAMES)
        req = self._request(prompt, labels, motion, len(clips))
        req, z = self._given(req, clips)
        return self._output(self._rollout(req, z, n, seed, s, self._context_arg(context_frames)), req, self.clip.fps)

    @torch.no_grad()
    def interpolate(self, video: Any, prompt: str | list[str] | None = None, *,
                    labels: int | list[int] | None = None, motion: float | list[float] | None = None,
                    num_inference_steps: int = 25, sampler: str = "dpmsolver++", guidance_scale: float = 4.0,
                    guidance_interval: tuple[float, float] | None = None, seed: int = 0,
                    options: SamplerOptions = SamplerOptions(), progress: bool = False,
                    callback: Callable[[int, int, torch.Tensor], None] | None = None) -> VideoOutput:
        """2x frame interpolation: N frames -> 2N - 1 at twice the frame rate (a new frame between each pair).

        Windows hold up to ceil(T / 2) given frames at the even positions and generate the odd ones; they
        overlap by one given frame. ``motion`` is in pixels per output frame.
        """
        s = self._sampling(num_inference_steps, sampler, guidance_scale, seed, guidance_interval, options, callback,
                           progress)
        clips = check_video(video, self.frame_size)
        if clips.shape[2] < 2:
            raise ValueError(f"video must have at least 2 frames to interpolate, got {clips.shape[2]}")
        req = self._request(prompt, labels, motion, len(clips))
        req, z = self._given(req, clips)
        return self._output(self._interpolate(req, z, seed, s), req, 2 * self.clip.fps)

    def _interpolate(self, req: _Request, z: torch.Tensor, seed: int, s: _Sampling) -> torch.Tensor:
        window, n = self.num_frames, z.shape[2]
        per = (window + 1) // 2  # given frames per window, at positions 0, 2, ..., 2 (per - 1)
        out = torch.zeros(*z.shape[:2], 2 * n - 1, *z.shape[3:], device=z.device)
        out[:, :, ::2] = z
        begin, i = 0, 0
        while True:
            begin = max(0, min(begin, n - per))
            count = min(per, n - begin)
            z_known = torch.zeros(*z.shape[:2], window, *z.shape[3:], device=z.device)
            z_known[:, :, 0:2 * count:2] = z[:, :, begin:begin + count]
            known = torch.zeros(req.size, window, dtype=torch.bool)
            known[:, 0:2 * count:2] = True
            new = self._window(req, z_known, known, seed + i, s)
            out[:, :, 2 * begin + 1:2 * (begin + count) - 1:2] = new[:, :, 1:2 * count - 1:2]
            if begin + count >= n:
                return out
            begin, i = begin + per - 1, i + 1

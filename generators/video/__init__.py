"""Temporal video diffusion on moving digits: text-, class-, motion- and image-to-video, long clips, interpolation."""
from .autoencoder import train_video_autoencoder
from .classifier import train_video_classifier
from .evaluate import evaluate_video
from .generator import VideoGenerator
from .output import VideoOutput
from .presets import PRESETS
from .train import train_video

__all__ = ["PRESETS", "VideoGenerator", "VideoOutput", "evaluate_video", "train_video", "train_video_autoencoder",
           "train_video_classifier"]

"""Class-conditional image generation (the digits generator) on the shared core."""
from .generator import ImageGenerator, ImageOutput
from .model import PRESETS, ClassConditionalUNet, build_model

__all__ = ["ClassConditionalUNet", "ImageGenerator", "ImageOutput", "PRESETS", "build_model"]

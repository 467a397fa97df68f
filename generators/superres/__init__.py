"""Super-resolution: diffusion SR of a user's images (x4, tiled) and a cascade from a prompt (``README``: issue 12).

>>> from generators.superres import SuperResolver, Cascade
>>> sr = SuperResolver.from_pretrained("data/checkpoints/sr-x4")
>>> sr(image="photo.png", scale=4, num_inference_steps=20, seed=0).save("photo_x4.png")
>>> Cascade.from_pretrained("data/checkpoints/cascade")(prompt="gravel", num_images=4, seed=0).stages
"""
from .base import BaseGenerator
from .cascade import Cascade
from .generator import SuperResolver
from .output import CascadeOutput, PromptImagesOutput, SROutput
from .presets import CASCADE_PRESETS, SR_PRESETS

__all__ = [
           "CASCADE_PRESETS",
           "SR_PRESETS",
           "BaseGenerator",
           "Cascade",
           "CascadeOutput",
           "PromptImagesOutput",
           "SROutput",
           "SuperResolver",
]

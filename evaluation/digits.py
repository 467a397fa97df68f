"""A small CNN digit classifier, the feature space for digit metrics.

Trained by the project on the train split of scikit-learn's digits (``mmdiff train digit-classifier``);
its penultimate layer gives the features for the Frechet distance, and the same architecture
trained on generated digits gives the classification accuracy score (Ravuri & Vinyals 2019).
Inputs are (B, 1, H, W) in [-1, 1]; any size is resized to 16x16.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from generators.core.checkpoint import load_model

INPUT_SIZE = 16


class DigitClassifier(ModelMixin, ConfigMixin):
    """conv(32)-conv(64)-pool-conv(64)-pool -> feature_dim -> num_classes."""

    @register_to_config
    def __init__(self, num_classes: int = 10, width: int = 32, feature_dim: int = 128) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.GELU(),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.GELU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.GELU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(2 * width * (INPUT_SIZE // 4) ** 2, feature_dim), nn.GELU(),
        )
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(feature_dim, num_classes)

    @staticmethod
    def prepare(x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != INPUT_SIZE or x.shape[-2] != INPUT_SIZE:
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.prepare(x))  # (B, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))  # (B, num_classes)


def fit_classifier(images: torch.Tensor, labels: torch.Tensor, epochs: int = 30, seed: int = 0,
                   batch_size: int = 64, lr: float = 2e-3) -> DigitClassifier:
    """Train a fresh :class:`DigitClassifier` with small random shifts as augmentation."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = DigitClassifier()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    x_all = DigitClassifier.prepare(images.float())
    n = len(x_all)
    steps = epochs * ((n + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            x = x_all[idx]
            shift = torch.randint(-1, 2, (2,), generator=g).tolist()
            x = torch.roll(x, shifts=shift, dims=(2, 3))
            loss = F.cross_entropy(model(x), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.no_grad()
def predict(model: DigitClassifier, images: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    return np.concatenate([model(images[i:i + batch_size].float()).argmax(1).numpy() for i in range(0, len(images), batch_size)])


@torch.no_grad()
def features(model: DigitClassifier, images: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    return np.concatenate([model.features(images[i:i + batch_size].float()).numpy() for i in range(0, len(images), batch_size)])


def load_digit_classifier(path: str | Path) -> DigitClassifier:
    return load_model(path, DigitClassifier, use_ema=False)

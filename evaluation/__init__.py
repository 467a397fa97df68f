"""Metrics per modality; works on arrays and files and never imports flows."""
from .metrics import accuracy, frechet_distance, mmd_rbf, sliced_wasserstein

__all__ = ["accuracy", "frechet_distance", "mmd_rbf", "sliced_wasserstein"]

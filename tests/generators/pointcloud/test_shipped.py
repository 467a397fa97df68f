"""The shipped ``data/checkpoints/pointcloud-shapes``: the label picks the shape, and refinement closes it."""
from pathlib import Path

import numpy as np

from evaluation.pointcloud import chamfer_matrix
from generators.pointcloud import PointCloudGenerator
from generators.pointcloud.data import normalize, procedural_split

SHIPPED = Path(__file__).resolve().parents[3] / "data" / "checkpoints" / "pointcloud-shapes"


def test_shipped_checkpoint_draws_the_asked_category_and_refines_it_watertight():
    gen = PointCloudGenerator.from_pretrained(SHIPPED)
    assert (SHIPPED / "metrics.json").is_file() and (SHIPPED / "training.json").is_file()
    ref = procedural_split("test", 6, 512, 0, gen.categories)
    for cat in ("chair", "airplane"):
        out = gen(label=[cat] * 3, num_points=512, num_inference_steps=10, seed=0, guidance_scale=1.0)
        clouds = np.stack([normalize(p)[0] for p in out.points])
        assert np.isfinite(clouds).all()
        d = chamfer_matrix(clouds, ref.points).min  # nearest held-out shape of each category
        own = d(axis=1, initial=np.inf, where=(ref.labels == gen.categories.index(cat))[None]).mean()
        other = min(d(axis=1, initial=np.inf, where=(ref.labels == i)[None]).mean()
                    for i, c in enumerate(gen.categories) if c != cat)
        assert own < 0.3 * other, (cat, own, other)
    mesh = gen(label="chair", num_points=2048, num_inference_steps=10, seed=1, guidance_scale=1.0).to_mesh()[0]
    assert mesh.is_watertight and len(mesh.faces) > 100

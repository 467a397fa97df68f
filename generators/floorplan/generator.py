"""Graph-conditioned floorplan generation with every core sampler (after HouseDiffusion, Shabani et al. 2023).

>>> g = BubbleGraph.from_json("data/samples/graphs/two_bedroom.json")
>>> gen = FloorplanGenerator.from_pretrained("data/checkpoints/floorplan")
>>> out = gen(graph=g, num_samples=4, num_inference_steps=50, seed=0)
>>> out.plans[0].rooms, out.plans[0].doors, out.plans[0].to_graph()
>>> out.save("plans/")     # .svg, .png and .json per plan

The sampler draws the corners of every room at once, (B, N, 2) padded with a corner mask, from the
denoiser D(x, sigma) of :class:`.model.CornerDenoiser` with the graph bound and classifier-free
guidance around it (Ho & Salimans 2022, eq. 6); :func:`.refine.refine_plan` then turns the corners
into a plan without overlaps whose doors sit on shared walls of at least 0.7 m.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from generators.core.guidance import classifier_free_guidance
from generators.core.pipeline import DiffusionGenerator
from generators.core.sampling import SamplerOptions
from generators.core.validation import check_batch, check_int

from .data import split_corners, structure_tensors
from .graph import BubbleGraph, as_bubble_graph
from .model import CornerDenoiser, FloorplanTransformer
from .plan import Floorplan, FloorplanOutput
from .refine import RefineConfig, raw_plan, refine_plan

MAX_PLANS_PER_CALL = 256
# Classifier-free guidance on the graph: w = 2 gave fewer missing doors than w = 1 in both 4000-step runs
# (compatibility 0.11 vs 0.15 and 0.075 vs 0.095 on 50 held-out graphs x 4 plans), at twice the sampling cost.
DEFAULT_GUIDANCE_SCALE = 2.0
DEFAULT_CORNERS = 4


class FloorplanGenerator(DiffusionGenerator):
    """A trained floorplan denoiser and the sampling, refinement and checks around it."""

    model_class = FloorplanTransformer

    @property
    def denoiser(self) -> CornerDenoiser:
        return CornerDenoiser(self.model, self.schedule)

    def check_graphs(self, graph: Any) -> list[BubbleGraph]:
        """One or several graphs as BubbleGraphs that this model supports; errors name the limit and the fix."""
        if graph is None:
            raise ValueError("graph is required: a BubbleGraph, a networkx graph, a dict or a JSON file path")
        items = list(graph) if isinstance(graph, (list, tuple)) else [graph]
        if not items:
            raise ValueError("graph must not be an empty list")
        cfg = self.model.config
        graphs = []
        for k, item in enumerate(items):
            g = as_bubble_graph(item, name=f"graph[{k}]")
            if len(g) > cfg.max_rooms:
                raise ValueError(f"graph[{k}] has {len(g)} rooms but this model supports at most {cfg.max_rooms}; "
                                 "remove rooms or use a model trained with a larger max_rooms")
            counts = g.corner_counts(DEFAULT_CORNERS)
            if max(counts) > cfg.max_corners:
                raise ValueError(f"graph[{k}] asks for a room with {max(counts)} corners but this model supports at most "
                                 f"{cfg.max_corners} per room")
            if sum(counts) > cfg.max_tokens:
                raise ValueError(f"graph[{k}] has {sum(counts)} corners in all but this model supports at most "
                                 f"{cfg.max_tokens}; use fewer rooms or fewer corners per room")
            graphs.append(g)
        return graphs

    def guided_denoiser(self, structure: dict[str, torch.Tensor], guidance_scale: float,
                        guidance_interval: tuple[float, float] | None) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """D(x, sigma) with the plans' structure and graphs bound and classifier-free guidance around it."""
        structure = {k: v.to(self.device) for k, v in structure.items()}
        cond = self.model.condition(structure)
        null = self.model.null_condition(cond)
        return classifier_free_guidance(self.denoiser, cond, null, guidance_scale, guidance_interval)

    @torch.no_grad()
    def __call__(
        self,
        graph: Any = None,
        *,
        num_samples: int = 1,
        num_inference_steps: int = 50,
        sampler: str = "ddpm",
        guidance_scale: float = DEFAULT_GUIDANCE_SCALE,
        guidance_interval: tuple[float, float] | None = None,
        seed: int = 0,
        callback: Callable[[int, int, torch.Tensor], None] | None = None,
        progress: bool = False,
        options: SamplerOptions = SamplerOptions(),
        refine: bool | RefineConfig = True,
    ) -> FloorplanOutput:
        """Generate ``num_samples`` plans for each bubble graph.

        Args:
            graph: a :class:`BubbleGraph`, a networkx graph (node attribute ``room_type``), a dict in the JSON
                schema, a JSON file path, or a list of these.
            num_samples: plans per graph.
            num_inference_steps: sampler steps.
            sampler: any name in ``generators.core.sampling.SAMPLERS``.
            guidance_scale: classifier-free guidance w on the graph (1 = plain conditional sampling).
            guidance_interval: (sigma_lo, sigma_hi) where guidance applies; None for every noise level.
            seed: makes the result reproducible.
            callback: (i, n, x) after each sampler step.
            progress: show a progress bar.
            options: per-sampler knobs.
            refine: True (default refinement), a :class:`RefineConfig`, or False for the raw corners.
        Returns:
            :class:`FloorplanOutput` with plans ordered graph by graph.
        """
        self.check_call(num_inference_steps, sampler, guidance_scale, seed, guidance_interval)
        graphs = self.check_graphs(graph)
        num_samples = check_int("num_samples", num_samples, 1, MAX_PLANS_PER_CALL)
        check_batch("graph x num_samples", len(graphs) * num_samples, MAX_PLANS_PER_CALL)
        if not isinstance(refine, (bool, RefineConfig)):
            raise ValueError(f"refine must be True, False or a RefineConfig, got {refine!r}")
        batch = [g for g in graphs for _ in range(num_samples)]
        counts = [list(g.corner_counts(DEFAULT_CORNERS)) for g in batch]
        structure = structure_tensors(batch, corner_counts=counts)
        denoise = self.guided_denoiser(structure, guidance_scale, guidance_interval)
        generator, noise = self.noise(tuple(structure["corner_mask"].shape) + (2,), seed)
        x = self.run_sampler(denoise, noise, generator, num_inference_steps, sampler, options, callback, progress)
        corners = split_corners(x, structure)
        plans = [self._plan(g, c, refine) for g, c in zip(batch, corners)]
        return FloorplanOutput(plans)

    @staticmethod
    def _plan(graph: BubbleGraph, corners: Sequence, refine: bool | RefineConfig) -> Floorplan:
        if refine is False:
            return raw_plan(graph.room_types, corners, graph.edges, graph)
        config = refine if isinstance(refine, RefineConfig) else RefineConfig()
        return refine_plan(graph.room_types, corners, graph.edges, graph, config)

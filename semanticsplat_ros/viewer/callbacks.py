"""What the viewer's query boxes call, and ready-made callbacks over a pipeline.

The owner of a ``SceneViewer`` (the node, a script) supplies the queries: a text query and a
point prompt, each answered on the scene the viewer shows and returning ``Highlight``s to draw.
``pipeline_text_query`` / ``pipeline_point_prompt`` build them from a ``SemanticSplatPipeline``.
They run on viser's threads, never on the owner's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from semanticsplat_ros.pipeline import EncodedScene, SegmentResult, SemanticSplatPipeline
from semanticsplat_ros.queries import OrientedBox, query_scores


@dataclass
class Highlight:
    """One answer to draw: a segment's points and box, and for a text query the relevance of
    every splat of the scene queried."""

    label: str
    score: float
    points: np.ndarray
    """(m, 3) world points of the segment, metres."""
    box: OrientedBox | None = None
    heat: np.ndarray | None = None
    """(n,) relevance in [0, 1] of each of the scene's n Gaussians (text queries), or None."""


TextQuery = Callable[[EncodedScene, str], Sequence[Highlight]]
"""(scene shown, query text) -> highlights; the first one's ``heat`` colours the splats."""
PointPrompt = Callable[[EncodedScene, np.ndarray], Sequence[Highlight]]
"""(scene shown, (3,) world point clicked) -> highlights (the three masks, small to large)."""


def segment_highlight(segment: SegmentResult, heat: np.ndarray | None = None) -> Highlight:
    return Highlight(segment.label, segment.score, segment.points, segment.box, heat)


def query_heat(pipeline: SemanticSplatPipeline, scene: EncodedScene, text: str) -> np.ndarray:
    """(n,) relevance of ``text`` at each Gaussian: the query score of its pixel's rendered
    language field (one Gaussian per input pixel, view-major then row-major). ValueError when
    the scene's Gaussians are not one per pixel."""
    with torch.no_grad():
        query = pipeline.encode_texts([text])[0]
        scores = query_scores(scene.language_field, query, pipeline.class_embeddings)
    if scores.numel() != scene.gaussians.num_gaussians:
        raise ValueError(
            f"the scene has {scene.gaussians.num_gaussians} Gaussians for {scores.numel()}"
            " pixels: no per-Gaussian query heat"
        )
    return scores.reshape(-1).float().cpu().numpy()


def pipeline_text_query(pipeline: SemanticSplatPipeline) -> TextQuery:
    """``pipeline.query_text`` on the shown scene, with the per-Gaussian heat."""

    def run(scene: EncodedScene, text: str) -> list[Highlight]:
        segment = pipeline.query_text(scene, [text])[0]
        return [segment_highlight(segment, query_heat(pipeline, scene, segment.label))]

    return run


def pipeline_point_prompt(pipeline: SemanticSplatPipeline) -> PointPrompt:
    """``pipeline.segment_point`` at the clicked point: three segments, small to large."""

    def run(scene: EncodedScene, point: np.ndarray) -> list[Highlight]:
        return [segment_highlight(s) for s in pipeline.segment_point(scene, point)]

    return run

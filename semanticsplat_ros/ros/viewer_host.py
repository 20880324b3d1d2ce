"""The node's browser viewer (``viewer_port`` > 0): a ``SceneViewer`` in the node's process.

The inference thread hands each encoded scene, the map and the node's figures to the viewer
(``NodeViewer.show``: references only, it returns at once); the viewer's own thread converts
and sends them, and the GUI's text box and clicks answer on the shown scene through the node's
pipeline. A browser connecting, disconnecting or hanging touches only the viewer's threads.
"""

from __future__ import annotations

from typing import Any

from semanticsplat_ros.mapping import SemanticMap
from semanticsplat_ros.pipeline import EncodedScene, SemanticSplatPipeline
from semanticsplat_ros.ros.node_stats import NodeStats, median
from semanticsplat_ros.ros.params import NodeParams
from semanticsplat_ros.viewer import (
    SceneViewer,
    ViewerConfig,
    pipeline_point_prompt,
    pipeline_text_query,
)


def viewer_figures(stats: NodeStats) -> dict[str, Any]:
    """What the viewer's panel shows of the node: rate, latency and per-set times."""
    rate = stats.rate_hz()
    with stats.lock:
        figures: dict[str, Any] = {
            "rate_hz": rate,
            "latency_s_median": median(stats.latencies),
            "processing_s_median": median(stats.processing),
            "encode_s_median": median(stats.encode),
            "sets_encoded": stats.encoded,
            "sets_skipped": stats.skipped,
        }
        if stats.fusion:
            figures["map_fusion_s_median"] = median(stats.fusion)
        if stats.last_error:
            figures["last_error"] = stats.last_error
    return figures


class NodeViewer:
    """The viewer of one configured node; ValueError when it cannot serve."""

    def __init__(self, params: NodeParams, pipeline: SemanticSplatPipeline) -> None:
        self.viewer = SceneViewer(
            ViewerConfig(port=params.viewer_port, host=params.viewer_host),
            pipeline_text_query(pipeline),
            pipeline_point_prompt(pipeline),
        )

    @property
    def url(self) -> str:
        return self.viewer.url

    def show(self, scene: EncodedScene, smap: SemanticMap | None, stats: NodeStats) -> None:
        """The newest scene, the map (when there is one) and the node's figures."""
        self.viewer.update_scene(scene)
        if smap is not None:
            self.viewer.update_map(smap)
        self.viewer.update_stats(viewer_figures(stats))

    def stop(self) -> None:
        self.viewer.stop()

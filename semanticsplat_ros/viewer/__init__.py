"""A live browser viewer (viser) of semantic Gaussian scenes, the map and query answers.

    viewer = SceneViewer(ViewerConfig(port=8080), pipeline_text_query(pipe),
                         pipeline_point_prompt(pipe), stats=node_stats)
    viewer.update_scene(scene)   # from any thread: stores a reference, returns at once
    viewer.update_map(semantic_map)
    viewer.stop()

``semanticsplat view FILE.ply`` serves an exported scene or a saved map (``commands.py``).
No ROS here: the node wires it (see docs/viewer.md).
"""

from semanticsplat_ros.viewer.callbacks import (
    Highlight,
    PointPrompt,
    TextQuery,
    pipeline_point_prompt,
    pipeline_text_query,
    query_heat,
)
from semanticsplat_ros.viewer.server import SceneViewer, ViewerConfig, format_stats
from semanticsplat_ros.viewer.splats import (
    COLOR_MODES,
    CameraView,
    ColorMode,
    SplatSet,
    mode_colors,
    ply_splats,
    scene_cameras,
    scene_splats,
)

__all__ = [
    "COLOR_MODES",
    "CameraView",
    "ColorMode",
    "Highlight",
    "PointPrompt",
    "SceneViewer",
    "SplatSet",
    "TextQuery",
    "ViewerConfig",
    "format_stats",
    "mode_colors",
    "pipeline_point_prompt",
    "pipeline_text_query",
    "ply_splats",
    "query_heat",
    "scene_cameras",
    "scene_splats",
]

"""The persistent semantic map: encoded scenes fused into voxels in the fixed frame, free-space
carving, instances, text and point queries, save / load as PLY. No ROS.

    map = map_for_model(MapConfig(), pipeline.model, model_name, text_encoder)
    map.fuse(scene, class_embeddings)          # after each pipeline.encode
    map.query_text(text_embedding, class_embeddings, threshold) -> [MapInstance, ...]
    map.segment_point(xyz) -> MapInstance
    map.to_cloud() -> MapCloud                 # x y z rgb label score instance
    map.save(path); map.load(path); map.clear()
"""

from semanticsplat_ros.mapping.config import MapConfig, MapIdentity, bytes_per_voxel
from semanticsplat_ros.mapping.fusion import SceneLike
from semanticsplat_ros.mapping.semantic_map import (
    FuseReport,
    MapCloud,
    MapInstance,
    SemanticMap,
    map_for_model,
)

__all__ = [
    "FuseReport",
    "MapCloud",
    "MapConfig",
    "MapIdentity",
    "MapInstance",
    "SceneLike",
    "SemanticMap",
    "bytes_per_voxel",
    "map_for_model",
]

"""The node's persistent semantic map (``mapping.SemanticMap``) and its ROS interface.

``MapHost`` owns the map of one configured node: ``fuse`` after every encoded scene,
``cloud_msg`` for ``~/map_cloud`` (PointCloud2: x y z rgb label score instance, fixed_frame),
and the pure service answers (request -> response) of ``~/save_map`` and ``~/load_map``
(``semanticsplat_msgs/srv/MapFile``), ``~/clear_map`` (``std_srvs/srv/Trigger``), MAP-scope
``~/query_text`` and the map fallback of POINT ``~/segment_point``. Nothing here imports
rclpy: the node creates the publisher, timer and services and calls these.

The map's identity is the model checkpoint (file name and the first 12 hex digits of its
SHA-256), the text encoder and the feature widths: a map saved by another model is refused
on load with a message that says which model made it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from geometry_msgs.msg import Point
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from semanticsplat_msgs.msg import Segment
from semanticsplat_msgs.srv import MapFile, QueryText
from semanticsplat_ros.mapping import FuseReport, MapConfig, MapInstance, SemanticMap, map_for_model
from semanticsplat_ros.model.bundled import resolve_model_checkpoint
from semanticsplat_ros.pipeline import EncodedScene, SemanticSplatPipeline
from semanticsplat_ros.ros.conversions import pack_rgb, semantic_cloud, structured_to_cloud
from semanticsplat_ros.ros.params import NodeParams
from semanticsplat_ros.ros.services import box_to_msg, check_texts, label_dtype_for

MAP_CLOUD_FIELDS = ("x", "y", "z", "rgb", "label", "score", "instance")


def model_name(params: NodeParams) -> str:
    """The model part of the identity of this node's maps (see the module docstring)."""
    if params.random_weights:
        return "random-weights"
    path = resolve_model_checkpoint(params.model_checkpoint)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
    return f"{Path(path).name}#{digest}"


def map_config(params: NodeParams, device: str) -> MapConfig:
    return MapConfig(
        voxel_size=params.map_voxel_size,
        max_voxels=params.map_max_voxels,
        max_range_m=params.map_max_range_m,
        device=device,
    )


def instance_to_msg(instance: MapInstance, header: Header, num_classes: int) -> Segment:
    """A map instance as a ``Segment``: points, centroid and box in fixed_frame, no masks."""
    msg = Segment(header=header, label=instance.label, score=float(np.clip(instance.score, 0, 1)))
    msg.points = semantic_cloud(
        instance.points,
        instance.colors,
        instance.point_labels,
        instance.point_scores,
        header,
        label_dtype=label_dtype_for(num_classes),
    )
    c = instance.centroid
    msg.centroid = Point(x=float(c[0]), y=float(c[1]), z=float(c[2]))
    msg.box = box_to_msg(instance.box)
    return msg


class MapHost:
    """The map of one configured node, with the answers of its services."""

    def __init__(self, smap: SemanticMap) -> None:
        self.map = smap
        self.last_report: FuseReport | None = None

    @classmethod
    def for_node(cls, params: NodeParams, pipeline: SemanticSplatPipeline) -> MapHost:
        config = map_config(params, str(pipeline.device))
        name = model_name(params)
        return cls(
            map_for_model(
                config, pipeline.model, name, pipeline.text_encoder_name, pipeline.classes
            )
        )

    def fuse(self, scene: EncodedScene, pipeline: SemanticSplatPipeline) -> FuseReport:
        """Fuse one scene (relabelling the map first when the node's classes changed)."""
        self.last_report = self.map.fuse(scene, pipeline.class_embeddings)
        return self.last_report

    def cloud_msg(self, header: Header) -> PointCloud2:
        """``~/map_cloud``: every voxel (x y z rgb label score instance) in fixed_frame."""
        cloud = self.map.to_cloud()
        ldt = np.dtype(label_dtype_for(len(self.map.classes)))
        fields = [("x", "f4"), ("y", "f4"), ("z", "f4"), ("rgb", "f4"), ("label", ldt)]
        fields += [("score", "f4"), ("instance", "u4")]
        dtype = np.dtype(fields)
        points = np.empty(cloud.xyz.shape[0], dtype=dtype)
        for i, axis in enumerate("xyz"):
            points[axis] = cloud.xyz[:, i]
        points["rgb"] = pack_rgb(cloud.rgb) if len(points) else np.zeros(0, np.float32)
        points["label"] = cloud.label
        points["score"] = cloud.score
        points["instance"] = cloud.instance
        return structured_to_cloud(points, header)

    # ---------------------------------------------------------------- services

    def save(self, request: MapFile.Request) -> MapFile.Response:
        def work() -> str:
            path = self.map.save(_request_path(request.path))
            return f"saved {len(self.map)} voxels to {path}"

        return _file_answer(MapFile.Response, work)

    def load(self, request: MapFile.Request) -> MapFile.Response:
        def work() -> str:
            path = _request_path(request.path)
            self.map.load(path)
            return f"loaded {len(self.map)} voxels from {path} (classes {list(self.map.classes)})"

        return _file_answer(MapFile.Response, work)

    def clear(self, request: Trigger.Request) -> Trigger.Response:
        n = len(self.map)
        self.map.clear()
        return Trigger.Response(success=True, message=f"cleared {n} voxels")

    def query(
        self, pipeline: SemanticSplatPipeline, request: QueryText.Request, header: Header
    ) -> QueryText.Response:
        """MAP-scope ``~/query_text``: per text the best instance in the map, or an empty
        segment (score 0, no points) when nothing scores above the threshold."""
        try:
            texts = check_texts(list(request.texts))
            threshold = float(request.threshold)
            if threshold <= 0:
                threshold = pipeline.config.query_threshold
            if not threshold < 1.0:
                raise ValueError(f"threshold must be in [0, 1), got {threshold}")
            # The map is relabelled to the node's class list before being asked.
            if self.map.classes and self.map.classes != pipeline.classes:
                self.map.relabel(pipeline.classes, pipeline.class_embeddings)
            embeddings = pipeline.encode_texts(texts)
            response = QueryText.Response(success=True)
            found = 0
            for text, embedding in zip(texts, embeddings, strict=True):
                best = self.map.query_text(embedding, pipeline.class_embeddings, threshold)
                if best:
                    segment = instance_to_msg(best[0], header, len(self.map.classes))
                    found += 1
                else:
                    segment = Segment(header=header, label=text, score=0.0)
                    segment.centroid = Point(x=float("nan"), y=float("nan"), z=float("nan"))
                segment.label = text
                response.segments.append(segment)
        except (ValueError, TypeError) as exc:
            return QueryText.Response(success=False, message=str(exc))
        response.message = (
            f"{len(texts)} queries, {found} found in the map ({len(self.map)} voxels)"
        )
        return response

    def segment_point(self, point: np.ndarray, header: Header) -> tuple[list[Segment], str]:
        """The map fallback of POINT ``~/segment_point`` (ValueError when no voxel is near)."""
        instance = self.map.segment_point(point)
        segment = instance_to_msg(instance, header, len(self.map.classes))
        return [segment], (
            f"answered from the semantic map: instance {instance.instance_id} "
            f"({instance.label}, {len(instance.points)} voxels), since no camera of the latest "
            "scene sees the point"
        )


def _request_path(path: str) -> Path:
    if not path.strip():
        raise ValueError("path is empty: give the map file's path")
    return Path(path.strip()).expanduser()


def _file_answer(response_type: Callable[[], MapFile.Response], work: Callable[[], str]):
    response = response_type()
    try:
        response.message = work()
    except (FileNotFoundError, ValueError) as exc:
        response.success, response.message = False, str(exc).splitlines()[0]
        return response
    response.success = True
    return response

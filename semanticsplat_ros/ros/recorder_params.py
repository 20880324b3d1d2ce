"""The parameter schema of ``semanticsplat_recorder`` (pure Python, no ROS): one ``ParamSpec``
list, ``RECORDER_PARAMETERS``, validated into ``RecorderParams`` by ``validate_recorder_params``;
``ros.declare.declare_recorder_parameters`` declares it on a node. Per-camera topics are
``semanticsplat_node``'s (``params.camera_parameters``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from semanticsplat_ros.data.types import DEFAULT_NEAR
from semanticsplat_ros.ros.params import (
    _TOPIC,
    CameraTopics,
    ParamSpec,
    camera_parameters,
    check_camera_names,
)

RECORDER_NODE_NAME = "semanticsplat_recorder"

LOG_PERIOD_S = 10.0
"""Seconds between two logged summaries of the counters (when they changed)."""


RECORDER_PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "cameras",
        "str_list",
        [],
        "Camera names to record (at least one); each has <name>.image_topic and"
        " <name>.camera_info_topic (default <name>/image_raw, <name>/camera_info). Each camera"
        " becomes the scene folder <out_dir>/<scene_prefix>_<name>.",
        read_only=True,
    ),
    ParamSpec(
        "depth_topics",
        "str_list",
        [],
        "Depth image topic per camera (same order as cameras), registered to that camera's"
        " colour image (same frame and size): 32FC1 metres or 16UC1 millimetres. Empty list ="
        " no depth; an empty entry = no depth for that camera. Missing depth is written as 0.",
        read_only=True,
    ),
    ParamSpec(
        "fixed_frame",
        "str",
        "world",
        "TF frame the poses are written in (e.g. map, odom); pose/<i>.txt = T_fixed_camera.",
        read_only=True,
    ),
    ParamSpec(
        "out_dir",
        "str",
        "",
        "Dataset folder (required; created if missing). Scene folders inside it must not hold"
        " frames yet.",
        read_only=True,
    ),
    ParamSpec(
        "scene_prefix",
        "str",
        "rec",
        "Scene folder names are <scene_prefix>_<camera> (letters, digits, '_', '-', '.').",
        read_only=True,
    ),
    ParamSpec(
        "sync_slop_s",
        "float",
        0.02,
        "Largest stamp spread (s) among the images (and depth images) of one synchronised set.",
        0.0,
        1.0,
        read_only=True,
    ),
    ParamSpec(
        "min_translation_m",
        "float",
        0.05,
        "A set is written when the first camera moved at least this far (m) since the last"
        " written set (or turned min_rotation_deg); 0 with min_rotation_deg 0 = every set.",
        0.0,
        100.0,
        read_only=True,
    ),
    ParamSpec(
        "min_rotation_deg",
        "float",
        5.0,
        "A set is written when the first camera turned at least this much (degrees) since the"
        " last written set (or moved min_translation_m).",
        0.0,
        180.0,
        read_only=True,
    ),
    ParamSpec(
        "max_frames",
        "int",
        0,
        "Stop recording after this many sets (frames per camera); 0 = unlimited.",
        0,
        10_000_000,
        read_only=True,
    ),
    ParamSpec(
        "near",
        "float",
        DEFAULT_NEAR,
        "Near depth (m) written to meta.json (the cost volume's range in training).",
        0.01,
        100.0,
        read_only=True,
    ),
    ParamSpec(
        "far",
        "float",
        10.0,
        "Far depth (m, > near) written to meta.json.",
        0.02,
        1000.0,
        read_only=True,
    ),
    ParamSpec(
        "rectified",
        "bool",
        False,
        "Images are the rectified stream: use camera_info P and ignore D (else D must be zero).",
        read_only=True,
    ),
    ParamSpec(
        "qos_reliability",
        "str",
        "best_effort",
        "Reliability of image/depth/camera_info subscriptions: best_effort or reliable.",
        choices=("best_effort", "reliable"),
        read_only=True,
    ),
    ParamSpec(
        "tf_tolerance_s",
        "float",
        0.0,
        "How far (s) past the newest TF an image stamp may be and still use the newest TF;"
        " 0 = poses interpolated at the image stamp only (exact training poses).",
        0.0,
        1.0,
        read_only=True,
    ),
)
"""Parameters of ``semanticsplat_recorder`` (plus ``<camera>.image_topic`` and
``<camera>.camera_info_topic`` per camera, as ``semanticsplat_node`` declares them)."""

_SCENE_PREFIX = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class RecorderParams:
    """Validated parameters of ``semanticsplat_recorder`` (meanings: ``RECORDER_PARAMETERS``).

    depth_topics: one entry per camera, "" where that camera has no depth.
    """

    cameras: tuple[CameraTopics, ...]
    depth_topics: tuple[str, ...]
    fixed_frame: str
    out_dir: str
    scene_prefix: str
    sync_slop_s: float
    min_translation_m: float
    min_rotation_deg: float
    max_frames: int
    near: float
    far: float
    rectified: bool
    qos_reliability: str
    tf_tolerance_s: float

    @property
    def camera_names(self) -> list[str]:
        return [c.name for c in self.cameras]


def validate_recorder_params(values: Mapping[str, Any]) -> RecorderParams:
    """``RecorderParams`` of a flat ``{name: value}`` mapping, defaults filling the gaps.

    Raises ValueError listing every problem (type, range, missing out_dir, bad camera names or
    topics, depth_topics of another length than cameras, near >= far, unknown parameters).
    """
    specs = {s.name: s for s in RECORDER_PARAMETERS}
    cameras, problems = check_camera_names(
        values.get("cameras", specs["cameras"].default), specs["cameras"]
    )
    for camera in cameras:
        for spec in camera_parameters(camera):
            specs[spec.name] = spec
    resolved: dict[str, Any] = {}
    for name, spec in specs.items():
        value = values.get(name, spec.default)
        problem = spec.check(value)
        if problem:
            problems.append(problem)
        resolved[name] = list(value) if spec.kind == "str_list" and problem is None else value
    for name in sorted(k for k in values if k not in specs and k != "use_sim_time"):
        problems.append(f"unknown parameter {name!r}")
    for camera in cameras:
        for key in ("image_topic", "camera_info_topic"):
            topic = resolved[f"{camera}.{key}"]
            if isinstance(topic, str) and not _TOPIC.match(topic):
                problems.append(f"{camera}.{key} {topic!r} is not a valid ROS topic name")
    depth = resolved["depth_topics"]
    if isinstance(depth, list):
        if depth and len(depth) != len(cameras):
            problems.append(
                f"depth_topics has {len(depth)} entries but cameras has {len(cameras)}; give one"
                " per camera ('' for a camera without depth) or none"
            )
        for topic in depth:
            if topic and not _TOPIC.match(topic):
                problems.append(f"depth topic {topic!r} is not a valid ROS topic name")
    if isinstance(resolved["out_dir"], str) and not resolved["out_dir"].strip():
        problems.append("out_dir is required: the folder the dataset is written to")
    prefix = resolved["scene_prefix"]
    if isinstance(prefix, str) and not _SCENE_PREFIX.match(prefix):
        problems.append(
            f"scene_prefix {prefix!r} must be non-empty and hold only letters, digits, '_', '-'"
            " and '.'"
        )
    if isinstance(resolved["fixed_frame"], str) and not resolved["fixed_frame"]:
        problems.append("fixed_frame must not be empty")
    near, far = resolved["near"], resolved["far"]
    if isinstance(near, float) and isinstance(far, float) and near >= far:
        problems.append(f"near ({near}) must be < far ({far})")
    if problems:
        raise ValueError(
            f"invalid {RECORDER_NODE_NAME} parameters:\n  - " + "\n  - ".join(problems)
        )
    return RecorderParams(
        cameras=tuple(
            CameraTopics(c, resolved[f"{c}.image_topic"], resolved[f"{c}.camera_info_topic"])
            for c in cameras
        ),
        depth_topics=tuple(depth) if depth else ("",) * len(cameras),
        fixed_frame=resolved["fixed_frame"],
        out_dir=resolved["out_dir"],
        scene_prefix=prefix,
        sync_slop_s=resolved["sync_slop_s"],
        min_translation_m=resolved["min_translation_m"],
        min_rotation_deg=resolved["min_rotation_deg"],
        max_frames=resolved["max_frames"],
        near=near,
        far=far,
        rectified=resolved["rectified"],
        qos_reliability=resolved["qos_reliability"],
        tf_tolerance_s=resolved["tf_tolerance_s"],
    )

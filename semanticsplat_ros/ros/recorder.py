"""``semanticsplat_recorder``: record a live camera rig as a training dataset (ScanNet layout).

Each camera becomes its own scene folder ``<out_dir>/<scene_prefix>_<camera>/`` (ScanNet keeps
one intrinsic matrix per scene), written with ``data.scannet.write_scene``::

    color/<i>.png      RGB of synchronised set i
    depth/<i>.png      uint16 millimetres, 0 = unknown (all zeros when the camera has no depth
                       topic: the loader needs a depth file per frame)
    pose/<i>.txt       4x4 camera-to-world: the camera's optical frame (OpenCV axes) in
                       ``fixed_frame``, metres, looked up in TF at the image stamp
    intrinsic/intrinsic_color.txt, intrinsic_depth.txt   4x4, ScanNet's integer pixel centres
    meta.json          {"near": m, "far": m}

Frame ``i`` of every camera folder comes from the same synchronised set, so indices line up
across cameras. A set is written only when it is a keyframe (``is_keyframe``): the first set,
then whenever the first camera moved at least ``min_translation_m`` or turned at least
``min_rotation_deg`` since the last written set, so a parked robot does not fill the disk.

Intrinsics go through one path: ``CameraInfo`` (integer pixel centres) ->
``conversions.camera_info_to_intrinsics`` (our K, centres at +0.5) -> ``write_scene`` (subtracts
0.5 again). So ``intrinsic_color.txt`` holds the camera_info's K (or P with ``rectified``).

Pure pieces (tested without rclpy): ``validate_recorder_params``, ``pose_change``,
``is_keyframe``, ``decode_frame``, ``record_to_views``, ``DatasetRecorder`` (frame counter,
intrinsics check, ``max_frames``, writing with rollback) and ``RecorderStats``. The node
(``recorder_node_class``, rclpy imported on first use) is thin: image, depth and camera_info
callbacks only queue messages in ``time_sync.CameraSetSync``; one worker thread takes the newest
complete set, looks the poses up in TF (``tf_buffer.make_transform_lookup``), decides and writes.
A slow disk therefore never blocks message intake (newer sets supersede a set the worker has not
taken yet). Bad input (wrong encoding, image/camera_info size mismatch, missing TF, NaN pose,
changed intrinsics) skips the set with a throttled warning and a counter; counts are logged every
``LOG_PERIOD_S`` and at shutdown, after the set being written has been finished.

Run::

    semanticsplat_record --ros-args -p cameras:="[head_left, head_right]" -p out_dir:=/data/rec
    semanticsplat_record --ros-args --params-file recorder.yaml   # key: /**/semanticsplat_recorder
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from numpy.typing import NDArray

from semanticsplat_ros.data.scannet import write_scene
from semanticsplat_ros.data.types import DEFAULT_NEAR, Views
from semanticsplat_ros.ros.conversions import (
    camera_info_to_intrinsics,
    check_image_matches_camera_info,
    check_rigid,
    image_to_numpy,
    image_to_rgb8,
)
from semanticsplat_ros.ros.lifetime import run_shutdown_steps
from semanticsplat_ros.ros.params import (
    _CAMERA_NAME,
    _TOPIC,
    CameraTopics,
    ParamSpec,
    camera_parameters,
    check_camera_names,
    descriptor,
)
from semanticsplat_ros.ros.tf_buffer import (
    TransformLookup,
    wait_for_lookup,
)

if TYPE_CHECKING:
    from rclpy.node import Node
    from sensor_msgs.msg import CameraInfo, Image

RECORDER_NODE_NAME = "semanticsplat_recorder"

LOG_PERIOD_S = 10.0
"""Seconds between two logged summaries of the counters (when they changed)."""
TF_WAIT_S = 0.5
"""How long the worker waits for a camera's TF at the image stamp to arrive, seconds."""
TF_CACHE_S = 10.0
"""Seconds of TF history kept."""
SYNC_QUEUE_SIZE = 5
"""Unmatched messages kept per stream while waiting for the others."""
DEPTH_ENCODINGS = ("32FC1", "16UC1", "mono16")
"""Depth encodings read: 32FC1 in metres, 16UC1 / mono16 in millimetres."""

# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------

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


def _declare(node: Node, spec: ParamSpec) -> Any:
    """Declare one read-only parameter and return its value (override or default)."""
    from rclpy.exceptions import ParameterUninitializedException
    from rclpy.parameter import Parameter

    if isinstance(spec.default, list) and not spec.default:
        # An empty list would be typed as a byte array, and a read-only parameter cannot be set
        # after declaring it: declare the type only, and read "not given" as the empty default.
        node.declare_parameter(spec.name, Parameter.Type.STRING_ARRAY, descriptor(spec))
        try:
            return list(node.get_parameter(spec.name).value)
        except ParameterUninitializedException:
            return []
    node.declare_parameter(spec.name, spec.default, descriptor(spec))
    value = node.get_parameter(spec.name).value
    return list(value) if spec.kind == "str_list" else value


def declare_recorder_parameters(node: Node) -> RecorderParams:
    """Declare every parameter on ``node`` (descriptors, ranges) and return them validated.

    Raises ValueError listing every problem; rclpy itself raises for an override of the wrong
    type or outside a range.
    """
    values: dict[str, Any] = {spec.name: _declare(node, spec) for spec in RECORDER_PARAMETERS}
    for camera in values["cameras"]:
        if _CAMERA_NAME.match(camera):
            for spec in camera_parameters(camera):
                values[spec.name] = _declare(node, spec)
    return validate_recorder_params(values)


# --------------------------------------------------------------------------------------------
# Keyframes
# --------------------------------------------------------------------------------------------


ArrayLike4x4 = NDArray[np.float64] | Sequence[Sequence[float]]
"""A 4x4 pose as an array or nested lists."""


def pose_change(c2w_from: ArrayLike4x4, c2w_to: ArrayLike4x4) -> tuple[float, float]:
    """(translation in metres, rotation in degrees) between two 4x4 camera-to-world poses.

    Translation: distance between the camera centres. Rotation: angle of ``R_from^T R_to``
    (in [0, 180]), computed with atan2 so that small angles are exact.
    """
    a = np.asarray(c2w_from, dtype=np.float64)
    b = np.asarray(c2w_to, dtype=np.float64)
    if a.shape != (4, 4) or b.shape != (4, 4):
        raise ValueError(f"poses must be 4x4, got {a.shape} and {b.shape}")
    translation = float(np.linalg.norm(b[:3, 3] - a[:3, 3]))
    R = a[:3, :3].T @ b[:3, :3]
    sin = 0.5 * float(np.linalg.norm([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]))
    cos = 0.5 * (float(np.trace(R)) - 1.0)
    return translation, math.degrees(math.atan2(sin, cos))


def is_keyframe(
    last_c2w: ArrayLike4x4 | None,
    c2w: ArrayLike4x4,
    min_translation_m: float,
    min_rotation_deg: float,
) -> bool:
    """Whether a set whose first camera is at ``c2w`` (4x4 camera-to-world, metres) is written.

    The first set (``last_c2w`` None) always is; later ones when the camera moved at least
    ``min_translation_m`` metres OR turned at least ``min_rotation_deg`` degrees since
    ``last_c2w``, the pose of the last written set. Both thresholds 0 = every set.
    """
    if last_c2w is None:
        return True
    translation, rotation = pose_change(last_c2w, c2w)
    return translation >= min_translation_m or rotation >= min_rotation_deg


# --------------------------------------------------------------------------------------------
# Messages -> frames -> Views
# --------------------------------------------------------------------------------------------


class SkippedSetError(Exception):
    """A synchronised set is not written; ``reason`` is a short counter key, the message says
    why (e.g. ``no_tf``, ``bad_image``, ``size_mismatch``, ``intrinsics_changed``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class DecodedFrame:
    """One camera's image of a set, decoded (pose not looked up yet).

    rgb:      (h, w, 3) uint8 RGB.
    K:        (3, 3) float64 intrinsics in pixels of this image, pixel centres at +0.5 (ours).
    frame_id: the camera's optical frame (OpenCV axes), where TF is looked up.
    depth:    (h, w) float32 z-depth in metres, 0 = unknown; or None (no depth topic).
    """

    camera: str
    stamp: float
    rgb: NDArray[np.uint8]
    K: NDArray[np.float64]
    frame_id: str
    depth: NDArray[np.float32] | None = None


@dataclass(frozen=True)
class CameraRecord:
    """One camera's frame of a set, ready to write.

    rgb: (h, w, 3) uint8; K: (3, 3) float64, ours (centres at +0.5); c2w: (4, 4) float64
    camera (optical, OpenCV axes) to ``fixed_frame``, metres; depth: (h, w) float32 metres,
    0 = unknown, or None; stamp: image stamp, seconds.
    """

    camera: str
    stamp: float
    rgb: NDArray[np.uint8]
    K: NDArray[np.float64]
    c2w: NDArray[np.float64]
    depth: NDArray[np.float32] | None = None


def frame_id_of(image: Image, camera_info: CameraInfo) -> str:
    """The image's frame_id, else its camera_info's; SkippedSetError ``no_frame_id`` if
    neither has one."""
    frame_id = image.header.frame_id or camera_info.header.frame_id
    if not frame_id:
        raise SkippedSetError("no_frame_id", "image and camera_info have no frame_id")
    return frame_id


def depth_to_metres(msg: Image) -> NDArray[np.float32]:
    """``(h, w)`` float32 metres of a depth image: 32FC1 metres, 16UC1 / mono16 millimetres.

    NaN, Inf and values <= 0 become 0 (unknown, ScanNet's convention). ValueError for other
    encodings.
    """
    if msg.encoding not in DEPTH_ENCODINGS:
        raise ValueError(
            f"depth image has encoding {msg.encoding!r}; expected 32FC1 (metres) or 16UC1"
            " (millimetres)"
        )
    pixels = image_to_numpy(msg)
    if msg.encoding == "32FC1":
        metres = pixels.astype(np.float32)
    else:
        metres = (pixels.astype(np.float64) / 1000.0).astype(np.float32)
    return np.where(np.isfinite(metres) & (metres > 0), metres, np.float32(0.0))


def decode_frame(
    camera: str,
    stamp: float,
    image: Image,
    camera_info: CameraInfo,
    depth: Image | None = None,
    rectified: bool = False,
) -> DecodedFrame:
    """Decode one camera's messages of a set; SkippedSetError (reason, message) when they are bad.

    Intrinsics: ``camera_info_to_intrinsics`` (our K, centres at +0.5; ``rectified`` uses P).
    Reasons: ``bad_camera_info`` (distortion, zero focal length, NaN), ``size_mismatch`` (image
    or depth of another size than the camera_info), ``bad_image`` (encoding, data length),
    ``bad_depth`` (encoding, frame other than the colour image's), ``no_frame_id``.
    """
    try:
        intrinsics = camera_info_to_intrinsics(camera_info, rectified=rectified)
    except (ValueError, TypeError) as exc:
        raise SkippedSetError("bad_camera_info", f"camera {camera!r}: camera_info: {exc}") from None
    try:
        check_image_matches_camera_info(image, intrinsics)
    except ValueError as exc:
        raise SkippedSetError("size_mismatch", f"camera {camera!r}: {exc}") from None
    try:
        rgb = image_to_rgb8(image)
    except (ValueError, TypeError) as exc:
        raise SkippedSetError("bad_image", f"camera {camera!r}: image: {exc}") from None
    frame_id = frame_id_of(image, camera_info)
    metres = None
    if depth is not None:
        if depth.header.frame_id and depth.header.frame_id != frame_id:
            raise SkippedSetError(
                "bad_depth",
                f"camera {camera!r}: depth is in frame {depth.header.frame_id!r} but the colour"
                f" image in {frame_id!r}; record depth registered to the colour camera",
            )
        if (int(depth.width), int(depth.height)) != (intrinsics.width, intrinsics.height):
            raise SkippedSetError(
                "size_mismatch",
                f"camera {camera!r}: depth is {depth.width}x{depth.height} but the colour image"
                f" {intrinsics.width}x{intrinsics.height}; record depth registered to the colour"
                " camera",
            )
        try:
            metres = depth_to_metres(depth)
        except (ValueError, TypeError) as exc:
            raise SkippedSetError("bad_depth", f"camera {camera!r}: depth: {exc}") from None
    return DecodedFrame(camera, float(stamp), rgb, intrinsics.K, frame_id, metres)


def record_to_views(record: CameraRecord, near: float, far: float) -> Views:
    """One-view ``Views`` of a record, as ``write_scene`` takes it (no batch dim).

    images (1, 3, h, w) float32 in [0, 1]; K (1, 3, 3) and c2w (1, 4, 4) float64 (written
    exactly); near, far (1,) metres; depth (1, h, w) metres, zeros when the record has none
    (ScanNet's "unknown": ``ScanNetScene`` needs a depth file for every frame).
    """
    rgb = np.asarray(record.rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be (h, w, 3) uint8, got {rgb.shape} {rgb.dtype}")
    h, w = rgb.shape[:2]
    c2w = check_rigid(record.c2w, name=f"pose of camera {record.camera!r}")
    K = np.asarray(record.K, dtype=np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)):
        raise ValueError(f"K must be a finite 3x3 matrix, got {K}")
    if record.depth is None:
        depth = torch.zeros(1, h, w, dtype=torch.float32)
    else:
        d = np.asarray(record.depth, dtype=np.float32)
        if d.shape != (h, w):
            raise ValueError(f"depth must have the image's size {(h, w)}, got {d.shape}")
        depth = torch.from_numpy(d.copy())[None]
    images = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].to(torch.float32) / 255.0
    return Views(
        images=images,
        K=torch.from_numpy(K.copy())[None],
        c2w=torch.from_numpy(c2w.copy())[None],
        near=torch.tensor([float(near)], dtype=torch.float64),
        far=torch.tensor([float(far)], dtype=torch.float64),
        depth=depth,
    )


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


class DatasetRecorder:
    """Writes synchronised sets as frames ``0, 1, ...`` of one ScanNet scene per camera.

    Not thread-safe: one thread calls ``is_keyframe`` / ``write_set``. Refuses to start
    (FileExistsError) when a scene folder already holds frames: a new recording never overwrites
    or extends an old one (its TF world and intrinsics may differ); pick another ``scene_prefix``
    or ``out_dir``.
    """

    def __init__(
        self,
        out_dir: str | Path,
        cameras: Sequence[str],
        scene_prefix: str = "rec",
        near: float = DEFAULT_NEAR,
        far: float = 10.0,
        min_translation_m: float = 0.05,
        min_rotation_deg: float = 5.0,
        max_frames: int = 0,
    ) -> None:
        if not cameras or len(set(cameras)) != len(cameras):
            raise ValueError(f"need at least one camera, names unique; got {list(cameras)}")
        if not (0 < near < far and math.isfinite(far)):
            raise ValueError(f"need 0 < near < far (metres), got near={near}, far={far}")
        if min_translation_m < 0 or min_rotation_deg < 0 or max_frames < 0:
            raise ValueError("min_translation_m, min_rotation_deg and max_frames must be >= 0")
        self.out_dir = Path(out_dir).expanduser()
        self.cameras = list(cameras)
        self.scene_ids = {c: f"{scene_prefix}_{c}" for c in self.cameras}
        self.near, self.far = float(near), float(far)
        self.min_translation_m = float(min_translation_m)
        self.min_rotation_deg = float(min_rotation_deg)
        self.max_frames = int(max_frames)
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise NotADirectoryError(f"out_dir {self.out_dir} exists and is not a folder")
        for camera in self.cameras:
            color = self.scene_dir(camera) / "color"
            if color.is_dir() and any(color.iterdir()):
                raise FileExistsError(
                    f"{self.scene_dir(camera)} already holds frames; record into another"
                    " out_dir or scene_prefix (a recording never overwrites or extends another)"
                )
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if not os.access(self.out_dir, os.W_OK):
            raise PermissionError(f"out_dir {self.out_dir} is not writable")
        self.frames_written = 0
        self.last_c2w: NDArray[np.float64] | None = None
        self._intrinsics: dict[str, tuple[NDArray[np.float64], tuple[int, int]]] = {}

    def scene_dir(self, camera: str) -> Path:
        """``<out_dir>/<scene_prefix>_<camera>``."""
        return self.out_dir / self.scene_ids[camera]

    @property
    def done(self) -> bool:
        """True once ``max_frames`` sets were written (never when max_frames is 0)."""
        return 0 < self.max_frames <= self.frames_written

    def is_keyframe(self, c2w_first: ArrayLike4x4) -> bool:
        """``is_keyframe`` against the first camera's pose of the last written set."""
        return is_keyframe(self.last_c2w, c2w_first, self.min_translation_m, self.min_rotation_deg)

    def check_intrinsics(self, record: CameraRecord) -> None:
        """SkippedSetError ``intrinsics_changed`` unless K (to 1e-6 px) and the image size match
        the camera's first written frame (a ScanNet scene has one intrinsic matrix)."""
        first = self._intrinsics.get(record.camera)
        if first is None:
            return
        K0, size0 = first
        size = (int(record.rgb.shape[1]), int(record.rgb.shape[0]))
        if size != size0 or np.abs(np.asarray(record.K) - K0).max() > 1e-6:
            raise SkippedSetError(
                "intrinsics_changed",
                f"camera {record.camera!r}: intrinsics changed during the recording (K"
                f" {np.round(K0, 4).tolist()} at {size0[0]}x{size0[1]} ->"
                f" {np.round(record.K, 4).tolist()} at {size[0]}x{size[1]}); a scene keeps one"
                " K: restart the recorder with another scene_prefix",
            )

    def write_set(self, records: Sequence[CameraRecord]) -> int:
        """Write one record per camera (in ``cameras`` order) as the next frame; its index.

        SkippedSetError ``intrinsics_changed`` (nothing written), ``bad_record`` (a pose that is
        not rigid, a malformed image; nothing written), ``max_frames`` (recording is over) or
        ``write_failed`` (I/O error: the frame's files already written are removed again, so
        indices stay aligned across cameras).
        """
        if self.done:
            raise SkippedSetError("max_frames", f"max_frames ({self.max_frames}) already written")
        names = [r.camera for r in records]
        if names != self.cameras:
            raise ValueError(f"records must be for cameras {self.cameras} in order, got {names}")
        for record in records:
            self.check_intrinsics(record)
        try:
            views = [record_to_views(r, self.near, self.far) for r in records]
        except ValueError as exc:
            raise SkippedSetError("bad_record", str(exc)) from None
        index = self.frames_written
        try:
            for record, v in zip(records, views, strict=True):
                write_scene(self.out_dir, self.scene_ids[record.camera], v, start_index=index)
        except (OSError, ValueError) as exc:
            self._remove_frame(index)
            raise SkippedSetError("write_failed", f"writing frame {index} failed: {exc}") from None
        for record in records:
            if record.camera not in self._intrinsics:
                size = (int(record.rgb.shape[1]), int(record.rgb.shape[0]))
                self._intrinsics[record.camera] = (np.asarray(record.K, np.float64).copy(), size)
        self.last_c2w = np.asarray(records[0].c2w, dtype=np.float64).copy()
        self.frames_written += 1
        return index

    def _remove_frame(self, index: int) -> None:
        for camera in self.cameras:
            scene = self.scene_dir(camera)
            for path in (
                scene / "color" / f"{index}.png",
                scene / "depth" / f"{index}.png",
                scene / "pose" / f"{index}.txt",
            ):
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)


@dataclass
class RecorderStats:
    """Thread-safe counters of the recorder.

    sets: complete synchronised sets taken by the worker; written: sets written;
    not_keyframe: sets left out because the rig did not move enough; skipped: sets refused for
    bad input (``reasons`` counts them by ``SkippedSetError.reason``).
    """

    sets: int = 0
    written: int = 0
    not_keyframe: int = 0
    skipped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, what: str, reason: str = "") -> None:
        """Add one to ``sets``, ``written``, ``not_keyframe`` or ``skipped`` (with a reason)."""
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)
            if what == "skipped":
                self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def summary(self) -> str:
        """One line: ``sets_written=.. sets_skipped=.. (reason=n, ..) not_keyframe=.. sets=..``."""
        with self._lock:
            reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.reasons.items()))
            return (
                f"sets_written={self.written} sets_skipped={self.skipped}"
                + (f" ({reasons})" if reasons else "")
                + f" not_keyframe={self.not_keyframe} sets_taken={self.sets}"
            )


def lookup_pose(
    lookup: TransformLookup,
    fixed_frame: str,
    frame_id: str,
    stamp: float,
    wait_s: float = TF_WAIT_S,
    stop: threading.Event | None = None,
) -> NDArray[np.float64]:
    """``T_fixed_camera`` (4x4, metres) at ``stamp`` seconds, checked rigid and finite.

    Waits up to ``wait_s`` for a transform that has not arrived yet (as the node's
    ``_lookup_pose``). SkippedSetError ``no_tf`` when TF has no answer, ``bad_pose`` when the answer
    is not a finite rigid transform.
    """
    try:
        T = wait_for_lookup(lookup, fixed_frame, frame_id, stamp, wait_s, stop)
    except LookupError as exc:
        raise SkippedSetError(
            "no_tf", f"no pose of {frame_id!r} in {fixed_frame!r} at {stamp:.6f} s: {exc}"
        ) from None
    try:
        return check_rigid(T, name=f"pose of {frame_id!r} in {fixed_frame!r}")
    except ValueError as exc:
        raise SkippedSetError("bad_pose", str(exc)) from None


def depth_stream(camera: str) -> str:
    """Name of a camera's depth stream inside the synchroniser (cannot clash with a camera)."""
    return f"{camera}/depth"


# --------------------------------------------------------------------------------------------
# rclpy node
# --------------------------------------------------------------------------------------------


def _make_node_class() -> type:
    """Define the node class on first use so that importing this module needs no rclpy."""
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image

    from semanticsplat_ros.ros.conversions import stamp_to_seconds
    from semanticsplat_ros.ros.tf_buffer import make_transform_lookup
    from semanticsplat_ros.ros.time_sync import CameraFrameSet, CameraSetSync

    class RecorderNode(Node):
        """Records synchronised sets of the configured cameras (see the module docstring)."""

        def __init__(self, node_name: str = RECORDER_NODE_NAME, **kwargs: Any) -> None:
            super().__init__(node_name, **kwargs)
            self.params = p = declare_recorder_parameters(self)
            self.recorder = DatasetRecorder(
                p.out_dir,
                p.camera_names,
                scene_prefix=p.scene_prefix,
                near=p.near,
                far=p.far,
                min_translation_m=p.min_translation_m,
                min_rotation_deg=p.min_rotation_deg,
                max_frames=p.max_frames,
            )
            self.stats = RecorderStats()
            streams = p.camera_names + [
                depth_stream(c) for c, d in zip(p.camera_names, p.depth_topics, strict=True) if d
            ]
            self._sync: CameraSetSync[Image, CameraInfo] = CameraSetSync(
                streams, p.sync_slop_s, queue_size=SYNC_QUEUE_SIZE
            )
            self._lookup = make_transform_lookup(
                self, cache_duration=TF_CACHE_S, tolerance=p.tf_tolerance_s, spin_thread=True
            )
            self._depth_cameras = {
                c for c, d in zip(p.camera_names, p.depth_topics, strict=True) if d
            }
            self._stop = threading.Event()
            self._last_summary = ""
            self._last_log = time.monotonic()
            qos = QoSProfile(
                depth=5,
                history=HistoryPolicy.KEEP_LAST,
                reliability=ReliabilityPolicy.BEST_EFFORT
                if p.qos_reliability == "best_effort"
                else ReliabilityPolicy.RELIABLE,
                durability=DurabilityPolicy.VOLATILE,
            )
            self._inputs: list[Any] = []
            for camera, depth_topic in zip(p.cameras, p.depth_topics, strict=True):
                name = camera.name
                self._inputs.append(
                    self.create_subscription(
                        CameraInfo,
                        camera.camera_info_topic,
                        lambda msg, c=name: self._on_camera_info(c, msg),
                        qos,
                    )
                )
                self._inputs.append(
                    self.create_subscription(
                        Image, camera.image_topic, lambda msg, c=name: self._on_image(c, msg), qos
                    )
                )
                if depth_topic:
                    self._inputs.append(
                        self.create_subscription(
                            Image,
                            depth_topic,
                            lambda msg, c=name: self._on_image(depth_stream(c), msg),
                            qos,
                        )
                    )
            self._timer = self.create_timer(1.0, self._housekeeping)
            self._worker = threading.Thread(
                target=self._work, name="semanticsplat_recorder", daemon=True
            )
            self._worker.start()
            names = p.camera_names
            depth_note = [c for c, d in zip(names, p.depth_topics, strict=True) if d]
            self.get_logger().info(
                f"recording cameras {p.camera_names} (depth: {depth_note or 'none'}) in"
                f" {p.fixed_frame!r} to {[str(self.recorder.scene_dir(c)) for c in names]};"
                f" keyframes every {p.min_translation_m} m or {p.min_rotation_deg} deg,"
                f" max_frames {p.max_frames or 'unlimited'}"
            )

        # ------------------------------------------------------------ callbacks (intake only)

        def _on_image(self, stream: str, msg: Image) -> None:
            if self._stop.is_set() or self.recorder.done:
                return
            try:
                self._sync.add_image(stream, stamp_to_seconds(msg.header.stamp), msg)
            except (KeyError, ValueError) as exc:
                self.get_logger().warning(
                    f"{stream}: image dropped: {exc}", throttle_duration_sec=5.0
                )

        def _on_camera_info(self, camera: str, msg: CameraInfo) -> None:
            stamp = stamp_to_seconds(msg.header.stamp)
            try:
                self._sync.add_camera_info(camera, stamp, msg)
                if camera in self._depth_cameras:
                    # Registered depth shares its colour camera's intrinsics.
                    self._sync.add_camera_info(depth_stream(camera), stamp, msg)
            except (KeyError, ValueError) as exc:
                self.get_logger().warning(
                    f"{camera}: camera_info dropped: {exc}", throttle_duration_sec=5.0
                )

        # ------------------------------------------------------------ worker thread

        def _work(self) -> None:
            while not self._stop.is_set() and not self.recorder.done:
                frame_set = self._sync.wait_for_set(timeout=0.2)
                if frame_set is None or self._stop.is_set():
                    continue
                self.stats.count("sets")
                try:
                    self._record(frame_set)
                except SkippedSetError as exc:
                    self.stats.count("skipped", exc.reason)
                    self._log("warning", f"skipped a set ({exc.reason}): {exc}", throttle_s=2.0)
                except Exception as exc:  # recording must never kill the node
                    self.stats.count("skipped", "internal_error")
                    self._log(
                        "error",
                        f"internal error ({type(exc).__name__}): {exc}\n{traceback.format_exc()}",
                        throttle_s=5.0,
                    )
            if self.recorder.done:
                self._log(
                    "info",
                    f"max_frames ({self.recorder.max_frames}) reached: recording stopped"
                    f" ({self.stats.summary()}); the dataset is in {self.recorder.out_dir}",
                )

        def _record(self, frame_set: CameraFrameSet[Image, CameraInfo]) -> None:
            p = self.params
            first = frame_set[p.camera_names[0]]
            c2w_first = lookup_pose(
                self._lookup,
                p.fixed_frame,
                frame_id_of(first.image, first.camera_info),
                first.stamp,
                stop=self._stop,
            )
            if not self.recorder.is_keyframe(c2w_first):
                self.stats.count("not_keyframe")
                return
            records = []
            for camera, depth_topic in zip(p.camera_names, p.depth_topics, strict=True):
                f = frame_set[camera]
                depth = frame_set[depth_stream(camera)].image if depth_topic else None
                decoded = decode_frame(
                    camera, f.stamp, f.image, f.camera_info, depth, rectified=p.rectified
                )
                c2w = (
                    c2w_first
                    if camera == p.camera_names[0]
                    else lookup_pose(
                        self._lookup, p.fixed_frame, decoded.frame_id, f.stamp, stop=self._stop
                    )
                )
                records.append(
                    CameraRecord(camera, f.stamp, decoded.rgb, decoded.K, c2w, decoded.depth)
                )
            index = self.recorder.write_set(records)
            self.stats.count("written")
            if index == 0:
                self._log("info", f"wrote the first set (stamp {frame_set.stamp:.3f} s)")

        # ------------------------------------------------------------ logging, shutdown

        def _log(self, level: str, message: str, throttle_s: float | None = None) -> None:
            if not self.context.ok():
                # After SIGINT/SIGTERM the node's logger can no longer publish to /rosout.
                tag = {"warning": "WARN"}.get(level, level.upper())
                sys.stderr.write(f"[{tag}] [{self.get_name()}]: {message}\n")
                return
            # rclpy throttles per calling line: one line per level keeps warnings (skipped sets)
            # from silencing errors.
            logger = self.get_logger()
            throttle = {} if throttle_s is None else {"throttle_duration_sec": throttle_s}
            try:
                if level == "error":
                    logger.error(message, **throttle)
                elif level == "warning":
                    logger.warning(message, **throttle)
                else:
                    logger.info(message, **throttle)
            except Exception:  # the context shut down meanwhile
                sys.stderr.write(f"[{self.get_name()}]: {message}\n")

        def _housekeeping(self) -> None:
            if self.recorder.done and self._inputs:
                for sub in self._inputs:
                    self.destroy_subscription(sub)
                self._inputs = []
            now = time.monotonic()
            if now - self._last_log >= LOG_PERIOD_S:
                self._last_log = now
                summary = self.stats.summary()
                if summary != self._last_summary:
                    self._last_summary = summary
                    sync = self._sync.stats
                    self.get_logger().info(
                        f"{summary}; sync: {sync.sets} sets, {sync.superseded} superseded,"
                        f" {sync.dropped_messages} messages dropped,"
                        f" {self._sync.no_camera_info} images without camera_info"
                    )

        def close(self, timeout_s: float = 30.0) -> None:
            """Stop taking sets, finish the set being written, log the final counts."""
            self._stop.set()
            worker = self._worker
            if worker.is_alive() and worker is not threading.current_thread():
                worker.join(timeout=timeout_s)
                if worker.is_alive():
                    self._log("warning", f"the writer did not finish within {timeout_s} s")
            self._lookup.close()
            self._log(
                "info",
                f"stopped: {self.stats.summary()}; {self.recorder.frames_written} frames per"
                f" camera in {self.recorder.out_dir}",
            )

    return RecorderNode


@functools.cache
def recorder_node_class() -> type:
    """The rclpy ``RecorderNode`` class (defined on first use)."""
    return _make_node_class()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``semanticsplat_record`` (takes ``--ros-args ...``); 0 on SIGINT/SIGTERM,
    1 on bad parameters or an ``out_dir`` that cannot be recorded into."""
    import rclpy
    from rclpy._rclpy_pybind11 import RCLError
    from rclpy.exceptions import ParameterException
    from rclpy.executors import ExternalShutdownException

    args = list(sys.argv if argv is None else argv)
    rclpy.init(args=args)
    node: Any = None
    steps: list[Callable[[], Any]] = []
    try:
        try:
            node = recorder_node_class()()
        except (ValueError, TypeError, OSError, ParameterException) as exc:
            sys.stderr.write(f"semanticsplat_record: error: {exc}\n")
            return 1
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RCLError:
        # SIGTERM shuts the context down while the executor waits.
        if rclpy.ok():
            raise
    finally:
        if node is not None:
            steps += [node.close, node.destroy_node]
        steps.append(rclpy.try_shutdown)
        run_shutdown_steps("semanticsplat_record", steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())

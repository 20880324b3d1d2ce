"""The recorder's pure pieces (no rclpy): the keyframe rule (``pose_change``, ``is_keyframe``),
message decoding (``decode_frame``, ``depth_to_metres``, ``record_to_views``), the ScanNet writer
with rollback (``DatasetRecorder``), thread-safe counters (``RecorderStats``) and the TF pose of a
camera (``lookup_pose``). ``recorder.py``'s node calls them; the layout written is described there.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from sensor_msgs.msg import CameraInfo, Image

from semanticsplat_ros.data.scannet import write_scene
from semanticsplat_ros.data.types import DEFAULT_NEAR, Views
from semanticsplat_ros.ros.conversions import (
    camera_info_to_intrinsics,
    check_image_matches_camera_info,
    check_rigid,
    image_to_numpy,
    image_to_rgb8,
)
from semanticsplat_ros.ros.tf_buffer import TransformLookup, wait_for_lookup
from semanticsplat_ros.ros.time_sync import CameraFrameSet

TF_WAIT_S = 0.5
"""How long the worker waits for a camera's TF at the image stamp to arrive, seconds."""
DEPTH_ENCODINGS = ("32FC1", "16UC1", "mono16")
"""Depth encodings read: 32FC1 in metres, 16UC1 / mono16 in millimetres."""

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
    examples: dict[str, str] = field(default_factory=dict)
    """The first message of each skip reason."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, what: str, reason: str = "", message: str = "") -> None:
        """Add one to ``sets``, ``written``, ``not_keyframe`` or ``skipped`` (with a reason and,
        optionally, the message saying why)."""
        with self._lock:
            setattr(self, what, getattr(self, what) + 1)
            if what == "skipped":
                self.reasons[reason] = self.reasons.get(reason, 0) + 1
                if message:
                    self.examples.setdefault(reason, message)

    def why_none(self) -> str:
        """One line on why no set was usable: the most frequent reason and its first message."""
        with self._lock:
            if not self.reasons:
                return "the bag holds no complete synchronised set of the configured cameras"
            reason = max(self.reasons, key=lambda r: self.reasons[r])
            example = " ".join(self.examples.get(reason, "").split())
            return f"{self.reasons[reason]} sets skipped for {reason}" + (
                f" ({example})" if example else ""
            )

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


def posed_records(
    frame_set: CameraFrameSet[Image, CameraInfo],
    cameras: Sequence[str],
    with_depth: Container[str],
    lookup: TransformLookup,
    fixed_frame: str,
    rectified: bool,
    recorder: DatasetRecorder | None = None,
    wait_s: float = TF_WAIT_S,
    stop: threading.Event | None = None,
) -> list[CameraRecord] | None:
    """Decoded records of a set, posed in ``fixed_frame`` at each image stamp (``recorder``
    given: None when the first camera's pose makes it no keyframe). ``with_depth``: the cameras
    whose depth stream is in the set. SkippedSetError when a camera's messages or pose are
    unusable."""
    first = frame_set[cameras[0]]
    c2w_first = lookup_pose(
        lookup, fixed_frame, frame_id_of(first.image, first.camera_info), first.stamp, wait_s, stop
    )
    if recorder is not None and not recorder.is_keyframe(c2w_first):
        return None
    records = []
    for camera in cameras:
        f = frame_set[camera]
        depth = frame_set[depth_stream(camera)].image if camera in with_depth else None
        decoded = decode_frame(camera, f.stamp, f.image, f.camera_info, depth, rectified=rectified)
        c2w = (
            c2w_first
            if camera == cameras[0]
            else lookup_pose(lookup, fixed_frame, decoded.frame_id, f.stamp, wait_s, stop)
        )
        records.append(CameraRecord(camera, f.stamp, decoded.rgb, decoded.K, c2w, decoded.depth))
    return records

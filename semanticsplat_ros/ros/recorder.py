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

Pure pieces (tested without rclpy): ``recorder_params.py`` (the parameters) and
``recording.py`` (``pose_change``, ``is_keyframe``, ``decode_frame``, ``record_to_views``,
``DatasetRecorder``: frame counter, intrinsics check, ``max_frames``, writing with rollback;
``RecorderStats``). The node (``RecorderNode``) is thin: image, depth and camera_info
callbacks only queue messages in ``time_sync.CameraSetSync``; one worker thread takes the newest
complete set, looks the poses up in TF (``tf_listener.make_transform_lookup``), decides and writes.
A slow disk therefore never blocks message intake (newer sets supersede a set the worker has not
taken yet). Bad input (wrong encoding, image/camera_info size mismatch, missing TF, NaN pose,
changed intrinsics) skips the set with a throttled warning and a counter; counts are logged every
``LOG_PERIOD_S`` and at shutdown, after the set being written has been finished.

Run::

    semanticsplat_record --ros-args -p cameras:="[head_left, head_right]" -p out_dir:=/data/rec
    semanticsplat_record --ros-args --params-file recorder.yaml   # key: /**/semanticsplat_recorder
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import rclpy
from rclpy._rclpy_pybind11 import RCLError
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from semanticsplat_ros.ros.conversions import stamp_to_seconds
from semanticsplat_ros.ros.declare import declare_recorder_parameters
from semanticsplat_ros.ros.lifetime import run_shutdown_steps
from semanticsplat_ros.ros.recorder_params import RECORDER_NODE_NAME
from semanticsplat_ros.ros.recording import (
    DatasetRecorder,
    RecorderStats,
    SkippedSetError,
    depth_stream,
    posed_records,
)
from semanticsplat_ros.ros.tf_listener import make_transform_lookup
from semanticsplat_ros.ros.time_sync import CameraFrameSet, CameraSetSync

LOG_PERIOD_S = 10.0
"""Seconds between two logged summaries of the counters (when they changed)."""
TF_CACHE_S = 10.0
"""Seconds of TF history kept."""
SYNC_QUEUE_SIZE = 5
"""Unmatched messages kept per stream while waiting for the others."""


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
        self._depth_cameras = {c for c, d in zip(p.camera_names, p.depth_topics, strict=True) if d}
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
            self.get_logger().warning(f"{stream}: image dropped: {exc}", throttle_duration_sec=5.0)

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
        with_depth = {c for c, t in zip(p.camera_names, p.depth_topics, strict=True) if t}
        records = posed_records(
            frame_set, p.camera_names, with_depth, self._lookup, p.fixed_frame, p.rectified,
            self.recorder, stop=self._stop,
        )  # fmt: skip
        if records is None:
            self.stats.count("not_keyframe")
            return
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``semanticsplat_record`` (takes ``--ros-args ...``); 0 on SIGINT/SIGTERM,
    1 on bad parameters or an ``out_dir`` that cannot be recorded into."""
    args = list(sys.argv if argv is None else argv)
    rclpy.init(args=args)
    node: Any = None
    steps: list[Callable[[], Any]] = []
    try:
        try:
            node = RecorderNode()
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

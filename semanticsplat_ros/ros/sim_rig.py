"""``sim_rig``: the synthetic world as a live multi-camera rig (images, camera_info, TF).

Lets the whole system run without hardware. Each tick (``rate_hz``) renders every camera of the
rig at the same scene time and publishes, all with one stamp:

* ``<camera>/image_raw`` (rgb8) and ``<camera>/camera_info`` (ROS convention: ``cx_ros =
  cx_ours - 0.5``, no distortion), ``header.frame_id = <camera>_optical_frame`` (OpenCV axes);
* ``/tf``: ``world_frame -> base_frame`` (the rig moving through the room; the base frame is the
  first camera's optical frame) and the mounts of cameras that move relative to it (a wrist);
* ``/tf_static`` (transient local, once): the mounts of cameras fixed relative to the base;
* ground truth for tests, only while someone subscribes: ``~/<camera>/gt_depth`` (32FC1, metres,
  0 = no hit) and ``~/<camera>/gt_labels`` (mono8 class ids, 255 = unknown).

Parameters: ``rig`` (a name from ``data.rigs.RIGS``: mono, stereo, head_wrist, ring4),
``cameras`` (names replacing the rig's own, same count; empty = the rig's names), ``scene_seed``,
``trajectory_seed``, ``rate_hz``, ``width``, ``height``, ``world_frame``, ``base_frame``,
``qos_reliability``, ``loop_s``. Scene time is the node clock's time since start, so
``use_sim_time`` works.

Rendering is live by default (each tick ray-casts every camera). With ``loop_s`` > 0 the rig
renders the first ``loop_s`` seconds of its trajectory once, at start, and then replays them in a
loop with fresh stamps (the scene time wraps every ``loop_s`` seconds): a CPU-only machine can
then publish at rates it could not ray-cast at (the 4-camera, 30 Hz load benchmark).

``data.sim_rig.SimRig`` holds the rendering and the TF decomposition without rclpy
(unit-tested); ``SimRigNode`` publishes it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

import numpy as np
import rclpy
from geometry_msgs.msg import TransformStamped
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy._rclpy_pybind11 import RCLError
from rclpy.exceptions import ParameterUninitializedException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage

from semanticsplat_ros.data.sim_rig import RigFrame, SimRig, SimRigConfig
from semanticsplat_ros.ros.conversions import (
    intrinsics_to_camera_info,
    make_header,
    matrix_to_transform_msg,
    numpy_to_image,
)


class SimRigNode(Node):
    """Publishes a ``SimRig`` as live topics (see the module docstring)."""

    def __init__(self, node_name: str = "sim_rig", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        d = ParameterDescriptor
        self.declare_parameter("rig", "stereo", d(description="mono|stereo|head_wrist|ring4"))
        self.declare_parameter(
            "cameras",
            Parameter.Type.STRING_ARRAY,
            d(description="camera names, one per rig camera; empty = the rig's names"),
        )
        self.declare_parameter("scene_seed", 0, d(description="make_scene seed"))
        self.declare_parameter("trajectory_seed", 0, d(description="trajectory seed"))
        self.declare_parameter("rate_hz", 10.0, d(description="frames per second"))
        self.declare_parameter(
            "width", 256, d(integer_range=[IntegerRange(from_value=8, to_value=4096, step=1)])
        )
        self.declare_parameter(
            "height", 192, d(integer_range=[IntegerRange(from_value=8, to_value=4096, step=1)])
        )
        self.declare_parameter("world_frame", "world", d(description="TF frame of the scene"))
        self.declare_parameter("base_frame", "rig_base", d(description="TF frame of the rig"))
        self.declare_parameter(
            "qos_reliability", "reliable", d(description="reliable|best_effort for images")
        )
        self.declare_parameter(
            "loop_s",
            0.0,
            d(
                description="> 0: pre-render this many seconds and replay them in a loop",
                floating_point_range=[FloatingPointRange(from_value=0.0, to_value=600.0)],
            ),
        )
        p = self.get_parameter
        try:
            cameras = tuple(p("cameras").value or ())
        except ParameterUninitializedException:  # no override given
            cameras = ()
        reliability = p("qos_reliability").value
        if reliability not in ("reliable", "best_effort"):
            raise ValueError(
                f"qos_reliability must be reliable or best_effort, got {reliability!r}"
            )
        self.config = SimRigConfig(
            rig=p("rig").value,
            cameras=cameras,
            scene_seed=int(p("scene_seed").value),
            trajectory_seed=int(p("trajectory_seed").value),
            rate_hz=float(p("rate_hz").value),
            width=int(p("width").value),
            height=int(p("height").value),
            world_frame=p("world_frame").value,
            base_frame=p("base_frame").value,
            loop_s=float(p("loop_s").value),
        )
        self.rig = SimRig(self.config)
        if self.rig.loop_frames:
            start = time.perf_counter()
            self.rig.prerender()
            self.get_logger().info(
                f"sim_rig: pre-rendered {self.rig.loop_frames} frames ({self.config.loop_s} s"
                f" loop) in {time.perf_counter() - start:.1f} s"
            )
        qos = QoSProfile(
            depth=5,
            reliability=ReliabilityPolicy.RELIABLE
            if reliability == "reliable"
            else ReliabilityPolicy.BEST_EFFORT,
        )
        self._image_pubs = [
            self.create_publisher(Image, f"{c}/image_raw", qos) for c in self.rig.cameras
        ]
        self._info_pubs = [
            self.create_publisher(CameraInfo, f"{c}/camera_info", qos) for c in self.rig.cameras
        ]
        self._gt_depth_pubs = [
            self.create_publisher(Image, f"~/{c}/gt_depth", qos) for c in self.rig.cameras
        ]
        self._gt_label_pubs = [
            self.create_publisher(Image, f"~/{c}/gt_labels", qos) for c in self.rig.cameras
        ]
        self._tf_pub = self.create_publisher(TFMessage, "/tf", 100)
        static_qos = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self._tf_static_pub = self.create_publisher(TFMessage, "/tf_static", static_qos)
        self._start_ns: int | None = None
        self.frames_published = 0
        self._message_cache: dict[tuple[int, int], tuple[CameraInfo, Image]] = {}
        self._publish_static()
        self._timer = self.create_timer(1.0 / self.config.rate_hz, self._tick)
        dynamic = [
            c for c, s in zip(self.rig.cameras, self.rig.static_mounts, strict=True) if not s
        ]
        self.get_logger().info(
            f"sim_rig: rig {self.config.rig} cameras {self.rig.cameras}"
            f" {self.config.width}x{self.config.height} at {self.config.rate_hz} Hz;"
            f" moving mounts: {dynamic or 'none'}"
        )

    def _stamped(self, parent: str, child: str, stamp, T: np.ndarray) -> TransformStamped:
        ts = TransformStamped()
        ts.header.frame_id, ts.child_frame_id = parent, child
        ts.header.stamp = stamp
        ts.transform = matrix_to_transform_msg(T)
        return ts

    def _publish_static(self) -> None:
        mounts = self.rig._mounts(self.rig.poses(0.0)[0])
        stamp = self.get_clock().now().to_msg()
        transforms = [
            self._stamped(self.config.base_frame, self.rig.optical_frame(c), stamp, mounts[i])
            for i, c in enumerate(self.rig.cameras)
            if self.rig.static_mounts[i]
        ]
        if transforms:
            self._tf_static_pub.publish(TFMessage(transforms=transforms))

    def _messages(self, frame: RigFrame, i: int, header: Header) -> tuple[CameraInfo, Image]:
        """camera_info and image of camera ``i`` with ``header``. A replayed loop builds
        each frame's messages once and only restamps them after (a live frame is new)."""
        key = (id(frame), i)
        cached = self._message_cache.get(key) if self.rig.loop_frames else None
        if cached is None:
            cfg = self.config
            cached = (
                intrinsics_to_camera_info(frame.K[i], cfg.width, cfg.height, header),
                numpy_to_image(frame.images[i], "rgb8", header),
            )
            if self.rig.loop_frames:
                self._message_cache[key] = cached
        for msg in cached:
            msg.header = header
        return cached

    def _tick(self) -> None:
        now = self.get_clock().now()
        if self._start_ns is None:
            self._start_ns = now.nanoseconds
        t = (now.nanoseconds - self._start_ns) * 1e-9
        frame = self.rig.frame_at(t)
        stamp = now.to_msg()
        cfg = self.config
        transforms = [self._stamped(cfg.world_frame, cfg.base_frame, stamp, frame.base)]
        for i, camera in enumerate(self.rig.cameras):
            if not self.rig.static_mounts[i]:
                transforms.append(
                    self._stamped(
                        cfg.base_frame, self.rig.optical_frame(camera), stamp, frame.mounts[i]
                    )
                )
        # TF first, so that a subscriber looking the images up finds their poses.
        self._tf_pub.publish(TFMessage(transforms=transforms))
        for i, camera in enumerate(self.rig.cameras):
            header = make_header(self.rig.optical_frame(camera), stamp)
            info, image = self._messages(frame, i, header)
            self._info_pubs[i].publish(info)
            self._image_pubs[i].publish(image)
            if self._gt_depth_pubs[i].get_subscription_count() > 0:
                self._gt_depth_pubs[i].publish(numpy_to_image(frame.depth[i], "32FC1", header))
            if self._gt_label_pubs[i].get_subscription_count() > 0:
                self._gt_label_pubs[i].publish(numpy_to_image(frame.labels[i], "mono8", header))
        self.frames_published += 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sim_rig`` executable (takes ``--ros-args ...``)."""
    args = list(sys.argv if argv is None else argv)
    rclpy.init(args=args)
    node = None
    try:
        node = SimRigNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RCLError:
        # SIGTERM shuts the context down while a tick may be publishing: that publish fails.
        if rclpy.ok():
            raise
    except (ValueError, TypeError) as exc:
        # Bad parameters: one clear line, no traceback.
        if node is None:
            sys.stderr.write(f"sim_rig: error: {exc}\n")
            return 1
        raise
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

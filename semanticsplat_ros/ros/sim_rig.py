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

``SimRig`` holds the rendering and the TF decomposition without rclpy (unit-tested);
``SimRigNode`` publishes it.
"""

from __future__ import annotations

import functools
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

# Times at which the rig is sampled to find which camera mounts are rigid (seconds).
_RIGIDITY_PROBE_TIMES = (0.0, 0.7, 1.9, 3.3, 5.2, 8.1)


@dataclass(frozen=True)
class SimRigConfig:
    """What ``SimRig`` renders."""

    rig: str = "stereo"
    """Rig name in ``data.rigs.RIGS``."""
    cameras: tuple[str, ...] = ()
    """Camera names, one per rig camera, in the rig's order; empty = the rig's own names."""
    scene_seed: int = 0
    """``make_scene(scene_seed)``."""
    trajectory_seed: int = 0
    """Seed of the rig's trajectory through the scene."""
    rate_hz: float = 10.0
    """Frames per second."""
    width: int = 256
    """Image width, pixels."""
    height: int = 192
    """Image height, pixels."""
    world_frame: str = "world"
    """TF frame of the scene."""
    base_frame: str = "rig_base"
    """TF frame of the moving rig (coincides with the first camera's optical frame)."""
    loop_s: float = 0.0
    """> 0: pre-render this many seconds of the trajectory and replay them in a loop."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.loop_s) and 0.0 <= self.loop_s <= 600.0):
            raise ValueError(f"loop_s must be in [0, 600] seconds, got {self.loop_s}")
        if not (math.isfinite(self.rate_hz) and 0.0 < self.rate_hz <= 1000.0):
            raise ValueError(f"rate_hz must be in (0, 1000], got {self.rate_hz}")
        if not (8 <= self.width <= 4096 and 8 <= self.height <= 4096):
            raise ValueError(
                f"width and height must be in [8, 4096], got {self.width}x{self.height}"
            )
        if not self.world_frame or not self.base_frame or self.world_frame == self.base_frame:
            raise ValueError(
                f"world_frame ({self.world_frame!r}) and base_frame ({self.base_frame!r}) must be"
                " non-empty and different"
            )


@dataclass
class RigFrame:
    """One rendered instant of the rig (v cameras).

    images:  (v, h, w, 3) uint8 RGB.
    depth:   (v, h, w) float32 z-depth in metres, 0 where no surface was hit.
    labels:  (v, h, w) uint8 class ids, 255 where unknown.
    K:       (v, 3, 3) float64 intrinsics, pixel centres at +0.5 (the core's convention).
    c2w:     (v, 4, 4) float64 camera (optical) to world.
    base:    (4, 4) float64 ``T_world_base``.
    mounts:  (v, 4, 4) float64 ``T_base_camera``.
    """

    t: float
    images: NDArray[np.uint8]
    depth: NDArray[np.float32]
    labels: NDArray[np.uint8]
    K: NDArray[np.float64]
    c2w: NDArray[np.float64]
    base: NDArray[np.float64]
    mounts: NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 4, 4)))


def _invert(T: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.eye(4)
    out[:3, :3] = T[:3, :3].T
    out[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return out


class SimRig:
    """Renders the rig at scene time ``t`` and splits its poses into base motion and mounts."""

    def __init__(self, config: SimRigConfig) -> None:
        from semanticsplat_ros.data.rigs import get_rig
        from semanticsplat_ros.data.world import make_scene

        self.config = config
        rig = get_rig(config.rig)
        rig_names = [c.name for c in rig.cameras]
        names = list(config.cameras) or rig_names
        if len(names) != len(rig_names):
            raise ValueError(
                f"rig {config.rig!r} has {len(rig_names)} cameras ({', '.join(rig_names)}) but"
                f" {len(names)} camera names were given: {names}"
            )
        if len(set(names)) != len(names) or not all(names):
            raise ValueError(f"camera names must be unique and non-empty, got {names}")
        self.cameras: list[str] = names
        self.scene = make_scene(config.scene_seed)
        self.static_mounts = self._find_static_mounts()
        self._loop: list[RigFrame] = []

    @property
    def loop_frames(self) -> int:
        """Frames of the replayed loop (0: live rendering)."""
        c = self.config
        return max(1, round(c.loop_s * c.rate_hz)) if c.loop_s > 0 else 0

    def prerender(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Render the loop's frames (``loop_frames`` ticks at ``rate_hz`` from t = 0)."""
        n = self.loop_frames
        frames = []
        for k in range(n):
            frames.append(self.render(k / self.config.rate_hz))
            if progress is not None:
                progress(k + 1, n)
        self._loop = frames

    def frame_at(self, t: float) -> RigFrame:
        """The rig at scene time ``t``: rendered now, or the loop's frame for ``t``."""
        if not self.loop_frames:
            return self.render(t)
        if not self._loop:
            self.prerender()
        k = math.floor(t * self.config.rate_hz + 1e-6) % len(self._loop)
        return self._loop[k]

    def optical_frame(self, camera: str) -> str:
        return f"{camera}_optical_frame"

    def poses(self, t: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(c2w (v, 4, 4), K (v, 3, 3)) at scene time t, float64 numpy."""
        from semanticsplat_ros.data.rigs import rig_cameras

        c = self.config
        c2w, K = rig_cameras(self.scene, c.rig, t, c.height, c.width, seed=c.trajectory_seed)
        c2w_np = c2w.double().numpy().copy()
        # rig_cameras works in float32: re-orthonormalise so TF carries exact rotations.
        U, _, Vt = np.linalg.svd(c2w_np[:, :3, :3])
        c2w_np[:, :3, :3] = U @ Vt
        return c2w_np, K.double().numpy()

    def _mounts(self, c2w: NDArray[np.float64]) -> NDArray[np.float64]:
        base_inv = _invert(c2w[0])
        return np.stack([base_inv @ T for T in c2w])

    def _find_static_mounts(self) -> list[bool]:
        """Per camera: is T_base_camera the same at every probe time (then it goes on
        /tf_static)?"""
        mounts = np.stack([self._mounts(self.poses(t)[0]) for t in _RIGIDITY_PROBE_TIMES])
        spread = np.abs(mounts - mounts[:1]).max(axis=(0, 2, 3))
        return [bool(s < 1e-5) for s in spread]

    def render(self, t: float) -> RigFrame:
        """Every camera at scene time ``t`` (seconds)."""
        import torch

        from semanticsplat_ros.data.raycast import render_views

        c = self.config
        c2w, K = self.poses(t)
        with torch.no_grad():
            views = render_views(
                self.scene,
                torch.from_numpy(c2w).float(),
                torch.from_numpy(K).float(),
                c.height,
                c.width,
            )
        images = (views.images.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8)
        labels = views.labels if views.labels is not None else torch.full_like(views.depth, -1)
        labels = torch.where(labels < 0, torch.full_like(labels, 255), labels).clamp(0, 255)
        return RigFrame(
            t=t,
            images=images.permute(0, 2, 3, 1).contiguous().numpy(),
            depth=views.depth.to(torch.float32).contiguous().numpy(),
            labels=labels.to(torch.uint8).numpy(),
            K=K,
            c2w=c2w,
            base=c2w[0].copy(),
            mounts=self._mounts(c2w),
        )


# --------------------------------------------------------------------------------------------
# rclpy node
# --------------------------------------------------------------------------------------------


def _make_node_class() -> type:
    """Define the node class on first use so that importing this module needs no rclpy."""
    from geometry_msgs.msg import TransformStamped
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header
    from tf2_msgs.msg import TFMessage

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
            from rclpy.exceptions import ParameterUninitializedException
            from rclpy.parameter import Parameter

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

    return SimRigNode


@functools.cache
def sim_rig_node_class() -> type:
    """The rclpy ``SimRigNode`` class (defined on first use)."""
    return _make_node_class()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sim_rig`` executable (takes ``--ros-args ...``)."""
    import rclpy
    from rclpy._rclpy_pybind11 import RCLError
    from rclpy.executors import ExternalShutdownException

    args = list(sys.argv if argv is None else argv)
    rclpy.init(args=args)
    node = None
    try:
        node = sim_rig_node_class()()
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

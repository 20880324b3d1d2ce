"""``semanticsplat bag record-sim``: the synthetic rig (``data.sim_rig.SimRig``) as an MCAP bag.

The same topics and TF layout as the live ``sim_rig`` node (``ros/sim_rig.py``), written with
rosbags' messages and Writer only (no rclpy): per tick, ``/tf`` (``world_frame -> base_frame``
and the mounts that move), then per camera ``<camera>/camera_info`` (ROS convention ``cx_ros =
cx - 0.5``, no distortion) and ``<camera>/image_raw`` (rgb8, frame ``<camera>_optical_frame``);
``/tf_static`` once at the start for the fixed mounts. Every message of a tick has one stamp,
also its log time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from semanticsplat_ros.data.sim_rig import SimRig, SimRigConfig
from semanticsplat_ros.ros.bag_io import (
    NS,
    TF_STATIC_TOPIC,
    TF_TOPIC,
    TYPESTORE,
    BagWriter,
    bag_topic,
)
from semanticsplat_ros.ros.conversions import rotmat_to_wxyz

_T = TYPESTORE.types


def rosbags_header(frame_id: str, t_ns: int) -> Any:
    """A rosbags ``std_msgs/Header`` at ``t_ns`` nanoseconds."""
    sec, nanosec = divmod(int(t_ns), NS)
    stamp = _T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)
    return _T["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)


def rosbags_image(rgb: NDArray[np.uint8], header: Any) -> Any:
    """A rosbags rgb8 ``sensor_msgs/Image`` of ``(h, w, 3)`` uint8 pixels."""
    h, w = rgb.shape[:2]
    data = np.ascontiguousarray(rgb, dtype=np.uint8).reshape(-1)
    return _T["sensor_msgs/msg/Image"](
        header=header, height=h, width=w, encoding="rgb8", is_bigendian=0, step=3 * w, data=data
    )


def rosbags_camera_info(K: NDArray[np.float64], width: int, height: int, header: Any) -> Any:
    """A rosbags ``sensor_msgs/CameraInfo`` of core intrinsics ``K`` (pixel centres at +0.5):
    ``cx_ros = cx - 0.5``, plumb_bob with D = 0, identity R, ``P = [K | 0]``."""
    K_ros = np.asarray(K, dtype=np.float64).copy()
    K_ros[:2, 2] -= 0.5
    P = np.zeros((3, 4))
    P[:, :3] = K_ros
    roi = _T["sensor_msgs/msg/RegionOfInterest"](
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
    )
    return _T["sensor_msgs/msg/CameraInfo"](
        header=header,
        height=int(height),
        width=int(width),
        distortion_model="plumb_bob",
        d=np.zeros(5),
        k=K_ros.reshape(-1),
        r=np.eye(3).reshape(-1),
        p=P.reshape(-1),
        binning_x=0,
        binning_y=0,
        roi=roi,
    )


def rosbags_tf(transforms: Sequence[tuple[str, str, NDArray[np.float64]]], t_ns: int) -> Any:
    """A rosbags ``tf2_msgs/TFMessage`` of ``(parent, child, T_parent_child)`` at ``t_ns``."""
    items = []
    for parent, child, T in transforms:
        w, x, y, z = rotmat_to_wxyz(T[:3, :3])
        transform = _T["geometry_msgs/msg/Transform"](
            translation=_T["geometry_msgs/msg/Vector3"](
                x=float(T[0, 3]), y=float(T[1, 3]), z=float(T[2, 3])
            ),
            rotation=_T["geometry_msgs/msg/Quaternion"](
                x=float(x), y=float(y), z=float(z), w=float(w)
            ),
        )
        items.append(
            _T["geometry_msgs/msg/TransformStamped"](
                header=rosbags_header(parent, t_ns), child_frame_id=child, transform=transform
            )
        )
    return _T["tf2_msgs/msg/TFMessage"](transforms=items)


def record_sim(
    out_bag: str | Path,
    seconds: float,
    config: SimRigConfig,
    start_ns: int = 1_700_000_000 * NS,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Render ``seconds`` of the rig at ``config.rate_hz`` into ``out_bag``; messages per topic.

    Stamps start at ``start_ns``. ValueError for ``seconds`` <= 0; BagError when ``out_bag``
    exists.
    """
    if not (seconds > 0 and np.isfinite(seconds)):
        raise ValueError(f"--seconds must be > 0, got {seconds}")
    rig = SimRig(config)
    ticks = max(1, round(seconds * config.rate_hz))
    with BagWriter(out_bag) as writer:
        mounts = rig._mounts(rig.poses(0.0)[0])
        static = [
            (config.base_frame, rig.optical_frame(c), mounts[i])
            for i, c in enumerate(rig.cameras)
            if rig.static_mounts[i]
        ]
        if static:
            writer.write_rosbags(TF_STATIC_TOPIC, start_ns, rosbags_tf(static, start_ns))
        for k in range(ticks):
            t_ns = start_ns + round(k * NS / config.rate_hz)
            frame = rig.frame_at(k / config.rate_hz)
            dynamic = [(config.world_frame, config.base_frame, frame.base)] + [
                (config.base_frame, rig.optical_frame(c), frame.mounts[i])
                for i, c in enumerate(rig.cameras)
                if not rig.static_mounts[i]
            ]
            writer.write_rosbags(TF_TOPIC, t_ns, rosbags_tf(dynamic, t_ns))
            for i, camera in enumerate(rig.cameras):
                header = rosbags_header(rig.optical_frame(camera), t_ns)
                info = rosbags_camera_info(frame.K[i], config.width, config.height, header)
                writer.write_rosbags(bag_topic(f"{camera}/camera_info"), t_ns, info)
                image = rosbags_image(frame.images[i], header)
                writer.write_rosbags(bag_topic(f"{camera}/image_raw"), t_ns, image)
            if progress is not None:
                progress(1)
        return dict(writer.counts)

"""The sim rig: data/sim_rig.py's decomposition (no ROS), and ros/sim_rig.py's live node over
Fast DDS."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from semanticsplat_ros.data.sim_rig import SimRig, SimRigConfig
from semanticsplat_ros.ros.conversions import (
    camera_info_to_intrinsics,
    check_image_matches_camera_info,
    image_to_numpy,
    stamp_to_nanoseconds,
)
from semanticsplat_ros.ros.tf_buffer import TfBuffer
from semanticsplat_ros.ros.tf_listener import TfListener

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("rig", ["stereo", "head_wrist", "ring4"])
def test_base_and_mounts_recompose_the_camera_poses(rig):
    sim = SimRig(SimRigConfig(rig=rig, width=32, height=24))
    frame = sim.render(1.3)
    v = len(sim.cameras)
    assert frame.images.shape == (v, 24, 32, 3) and frame.images.dtype == np.uint8
    assert frame.depth.shape == (v, 24, 32) and frame.depth.dtype == np.float32
    assert frame.labels.dtype == np.uint8 and frame.labels.max() <= 255
    np.testing.assert_allclose(
        np.einsum("ij,vjk->vik", frame.base, frame.mounts), frame.c2w, atol=1e-9
    )
    np.testing.assert_allclose(frame.mounts[0], np.eye(4), atol=1e-9)
    # Mounts marked static really are the same at another time.
    later = sim.render(4.0)
    for i, static in enumerate(sim.static_mounts):
        if static:
            np.testing.assert_allclose(later.mounts[i], frame.mounts[i], atol=1e-5)
    assert sim.static_mounts[0]


def test_stereo_mounts_are_static_and_the_baseline_is_11cm():
    sim = SimRig(
        SimRigConfig(rig="stereo", cameras=("head_left", "head_right"), width=32, height=24)
    )
    assert sim.static_mounts == [True, True]
    mount = sim.render(0.0).mounts[1]
    # Right camera 11 cm along the left optical frame's x axis (OpenCV: x right).
    np.testing.assert_allclose(mount[:3, 3], [0.11, 0.0, 0.0], atol=1e-5)


def test_loop_replays_prerendered_frames_with_the_scene_time_wrapping():
    live = SimRig(SimRigConfig(rig="stereo", width=32, height=24, rate_hz=10.0))
    looped = SimRig(SimRigConfig(rig="stereo", width=32, height=24, rate_hz=10.0, loop_s=0.5))
    assert (live.loop_frames, looped.loop_frames) == (0, 5)
    calls = []
    looped.prerender(progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (5, 5)
    # Frame k of the loop is the rig at t = k / rate_hz; after loop_s it starts over.
    for t, k in ((0.0, 0), (0.31, 3), (0.5, 0), (0.79, 2)):
        frame = looped.frame_at(t)
        expected = live.render(k / 10.0)
        assert frame.t == expected.t
        np.testing.assert_array_equal(frame.images, expected.images)
        np.testing.assert_allclose(frame.c2w, expected.c2w)
    assert live.frame_at(0.31).t == 0.31  # live: rendered at the asked time


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="has 2 cameras"):
        SimRig(SimRigConfig(rig="stereo", cameras=("a",)))
    with pytest.raises(ValueError, match="unknown rig"):
        SimRig(SimRigConfig(rig="octopus"))
    with pytest.raises(ValueError, match="rate_hz"):
        SimRigConfig(rate_hz=0.0)
    with pytest.raises(ValueError, match="loop_s"):
        SimRigConfig(loop_s=-1.0)


# --------------------------------------------------------------------------------------------
# Live node in a subprocess
# --------------------------------------------------------------------------------------------


@pytest.mark.ros
@pytest.mark.slow
def test_live_rig_publishes_synchronised_images_camera_info_and_tf():
    cameras = ["head_left", "head_right"]
    width, height = 64, 48
    env = dict(os.environ)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "semanticsplat_ros.ros.sim_rig",
            "--ros-args",
            "--params-file",
            str(ROOT / "config" / "bringup.yaml"),
            "-p",
            f"width:={width}",
            "-p",
            f"height:={height}",
            "-p",
            "rate_hz:=5.0",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("sim_rig_probe", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    images: dict[str, dict[int, Image]] = {c: {} for c in cameras}
    infos: dict[str, dict[int, CameraInfo]] = {c: {} for c in cameras}
    gt_depth: list[Image] = []
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    try:
        for c in cameras:
            node.create_subscription(
                Image,
                f"/{c}/image_raw",
                lambda m, c=c: images[c].__setitem__(stamp_to_nanoseconds(m.header.stamp), m),
                qos,
            )
            node.create_subscription(
                CameraInfo,
                f"/{c}/camera_info",
                lambda m, c=c: infos[c].__setitem__(stamp_to_nanoseconds(m.header.stamp), m),
                qos,
            )
        node.create_subscription(Image, "/sim_rig/head_right/gt_depth", gt_depth.append, qos)
        tf = TfBuffer(cache_duration=30.0)
        listener = TfListener(node, tf)
        deadline = time.monotonic() + 60.0

        def common_stamps() -> list[int]:
            # Stamps with both images and both camera_infos (the first frames may arrive before
            # every subscription has matched).
            sets = [set(images[c]) for c in cameras] + [set(infos[c]) for c in cameras]
            return sorted(set.intersection(*sets))

        while time.monotonic() < deadline and (len(common_stamps()) < 3 or not gt_depth):
            assert proc.poll() is None, proc.stdout.read().decode()
            executor.spin_once(timeout_sec=0.05)
        stamps = common_stamps()
        assert len(stamps) >= 3, f"got {[len(v) for v in images.values()]} images"
        # Same stamps across cameras: after the first common frame, every image has its partner.
        first = stamps[0]
        left = {ns for ns in images["head_left"] if ns >= first}
        right = {ns for ns in images["head_right"] if ns >= first}
        assert len(left ^ right) <= 1  # at most a set still in flight
        for ns in stamps:
            for c in cameras:
                img = images[c][ns]
                assert img.encoding == "rgb8" and img.header.frame_id == f"{c}_optical_frame"
                pixels = image_to_numpy(img)
                assert pixels.shape == (height, width, 3) and pixels.std() > 0
                info = infos[c][ns]
                intr = camera_info_to_intrinsics(info)
                check_image_matches_camera_info(img, intr)
                # Centred principal point in our convention, cx_ros = w/2 - 0.5 on the wire.
                assert info.k[2] == pytest.approx(width / 2 - 0.5)
                np.testing.assert_allclose(intr.K[:2, 2], [width / 2, height / 2])
        # TF resolves both cameras in the world at the image stamp; the baseline is 11 cm.
        ns = stamps[-1]
        while time.monotonic() < deadline and not tf.can_transform(
            "world", "head_right_optical_frame", ns * 1e-9
        ):
            executor.spin_once(timeout_sec=0.05)
        T_world_right = tf.lookup("world", "head_right_optical_frame", ns * 1e-9)
        T_world_left = tf.lookup("world", "head_left_optical_frame", ns * 1e-9)
        baseline = np.linalg.inv(T_world_left) @ T_world_right
        np.testing.assert_allclose(baseline[:3, 3], [0.11, 0.0, 0.0], atol=1e-4)
        assert listener.rejected == 0
        depth = image_to_numpy(gt_depth[-1])
        assert gt_depth[-1].encoding == "32FC1" and depth.shape == (height, width)
        assert np.all(np.isfinite(depth)) and depth.max() > 0.1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    assert proc.returncode == 0, proc.stdout.read().decode()

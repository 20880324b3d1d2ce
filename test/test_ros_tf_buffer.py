"""ros/tf_buffer.py: interpolation, static edges, chains, cache, errors; and the /tf listener."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from semanticsplat_ros.ros.conversions import make_transform, wxyz_to_rotmat
from semanticsplat_ros.ros.tf_buffer import (
    ConnectivityError,
    ExtrapolationError,
    TfBuffer,
    TfLookupError,
    UnknownFrameError,
    slerp,
)


def _rz(angle: float, t=(0.0, 0.0, 0.0)) -> np.ndarray:
    return make_transform(t, [math.cos(angle / 2), 0.0, 0.0, math.sin(angle / 2)])


def test_interpolates_translation_linearly_and_rotation_by_slerp():
    buf = TfBuffer()
    buf.set_transform("world", "base", 1.0, _rz(0.0, (0.0, 0.0, 0.0)))
    buf.set_transform("world", "base", 2.0, _rz(math.pi / 2, (2.0, 0.0, 0.0)))
    T = buf.lookup("world", "base", 1.25)
    np.testing.assert_allclose(T[:3, 3], [0.5, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(T, _rz(math.pi / 8, (0.5, 0.0, 0.0)), atol=1e-12)
    # Exact samples are returned as stored; the inverse direction is the inverse matrix.
    np.testing.assert_allclose(
        buf.lookup("world", "base", 2.0), _rz(math.pi / 2, (2, 0, 0)), atol=1e-12
    )
    np.testing.assert_allclose(buf.lookup("base", "world", 1.25), np.linalg.inv(T), atol=1e-12)


def test_a_stamp_read_through_another_float_path_is_the_same_instant():
    # 1795569339.960015 s as int ns, then as float seconds two ways: they differ in the last bits.
    ns = 1_795_569_339_960_015_123
    stored, asked = ns / 1e9, ns // 10**9 + (ns % 10**9) * 1e-9
    buf = TfBuffer()
    buf.set_transform("world", "base", stored - 0.1, _rz(0.0))
    buf.set_transform("world", "base", stored, _rz(0.0, (1.0, 0.0, 0.0)))
    for stamp in (asked, stored + 5e-7):
        np.testing.assert_allclose(buf.lookup("world", "base", stamp)[:3, 3], [1.0, 0.0, 0.0])
    with pytest.raises(ExtrapolationError, match="future"):
        buf.lookup("world", "base", stored + 1e-4)


def test_slerp_takes_the_shortest_arc():
    q0 = np.array([1.0, 0.0, 0.0, 0.0])
    q1 = -np.array([math.cos(0.2), 0.0, 0.0, math.sin(0.2)])  # same rotation, other hemisphere
    mid = slerp(q0, q1, 0.5)
    np.testing.assert_allclose(
        wxyz_to_rotmat(mid), wxyz_to_rotmat([math.cos(0.1), 0, 0, math.sin(0.1)]), atol=1e-12
    )


def test_chain_through_a_common_ancestor_with_static_mounts():
    buf = TfBuffer()
    base_1 = _rz(0.3, (1.0, 2.0, 0.0))
    base_2 = _rz(0.5, (1.5, 2.0, 0.0))
    buf.set_transform("world", "base", 10.0, base_1)
    buf.set_transform("world", "base", 11.0, base_2)
    left = make_transform([0.0, 0.1, 1.2], [0.5, -0.5, 0.5, -0.5])
    right = make_transform([0.0, -0.1, 1.2], [0.5, -0.5, 0.5, -0.5])
    buf.set_transform("base", "left_optical", 0.0, left, static=True)
    buf.set_transform("base", "right_optical", 0.0, right, static=True)
    # Static edges hold at any time; the dynamic one is exact at its samples.
    np.testing.assert_allclose(buf.lookup("world", "left_optical", 10.0), base_1 @ left, atol=1e-12)
    np.testing.assert_allclose(
        buf.lookup("world", "right_optical", 11.0), base_2 @ right, atol=1e-12
    )
    # Siblings: the base motion cancels.
    np.testing.assert_allclose(
        buf.lookup("left_optical", "right_optical", 10.5), np.linalg.inv(left) @ right, atol=1e-12
    )
    # Latest common time (None) uses the newest dynamic sample.
    np.testing.assert_allclose(buf.lookup("world", "left_optical"), base_2 @ left, atol=1e-12)
    assert buf.frames() == {"world", "base", "left_optical", "right_optical"}
    assert buf.parent_of("/left_optical") == "base"


def test_errors_say_what_is_wrong():
    buf = TfBuffer(tolerance=0.05)
    buf.set_transform("world", "base", 1.0, np.eye(4))
    buf.set_transform("world", "base", 2.0, np.eye(4))
    buf.set_transform("odom", "robot", 1.0, np.eye(4))
    with pytest.raises(UnknownFrameError, match="source frame 'camera' does not exist"):
        buf.lookup("world", "camera", 1.0)
    with pytest.raises(ConnectivityError, match="not connected"):
        buf.lookup("world", "robot", 1.0)
    with pytest.raises(ExtrapolationError, match="into the future"):
        buf.lookup("world", "base", 2.5)
    with pytest.raises(ExtrapolationError, match="into the past"):
        buf.lookup("world", "base", 0.5)
    assert issubclass(ExtrapolationError, TfLookupError) and issubclass(TfLookupError, LookupError)
    # Within the tolerance the boundary sample is used.
    np.testing.assert_allclose(buf.lookup("world", "base", 2.04), np.eye(4))
    assert not buf.can_transform("world", "base", 3.0)
    assert buf.can_transform("world", "base", 1.5)


def test_bad_transforms_are_rejected():
    buf = TfBuffer()
    nan = np.eye(4)
    nan[0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        buf.set_transform("world", "base", 1.0, nan)
    with pytest.raises(ValueError, match="finite"):
        buf.set_transform("world", "base", float("inf"), np.eye(4))
    with pytest.raises(ValueError, match="itself"):
        buf.set_transform("world", "world", 1.0, np.eye(4))
    buf.set_transform("world", "base", 1.0, np.eye(4))
    with pytest.raises(ValueError, match="loop"):
        buf.set_transform("base", "world", 1.0, np.eye(4))
    assert buf.frames() == {"world", "base"}


def test_cache_duration_prunes_old_samples():
    buf = TfBuffer(cache_duration=1.0)
    for k in range(30):
        buf.set_transform("world", "base", k * 0.1, _rz(0.0, (k * 0.1, 0.0, 0.0)))
    assert buf.can_transform("world", "base", 2.5)
    with pytest.raises(ExtrapolationError, match="into the past"):
        buf.lookup("world", "base", 1.0)


def test_out_of_order_samples_are_sorted():
    buf = TfBuffer()
    buf.set_transform("world", "base", 2.0, _rz(0.0, (2.0, 0.0, 0.0)))
    buf.set_transform("world", "base", 1.0, _rz(0.0, (1.0, 0.0, 0.0)))
    np.testing.assert_allclose(buf.lookup("world", "base", 1.5)[:3, 3], [1.5, 0.0, 0.0])


@pytest.mark.ros
def test_listener_fills_the_buffer_from_tf_topics():
    import rclpy
    from geometry_msgs.msg import TransformStamped
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from tf2_msgs import msg as tf2_msgs

    from semanticsplat_ros.ros.conversions import matrix_to_transform_msg, seconds_to_stamp
    from semanticsplat_ros.ros.tf_listener import BufferLookup, make_transform_lookup

    def stamped(parent: str, child: str, stamp: float, T: np.ndarray) -> TransformStamped:
        ts = TransformStamped()
        ts.header.frame_id, ts.child_frame_id = parent, child
        ts.header.stamp = seconds_to_stamp(stamp)
        ts.transform = matrix_to_transform_msg(T)
        return ts

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        pub_node = rclpy.create_node("tf_test_publisher", context=context)
        sub_node = rclpy.create_node("tf_test_listener", context=context)
        errors: list[str] = []
        lookup = make_transform_lookup(sub_node, prefer_tf2_ros=False)
        assert isinstance(lookup, BufferLookup)
        lookup.listener._on_error = errors.append
        static_qos = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        # The static publisher sends before the listener matches: transient-local must deliver.
        static_pub = pub_node.create_publisher(tf2_msgs.TFMessage, "/tf_static", static_qos)
        mount = make_transform([0.0, 0.1, 1.0], [0.5, -0.5, 0.5, -0.5])
        static_pub.publish(tf2_msgs.TFMessage(transforms=[stamped("base", "cam", 0.0, mount)]))
        tf_pub = pub_node.create_publisher(tf2_msgs.TFMessage, "/tf", 10)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(pub_node)
        executor.add_node(sub_node)
        deadline = time.monotonic() + 10.0
        while tf_pub.get_subscription_count() < 1 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        assert tf_pub.get_subscription_count() >= 1
        bad = stamped("world", "base", 1.5, np.eye(4))
        bad.transform.rotation.w = float("nan")
        tf_pub.publish(
            tf2_msgs.TFMessage(
                transforms=[
                    stamped("world", "base", 1.0, _rz(0.0, (0.0, 0.0, 0.0))),
                    stamped("world", "base", 2.0, _rz(0.0, (1.0, 0.0, 0.0))),
                    bad,
                ]
            )
        )
        while not lookup.can_transform("world", "cam", 1.5) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        T = lookup.lookup("world", "cam", 1.5)
        expected = _rz(0.0, (0.5, 0.0, 0.0)) @ mount
        np.testing.assert_allclose(T, expected, atol=1e-9)
        assert lookup.listener.rejected == 1 and "NaN" in errors[0]
        executor.shutdown()
        pub_node.destroy_node()
        sub_node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


@pytest.mark.ros
def test_listener_with_its_own_thread_needs_no_spinning_of_the_node():
    """spin_thread: /tf arrives while the owning node's executor never runs (a saturated
    executor in the node), and close() stops the thread and removes the listener's node."""
    import rclpy
    from geometry_msgs.msg import TransformStamped
    from tf2_msgs import msg as tf2_msgs

    from semanticsplat_ros.ros.conversions import matrix_to_transform_msg, seconds_to_stamp
    from semanticsplat_ros.ros.tf_listener import make_transform_lookup

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        pub_node = rclpy.create_node("tf_thread_publisher", context=context)
        owner = rclpy.create_node("tf_thread_owner", namespace="/ns", context=context)
        lookup = make_transform_lookup(owner, prefer_tf2_ros=False, spin_thread=True)
        thread = lookup.listener._thread
        assert thread is not None and thread.is_alive()
        assert lookup.listener._node.get_fully_qualified_name() == "/ns/tf_thread_owner_tf_listener"
        tf_pub = pub_node.create_publisher(tf2_msgs.TFMessage, "/tf", 10)
        deadline = time.monotonic() + 10.0
        while tf_pub.get_subscription_count() < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert tf_pub.get_subscription_count() == 1  # the listener's node, not the owner
        ts = TransformStamped()
        ts.header.frame_id, ts.child_frame_id = "world", "base"
        ts.header.stamp = seconds_to_stamp(3.0)
        ts.transform = matrix_to_transform_msg(_rz(0.0, (1.0, 2.0, 3.0)))
        while not lookup.can_transform("world", "base", 3.0) and time.monotonic() < deadline:
            tf_pub.publish(tf2_msgs.TFMessage(transforms=[ts]))
            time.sleep(0.05)
        np.testing.assert_allclose(lookup.lookup("world", "base", 3.0)[:3, 3], [1.0, 2.0, 3.0])
        lookup.close()
        lookup.close()  # idempotent
        assert not thread.is_alive()
        deadline = time.monotonic() + 10.0
        while "tf_thread_owner_tf_listener" in owner.get_node_names():
            assert time.monotonic() < deadline, "the listener's node outlived close()"
            time.sleep(0.05)
        owner.destroy_node()
        pub_node.destroy_node()
    finally:
        rclpy.shutdown(context=context)

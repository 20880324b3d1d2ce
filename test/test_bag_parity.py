"""``bag run`` against the live node: the recorded sim-rig bag (conftest's ``sim_bag_run``) is
played, set by set, into ``semanticsplat_node`` (node.py's ``SemanticSplatNode``, configured and
activated in this process with the same parameters and the same bundled checkpoint) over Fast
DDS on loopback; the depth it publishes for each stamp must equal the depth ``bag run`` wrote for
that stamp to within 1e-4 m (every set, both cameras)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import rclpy
from bag_helpers import SIM_CONFIG, SIM_NODE_PARAMS, read_depth_images
from rclpy.executors import MultiThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from semanticsplat_ros.ros.bag_bench import benchmark as bag_benchmark
from semanticsplat_ros.ros.bag_io import TF_STATIC_TOPIC, TF_TOPIC
from semanticsplat_ros.ros.bag_play import BagPlayer, PlayMessage, load_messages
from semanticsplat_ros.ros.bag_sets import parse_node_params
from semanticsplat_ros.ros.conversions import image_to_numpy, stamp_to_nanoseconds
from semanticsplat_ros.ros.node import SemanticSplatNode
from semanticsplat_ros.ros.params import NODE_NAME

pytestmark = [pytest.mark.ros, pytest.mark.slow]

CAMERAS = SIM_CONFIG.cameras
DEPTH_TOPICS = {c: f"/{NODE_NAME}/{c}/depth" for c in CAMERAS}
TOLERANCE_M = 1e-4
ATTEMPTS = 3
SET_TIMEOUT_S = 30.0
TF_SETTLE_S = 0.5


@contextmanager
def live_node() -> Iterator[tuple[SemanticSplatNode, Node]]:
    """The node, active, and a probe node, both spun by one executor in a thread."""
    values = parse_node_params(SIM_NODE_PARAMS)
    values.update(qos_reliability="reliable", map_enabled=False)  # no map: depth only
    context = rclpy.Context()
    rclpy.init(context=context)
    node = SemanticSplatNode(
        context=context, parameter_overrides=[Parameter(k, value=v) for k, v in values.items()]
    )
    probe = rclpy.create_node("bag_parity_probe", context=context)
    executor = MultiThreadedExecutor(num_threads=4, context=context)
    spinner: threading.Thread | None = None
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS, node.configure_error
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        executor.add_node(node)
        executor.add_node(probe)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        yield node, probe
    finally:
        executor.shutdown(timeout_sec=5.0)
        if spinner is not None:
            spinner.join(timeout=10.0)
        node.teardown()
        node.destroy_node()
        probe.destroy_node()
        rclpy.shutdown(context=context)


def _wait(done: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not done():
        time.sleep(0.01)
    return done()


def _play_set(
    player: BagPlayer,
    tick: list[PlayMessage],
    have: Callable[[], bool],
    node: SemanticSplatNode,
) -> None:
    """Publish one recorded set's images and camera_info, and wait for the node's depth of it;
    the set is published again (same stamps) if the node skipped it on a loaded machine."""
    for _ in range(ATTEMPTS):
        player.publish(tick)
        if _wait(have, SET_TIMEOUT_S):
            return
    stamp = tick[0].log_time_ns
    raise AssertionError(f"no depth for stamp {stamp}; node: {node.diagnostic_status()}")


def test_bag_run_depth_equals_the_live_nodes(sim_bag_run):
    written = read_depth_images(sim_bag_run.out_bag)
    stamps = sorted({stamp for _, stamp in written})
    assert len(stamps) == 3 and len(written) == 3 * len(CAMERAS)
    live: dict[tuple[str, int], np.ndarray] = {}
    with live_node() as (node, probe):
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        subs = [
            probe.create_subscription(
                Image,
                topic,
                lambda m, c=camera: live.setdefault(
                    (c, stamp_to_nanoseconds(m.header.stamp)), image_to_numpy(m)
                ),
                qos,
            )
            for camera, topic in DEPTH_TOPICS.items()
        ]
        player = BagPlayer(probe, load_messages(sim_bag_run.sim_bag))
        inputs = [t for t in player.publishers if t != TF_STATIC_TOPIC]
        assert player.wait_for_subscribers(inputs, 30.0, lambda: time.sleep(0.02))
        assert _wait(lambda: all(s.get_publisher_count() > 0 for s in subs), 30.0)
        # The whole (small) TF history first, so that a pose lookup at an image stamp never
        # waits on TF still in flight: the poses are the same as when played in order.
        tf_topics = (TF_TOPIC, TF_STATIC_TOPIC)
        player.publish([m for m in player.messages if m.topic in tf_topics])
        time.sleep(TF_SETTLE_S)
        ticks = [[m for m in t if m.topic not in tf_topics] for t in player.ticks()]
        assert [t[0].log_time_ns for t in ticks] == stamps
        for tick, stamp in zip(ticks, stamps, strict=True):
            # One set at a time, as recorded: the node takes the newest set, so a set played
            # while it is busy would be superseded (dropped), not queued.
            _play_set(player, tick, lambda s=stamp: all((c, s) in live for c in CAMERAS), node)
    assert set(live) >= set(written)
    for key, expected in written.items():
        difference = np.abs(live[key] - expected)
        assert difference.max() <= TOLERANCE_M, (key, float(difference.max()))
        assert float(expected.max()) > 0.1  # a real depth map, not two empty images


def test_quick_bag_benchmark_runs_both_sides():
    result = bag_benchmark(device="cpu", quick=True)
    assert result["bag_run_sets"] >= 10 and result["bag_run_sets_per_s"] > 0
    assert result["live_clouds_measured"] > 0 and result["live_node_rate_hz"] > 0
    assert result["speedup"] == pytest.approx(
        result["bag_run_sets_per_s"] / result["live_node_rate_hz"], rel=1e-2
    )
    assert result["exit_codes"] == {"semanticsplat_node": 0, "bag_play": 0}
    with pytest.raises(ValueError, match="device"):
        bag_benchmark(device="tpu")

"""ros/bringup.py: `semanticsplat bringup` starts sim_rig + semanticsplat_node from one YAML.

The cross-process test is the issue's "sim rig publishing 2 cameras at 10 Hz" graph with random
weights: the node's depth, labels and semantic cloud arrive with the rig's headers and frames,
and SIGINT to bringup stops everything with exit code 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from semanticsplat_ros.ros.bringup import (
    add_arguments,
    default_params_file,
    format_param_value,
    node_command,
    parse_assignments,
    run,
    sim_rig_command,
)
from semanticsplat_ros.ros.params import load_params_file, read_params_file

ROOT = Path(__file__).resolve().parents[1]

SMALL_GRAPH = """/**/semanticsplat_node:
  ros__parameters:
    cameras: ["head_left", "head_right"]
    fixed_frame: world
    device: cpu
    random_weights: true
    input_width: 64
    input_height: 48
    diagnostics_period_s: 0.5
/**/sim_rig:
  ros__parameters:
    rig: stereo
    cameras: ["head_left", "head_right"]
    rate_hz: 10.0
    width: 80
    height: 60
"""


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_commands_match_the_launch_file():
    path = ROOT / "config" / "bringup.yaml"
    assert default_params_file() == path
    cmd = node_command(path, namespace="robot1", use_sim_time=True, remappings=[("a", "/b")])
    assert cmd[:3] == [sys.executable, "-m", "semanticsplat_ros.ros.node"]
    args = cmd[3:]
    assert args[0] == "--ros-args"
    assert args[1:3] == ["-r", "__node:=semanticsplat_node"]
    assert args[3:5] == ["-r", "__ns:=/robot1"]
    assert ["--params-file", str(path)] == args[5:7]
    assert args[7:9] == ["-p", "use_sim_time:=true"]
    assert args[9:11] == ["-r", "a:=/b"]
    rig = sim_rig_command(path, parameters={"rate_hz": 5.0, "cameras": ["l", "r"]})
    assert rig[2] == "semanticsplat_ros.ros.sim_rig" and "__node:=sim_rig" in rig
    assert "rate_hz:=5.0" in rig and "cameras:=[l, r]" in rig
    assert not any(a.startswith("__ns") for a in rig)


def test_param_values_are_written_as_ros_yaml():
    assert format_param_value(True) == "true"
    assert format_param_value(3) == "3"
    assert format_param_value(2.0) == "2.0"
    assert format_param_value(1e-5) == "1e-05"
    assert format_param_value(["a", "b c"]) == "[a, b c]"
    with pytest.raises(TypeError, match="dict"):
        format_param_value({"a": 1})
    assert parse_assignments(["rate_hz:=5.0", " x := y "], "--p") == [
        ("rate_hz", "5.0"),
        ("x", "y"),
    ]
    with pytest.raises(ValueError, match="--rig-param 'rate_hz=5' must look like name:=value"):
        parse_assignments(["rate_hz=5"], "--rig-param")


def test_bad_params_file_fails_before_starting_anything(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "/**/semanticsplat_node:\n  ros__parameters:\n    near: 5.0\n    far: 1.0\n    nmae: x\n"
    )
    with pytest.raises(ValueError, match=r"near \(5.0\) must be < far|unknown parameter 'nmae'"):
        run(_args("--params-file", str(bad)))
    with pytest.raises(FileNotFoundError):
        run(_args("--params-file", str(tmp_path / "missing.yaml")))
    with pytest.raises(ValueError, match="--node-param"):
        run(_args("--params-file", str(ROOT / "config" / "bringup.yaml"), "--node-param", "x"))


def test_small_graph_file_is_valid(tmp_path):
    path = tmp_path / "graph.yaml"
    path.write_text(SMALL_GRAPH)
    params = load_params_file(path)
    assert params.random_weights and params.camera_names == ["head_left", "head_right"]
    assert read_params_file(path, node_name="sim_rig")["rate_hz"] == 10.0


def _start_bringup(tmp_path: Path, *extra: str) -> subprocess.Popen:
    path = tmp_path / "graph.yaml"
    path.write_text(SMALL_GRAPH)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "semanticsplat_ros.cli",
            "bringup",
            "--params-file",
            str(path),
            *extra,
        ],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _children(pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(p) for p in out.stdout.split()]


@pytest.mark.ros
@pytest.mark.slow
def test_bringup_runs_rig_and_node_and_stops_on_sigint(tmp_path):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image, PointCloud2

    from semanticsplat_ros.ros.conversions import (
        cloud_to_semantic,
        image_to_numpy,
        stamp_to_nanoseconds,
    )

    proc = _start_bringup(tmp_path)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("bringup_probe", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    got: dict[str, list] = {"depth": [], "labels": [], "cloud": [], "image": []}
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(Image, "/semanticsplat_node/head_left/depth", got["depth"].append, qos)
    node.create_subscription(
        Image, "/semanticsplat_node/head_right/labels", got["labels"].append, qos
    )
    node.create_subscription(
        PointCloud2, "/semanticsplat_node/semantic_cloud", got["cloud"].append, qos
    )
    node.create_subscription(Image, "/head_left/image_raw", got["image"].append, qos)
    try:
        deadline = time.monotonic() + 240.0
        while time.monotonic() < deadline and not all(got.values()):
            assert proc.poll() is None, proc.stdout.read()
            executor.spin_once(timeout_sec=0.05)
        assert all(got.values()), {k: len(v) for k, v in got.items()}
        depth = got["depth"][-1]
        # The depth carries the rig image's header: same frame, and a stamp the rig published.
        rig_stamps = {stamp_to_nanoseconds(m.header.stamp) for m in got["image"]}
        for _ in range(40):  # the matching rig image may still be in flight
            if stamp_to_nanoseconds(depth.header.stamp) in rig_stamps:
                break
            executor.spin_once(timeout_sec=0.05)
            rig_stamps = {stamp_to_nanoseconds(m.header.stamp) for m in got["image"]}
        assert depth.header.frame_id == "head_left_optical_frame"
        assert stamp_to_nanoseconds(depth.header.stamp) in rig_stamps
        assert image_to_numpy(depth).shape == (60, 80)
        labels = got["labels"][-1]
        assert labels.header.frame_id == "head_right_optical_frame"
        assert labels.encoding == "mono8"
        cloud = got["cloud"][-1]
        assert cloud.header.frame_id == "world"
        assert np.all(np.isfinite(cloud_to_semantic(cloud).xyz))
        children = _children(proc.pid)
        assert len(children) == 2
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    output = proc.stdout.read()
    assert code == 0, output
    for pid in children:
        assert (
            not Path(f"/proc/{pid}").exists()
            or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
        ), f"child {pid} still running"


@pytest.mark.ros
@pytest.mark.slow
def test_bringup_exits_nonzero_when_the_node_cannot_configure(tmp_path):
    proc = _start_bringup(
        tmp_path,
        "--node-param",
        "random_weights:=false",
        "--node-param",
        f"model_checkpoint:={tmp_path / 'missing.pt'}",
    )
    try:
        code = proc.wait(timeout=240)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        raise
    output = proc.stdout.read()
    assert code == 1, output
    assert "configure failed" in output and "missing.pt" in output
    assert "semanticsplat_node exited with code 1; stopping the other nodes" in output

"""``semanticsplat bench bag``: ``bag run`` against the live node on the same bag, one run.

1. ``record_sim`` writes the ring4 rig (4 cameras, 30 Hz; quick: the stereo head) to an MCAP bag.
2. ``bag run`` (``bag_run.bag_run``, in this process) goes over every set of it: ``bag_run_sets_per_s``
   is encoded sets per second of its whole run (reading, decoding, TF, encode, every output
   written, map fusion; the first set's warm-up included).
3. The same bag is played in real time, looped with fresh stamps (``bag_play`` in a subprocess,
   as ``ros2 bag play --loop`` would) into ``semanticsplat_node`` (a subprocess, started as the
   launch file does: ``bringup.node_command``) with the same parameters file, so the same
   checkpoint, input size, torch threads and map. This process subscribes (raw, no
   deserialization) to every output ``bag run`` writes, so the node does the same work, and to
   ``/diagnostics``. ``live_node_rate_hz``: semantic clouds received per second after warm-up.

``speedup`` = ``bag_run_sets_per_s / live_node_rate_hz`` (the issue asks for >= 1.2).

The player offers 30 sets per second, several times what the node encodes on a CPU, so the
node is the bottleneck: ``live_input_sets_per_s`` (complete sets formed from what reached it,
from its diagnostics) and ``live_sets_superseded`` (sets it had no time for) show it, and
``node_is_bottleneck`` is true when the input rate is at least 1.5 times the output rate.

DDS stays on this machine: ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and a domain id of the
benchmark's own (the pytest run's when run from the tests).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2

from semanticsplat_ros.data.sim_rig import SimRigConfig
from semanticsplat_ros.model.bundled import DEFAULT_MODEL_CHECKPOINT
from semanticsplat_ros.pipeline import PipelineConfig, SemanticSplatPipeline
from semanticsplat_ros.ros.bag_run import RunSummary, bag_run, output_topics
from semanticsplat_ros.ros.bag_sets import load_bag_params
from semanticsplat_ros.ros.bag_sim import record_sim
from semanticsplat_ros.ros.bringup import Graph, environment, node_command
from semanticsplat_ros.ros.params import NODE_NAME, NodeParams

PLAYER_NAME = "bag_play"


@dataclass(frozen=True)
class BagBenchConfig:
    """Sizes and times of one benchmark run."""

    rig: str
    cameras: tuple[str, ...]
    image_size: tuple[int, int]
    """Recorded image width, height (pixels)."""
    input_size: tuple[int, int]
    """The model's input width, height (both sides)."""
    rate_hz: float
    """Recorded (and played) sets per second."""
    bag_seconds: float
    warmup_s: float
    """Live side: seconds after the node's first output that are not measured."""
    measure_s: float
    device: str
    weights: str
    """``small`` (the bundled checkpoint) or ``random``."""


def bench_config(device: str, quick: bool) -> BagBenchConfig:
    weights = "small" if DEFAULT_MODEL_CHECKPOINT.is_file() else "random"
    if quick:
        return BagBenchConfig(
            "stereo", ("head_left", "head_right"), (80, 60), (64, 48), 30.0, 1.0, 3.0, 8.0,
            device, weights,
        )  # fmt: skip
    return BagBenchConfig(
        "ring4", ("front", "left", "back", "right"), (160, 120), (128, 96), 30.0, 4.0, 15.0,
        60.0, device, weights,
    )  # fmt: skip


def write_params(path: Path, config: BagBenchConfig) -> None:
    """The node's parameters file, read by both sides (``bag run`` and the live node)."""
    cams = ", ".join(f'"{c}"' for c in config.cameras)
    random_weights = config.weights == "random"
    path.write_text(
        f"""/**/semanticsplat_node:
  ros__parameters:
    cameras: [{cams}]
    fixed_frame: world
    device: {config.device}
    model_checkpoint: {"small" if not random_weights else '""'}
    random_weights: {"true" if random_weights else "false"}
    input_width: {config.input_size[0]}
    input_height: {config.input_size[1]}
    sync_slop_s: 0.01
    qos_reliability: best_effort
    publish_gaussians: false
    diagnostics_period_s: 1.0
"""
    )


def _domain_id() -> int:
    # Inside pytest: the run's own domain (conftest); otherwise one of our own (the player
    # publishes /tf and camera topics, which must never reach a robot's graph).
    test_domain = os.environ.get("SEMANTICSPLAT_TEST_DOMAIN")
    return int(test_domain) if test_domain else random.SystemRandom().randint(101, 200)


def _local_dds(domain: int) -> contextlib.AbstractContextManager[dict[str, str]]:
    """This process's DDS on loopback in ``domain`` while inside; the children's environment."""
    return environment(
        {
            "ROS_DOMAIN_ID": str(domain),
            "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
            "FASTDDS_BUILTIN_TRANSPORTS": "LARGE_DATA",
        }
    )


def time_bag_run(bag: Path, out_bag: Path, params: NodeParams) -> RunSummary:
    """``bag run`` over ``bag`` with the node's torch threads (restored afterwards)."""
    threads = torch.get_num_threads()
    try:
        if params.torch_threads > 0:  # as the node's configure (and the bag run command) do
            torch.set_num_threads(params.torch_threads)
        pipeline = SemanticSplatPipeline(PipelineConfig.from_parameters(params))
        return bag_run(bag, out_bag, params, pipeline)
    finally:
        torch.set_num_threads(threads)


def player_command(bag: Path) -> list[str]:
    """``bag_play`` looping ``bag`` in real time with wall-clock stamps."""
    play = [sys.executable, "-m", "semanticsplat_ros.ros.bag_play", str(bag), "--loop"]
    return [*play, "--restamp", "--ros-args", "-r", f"__node:={PLAYER_NAME}"]


class LiveProbe:
    """Subscribes to the node's outputs (raw bytes) and diagnostics, counting clouds."""

    def __init__(self, node: Node, topics: dict[str, list[str]]) -> None:
        self.clouds: list[float] = []  # receive times (monotonic)
        self.diagnostics: list[tuple[float, dict[str, str]]] = []
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        for kind, names in topics.items():
            msg_type = Image if kind in ("depth", "labels", "class_masks") else PointCloud2
            for topic in names:
                callback = self._on_cloud if kind == "semantic_cloud" else _ignore
                node.create_subscription(msg_type, topic, callback, qos, raw=True)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)

    def _on_cloud(self, raw: bytes) -> None:
        self.clouds.append(time.monotonic())

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith(NODE_NAME):
                values = {kv.key: kv.value for kv in status.values}
                self.diagnostics.append((time.monotonic(), values))


def _ignore(raw: bytes) -> None:
    """Outputs taken only so that the node computes them."""


def _diag_int(values: dict[str, str], key: str) -> int:
    try:
        return int(values.get(key, "0") or 0)
    except ValueError:
        return 0


def measure_live(
    graph: Graph, probe: LiveProbe, executor: SingleThreadedExecutor, config: BagBenchConfig
) -> dict[str, Any]:
    """Spin until the node's first cloud, then warm up and measure (see the module docstring)."""
    deadline = time.monotonic() + 300.0
    while not probe.clouds:
        if graph.exited() or time.monotonic() > deadline:
            raise RuntimeError(f"the live node produced no output (exits {graph.exited()})")
        executor.spin_once(timeout_sec=0.1)
    t0 = time.monotonic()
    start, end = t0 + config.warmup_s, t0 + config.warmup_s + config.measure_s
    while time.monotonic() < end and not graph.exited():
        executor.spin_once(timeout_sec=0.05)
    end = min(end, time.monotonic())
    window = max(end - start, 1e-9)
    measured = [t for t in probe.clouds if start <= t <= end]
    diag = [(t, d) for t, d in probe.diagnostics if t >= start]
    first, last = (diag[0][1], diag[-1][1]) if len(diag) >= 2 else ({}, {})
    span = diag[-1][0] - diag[0][0] if len(diag) >= 2 else 0.0

    def delta(key: str) -> int:
        return _diag_int(last, key) - _diag_int(first, key)

    return {
        "live_node_rate_hz": round(len(measured) / window, 4),
        "live_clouds_measured": len(measured),
        "live_measured_s": round(window, 2),
        "live_input_sets_per_s": round(delta("sets_formed") / span, 4) if span > 0 else None,
        "live_sets_superseded": delta("sets_dropped"),
        "live_sets_skipped": _diag_int(last, "sets_skipped"),
        "live_encode_s_median": _float_or_none(last.get("encode_s_median")),
        "live_processing_s_median": _float_or_none(last.get("processing_s_median")),
    }


def _float_or_none(text: str | None) -> float | None:
    try:
        return round(float(text), 4) if text is not None else None
    except ValueError:
        return None


def run_live(
    bag: Path, params_file: Path, topics: dict[str, list[str]], config: BagBenchConfig,
    domain: int, env: dict[str, str], log_path: Path,
) -> dict[str, Any]:  # fmt: skip
    """Start the node and the looping player, measure, stop both; the figures and exit codes."""
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node("semanticsplat_bench_bag_probe", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    probe = LiveProbe(node, topics)
    with log_path.open("w") as log:
        graph = Graph(
            {NODE_NAME: node_command(params_file), PLAYER_NAME: player_command(bag)},
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            graph.start()
            result = measure_live(graph, probe, executor, config)
        finally:
            codes = graph.stop(signal.SIGTERM, timeout=20.0)
            executor.shutdown()
            node.destroy_node()
            rclpy.shutdown(context=context)
    result["exit_codes"] = codes
    if any(code != 0 for code in codes.values()):
        result["log_tail"] = log_path.read_text()[-4000:]
    return result


def benchmark(device: str = "auto", quick: bool = False) -> dict[str, Any]:
    """Record, ``bag run``, then the live node on the same bag; see the module docstring."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
    config = bench_config(device, quick)
    rig = SimRigConfig(
        rig=config.rig,
        cameras=config.cameras,
        width=config.image_size[0],
        height=config.image_size[1],
        rate_hz=config.rate_hz,
    )
    with (
        tempfile.TemporaryDirectory(prefix="semanticsplat_bench_bag_") as tmp,
        _local_dds(_domain_id()) as env,
    ):
        folder = Path(tmp)
        params_file = folder / "params.yaml"
        write_params(params_file, config)
        params = load_bag_params(params_file)
        bag = folder / "sim_bag"
        started = time.perf_counter()
        record_sim(bag, config.bag_seconds, rig)
        record_s = time.perf_counter() - started
        summary = time_bag_run(bag, folder / "out_bag", params)
        topics = output_topics(params, params.classes)
        domain = int(env["ROS_DOMAIN_ID"])
        live = run_live(bag, params_file, topics, config, domain, env, folder / "nodes.log")
    rate = live["live_node_rate_hz"]
    input_rate = live["live_input_sets_per_s"]
    result: dict[str, Any] = {
        "bag_run_sets_per_s": round(summary.sets_per_second, 4),
        "live_node_rate_hz": rate,
        "speedup": round(summary.sets_per_second / rate, 3) if rate > 0 else None,
        "node_is_bottleneck": bool(input_rate is not None and input_rate >= 1.5 * rate),
        "bag_run_sets": summary.encoded,
        "bag_run_seconds": round(summary.seconds, 3),
        "bag_run_encode_s_per_set": round(summary.encode_seconds / max(summary.encoded, 1), 4),
        "bag_run_map_voxels": summary.map_voxels,
        "record_seconds": round(record_s, 2),
    }
    result.update(live)
    result["config"] = {
        "rig": config.rig,
        "cameras": list(config.cameras),
        "image_size": list(config.image_size),
        "input_size": list(config.input_size),
        "rate_hz": config.rate_hz,
        "bag_seconds": config.bag_seconds,
        "warmup_s": config.warmup_s,
        "measure_s": config.measure_s,
        "device": device,
        "weights": config.weights,
        "torch_threads": params.torch_threads,
        "map_enabled": params.map_enabled,
        "quick": quick,
    }
    return result

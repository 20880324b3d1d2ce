"""A sim-rig bag and its ``bag run`` output, shared by test_bag.py and test_bag_parity.py
(built once per session by conftest's ``sim_bag_run`` fixture: recording, the bundled model's
load and the run take most of those tests' time)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore

from semanticsplat_ros.data.sim_rig import SimRigConfig
from semanticsplat_ros.pipeline import PipelineConfig, SemanticSplatPipeline
from semanticsplat_ros.ros.bag_run import RunSummary, bag_run
from semanticsplat_ros.ros.bag_sets import load_bag_params
from semanticsplat_ros.ros.bag_sim import record_sim
from semanticsplat_ros.ros.params import NodeParams

NS = 1_000_000_000
START_NS = 1_700_000_000 * NS
SIM_W, SIM_H = 64, 48
SIM_CONFIG = SimRigConfig(cameras=("head_left", "head_right"), width=SIM_W, height=SIM_H)
SIM_SECONDS = 0.3  # 3 sets at the rig's 10 Hz
SIM_NODE_PARAMS = (
    "cameras:=[head_left, head_right]",
    "fixed_frame:=world",
    "input_width:=64",
    "input_height:=48",
    "model_checkpoint:=small",
    "device:=cpu",
    "map_publish_period_s:=0.15",  # map_cloud ticks at +0.15 s (and the final map at +0.2 s)
)
_TS = get_typestore(Stores.ROS2_HUMBLE)


@dataclass(frozen=True)
class SimBagRun:
    """``record_sim`` into ``sim_bag``, then ``bag_run`` into ``out_bag`` with ``pipeline``."""

    sim_bag: Path
    out_bag: Path
    params: NodeParams
    pipeline: SemanticSplatPipeline
    record_counts: dict[str, int]
    summary: RunSummary


def record_and_run(folder: Path) -> SimBagRun:
    sim_bag, out_bag = folder / "sim_bag", folder / "out_bag"
    counts = record_sim(sim_bag, SIM_SECONDS, SIM_CONFIG, start_ns=START_NS)
    params = load_bag_params(None, SIM_NODE_PARAMS)
    pipeline = SemanticSplatPipeline(PipelineConfig.from_parameters(params))
    summary = bag_run(sim_bag, out_bag, params, pipeline)
    return SimBagRun(sim_bag, out_bag, params, pipeline, counts, summary)


def read_depth_images(out_bag: Path) -> dict[tuple[str, int], np.ndarray]:
    """``{(camera, stamp ns): (h, w) float32 metres}`` of every ``.../<camera>/depth`` message;
    ValueError when a message's log time is not its header stamp or it is not 32FC1."""
    depth: dict[tuple[str, int], np.ndarray] = {}
    with Reader(out_bag) as reader:
        for conn, log_ns, raw in reader.messages():
            if not conn.topic.endswith("/depth"):
                continue
            msg = _TS.deserialize_cdr(raw, conn.msgtype)
            stamp = msg.header.stamp.sec * NS + msg.header.stamp.nanosec
            if stamp != log_ns or msg.encoding != "32FC1":
                raise ValueError(f"{conn.topic}: stamp {stamp} log {log_ns} {msg.encoding}")
            camera = conn.topic.split("/")[2]
            image = np.frombuffer(msg.data, np.float32).reshape(msg.height, msg.width)
            depth[(camera, stamp)] = image
    return depth


@dataclass(frozen=True)
class MapCloud:
    """One ``map_cloud`` message of an output bag."""

    log_time_ns: int
    stamp_ns: int
    frame_id: str
    field_names: tuple[str, ...]
    points: int


def read_map_clouds(out_bag: Path, topic: str) -> list[MapCloud]:
    """The ``topic`` (PointCloud2) messages of ``out_bag`` in log-time order."""
    clouds = []
    with Reader(out_bag) as reader:
        connections = [c for c in reader.connections if c.topic == topic]
        for conn, log_ns, raw in reader.messages(connections=connections):
            msg = _TS.deserialize_cdr(raw, conn.msgtype)
            stamp = msg.header.stamp.sec * NS + msg.header.stamp.nanosec
            names = tuple(f.name for f in msg.fields)
            n = msg.width * msg.height
            clouds.append(MapCloud(log_ns, stamp, msg.header.frame_id, names, n))
    return sorted(clouds, key=lambda c: c.log_time_ns)

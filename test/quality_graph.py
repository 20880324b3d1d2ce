"""The sim rig and the node as separate processes, with a probe that records what they publish.

Shared by the quality tests (``test_ros_node_quality.py`` on a moving rig,
``test_ros_node_services_quality.py`` on a still one). The probe keeps every message by stamp, so a
test compares the node's outputs with the ground truth the rig published for the same instant.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
import yaml
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from scipy import ndimage
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from semanticsplat_ros.model.bundled import DEFAULT_MODEL_CHECKPOINT
from semanticsplat_ros.ros.bringup import Graph, node_command, sim_rig_command
from semanticsplat_ros.ros.conversions import (
    camera_info_to_intrinsics,
    image_to_numpy,
    stamp_to_nanoseconds,
)
from semanticsplat_ros.ros.tf_buffer import TfBuffer
from semanticsplat_ros.ros.tf_listener import TfListener

CHECKPOINTS = DEFAULT_MODEL_CHECKPOINT.parent
MODEL = "small_stereo"  # config/bringup.yaml's: the default fine-tuned for this stereo rig
REQUIRED = [
    CHECKPOINTS / n for n in ("semanticsplat_small_stereo.pt", "tiny_sam.pt", "tiny_lseg.pt")
]
CAMERAS = ("head_left", "head_right")
W, H = 128, 96  # sim rig images
IW, IH = 96, 72  # model input (the node default)
CHAIR = 3  # CLASS_NAMES index


def require_checkpoints() -> None:
    """The default checkpoints ship with the package: their absence is a failure, not a skip."""
    missing = [str(p) for p in REQUIRED if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"committed checkpoints missing: {', '.join(missing)}")


def graph_yaml(
    path: Path,
    loop_s: float,
    node: dict[str, Any] | None = None,
    rig: dict[str, Any] | None = None,
) -> Path:
    """Parameters of both nodes: the bundled stereo model on the still or moving stereo rig,
    with ``node`` and ``rig`` overriding or adding entries (None removes one). ``loop_s`` > 0 replays that many
    seconds of the trajectory; one tick's worth (``1 / rate_hz``) replays a single frame: a rig
    that holds still."""
    node_params: dict[str, Any] = {
        "cameras": list(CAMERAS),
        "fixed_frame": "world",
        "model_checkpoint": MODEL,
        "device": "auto",
        "input_width": IW,
        "input_height": IH,
        "cloud_stride": 1,
        "min_opacity": 0.0,
        "diagnostics_period_s": 0.5,
        **(node or {}),
    }
    rig_params: dict[str, Any] = {
        "rig": "stereo",
        "cameras": list(CAMERAS),
        "scene_seed": 200005,  # a hold-out scene with a dining set (chairs in view from the start)
        "rate_hz": 10.0,
        "width": W,
        "height": H,
        "loop_s": loop_s,
        **(rig or {}),
    }
    graph = {
        f"/**/{name}": {"ros__parameters": {k: v for k, v in params.items() if v is not None}}
        for name, params in (("semanticsplat_node", node_params), ("sim_rig", rig_params))
    }
    path.write_text(yaml.safe_dump(graph, sort_keys=False))
    return path


@dataclass
class Live:
    """The running graph and what the probe has received, keyed by topic and stamp (ns)."""

    node: Node
    executor: SingleThreadedExecutor
    by_stamp: dict[str, dict[int, Any]]
    tf: TfBuffer
    graph: Graph
    log_path: Path

    def complete_stamps(self) -> list[int]:
        """Stamps for which every recorded topic, cloud included, has a message."""
        common = set(self.by_stamp["cloud"])
        for key, msgs in self.by_stamp.items():
            if key != "cloud":
                common &= set(msgs)
        return sorted(common)

    def spin_for(self, pred: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not pred():
            assert not self.graph.exited(), self.log_path.read_text()[-3000:]
            self.executor.spin_once(timeout_sec=0.05)
        return pred()

    def frame(self, stamp: int) -> dict[str, dict[str, Any]]:
        """Per camera: the node's depth / labels, the rig's truth, image, K and camera-to-world."""
        out = {}
        for c in CAMERAS:
            b = self.by_stamp
            out[c] = {
                "depth": image_to_numpy(b[f"depth/{c}"][stamp]),
                "labels": image_to_numpy(b[f"labels/{c}"][stamp]),
                "gt_depth": image_to_numpy(b[f"gt_depth/{c}"][stamp]),
                "gt_labels": image_to_numpy(b[f"gt_labels/{c}"][stamp]),
                "image": image_to_numpy(b[f"image/{c}"][stamp]),
                "K": camera_info_to_intrinsics(b[f"info/{c}"][stamp]).K,
                "c2w": self.tf.lookup("world", f"{c}_optical_frame", stamp * 1e-9),
            }
        return out

    def call(self, client: Any, request: Any, timeout: float = 120.0) -> Any:
        assert client.wait_for_service(timeout_sec=timeout)
        future = client.call_async(request)
        assert self.spin_for(future.done, timeout)
        return future.result()


def _listen(node: Node, by_stamp: dict[str, dict[int, Any]], msg_type: Any, topic: str, key: str):
    by_stamp[key] = {}
    qos = QoSProfile(depth=30, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(
        msg_type,
        topic,
        lambda m: by_stamp[key].__setitem__(stamp_to_nanoseconds(m.header.stamp), m),
        qos,
    )


@contextmanager
def running_graph(
    tmp: Path,
    *,
    loop_s: float,
    frames: int,
    params_yaml: Callable[[Path, float], Path] | None = None,
) -> Iterator[Live]:
    """Start the rig and the node, wait for ``frames`` complete stamps, stop both on exit.

    ``params_yaml(path, loop_s)`` writes the parameters file (default ``graph_yaml``: the bundled
    model's quality settings)."""
    if params_yaml is None:
        require_checkpoints()
    params = (params_yaml or graph_yaml)(tmp / "graph.yaml", loop_s)
    log_path = tmp / "nodes.log"
    log = log_path.open("w")
    graph = Graph(
        {"semanticsplat_node": node_command(params), "sim_rig": sim_rig_command(params)},
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    graph.start()
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("quality_probe", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    by_stamp: dict[str, dict[int, Any]] = {}
    for c in CAMERAS:
        _listen(node, by_stamp, Image, f"/semanticsplat_node/{c}/depth", f"depth/{c}")
        _listen(node, by_stamp, Image, f"/semanticsplat_node/{c}/labels", f"labels/{c}")
        _listen(node, by_stamp, Image, f"/sim_rig/{c}/gt_depth", f"gt_depth/{c}")
        _listen(node, by_stamp, Image, f"/sim_rig/{c}/gt_labels", f"gt_labels/{c}")
        _listen(node, by_stamp, Image, f"/{c}/image_raw", f"image/{c}")
        _listen(node, by_stamp, CameraInfo, f"/{c}/camera_info", f"info/{c}")
    _listen(node, by_stamp, PointCloud2, "/semanticsplat_node/semantic_cloud", "cloud")
    tf = TfBuffer(cache_duration=60.0)
    TfListener(node, tf)
    live = Live(node, executor, by_stamp, tf, graph, log_path)
    try:
        assert live.spin_for(lambda: len(live.complete_stamps()) >= frames, 600.0), (
            "no complete frames"
        )
        yield live
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        graph.stop(signal.SIGTERM, 30.0)
        log.close()


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def chair_pixel_at(live: Live, stamp: int) -> tuple[int, int] | None:
    """(u, v) inside the largest chair region of the left camera at ``stamp``, or None."""
    gt = image_to_numpy(live.by_stamp["gt_labels/head_left"][stamp])
    regions, n = ndimage.label(gt == CHAIR)
    if n == 0:
        return None
    sizes = ndimage.sum(np.ones_like(gt), regions, range(1, n + 1))
    k = int(np.argmax(sizes)) + 1
    if sizes[k - 1] < 0.01 * gt.size:
        return None
    dist = ndimage.distance_transform_edt(regions == k)
    v, u = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(u), int(v)

"""``semanticsplat demo``: the whole product on the embedded synthetic world -> ``out/demo/``.

    semanticsplat demo --out out/demo                       # the trained model (make demo)
    semanticsplat demo --out /tmp/demo --random-weights     # plumbing only, no checkpoint

What it does, with a progress line per step on stderr:

1. Starts the graph of ``semanticsplat bringup`` (``sim_rig`` with the stereo pair
   ``head_left``/``head_right`` + ``semanticsplat_node``, from ``config/bringup.yaml`` with a few
   overrides) as subprocesses through ``ros.bringup.Graph``, on a private ``ROS_DOMAIN_ID`` with
   ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``.
2. An in-process rclpy client subscribes to the rig's images, camera_info, TF and ground truth
   (``/sim_rig/<camera>/gt_depth``, ``gt_labels``), to the node's depth, labels, semantic cloud
   and Gaussians, and to ``/diagnostics``, and waits for the first *complete* scene: one stamp
   for which every one of those arrived (a timeout names what never did). The graph then runs
   ``--seconds`` longer for rate and latency statistics.
3. Calls ``~/segment_point`` (pixel form on an object of ``head_left`` chosen from the ground
   truth; 3D form at a point of the semantic cloud) and ``~/query_text`` (chair, table, couch,
   bed), timing each round trip; then stops the graph with SIGTERM (always, also on failure).
4. Re-encodes the same frames (same pixels, intrinsics and TF poses) with the pipeline in this
   process, because the node does not publish its feature fields, for the PCA figures and the
   PLY. With ``--random-weights`` this is a differently initialised network than the node's.
5. Writes figures, ``scene.ply``, ``summary.json`` (latencies, depth error and label agreement
   against the ground truth, IoU of each text query with its ground-truth class, cloud size) and
   ``index.md`` (every file with a caption), and prints the summary.

Exit code 0 on success, 1 with a one-line message on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import re
import signal
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semanticsplat_ros.data.classes import CLASS_ID
from semanticsplat_ros.ros.bringup import (
    SIM_RIG_NAME,
    Graph,
    default_params_file,
    node_command,
    sim_rig_command,
)
from semanticsplat_ros.ros.params import NODE_NAME, load_params_file, read_params_file
from semanticsplat_ros.visualize import RANDOM_WEIGHTS_HINT, RANDOM_WEIGHTS_LABEL

QUERIES: tuple[str, ...] = ("chair", "table", "couch", "bed")
"""Text queries sent to ``~/query_text``."""

QUERY_CLASSES: dict[str, str] = {"couch": "sofa", "sofa": "sofa", "desk": "table"}
"""Ground-truth class of a query text that is not a class name itself."""

PROMPT_CLASSES: tuple[str, ...] = ("chair", "table", "sofa", "bed", "others")
"""Classes tried, in order, for the pixel prompt (the first with enough pixels wins)."""

LEVELS: tuple[str, ...] = ("small", "medium", "large")
UNKNOWN_LABEL = 255
"""``gt_labels`` value of pixels with no class (sim_rig)."""
HISTORY = 300
"""Messages kept per topic, so outputs can be matched to the rig frame with their stamp."""


class DemoError(RuntimeError):
    """A failure reported as one line (the graph did not start, an output never arrived...)."""


# --------------------------------------------------------------------------------------------
# Pure helpers (tested without ROS)
# --------------------------------------------------------------------------------------------


def query_class(text: str) -> str | None:
    """Ground-truth class name of a query text, or None if it names no class."""
    t = text.strip().lower()
    if t in CLASS_ID:
        return t
    return QUERY_CLASSES.get(t)


def safe_name(text: str) -> str:
    """A file-name token for a query text ("dining table" -> ``dining_table``)."""
    token = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return token or "query"


def interior_pixel(mask: np.ndarray) -> tuple[int, int]:
    """(row, col) of a pixel deep inside ``mask`` (the last pixels left by repeated 4-erosion,
    the one nearest their centroid). ValueError for an empty mask."""
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2 or not m.any():
        raise ValueError("interior_pixel needs a non-empty 2-D mask")
    while True:
        p = np.pad(m, 1, constant_values=False)
        eroded = m & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
        if not eroded.any():
            break
        m = eroded
    rows, cols = np.nonzero(m)
    k = int(np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2))
    return int(rows[k]), int(cols[k])


def pick_prompt_pixel(gt_labels: np.ndarray, min_fraction: float = 0.003) -> tuple[int, int, str]:
    """(row, col, class) of a pixel on an object: the first class of ``PROMPT_CLASSES`` that
    covers at least ``min_fraction`` of the image, else the image centre ("none")."""
    lab = np.asarray(gt_labels)
    for name in PROMPT_CLASSES:
        mask = lab == CLASS_ID[name]
        if mask.sum() >= max(1, min_fraction * lab.size):
            r, c = interior_pixel(mask)
            return r, c, name
    return lab.shape[0] // 2, lab.shape[1] // 2, "none"


def depth_abs_rel(pred: np.ndarray, gt: np.ndarray) -> float:
    """Median |pred - gt| / gt over pixels with a valid ground truth and prediction (NaN if
    there are none)."""
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    if p.shape != g.shape:
        raise ValueError(f"depth shapes differ: predicted {p.shape}, ground truth {g.shape}")
    valid = np.isfinite(p) & np.isfinite(g) & (g > 0) & (p > 0)
    if not valid.any():
        return float("nan")
    return float(np.median(np.abs(p[valid] - g[valid]) / g[valid]))


def label_agreement(pred: np.ndarray, gt: np.ndarray, unknown: int = UNKNOWN_LABEL) -> float:
    """Fraction of pixels with a known ground-truth class whose predicted class equals it."""
    p, g = np.asarray(pred), np.asarray(gt)
    if p.shape != g.shape:
        raise ValueError(f"label shapes differ: predicted {p.shape}, ground truth {g.shape}")
    known = g != unknown
    if not known.any():
        return float("nan")
    return float((p[known].astype(np.int64) == g[known].astype(np.int64)).mean())


def mask_iou(pred: Mapping[str, np.ndarray], gt: Mapping[str, np.ndarray]) -> float:
    """IoU of predicted and ground-truth masks pooled over the cameras both have (NaN when
    both are empty)."""
    inter = union = 0
    for cam, p in pred.items():
        if cam not in gt:
            continue
        pm, gm = np.asarray(p, dtype=bool), np.asarray(gt[cam], dtype=bool)
        if pm.shape != gm.shape:
            raise ValueError(f"camera {cam!r}: mask shapes differ: {pm.shape} vs {gm.shape}")
        inter += int((pm & gm).sum())
        union += int((pm | gm).sum())
    return inter / union if union else float("nan")


def _finite_or_none(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


# --------------------------------------------------------------------------------------------
# What the ROS part collects (plain numpy, no messages)
# --------------------------------------------------------------------------------------------


@dataclass
class SegmentOut:
    """One Segment of a service response."""

    label: str
    score: float
    masks: dict[str, np.ndarray]
    """Camera -> (H, W) bool."""
    stamps: dict[str, int]
    """Camera -> stamp (ns) of the image the mask belongs to."""
    num_points: int


@dataclass
class CallOut:
    """One service round trip."""

    name: str
    success: bool
    message: str
    seconds: float
    segments: list[SegmentOut] = field(default_factory=list)
    request: dict[str, Any] = field(default_factory=dict)


@dataclass
class Collected:
    """Everything the demo took from the running graph."""

    cameras: list[str]
    stamp_ns: int
    """Stamp of the first complete scene."""
    first_output_s: float
    """Seconds from starting the graph to the first complete scene."""
    images: dict[str, np.ndarray]
    K: dict[str, np.ndarray]
    c2w: dict[str, np.ndarray]
    depth: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    gt_depth: dict[str, np.ndarray]
    gt_labels: dict[str, np.ndarray]
    cloud_points: int
    gaussians: int
    diagnostics: dict[str, str]
    calls: list[CallOut]
    prompt: tuple[int, int, str]
    """(row, col, class) of the pixel prompt in the first camera."""
    frames_at: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    """(camera, stamp) -> rig image, for the stamps the service masks refer to."""
    gt_labels_at: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)
    exit_codes: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# The graph and the rclpy client
# --------------------------------------------------------------------------------------------


class Progress:
    """Progress lines on stderr: ``[demo   12.3s] message``."""

    def __init__(self, stream: Any = None) -> None:
        self.start = time.monotonic()
        self.stream = stream or sys.stderr

    def __call__(self, message: str) -> None:
        self.stream.write(f"[demo {time.monotonic() - self.start:7.1f}s] {message}\n")
        self.stream.flush()


def node_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Parameters of ``semanticsplat_node`` set on top of the params file."""
    params: dict[str, Any] = {
        "random_weights": bool(args.random_weights),
        "device": args.device,
        "input_width": args.input_width,
        "input_height": args.input_height,
        "publish_gaussians": True,
        "diagnostics_period_s": 0.5,
    }
    if args.checkpoint:
        from semanticsplat_ros.pipeline import resolve_model_checkpoint

        params["model_checkpoint"] = str(resolve_model_checkpoint(args.checkpoint).resolve())
    return params


def rig_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Parameters of ``sim_rig`` set on top of the params file."""
    return {
        "width": args.width,
        "height": args.height,
        "scene_seed": args.seed,
        "rate_hz": float(args.rate_hz),
        # Held still (one pre-rendered frame replayed with fresh stamps) unless --moving: the
        # figures then do not depend on which frame the node happened to take.
        "loop_s": 0.0 if args.moving else 1.0 / float(args.rate_hz),
    }


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration (this process's DDS participant reads them)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _collect(
    args: argparse.Namespace,
    cameras: list[str],
    fixed_frame: str,
    graph: Graph,
    domain_id: int,
    log_path: Path,
    progress: Progress,
) -> Collected:
    """Run the client against the started graph (see the module docstring, steps 2-3)."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PointStamped
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2
    from tf2_msgs.msg import TFMessage

    from semanticsplat_msgs.srv import QueryText, SegmentPoint
    from semanticsplat_ros.ros.conversions import (
        camera_info_to_intrinsics,
        cloud_to_semantic,
        image_to_numpy,
        image_to_rgb8,
        make_header,
        stamp_to_nanoseconds,
        transform_msg_to_matrix,
    )

    node_ns, rig_ns = f"/{NODE_NAME}", f"/{SIM_RIG_NAME}"
    topics: dict[str, tuple[type, str]] = {}
    for c in cameras:
        topics[f"image/{c}"] = (Image, f"/{c}/image_raw")
        topics[f"camera_info/{c}"] = (CameraInfo, f"/{c}/camera_info")
        topics[f"gt_depth/{c}"] = (Image, f"{rig_ns}/{c}/gt_depth")
        topics[f"gt_labels/{c}"] = (Image, f"{rig_ns}/{c}/gt_labels")
        topics[f"depth/{c}"] = (Image, f"{node_ns}/{c}/depth")
        topics[f"labels/{c}"] = (Image, f"{node_ns}/{c}/labels")
    topics["semantic_cloud"] = (PointCloud2, f"{node_ns}/semantic_cloud")
    topics["gaussians"] = (PointCloud2, f"{node_ns}/gaussians")

    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    node = rclpy.create_node("semanticsplat_demo", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    history: dict[str, OrderedDict[int, Any]] = {k: OrderedDict() for k in topics}
    tf_dynamic: OrderedDict[int, dict[str, tuple[str, np.ndarray]]] = OrderedDict()
    tf_static: dict[str, tuple[str, np.ndarray]] = {}
    diagnostics: dict[str, str] = {}

    def keep(key: str) -> Callable[[Any], None]:
        def on_message(msg: Any) -> None:
            store = history[key]
            store[stamp_to_nanoseconds(msg.header.stamp)] = msg
            while len(store) > HISTORY:
                store.popitem(last=False)

        return on_message

    def on_tf(msg: Any, static: bool) -> None:
        for ts in msg.transforms:
            entry = (ts.header.frame_id, transform_msg_to_matrix(ts.transform))
            if static:
                tf_static[ts.child_frame_id] = entry
            else:
                stamp = stamp_to_nanoseconds(ts.header.stamp)
                tf_dynamic.setdefault(stamp, {})[ts.child_frame_id] = entry
                while len(tf_dynamic) > HISTORY:
                    tf_dynamic.popitem(last=False)

    def on_diagnostics(msg: Any) -> None:
        for status in msg.status:
            if status.name.startswith(NODE_NAME):
                diagnostics.clear()
                diagnostics.update({kv.key: kv.value for kv in status.values})
                diagnostics["_message"] = status.message

    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    for key, (msg_type, topic) in topics.items():
        node.create_subscription(msg_type, topic, keep(key), qos)
    node.create_subscription(TFMessage, "/tf", lambda m: on_tf(m, False), 100)
    static_qos = QoSProfile(
        depth=10,
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )
    node.create_subscription(TFMessage, "/tf_static", lambda m: on_tf(m, True), static_qos)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 20)
    segment_client = node.create_client(SegmentPoint, f"{node_ns}/segment_point")
    query_client = node.create_client(QueryText, f"{node_ns}/query_text")

    def pose_at(frame: str, stamp: int) -> np.ndarray | None:
        """T_fixed_frame (4x4) at ``stamp`` from the recorded TF, or None."""
        T = np.eye(4)
        for _ in range(8):
            if frame == fixed_frame:
                return T
            entry = tf_dynamic.get(stamp, {}).get(frame) or tf_static.get(frame)
            if entry is None:
                return None
            parent, T_parent_frame = entry
            T = T_parent_frame @ T
            frame = parent
        return None

    def complete(stamp: int) -> bool:
        if not all(stamp in history[k] for k in topics):
            return False
        return all(
            pose_at(history[f"image/{c}"][stamp].header.frame_id, stamp) is not None
            for c in cameras
        )

    def newest_complete() -> int | None:
        for stamp in reversed(history["semantic_cloud"]):
            if complete(stamp):
                return stamp
        return None

    def spin_for(seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            check_graph()
            executor.spin_once(timeout_sec=0.05)

    def check_graph() -> None:
        exited = graph.exited()
        if exited:
            name, code = next(iter(exited.items()))
            raise DemoError(f"{name} exited with code {code} (see {log_path})")

    def call(client: Any, request: Any, timeout: float) -> tuple[Any, float]:
        if not client.wait_for_service(timeout_sec=min(timeout, 30.0)):
            raise DemoError(f"service {client.srv_name} is not available")
        started = time.perf_counter()
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done() and time.monotonic() < deadline:
            check_graph()
            executor.spin_once(timeout_sec=0.01)
        if not future.done():
            raise DemoError(f"service {client.srv_name} did not answer within {timeout:.0f} s")
        return future.result(), time.perf_counter() - started

    def segments_of(response: Any) -> list[SegmentOut]:
        out = []
        for seg in response.segments:
            masks, stamps = {}, {}
            for cam, m in zip(seg.camera_names, seg.masks, strict=True):
                masks[cam] = image_to_numpy(m) > 0
                stamps[cam] = stamp_to_nanoseconds(m.header.stamp)
            n = int(seg.points.width) * int(seg.points.height)
            out.append(SegmentOut(seg.label, float(seg.score), masks, stamps, n))
        return out

    try:
        started = time.monotonic()
        progress(f"waiting for the first complete scene (timeout {args.timeout:.0f} s)")
        stamp: int | None = None
        next_report = time.monotonic() + 10.0
        while stamp is None:
            check_graph()
            if time.monotonic() - started > args.timeout:
                missing = [topics[k][1] for k in topics if not history[k]]
                if not tf_static and not tf_dynamic:
                    missing.append("/tf")
                what = (
                    f"nothing on {', '.join(missing)}"
                    if missing
                    else "no stamp with every output, its rig frame, ground truth and TF"
                )
                raise DemoError(f"no complete scene within {args.timeout:g} s: {what}")
            if time.monotonic() >= next_report:
                got = sum(1 for k in topics if history[k])
                diag = diagnostics.get("_message", "no diagnostics yet")
                progress(f"  ... {got}/{len(topics)} topics have data; node: {diag}")
                next_report = time.monotonic() + 10.0
            executor.spin_once(timeout_sec=0.05)
            if history["semantic_cloud"]:
                stamp = newest_complete()
        first_output_s = time.monotonic() - started
        progress(f"first complete scene after {first_output_s:.1f} s (stamp {stamp * 1e-9:.3f})")
        if args.seconds > 0:
            progress(f"running {args.seconds:.1f} s more for rate and latency statistics")
            spin_for(args.seconds)

        first = cameras[0]
        gt_first = image_to_numpy(history[f"gt_labels/{first}"][stamp])
        row, col, cls = pick_prompt_pixel(gt_first)
        calls: list[CallOut] = []
        request = SegmentPoint.Request(
            prompt_type=SegmentPoint.Request.PIXEL, camera_name=first, u=float(col), v=float(row)
        )
        progress(f"calling ~/segment_point at pixel ({col}, {row}) of {first} ({cls})")
        res, dt = call(segment_client, request, args.call_timeout)
        calls.append(
            CallOut(
                "segment_point_pixel",
                res.success,
                res.message,
                dt,
                segments_of(res) if res.success else [],
                {"camera": first, "u": col, "v": row, "gt_class": cls},
            )
        )
        progress(f"  {'ok' if res.success else 'FAILED'} in {dt * 1e3:.0f} ms: {res.message}")

        cloud_msg = next(reversed(history["semantic_cloud"].values()))
        cloud = cloud_to_semantic(cloud_msg)
        point_req: dict[str, Any] = {}
        if len(cloud.xyz):
            pick = cloud.labels == CLASS_ID.get(cls, -1)
            xyz = cloud.xyz[pick] if pick.any() else cloud.xyz
            k = int(np.argmin(np.linalg.norm(xyz - np.median(xyz, axis=0), axis=1)))
            p = [float(x) for x in xyz[k]]
            point = PointStamped(header=make_header(fixed_frame))
            point.point.x, point.point.y, point.point.z = p
            request = SegmentPoint.Request(prompt_type=SegmentPoint.Request.POINT, point=point)
            point_req = {"frame_id": fixed_frame, "point": p}
            progress(f"calling ~/segment_point at 3D point ({p[0]:.2f}, {p[1]:.2f}, {p[2]:.2f})")
            res, dt = call(segment_client, request, args.call_timeout)
            calls.append(
                CallOut(
                    "segment_point_3d",
                    res.success,
                    res.message,
                    dt,
                    segments_of(res) if res.success else [],
                    point_req,
                )
            )
            progress(f"  {'ok' if res.success else 'failed'} in {dt * 1e3:.0f} ms: {res.message}")

        progress(f"calling ~/query_text {list(QUERIES)}")
        res, dt = call(query_client, QueryText.Request(texts=list(QUERIES)), args.call_timeout)
        calls.append(
            CallOut(
                "query_text",
                res.success,
                res.message,
                dt,
                segments_of(res) if res.success else [],
                {"texts": list(QUERIES)},
            )
        )
        progress(f"  {'ok' if res.success else 'FAILED'} in {dt * 1e3:.0f} ms: {res.message}")
        spin_for(0.3)  # the rig frames the masks refer to may still be in flight

        def at(key: str, s: int) -> Any:
            return history[key][s]

        images = {c: image_to_rgb8(at(f"image/{c}", stamp)) for c in cameras}
        K = {
            c: camera_info_to_intrinsics(at(f"camera_info/{c}", stamp)).K.astype(np.float64)
            for c in cameras
        }
        c2w = {}
        for c in cameras:
            T = pose_at(at(f"image/{c}", stamp).header.frame_id, stamp)
            if T is None:  # complete() checked it; TF history may have rolled over since
                raise DemoError(f"lost the TF of camera {c!r} at the scene's stamp")
            c2w[c] = T
        frames_at: dict[tuple[str, int], np.ndarray] = {}
        gt_at: dict[tuple[str, int], np.ndarray] = {}
        for out in calls:
            for seg in out.segments:
                for cam, s in seg.stamps.items():
                    if s in history.get(f"image/{cam}", {}):
                        frames_at[(cam, s)] = image_to_rgb8(history[f"image/{cam}"][s])
                    if s in history.get(f"gt_labels/{cam}", {}):
                        gt_at[(cam, s)] = image_to_numpy(history[f"gt_labels/{cam}"][s])
        return Collected(
            cameras=cameras,
            stamp_ns=stamp,
            first_output_s=first_output_s,
            images=images,
            K=K,
            c2w=c2w,
            depth={c: image_to_numpy(at(f"depth/{c}", stamp)) for c in cameras},
            labels={c: image_to_numpy(at(f"labels/{c}", stamp)) for c in cameras},
            gt_depth={c: image_to_numpy(at(f"gt_depth/{c}", stamp)) for c in cameras},
            gt_labels={c: image_to_numpy(at(f"gt_labels/{c}", stamp)) for c in cameras},
            cloud_points=int(cloud_msg.width) * int(cloud_msg.height),
            gaussians=int(at("gaussians", stamp).width) * int(at("gaussians", stamp).height),
            diagnostics=dict(diagnostics),
            calls=calls,
            prompt=(row, col, cls),
            frames_at=frames_at,
            gt_labels_at=gt_at,
        )
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def run_graph(args: argparse.Namespace, out: Path, progress: Progress) -> tuple[Collected, Any]:
    """Start the graph, collect, stop it (always). Returns what was collected and the node's
    parameters (``NodeParams``)."""
    params_file = Path(args.params_file) if args.params_file else default_params_file()
    node_cfg = load_params_file(params_file)
    # Sizes not given on the command line are the params file's.
    rig_cfg = read_params_file(params_file, node_name=SIM_RIG_NAME)
    args.width = args.width or int(rig_cfg.get("width", 256))
    args.height = args.height or int(rig_cfg.get("height", 192))
    args.input_width = args.input_width or node_cfg.input_width
    args.input_height = args.input_height or node_cfg.input_height
    _check_sizes(args)
    node_params = node_overrides(args)
    cameras = list(node_cfg.camera_names)
    domain_id = args.domain_id if args.domain_id is not None else random.randint(1, 100)
    env = {
        "ROS_DOMAIN_ID": str(domain_id),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "FASTDDS_BUILTIN_TRANSPORTS": os.environ.get("FASTDDS_BUILTIN_TRANSPORTS", "LARGE_DATA"),
        "PYTHONUNBUFFERED": "1",
    }
    commands = {
        NODE_NAME: node_command(params_file, parameters=node_params),
        SIM_RIG_NAME: sim_rig_command(params_file, parameters=rig_overrides(args)),
    }
    log_path = out / "graph.log"
    with log_path.open("w") as log, _environment(env):
        graph = Graph(commands, env={**os.environ, **env}, stdout=log, stderr=log)
        progress(
            f"starting {SIM_RIG_NAME} (stereo {args.width}x{args.height} at {args.rate_hz} Hz,"
            f" scene {args.seed}) + {NODE_NAME} (input {args.input_width}x{args.input_height},"
            f" {'RANDOM WEIGHTS' if args.random_weights else 'trained model'}) on ROS_DOMAIN_ID"
            f" {domain_id}; log: {log_path}"
        )
        graph.start()
        collected: Collected | None = None
        try:
            collected = _collect(
                args, cameras, node_cfg.fixed_frame, graph, domain_id, log_path, progress
            )
        finally:
            progress("stopping the graph (SIGTERM)")
            codes = graph.stop(signal.SIGTERM, timeout=20.0)
        if collected is not None:
            collected.exit_codes = codes
            bad = {n: c for n, c in codes.items() if c != 0}
            if bad:
                progress(f"warning: nodes exited with {bad} (see {log_path})")
    if collected is None:  # unreachable: _collect returned or raised
        raise DemoError("the graph produced nothing")
    return collected, node_cfg


# --------------------------------------------------------------------------------------------
# Figures, PLY, summary
# --------------------------------------------------------------------------------------------


class Writer:
    """Writes the output files and remembers a caption per file for index.md."""

    def __init__(self, out: Path, random_weights: bool) -> None:
        self.out = out
        self.random_weights = random_weights
        self.captions: dict[str, str] = {}

    def png(self, name: str, image: np.ndarray, caption: str, stamp: bool = True) -> None:
        """Save a figure; with random weights, ``stamp`` writes the label over its top rows
        (figures with a title carry the label in the title instead). The PNG text chunk
        ``Comment`` carries it in every file."""
        from semanticsplat_ros.visualize import banner, save_png

        meta = {"Software": "semanticsplat demo", "Description": caption}
        if self.random_weights:
            meta["Comment"] = RANDOM_WEIGHTS_LABEL
            if stamp:
                image = banner(image, RANDOM_WEIGHTS_LABEL)
        save_png(self.out / name, image, meta)
        self.captions[name] = caption

    def note(self, name: str, caption: str) -> None:
        self.captions[name] = caption


def _resize_nearest(image: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image

    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.NEAREST))


def write_outputs(
    args: argparse.Namespace, out: Path, c: Collected, node_cfg: Any, progress: Progress
) -> dict[str, Any]:
    """Steps 4-5: in-process encode, figures, PLY, summary.json, index.md. Returns the summary."""
    from semanticsplat_ros.export import export_scene_ply
    from semanticsplat_ros.pipeline import CameraFrame, PipelineConfig, SemanticSplatPipeline
    from semanticsplat_ros.visualize import (
        depth_range,
        depth_to_rgb,
        draw_marker,
        image_grid,
        legend_strip,
        overlay_labels,
        overlay_mask,
        pca_rgb,
    )

    w = Writer(out, args.random_weights)
    rw = " (random weights)" if args.random_weights else ""
    rw_title = f" - {RANDOM_WEIGHTS_LABEL}" if args.random_weights else ""
    cams = c.cameras
    stamp_s = c.stamp_ns * 1e-9
    depth_err = {cam: depth_abs_rel(c.depth[cam], c.gt_depth[cam]) for cam in cams}
    depth_err["all"] = depth_abs_rel(
        np.concatenate([c.depth[cam].ravel() for cam in cams]),
        np.concatenate([c.gt_depth[cam].ravel() for cam in cams]),
    )
    agree = {cam: label_agreement(c.labels[cam], c.gt_labels[cam]) for cam in cams}
    agree["all"] = label_agreement(
        np.concatenate([c.labels[cam].ravel() for cam in cams]),
        np.concatenate([c.gt_labels[cam].ravel() for cam in cams]),
    )

    # Per camera: inputs, ground truth, published outputs.
    for cam in cams:
        near, far = depth_range(c.gt_depth[cam])
        w.png(
            f"rgb_{cam}.png", c.images[cam], f"{cam}: the rig image (stamp {stamp_s:.3f} s)", False
        )
        w.png(
            f"depth_{cam}.png",
            depth_to_rgb(c.depth[cam], near, far),
            f"{cam}: published depth ~/{cam}/depth (turbo, {near:.1f}-{far:.1f} m, near = red);"
            f" median abs rel {depth_err[cam]:.3f}{rw}",
        )
        w.png(
            f"gt_depth_{cam}.png",
            depth_to_rgb(c.gt_depth[cam], near, far),
            f"{cam}: ground-truth depth from sim_rig, same colour scale",
            False,
        )
        w.png(
            f"labels_{cam}.png",
            overlay_labels(c.images[cam], c.labels[cam], 0.55),
            f"{cam}: published labels ~/{cam}/labels over the image; agreement with ground truth"
            f" {agree[cam]:.1%}{rw}",
        )
        w.png(
            f"gt_labels_{cam}.png",
            overlay_labels(c.images[cam], c.gt_labels[cam].astype(np.int64), 0.55),
            f"{cam}: ground-truth labels from sim_rig",
            False,
        )

    # Services.
    calls = {call.name: call for call in c.calls}
    row, col, cls = c.prompt

    def frame_for(cam: str, stamp: int) -> np.ndarray:
        return c.frames_at.get((cam, stamp), c.images[cam])

    def segment_tiles(seg: SegmentOut, marker: tuple[str, float, float] | None) -> list:
        tiles = []
        for cam in cams:
            if cam not in seg.masks:
                tiles.append(None)
                continue
            img = overlay_mask(frame_for(cam, seg.stamps[cam]), seg.masks[cam], dim_outside=0.3)
            if marker is not None and marker[0] == cam:
                img = draw_marker(img, marker[1], marker[2])
            tiles.append(img)
        return tiles

    prompt_summary: dict[str, Any] = {}
    for name, prefix, marker in (
        ("segment_point_pixel", "point_prompt", (cams[0], float(col), float(row))),
        ("segment_point_3d", "point3d_prompt", None),
    ):
        call = calls.get(name)
        if call is None:
            continue
        entry: dict[str, Any] = {
            "request": call.request,
            "success": call.success,
            "message": call.message,
            "round_trip_s": call.seconds,
            "levels": [],
        }
        for seg in call.segments:
            entry["levels"].append(
                {
                    "level": seg.label,
                    "score": seg.score,
                    "pixels": {cam: int(m.sum()) for cam, m in seg.masks.items()},
                    "points": seg.num_points,
                }
            )
            caption = [
                f"{cam}: {int(seg.masks[cam].sum())} px" if cam in seg.masks else cam
                for cam in cams
            ]
            form = (
                f"pixel ({col}, {row}) of {cams[0]} (a {cls} pixel in the ground truth)"
                if marker
                else "3D point ({:.2f}, {:.2f}, {:.2f}) in {}".format(
                    *call.request.get("point", [math.nan] * 3), call.request.get("frame_id")
                )
            )
            grid = image_grid(
                [segment_tiles(seg, marker)],
                captions=[caption],
                title=f"~/segment_point {seg.label} mask, score {seg.score:.2f}{rw_title}",
            )
            w.png(
                f"{prefix}_{seg.label}.png",
                grid,
                f"~/segment_point at {form}: the {seg.label} mask in every camera (score"
                f" {seg.score:.2f}, {seg.num_points} 3D points){rw}",
                stamp=False,
            )
        prompt_summary[name] = entry

    query_summary: dict[str, Any] = {}
    qcall = calls.get("query_text")
    if qcall is not None:
        for seg in qcall.segments:
            gt_name = query_class(seg.label)
            gt_masks: dict[str, np.ndarray] = {}
            if gt_name is not None:
                for cam in seg.masks:
                    gt = c.gt_labels_at.get((cam, seg.stamps[cam]))
                    if gt is not None and gt.shape == seg.masks[cam].shape:
                        gt_masks[cam] = gt == CLASS_ID[gt_name]
            iou = mask_iou(seg.masks, gt_masks) if gt_masks else float("nan")
            query_summary[seg.label] = {
                "gt_class": gt_name,
                "score": seg.score,
                "iou": _finite_or_none(iou),
                "pixels": {cam: int(m.sum()) for cam, m in seg.masks.items()},
                "points": seg.num_points,
            }
            rows = [segment_tiles(seg, None)]
            titles = ["answer"]
            if gt_masks:
                rows.append(
                    [
                        overlay_mask(
                            frame_for(cam, seg.stamps[cam]),
                            gt_masks[cam],
                            color=(40, 200, 40),
                            dim_outside=0.3,
                        )
                        if cam in gt_masks
                        else None
                        for cam in cams
                    ]
                )
                titles.append(f"gt {gt_name}")
            grid = image_grid(
                rows,
                captions=[list(cams)] + [[] for _ in rows[1:]],
                row_titles=titles,
                title=f'~/query_text "{seg.label}": score {seg.score:.2f}, IoU vs {gt_name}:'
                f" {iou:.2f}{rw_title}",
            )
            w.png(
                f"query_{safe_name(seg.label)}.png",
                grid,
                f'~/query_text "{seg.label}": answer masks (red) and the ground-truth'
                f" {gt_name} masks (green); IoU {iou:.2f}{rw}",
                stamp=False,
            )

    # In-process encode of the same frames: feature PCA and the PLY.
    progress("encoding the same frames in-process (feature PCA, PLY)")
    pipeline = SemanticSplatPipeline(
        PipelineConfig(
            model_checkpoint=str(args.checkpoint or ""),
            device=args.device,
            input_width=args.input_width,
            input_height=args.input_height,
            near=node_cfg.near,
            far=node_cfg.far,
            classes=tuple(node_cfg.classes),
            random_weights=args.random_weights,
        )
    )
    frames = [CameraFrame(cam, c.images[cam], c.K[cam], c.c2w[cam], stamp_s) for cam in cams]
    scene = pipeline.encode(frames)
    for key, field_name, what in (
        ("seg", "seg_embeddings", "segmentation"),
        ("lang", "language", "language"),
    ):
        tiles = [
            _resize_nearest(t, args.height, args.width) for t in pca_rgb(getattr(scene, field_name))
        ]
        w.png(
            f"pca_{key}.png",
            image_grid([tiles], captions=[list(cams)], title=f"{what} field PCA{rw_title}"),
            f"the rendered {what} field ({getattr(scene, field_name).shape[1]} channels) of each"
            " camera, first 3 principal components fitted over both views (same colour = same"
            f" feature){rw}",
            stamp=False,
        )
    export_scene_ply(pipeline, scene, out / "scene.ply")
    n_gauss = scene.gaussians.num_gaussians
    w.note(
        "scene.ply",
        f"the {n_gauss} semantic Gaussians of the in-process encode (3DGS layout + f_seg_*,"
        f" f_lang_*, label, score){rw}",
    )

    # Overview sheet.
    overview_rows, titles = [], []
    for cam in cams:
        near, far = depth_range(c.gt_depth[cam])
        overview_rows.append(
            [
                c.images[cam],
                overlay_labels(c.images[cam], c.gt_labels[cam].astype(np.int64), 0.55),
                overlay_labels(c.images[cam], c.labels[cam], 0.55),
                depth_to_rgb(c.gt_depth[cam], near, far),
                depth_to_rgb(c.depth[cam], near, far),
            ]
        )
        titles.append(cam)
    captions = [["rgb", "gt labels", "labels", "gt depth", "depth"] for _ in cams]
    sheet = image_grid(
        overview_rows, captions=captions, row_titles=titles, title=f"semanticsplat demo{rw_title}"
    )
    legend = legend_strip(sheet.shape[1], range(len(node_cfg.classes)), node_cfg.classes)
    w.png(
        "overview.png",
        np.concatenate([sheet, legend], axis=0),
        f"every camera: image, ground-truth and published labels, ground-truth and published"
        f" depth{rw}",
        False,
    )

    d = c.diagnostics

    def diag_float(key: str) -> float | None:
        try:
            return _finite_or_none(float(d[key]))
        except (KeyError, ValueError):
            return None

    summary: dict[str, Any] = {
        "random_weights": bool(args.random_weights),
        "warning": RANDOM_WEIGHTS_LABEL if args.random_weights else "",
        "model_checkpoint": str(args.checkpoint or "default"),
        "cameras": cams,
        "image_size": [args.height, args.width],
        "input_size": [args.input_height, args.input_width],
        "scene_seed": args.seed,
        "scene_stamp_s": stamp_s,
        "latency": {
            "first_complete_scene_s": c.first_output_s,
            "node_latency_s_median": diag_float("latency_s_median"),
            "node_processing_s_median": diag_float("processing_s_median"),
            "node_rate_hz": diag_float("rate_hz"),
            "sets_encoded": int(d.get("sets_encoded", "0") or 0),
            "service_round_trip_s": {call.name: call.seconds for call in c.calls},
            "in_process_encode_s": {k: float(v) for k, v in scene.timings.items()},
        },
        "depth_median_abs_rel": {k: _finite_or_none(v) for k, v in depth_err.items()},
        "label_agreement": {k: _finite_or_none(v) for k, v in agree.items()},
        "point_prompt": prompt_summary,
        "queries": query_summary,
        "cloud_points": c.cloud_points,
        "gaussians_published": c.gaussians,
        "gaussians_exported": n_gauss,
        "node_diagnostics": d,
        "graph_exit_codes": c.exit_codes,
    }
    w.note(
        "summary.json", "the numbers of this run (latencies, depth error, label agreement, IoUs)"
    )
    w.note("graph.log", "stdout/stderr of sim_rig and semanticsplat_node")
    w.note("index.md", "this index")
    summary["files"] = sorted(w.captions)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    write_index(out / "index.md", w.captions, args.random_weights)
    return summary


def write_index(path: Path, captions: Mapping[str, str], random_weights: bool) -> None:
    """index.md: every file with its one-line caption (images inline)."""
    lines = ["# semanticsplat demo", ""]
    if random_weights:
        lines += [f"**{RANDOM_WEIGHTS_LABEL}**: outputs come from an untrained network.", ""]
    lines += ["| file | what it is |", "|---|---|"]
    for name in sorted(captions):
        lines.append(f"| [`{name}`]({name}) | {captions[name].replace('|', '/')} |")
    lines += [""]
    lines += [f"![{n}]({n})" for n in sorted(captions) if n.endswith(".png")]
    path.write_text("\n".join(lines) + "\n")


def format_summary(summary: Mapping[str, Any]) -> str:
    """The printed summary (a few aligned lines)."""

    def f(x: Any, fmt: str = ".3f") -> str:
        return "n/a" if x is None else format(x, fmt)

    lat = summary["latency"]
    lines = []
    if summary["random_weights"]:
        lines.append(f"*** {RANDOM_WEIGHTS_LABEL} ***")
    lines.append(
        f"first complete scene   {f(lat['first_complete_scene_s'], '.1f')} s after start;"
        f" node latency {f(lat['node_latency_s_median'])} s (median),"
        f" {f(lat['node_rate_hz'], '.2f')} Hz, {lat['sets_encoded']} sets encoded"
    )
    trips = ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in lat["service_round_trip_s"].items())
    lines.append(f"service round trips    {trips}")
    lines.append(
        f"in-process encode      {f(lat['in_process_encode_s'].get('total'))} s"
        f" ({summary['input_size'][1]}x{summary['input_size'][0]} input)"
    )
    de, la = summary["depth_median_abs_rel"], summary["label_agreement"]
    lines.append("depth median abs rel   " + ", ".join(f"{k} {f(v)}" for k, v in de.items()))
    lines.append(
        "label agreement        "
        + ", ".join(f"{k} {'n/a' if v is None else format(v, '.1%')}" for k, v in la.items())
    )
    for name, entry in summary["point_prompt"].items():
        if entry["success"]:
            scores = ", ".join(f"{lv['level']} {lv['score']:.2f}" for lv in entry["levels"])
            lines.append(f"{name:<22} {scores}")
        else:
            lines.append(f"{name:<22} failed: {entry['message']}")
    for text, q in summary["queries"].items():
        lines.append(
            f"query {text!r:<16} IoU vs {q['gt_class']}: {f(q['iou'], '.2f')},"
            f" score {q['score']:.2f}, {q['points']} points"
        )
    lines.append(
        f"semantic cloud         {summary['cloud_points']} points;"
        f" Gaussians published {summary['gaussians_published']},"
        f" exported {summary['gaussians_exported']}"
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Command
# --------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    parser.add_argument(
        "--checkpoint",
        default="",
        help="model: a checkpoint file or a bundled name (small, small_stereo); default: the "
        "params file's model_checkpoint",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=5.0,
        help="seconds the graph keeps running after the first complete scene (statistics)",
    )
    parser.add_argument(
        "--random-weights",
        action="store_true",
        help=f"no checkpoint: random network ({RANDOM_WEIGHTS_LABEL})",
    )
    parser.add_argument("--params-file", type=Path, default=None, help="default: bringup.yaml")
    parser.add_argument("--seed", type=int, default=0, help="synthetic scene seed")
    parser.add_argument("--width", type=int, default=None, help="rig image width (params file)")
    parser.add_argument("--height", type=int, default=None, help="rig image height (params file)")
    parser.add_argument(
        "--input-width", type=int, default=None, help="model input width (params file)"
    )
    parser.add_argument(
        "--input-height", type=int, default=None, help="model input height (params file)"
    )
    parser.add_argument("--rate-hz", type=float, default=5.0, help="rig frame rate")
    parser.add_argument(
        "--moving",
        action="store_true",
        help="let the rig move along its trajectory (default: it holds its first pose, so the"
        " figures are the same from run to run)",
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for the first scene"
    )
    parser.add_argument(
        "--call-timeout", type=float, default=60.0, help="seconds to wait for each service call"
    )
    parser.add_argument(
        "--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: random in 1..100)"
    )


def _check_args(args: argparse.Namespace) -> None:
    from semanticsplat_ros.pipeline import resolve_model_checkpoint

    if not args.random_weights:
        resolve_model_checkpoint(args.checkpoint, hint=RANDOM_WEIGHTS_HINT)
    if args.seconds < 0 or args.timeout <= 0 or args.call_timeout <= 0:
        raise ValueError("--seconds must be >= 0 and --timeout, --call-timeout > 0")
    if not 0 < args.rate_hz <= 100:
        raise ValueError(f"--rate-hz must be in (0, 100], got {args.rate_hz}")
    if args.domain_id is not None and not 0 <= args.domain_id <= 232:
        raise ValueError(f"--domain-id must be in 0..232, got {args.domain_id}")


def _check_sizes(args: argparse.Namespace) -> None:
    for name in ("input_width", "input_height"):
        value = getattr(args, name)
        if value is None:
            continue
        if value < 16 or value % 8:
            raise ValueError(
                f"--{name.replace('_', '-')} must be a multiple of 8, >= 16, got {value}"
            )
    if None not in (args.width, args.height) and not (
        8 <= args.width <= 4096 and 8 <= args.height <= 4096
    ):
        raise ValueError(f"--width/--height must be in [8, 4096], got {args.width}x{args.height}")


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    _check_sizes(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = Progress()
    if args.random_weights:
        progress(f"*** {RANDOM_WEIGHTS_LABEL} ***")
    try:
        collected, node_cfg = run_graph(args, out, progress)
        summary = write_outputs(args, out, collected, node_cfg, progress)
    except DemoError as exc:
        sys.stderr.write(f"semanticsplat demo: error: {exc}\n")
        return 1
    failed = [
        call.name
        for call in collected.calls
        if not call.success and call.name != "segment_point_3d"
    ]
    sys.stdout.write(format_summary(summary) + "\n")
    sys.stdout.write(f"wrote {len(summary['files'])} files to {out} (see {out / 'index.md'})\n")
    if failed:
        sys.stderr.write(f"semanticsplat demo: error: service calls failed: {', '.join(failed)}\n")
        return 1
    return 0

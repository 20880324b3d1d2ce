"""The demo's rclpy client: subscribes to the running graph, calls its services, collects numpy.

``collect`` runs steps 2-3 of ``semanticsplat demo`` (``ros.demo``) against a started
``bringup.Graph``: it subscribes to the rig's images, camera_info, TF and ground truth
(``/sim_rig/<camera>/gt_depth``, ``gt_labels``), to the node's depth, labels, semantic cloud and
Gaussians, and to ``/diagnostics``; waits for the first *complete* scene (one stamp for which
every one of those arrived; a timeout names what never did); keeps spinning for statistics; then
calls ``~/segment_point`` (pixel and 3D forms) and ``~/query_text`` and returns a
``report.Collected``: no message leaves this module.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from tf2_msgs.msg import TFMessage

from semanticsplat_msgs.srv import QueryText, SegmentPoint
from semanticsplat_ros.data.classes import CLASS_ID
from semanticsplat_ros.report import (
    QUERIES,
    CallOut,
    Collected,
    SegmentOut,
    pick_prompt_pixel,
)
from semanticsplat_ros.ros.bringup import SIM_RIG_NAME, Graph
from semanticsplat_ros.ros.conversions import (
    camera_info_to_intrinsics,
    cloud_to_semantic,
    image_to_numpy,
    image_to_rgb8,
    make_header,
    stamp_to_nanoseconds,
    transform_msg_to_matrix,
)
from semanticsplat_ros.ros.params import NODE_NAME

HISTORY = 300
"""Messages kept per topic, so outputs can be matched to the rig frame with their stamp."""
TF_DEPTH = 8
"""Longest TF chain followed from a camera frame to the fixed frame."""
REPORT_PERIOD_S = 10.0
"""How often waiting for the first scene says what has arrived."""


class DemoError(RuntimeError):
    """A failure reported as one line (the graph did not start, an output never arrived...)."""


class Progress:
    """Progress lines on a stream (stderr by default): ``[demo   12.3s] message``."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.start = time.monotonic()
        self.stream = stream or sys.stderr

    def __call__(self, message: str) -> None:
        self.stream.write(f"[demo {time.monotonic() - self.start:7.1f}s] {message}\n")
        self.stream.flush()


@dataclass(frozen=True)
class ClientSettings:
    """Time limits of the client, seconds."""

    timeout: float
    """Waiting for the first complete scene."""
    seconds: float
    """Spinning after it, for rate and latency statistics (>= 0)."""
    call_timeout: float
    """Waiting for each service answer."""

    def __post_init__(self) -> None:
        if self.seconds < 0 or self.timeout <= 0 or self.call_timeout <= 0:
            raise ValueError("--seconds must be >= 0 and --timeout, --call-timeout > 0")


def _segments_of(response: Any) -> list[SegmentOut]:
    """The segments of a SegmentPoint / QueryText response as numpy masks."""
    out = []
    for seg in response.segments:
        masks, stamps = {}, {}
        for cam, m in zip(seg.camera_names, seg.masks, strict=True):
            masks[cam] = image_to_numpy(m) > 0
            stamps[cam] = stamp_to_nanoseconds(m.header.stamp)
        n = int(seg.points.width) * int(seg.points.height)
        out.append(SegmentOut(seg.label, float(seg.score), masks, stamps, n))
    return out


def _call_out(name: str, res: Any, seconds: float, request: dict[str, Any]) -> CallOut:
    segments = _segments_of(res) if res.success else []
    return CallOut(name, res.success, res.message, seconds, segments, request)


class DemoClient:
    """One rclpy node on its own context recording the graph's topics by stamp.

    Histories keep the last ``HISTORY`` messages per topic; TF is kept per stamp (dynamic) and
    per child frame (static). ``close`` must be called (``collect`` does).
    """

    def __init__(
        self, cameras: list[str], fixed_frame: str, graph: Graph, domain_id: int, log_path: Path
    ) -> None:
        self.cameras = cameras
        self.fixed_frame = fixed_frame
        self.graph = graph
        self.log_path = log_path
        node_ns, rig_ns = f"/{NODE_NAME}", f"/{SIM_RIG_NAME}"
        self.topics: dict[str, tuple[type, str]] = {}
        for c in cameras:
            self.topics[f"image/{c}"] = (Image, f"/{c}/image_raw")
            self.topics[f"camera_info/{c}"] = (CameraInfo, f"/{c}/camera_info")
            self.topics[f"gt_depth/{c}"] = (Image, f"{rig_ns}/{c}/gt_depth")
            self.topics[f"gt_labels/{c}"] = (Image, f"{rig_ns}/{c}/gt_labels")
            self.topics[f"depth/{c}"] = (Image, f"{node_ns}/{c}/depth")
            self.topics[f"labels/{c}"] = (Image, f"{node_ns}/{c}/labels")
        self.topics["semantic_cloud"] = (PointCloud2, f"{node_ns}/semantic_cloud")
        self.topics["gaussians"] = (PointCloud2, f"{node_ns}/gaussians")
        self.history: dict[str, OrderedDict[int, Any]] = {k: OrderedDict() for k in self.topics}
        self.tf_dynamic: OrderedDict[int, dict[str, tuple[str, np.ndarray]]] = OrderedDict()
        self.tf_static: dict[str, tuple[str, np.ndarray]] = {}
        self.diagnostics: dict[str, str] = {}

        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("semanticsplat_demo", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        for key, (msg_type, topic) in self.topics.items():
            self.node.create_subscription(msg_type, topic, self._keep(key), qos)
        self.node.create_subscription(TFMessage, "/tf", lambda m: self._on_tf(m, False), 100)
        static_qos = QoSProfile(
            depth=10,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.node.create_subscription(
            TFMessage, "/tf_static", lambda m: self._on_tf(m, True), static_qos
        )
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 20)
        self.segment_client = self.node.create_client(SegmentPoint, f"{node_ns}/segment_point")
        self.query_client = self.node.create_client(QueryText, f"{node_ns}/query_text")

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    # Subscriptions ----------------------------------------------------------------------------

    def _keep(self, key: str) -> Callable[[Any], None]:
        def on_message(msg: Any) -> None:
            store = self.history[key]
            store[stamp_to_nanoseconds(msg.header.stamp)] = msg
            while len(store) > HISTORY:
                store.popitem(last=False)

        return on_message

    def _on_tf(self, msg: Any, static: bool) -> None:
        for ts in msg.transforms:
            entry = (ts.header.frame_id, transform_msg_to_matrix(ts.transform))
            if static:
                self.tf_static[ts.child_frame_id] = entry
            else:
                stamp = stamp_to_nanoseconds(ts.header.stamp)
                self.tf_dynamic.setdefault(stamp, {})[ts.child_frame_id] = entry
                while len(self.tf_dynamic) > HISTORY:
                    self.tf_dynamic.popitem(last=False)

    def _on_diagnostics(self, msg: Any) -> None:
        for status in msg.status:
            if status.name.startswith(NODE_NAME):
                self.diagnostics.clear()
                self.diagnostics.update({kv.key: kv.value for kv in status.values})
                self.diagnostics["_message"] = status.message

    # Lookups ----------------------------------------------------------------------------------

    def pose_at(self, frame: str, stamp: int) -> np.ndarray | None:
        """T_fixed_frame_frame (4x4) at ``stamp`` from the recorded TF, or None."""
        T = np.eye(4)
        for _ in range(TF_DEPTH):
            if frame == self.fixed_frame:
                return T
            entry = self.tf_dynamic.get(stamp, {}).get(frame) or self.tf_static.get(frame)
            if entry is None:
                return None
            parent, T_parent_frame = entry
            T = T_parent_frame @ T
            frame = parent
        return None

    def _complete(self, stamp: int) -> bool:
        if not all(stamp in self.history[k] for k in self.topics):
            return False
        return all(
            self.pose_at(self.history[f"image/{c}"][stamp].header.frame_id, stamp) is not None
            for c in self.cameras
        )

    def _newest_complete(self) -> int | None:
        for stamp in reversed(self.history["semantic_cloud"]):
            if self._complete(stamp):
                return stamp
        return None

    def at(self, key: str, stamp: int) -> Any:
        return self.history[key][stamp]

    # Spinning ---------------------------------------------------------------------------------

    def check_graph(self) -> None:
        """DemoError if a node of the graph has exited."""
        exited = self.graph.exited()
        if exited:
            name, code = next(iter(exited.items()))
            raise DemoError(f"{name} exited with code {code} (see {self.log_path})")

    def spin_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.check_graph()
            self.executor.spin_once(timeout_sec=0.05)

    def call(self, client: Any, request: Any, timeout: float) -> tuple[Any, float]:
        """(response, round-trip seconds); DemoError if the service is missing or silent."""
        if not client.wait_for_service(timeout_sec=min(timeout, 30.0)):
            raise DemoError(f"service {client.srv_name} is not available")
        started = time.perf_counter()
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done() and time.monotonic() < deadline:
            self.check_graph()
            self.executor.spin_once(timeout_sec=0.01)
        if not future.done():
            raise DemoError(f"service {client.srv_name} did not answer within {timeout:.0f} s")
        return future.result(), time.perf_counter() - started

    def _missing(self) -> str:
        missing = [self.topics[k][1] for k in self.topics if not self.history[k]]
        if not self.tf_static and not self.tf_dynamic:
            missing.append("/tf")
        if missing:
            return f"nothing on {', '.join(missing)}"
        return "no stamp with every output, its rig frame, ground truth and TF"

    def wait_for_scene(self, timeout: float, progress: Progress) -> tuple[int, float]:
        """(stamp, seconds waited) of the first complete scene; DemoError after ``timeout``."""
        started = time.monotonic()
        progress(f"waiting for the first complete scene (timeout {timeout:.0f} s)")
        next_report = time.monotonic() + REPORT_PERIOD_S
        while True:
            self.check_graph()
            if time.monotonic() - started > timeout:
                raise DemoError(f"no complete scene within {timeout:g} s: {self._missing()}")
            if time.monotonic() >= next_report:
                got = sum(1 for k in self.topics if self.history[k])
                diag = self.diagnostics.get("_message", "no diagnostics yet")
                progress(f"  ... {got}/{len(self.topics)} topics have data; node: {diag}")
                next_report = time.monotonic() + REPORT_PERIOD_S
            self.executor.spin_once(timeout_sec=0.05)
            if self.history["semantic_cloud"]:
                stamp = self._newest_complete()
                if stamp is not None:
                    return stamp, time.monotonic() - started

    # Service calls ----------------------------------------------------------------------------

    def _log_result(self, progress: Progress, res: Any, seconds: float, failed: str) -> None:
        progress(f"  {'ok' if res.success else failed} in {seconds * 1e3:.0f} ms: {res.message}")

    def call_services(
        self, stamp: int, call_timeout: float, progress: Progress
    ) -> tuple[list[CallOut], tuple[int, int, str], int]:
        """~/segment_point at an object pixel of the first camera (from the ground truth) and at
        a 3D point of the newest semantic cloud, then ~/query_text; returns the calls, the pixel
        prompt (row, col, class) and the size of that cloud (points)."""
        first = self.cameras[0]
        gt_first = image_to_numpy(self.at(f"gt_labels/{first}", stamp))
        row, col, cls = pick_prompt_pixel(gt_first)
        calls: list[CallOut] = []
        request = SegmentPoint.Request(
            prompt_type=SegmentPoint.Request.PIXEL, camera_name=first, u=float(col), v=float(row)
        )
        progress(f"calling ~/segment_point at pixel ({col}, {row}) of {first} ({cls})")
        res, dt = self.call(self.segment_client, request, call_timeout)
        pixel_req = {"camera": first, "u": col, "v": row, "gt_class": cls}
        calls.append(_call_out("segment_point_pixel", res, dt, pixel_req))
        self._log_result(progress, res, dt, "FAILED")

        cloud_msg = next(reversed(self.history["semantic_cloud"].values()))
        cloud = cloud_to_semantic(cloud_msg)
        if len(cloud.xyz):
            # The cloud point nearest the median of the prompted class's points (of all points
            # if the node labelled none of that class).
            pick = cloud.labels == CLASS_ID.get(cls, -1)
            xyz = cloud.xyz[pick] if pick.any() else cloud.xyz
            k = int(np.argmin(np.linalg.norm(xyz - np.median(xyz, axis=0), axis=1)))
            p = [float(x) for x in xyz[k]]
            point = PointStamped(header=make_header(self.fixed_frame))
            point.point.x, point.point.y, point.point.z = p
            request = SegmentPoint.Request(prompt_type=SegmentPoint.Request.POINT, point=point)
            progress(f"calling ~/segment_point at 3D point ({p[0]:.2f}, {p[1]:.2f}, {p[2]:.2f})")
            res, dt = self.call(self.segment_client, request, call_timeout)
            point_req = {"frame_id": self.fixed_frame, "point": p}
            calls.append(_call_out("segment_point_3d", res, dt, point_req))
            self._log_result(progress, res, dt, "failed")

        progress(f"calling ~/query_text {list(QUERIES)}")
        request = QueryText.Request(texts=list(QUERIES))
        res, dt = self.call(self.query_client, request, call_timeout)
        calls.append(_call_out("query_text", res, dt, {"texts": list(QUERIES)}))
        self._log_result(progress, res, dt, "FAILED")
        return calls, (row, col, cls), int(cloud_msg.width) * int(cloud_msg.height)

    # The result -------------------------------------------------------------------------------

    def _frames_of_calls(
        self, calls: list[CallOut]
    ) -> tuple[dict[tuple[str, int], np.ndarray], dict[tuple[str, int], np.ndarray]]:
        """(camera, stamp) -> rig image and -> ground-truth labels, for the service masks."""
        frames_at: dict[tuple[str, int], np.ndarray] = {}
        gt_at: dict[tuple[str, int], np.ndarray] = {}
        for out in calls:
            for seg in out.segments:
                for cam, s in seg.stamps.items():
                    if s in self.history.get(f"image/{cam}", {}):
                        frames_at[(cam, s)] = image_to_rgb8(self.history[f"image/{cam}"][s])
                    if s in self.history.get(f"gt_labels/{cam}", {}):
                        gt_at[(cam, s)] = image_to_numpy(self.history[f"gt_labels/{cam}"][s])
        return frames_at, gt_at

    def gather(
        self,
        stamp: int,
        first_output_s: float,
        calls: list[CallOut],
        prompt: tuple[int, int, str],
        cloud_points: int,
    ) -> Collected:
        """The scene at ``stamp`` (images, intrinsics, TF poses, outputs, ground truth)."""
        cams = self.cameras
        c2w = {}
        for c in cams:
            T = self.pose_at(self.at(f"image/{c}", stamp).header.frame_id, stamp)
            if T is None:  # _complete() checked it; TF history may have rolled over since
                raise DemoError(f"lost the TF of camera {c!r} at the scene's stamp")
            c2w[c] = T
        frames_at, gt_at = self._frames_of_calls(calls)
        gaussians = self.at("gaussians", stamp)
        return Collected(
            cameras=cams,
            stamp_ns=stamp,
            first_output_s=first_output_s,
            images={c: image_to_rgb8(self.at(f"image/{c}", stamp)) for c in cams},
            K={
                c: camera_info_to_intrinsics(self.at(f"camera_info/{c}", stamp)).K.astype(
                    np.float64
                )
                for c in cams
            },
            c2w=c2w,
            depth={c: image_to_numpy(self.at(f"depth/{c}", stamp)) for c in cams},
            labels={c: image_to_numpy(self.at(f"labels/{c}", stamp)) for c in cams},
            gt_depth={c: image_to_numpy(self.at(f"gt_depth/{c}", stamp)) for c in cams},
            gt_labels={c: image_to_numpy(self.at(f"gt_labels/{c}", stamp)) for c in cams},
            cloud_points=cloud_points,
            gaussians=int(gaussians.width) * int(gaussians.height),
            diagnostics=dict(self.diagnostics),
            calls=calls,
            prompt=prompt,
            frames_at=frames_at,
            gt_labels_at=gt_at,
        )


def collect(
    settings: ClientSettings,
    cameras: list[str],
    fixed_frame: str,
    graph: Graph,
    domain_id: int,
    log_path: Path,
    progress: Progress,
) -> Collected:
    """Run the client against the started ``graph`` (see the module docstring)."""
    client = DemoClient(cameras, fixed_frame, graph, domain_id, log_path)
    try:
        stamp, first_output_s = client.wait_for_scene(settings.timeout, progress)
        progress(f"first complete scene after {first_output_s:.1f} s (stamp {stamp * 1e-9:.3f})")
        if settings.seconds > 0:
            progress(f"running {settings.seconds:.1f} s more for rate and latency statistics")
            client.spin_for(settings.seconds)
        calls, prompt, cloud_points = client.call_services(stamp, settings.call_timeout, progress)
        client.spin_for(0.3)  # the rig frames the masks refer to may still be in flight
        return client.gather(stamp, first_output_s, calls, prompt, cloud_points)
    finally:
        client.close()

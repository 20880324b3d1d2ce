"""semanticsplat_node in a subprocess, driven from this process over Fast DDS.

The test process plays the cameras (images, camera_info, TF rendered by ``SimRig`` without ROS),
so it controls every stamp, encoding, size and pose, and it is the client of the outputs and
services. Random weights, 80x60 images, 64x48 model input: plumbing, not quality (quality is in
test_ros_node_quality.py).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped, TransformStamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import Header
from std_srvs.srv import Trigger
from tf2_msgs.msg import TFMessage

from semanticsplat_msgs.srv import MapFile, QueryText, SegmentPoint, SetClasses
from semanticsplat_ros.data.sim_rig import SimRig, SimRigConfig
from semanticsplat_ros.mapping import MapConfig, MapIdentity, SemanticMap
from semanticsplat_ros.ros.bringup import node_command
from semanticsplat_ros.ros.conversions import (
    GAUSSIAN_CLOUD_FIELDS,
    SEMANTIC_CLOUD_FIELDS,
    cloud_to_semantic,
    fields_of,
    image_to_numpy,
    intrinsics_to_camera_info,
    make_header,
    make_transform,
    matrix_to_transform_msg,
    nanoseconds_to_stamp,
    numpy_to_image,
    stamp_to_nanoseconds,
)
from semanticsplat_ros.ros.map_host import MAP_CLOUD_FIELDS

pytestmark = [pytest.mark.ros, pytest.mark.slow]

CAMERAS = ("cam_a", "cam_b")
W, H = 80, 60
NODE = "/semanticsplat_node"
PROBE_FRAME = "probe_frame"
STARTUP_S = 240.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _yaml(path: Path) -> Path:
    path.write_text(
        f"""/**/semanticsplat_node:
  ros__parameters:
    cameras: ["cam_a", "cam_b"]
    fixed_frame: world
    device: cpu
    random_weights: true
    input_width: 64
    input_height: 48
    sync_slop_s: 0.02
    qos_reliability: reliable
    publish_gaussians: true
    cloud_stride: 2
    diagnostics_period_s: 0.2
    map_publish_period_s: 0.3
    viewer_port: {_free_port()}
"""
    )
    return path


class Harness:
    """The node process plus this process's cameras, TF, subscriptions and clients."""

    def __init__(self, tmp: Path) -> None:
        self.log_path = tmp / "node.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            node_command(_yaml(tmp / "params.yaml")),
            env=dict(os.environ),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("node_test_probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        rig = SimRig(SimRigConfig(rig="stereo", cameras=CAMERAS, width=W, height=H))
        self.frame = rig.render(0.5)
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        n = self.node
        self.image_pubs = {c: n.create_publisher(Image, f"/{c}/image_raw", qos) for c in CAMERAS}
        self.info_pubs = {
            c: n.create_publisher(CameraInfo, f"/{c}/camera_info", qos) for c in CAMERAS
        }
        self.tf_pub = n.create_publisher(TFMessage, "/tf", 100)
        static_qos = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.tf_static_pub = n.create_publisher(TFMessage, "/tf_static", static_qos)
        # The probe frame: 2 m behind the world origin, rotated 90° about z.
        self.T_world_probe = make_transform([0.0, 0.0, -2.0], [np.cos(0.785), 0, 0, np.sin(0.785)])
        statics = [
            self._stamped("world", f"{c}_optical_frame", self.frame.c2w[i], 0)
            for i, c in enumerate(CAMERAS)
        ]
        statics.append(self._stamped("world", PROBE_FRAME, self.T_world_probe, 0))
        self.tf_static_pub.publish(TFMessage(transforms=statics))
        self.received: dict[str, list[Any]] = {}
        self.diagnostics: list[dict[str, str]] = []
        for c in CAMERAS:
            self._listen(Image, f"{NODE}/{c}/depth")
            self._listen(Image, f"{NODE}/{c}/labels")
        self._listen(Image, f"{NODE}/cam_a/class_masks/chair")
        self._listen(PointCloud2, f"{NODE}/semantic_cloud")
        self._listen(PointCloud2, f"{NODE}/gaussians")
        self._listen(PointCloud2, f"{NODE}/map_cloud")
        n.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)
        self.seg = n.create_client(SegmentPoint, f"{NODE}/segment_point")
        self.query = n.create_client(QueryText, f"{NODE}/query_text")
        self.classes = n.create_client(SetClasses, f"{NODE}/set_classes")
        self.save_map = n.create_client(MapFile, f"{NODE}/save_map")
        self.load_map = n.create_client(MapFile, f"{NODE}/load_map")
        self.clear_map = n.create_client(Trigger, f"{NODE}/clear_map")
        self.get_state = n.create_client(GetState, f"{NODE}/get_state")
        self.change_state = n.create_client(ChangeState, f"{NODE}/change_state")
        self.published: dict[int, float] = {}
        self.stamp_ns = time.time_ns()

    # ------------------------------------------------------------------ plumbing

    def _stamped(self, parent: str, child: str, T: np.ndarray, stamp_ns: int) -> TransformStamped:
        ts = TransformStamped()
        ts.header = make_header(parent, stamp_ns * 1e-9)
        ts.child_frame_id = child
        ts.transform = matrix_to_transform_msg(T)
        return ts

    def _listen(self, msg_type: type, topic: str) -> None:
        self.received[topic] = []
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(msg_type, topic, self.received[topic].append, qos)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith("semanticsplat_node"):
                values = {kv.key: kv.value for kv in status.values}
                values["_message"] = status.message
                self.diagnostics.append(values)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()[-4000:]

    def spin_until(
        self, done: Callable[[], bool], timeout: float, every: Callable[[], None] | None = None
    ) -> bool:
        deadline = time.monotonic() + timeout
        next_call = 0.0
        while time.monotonic() < deadline:
            if done():
                return True
            assert self.alive(), f"the node died:\n{self.log()}"
            if every is not None and time.monotonic() >= next_call:
                every()
                next_call = time.monotonic() + 0.15
            self.executor.spin_once(timeout_sec=0.02)
        return done()

    def call(self, client: Any, request: Any, timeout: float = 60.0) -> Any:
        assert client.wait_for_service(timeout_sec=timeout), f"{client.srv_name} never appeared"
        future = client.call_async(request)
        assert self.spin_until(future.done, timeout), f"{client.srv_name} did not answer"
        return future.result()

    def next_stamp(self) -> int:
        self.stamp_ns = max(self.stamp_ns + 50_000_000, time.time_ns())
        return self.stamp_ns

    def publish_set(
        self,
        encoding: str = "rgb8",
        info_size: tuple[int, int] = (W, H),
        frame_ids: dict[str, str] | None = None,
        offsets_s: dict[str, float] | None = None,
        dynamic_tf: dict[str, np.ndarray] | None = None,
    ) -> int:
        """One image + camera_info per camera at one stamp (per-camera offsets optional)."""
        stamp_ns = self.next_stamp()
        for i, c in enumerate(CAMERAS):
            ns = stamp_ns + int((offsets_s or {}).get(c, 0.0) * 1e9)
            frame_id = (frame_ids or {}).get(c, f"{c}_optical_frame")
            header = Header(frame_id=frame_id, stamp=nanoseconds_to_stamp(ns))
            if dynamic_tf and frame_id in dynamic_tf:
                ts = TransformStamped()
                ts.header = Header(frame_id="world", stamp=nanoseconds_to_stamp(ns))
                ts.child_frame_id = frame_id
                T = dynamic_tf[frame_id]
                ts.transform.translation.x, ts.transform.translation.y = T[0, 3], T[1, 3]
                ts.transform.translation.z = T[2, 3]
                ts.transform.rotation.x = float("nan")
                ts.transform.rotation.w = 1.0
                self.tf_pub.publish(TFMessage(transforms=[ts]))
            K = self.frame.K[i] * np.array([[info_size[0] / W], [info_size[1] / H], [1.0]])
            self.info_pubs[c].publish(intrinsics_to_camera_info(K, *info_size, header))
            pixels = self.frame.images[i]
            if encoding == "32FC1":
                image = numpy_to_image(pixels[..., 0].astype(np.float32), "32FC1", header)
            else:
                image = numpy_to_image(pixels, encoding, header)
            self.image_pubs[c].publish(image)
        self.published[stamp_ns] = stamp_ns * 1e-9
        return stamp_ns

    def wait_for_matches(self, timeout: float = 60.0) -> None:
        def matched() -> bool:
            return all(
                p.get_subscription_count() > 0
                for p in (*self.image_pubs.values(), *self.info_pubs.values())
            )

        assert self.spin_until(matched, timeout), "the node never subscribed to the cameras"

    def diag(self) -> dict[str, str]:
        return self.diagnostics[-1] if self.diagnostics else {}

    def wait_for_error(self, expected: str, publish: Callable[[], None], timeout=45.0) -> str:
        def seen() -> bool:
            return any(expected in d.get("recent_errors", "") for d in self.diagnostics[-5:])

        ok = self.spin_until(seen, timeout, every=publish)
        assert ok, f"no diagnostic mentioning {expected!r}; last: {self.diag()}"
        return next(
            e
            for d in reversed(self.diagnostics)
            for e in d.get("recent_errors", "").split("\n")
            if expected in e
        )

    def close(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
        self._log.close()


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    h = Harness(tmp_path_factory.mktemp("node"))
    try:
        assert h.seg.wait_for_service(timeout_sec=STARTUP_S), f"node never activated:\n{h.log()}"
        # Before any image was sent: both query services answer, with a clear refusal.
        h.early = {
            "segment_point": h.call(
                h.seg,
                SegmentPoint.Request(
                    prompt_type=SegmentPoint.Request.PIXEL, camera_name="cam_a", u=1.0, v=1.0
                ),
            ),
            "query_text": h.call(h.query, QueryText.Request(texts=["chair"])),
        }
        h.wait_for_matches()
        yield h
    finally:
        h.close()


def _ensure_outputs(h: Harness, topics: list[str], timeout: float = 120.0) -> None:
    for t in topics:
        h.received[t].clear()
    ok = h.spin_until(lambda: all(h.received[t] for t in topics), timeout, every=h.publish_set)
    missing = [t for t in topics if not h.received[t]]
    assert ok, f"no message on {missing}; diagnostics {h.diag()}\n{h.log()}"


# --------------------------------------------------------------------------------------------


def test_calls_before_the_first_scene_fail_clearly(harness):
    for name, res in harness.early.items():
        assert not res.success, name
        assert "no encoded scene yet" in res.message, res.message


def test_outputs_carry_the_image_headers_and_the_fixed_frame(harness):
    h = harness
    topics = [
        f"{NODE}/cam_a/depth",
        f"{NODE}/cam_b/depth",
        f"{NODE}/cam_a/labels",
        f"{NODE}/cam_a/class_masks/chair",
        f"{NODE}/semantic_cloud",
        f"{NODE}/gaussians",
    ]
    _ensure_outputs(h, topics)
    for c in CAMERAS:
        depth = h.received[f"{NODE}/{c}/depth"][-1]
        assert depth.header.frame_id == f"{c}_optical_frame"
        assert stamp_to_nanoseconds(depth.header.stamp) in h.published
        assert (depth.encoding, depth.width, depth.height) == ("32FC1", W, H)
        d = image_to_numpy(depth)
        assert np.all(np.isfinite(d)) and d.min() > 0
    labels = h.received[f"{NODE}/cam_a/labels"][-1]
    assert (labels.encoding, labels.width, labels.height) == ("mono8", W, H)
    assert image_to_numpy(labels).max() < 8
    mask = h.received[f"{NODE}/cam_a/class_masks/chair"][-1]
    assert mask.encoding == "mono8" and set(np.unique(image_to_numpy(mask))) <= {0, 255}
    assert mask.header.frame_id == "cam_a_optical_frame"
    cloud = h.received[f"{NODE}/semantic_cloud"][-1]
    assert cloud.header.frame_id == "world"
    assert stamp_to_nanoseconds(cloud.header.stamp) in h.published
    assert tuple(fields_of(cloud)) == SEMANTIC_CLOUD_FIELDS
    pts = cloud_to_semantic(cloud)
    assert 0 < len(pts.xyz) <= 2 * (H // 2) * (W // 2)
    assert np.all(np.isfinite(pts.xyz)) and pts.labels.max() < 8
    gaussians = h.received[f"{NODE}/gaussians"][-1]
    assert gaussians.header.frame_id == "world"
    assert tuple(fields_of(gaussians)) == tuple(name for name, _ in GAUSSIAN_CLOUD_FIELDS)
    assert gaussians.width > 0
    assert h.spin_until(lambda: int(h.diag().get("sets_encoded", "0")) >= 1, 10.0), h.diag()
    assert float(h.diag()["latency_s_median"]) > 0


def test_segment_point_pixel_and_3d_forms(harness):
    h = harness
    _ensure_outputs(h, [f"{NODE}/cam_a/depth"])
    res = h.call(
        h.seg,
        SegmentPoint.Request(
            prompt_type=SegmentPoint.Request.PIXEL, camera_name="cam_b", u=40.0, v=30.0
        ),
    )
    assert res.success, res.message
    assert [s.label for s in res.segments] == ["small", "medium", "large"]
    seg = res.segments[0]
    assert seg.header.frame_id == "world" and "cam_b" in seg.camera_names
    mask = seg.masks[list(seg.camera_names).index("cam_b")]
    assert mask.header.frame_id == "cam_b_optical_frame"
    assert stamp_to_nanoseconds(mask.header.stamp) in h.published
    # 3D form, in another TF frame: the world point 3 m in front of cam_a, expressed in the
    # probe frame.
    p_world = h.frame.c2w[0] @ np.array([0.0, 0.0, 3.0, 1.0])
    p_probe = np.linalg.inv(h.T_world_probe) @ p_world
    point = PointStamped(header=make_header(PROBE_FRAME))
    point.point.x, point.point.y, point.point.z = (float(v) for v in p_probe[:3])
    req = SegmentPoint.Request(prompt_type=SegmentPoint.Request.POINT, point=point)
    res = h.call(h.seg, req)
    # Random weights: the point may be "occluded" by the predicted depth; what must hold is
    # that the frame was resolved (the message names the point in world).
    if res.success:
        assert len(res.segments) == 3 and res.segments[0].header.frame_id == "world"
        assert f"({p_world[0]:.3f}, {p_world[1]:.3f}, {p_world[2]:.3f})" in res.message
    else:
        assert "not visible in any camera" in res.message, res.message
        assert f"{p_world[0]:.3f}"[:4] in res.message


def test_query_text_answers_per_text(harness):
    h = harness
    _ensure_outputs(h, [f"{NODE}/cam_a/depth"])
    res = h.call(h.query, QueryText.Request(texts=["chair", "seat"]))
    assert res.success, res.message
    assert [s.label for s in res.segments] == ["chair", "seat"]
    for seg in res.segments:
        assert list(seg.camera_names) == list(CAMERAS)
        assert seg.points.header.frame_id == "world"


@pytest.mark.parametrize(
    ("kind", "request_", "expected"),
    [
        (
            "seg",
            SegmentPoint.Request(prompt_type=0, camera_name="cam_z", u=1.0, v=1.0),
            "unknown camera 'cam_z'",
        ),
        (
            "seg",
            SegmentPoint.Request(prompt_type=0, camera_name="cam_a", u=1.0, v=60.0),
            "outside camera 'cam_a'",
        ),
        ("query", QueryText.Request(texts=[""]), "query text is empty"),
        ("query", QueryText.Request(texts=["w" * 10_240]), "10240 characters; the limit is 256"),
        ("query", QueryText.Request(texts=[]), "texts is empty"),
    ],
)
def test_bad_service_requests_get_a_message_and_the_node_lives(harness, kind, request_, expected):
    h = harness
    _ensure_outputs(h, [f"{NODE}/cam_a/depth"])
    res = h.call(h.seg if kind == "seg" else h.query, request_)
    assert not res.success and expected in res.message, res.message
    assert h.alive()


def test_point_in_an_unknown_tf_frame_fails_with_the_tf_error(harness):
    h = harness
    _ensure_outputs(h, [f"{NODE}/cam_a/depth"])
    point = PointStamped(header=make_header("no_such_frame"))
    res = h.call(h.seg, SegmentPoint.Request(prompt_type=SegmentPoint.Request.POINT, point=point))
    assert not res.success
    assert "cannot transform the point from 'no_such_frame' to 'world'" in res.message


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong_encoding", "expected a colour image"),
        ("size_mismatch", "image is 80x60 but its camera_info describes 40x30"),
        ("nan_pose", "NaN"),
        ("missing_tf", "no valid pose of 'nowhere_optical_frame'"),
    ],
)
def test_bad_input_sets_are_skipped_with_a_diagnostic(harness, case, expected):
    h = harness

    def publish_bad() -> None:
        if case == "wrong_encoding":
            h.publish_set(encoding="32FC1")
        elif case == "size_mismatch":
            h.publish_set(info_size=(40, 30))
        elif case == "nan_pose":
            h.publish_set(
                frame_ids={"cam_a": "cam_a_moving"},
                dynamic_tf={"cam_a_moving": h.frame.c2w[0]},
            )
        else:
            h.publish_set(frame_ids={"cam_b": "nowhere_optical_frame"})

    message = h.wait_for_error(expected, publish_bad)
    assert message
    if case != "nan_pose":
        assert message.startswith("camera 'cam_")  # names the camera at fault
    else:
        assert "TF: ignored transform 'world' -> 'cam_a_moving'" in message
    assert int(h.diag()["sets_skipped"]) >= 1
    # Still alive and still working on good input.
    _ensure_outputs(h, [f"{NODE}/cam_a/depth"])


def test_stamps_outside_the_slop_never_form_a_set(harness):
    h = harness
    _ensure_outputs(h, [f"{NODE}/cam_a/depth"])
    h.spin_until(lambda: False, 0.6)  # let the last set's diagnostics arrive
    formed = int(h.diag()["sets_formed"])
    h.received[f"{NODE}/cam_a/depth"].clear()
    last_good_ns = h.stamp_ns  # a good set still encoding on a loaded machine may publish late
    h.spin_until(lambda: False, 2.0, every=lambda: h.publish_set(offsets_s={"cam_b": 0.031}))
    h.spin_until(lambda: False, 0.6)
    assert int(h.diag()["sets_formed"]) == formed
    late = [m.header.stamp for m in h.received[f"{NODE}/cam_a/depth"]]
    assert all(s.sec * 10**9 + s.nanosec <= last_good_ns for s in late), late
    _ensure_outputs(h, [f"{NODE}/cam_a/depth"])
    assert int(h.diag()["messages_dropped"]) > 0


def test_set_classes_renames_the_class_mask_topics(harness):
    h = harness
    res = h.call(h.classes, SetClasses.Request(names=["mug", "dining table"]))
    try:
        assert res.success, res.message
        topic = f"{NODE}/cam_b/class_masks/dining_table"

        def listed() -> bool:
            return topic in dict(h.node.get_topic_names_and_types())

        assert h.spin_until(listed, 30.0), "class mask topic of the new class never appeared"
        q = h.call(h.query, QueryText.Request(texts=["mug"]))
        assert q.success, q.message
    finally:
        default = ["wall", "floor", "ceiling", "chair", "table", "bed", "sofa", "others"]
        assert h.call(h.classes, SetClasses.Request(names=default)).success


def test_map_cloud_and_map_files(harness, tmp_path):
    h = harness
    topic = f"{NODE}/map_cloud"
    _ensure_outputs(h, [topic])
    # The map timer may publish the empty map before the first set is fused: wait for voxels.
    filled = h.spin_until(
        lambda: any(c.width * c.height > 0 for c in h.received[topic]), 120.0, every=h.publish_set
    )
    assert filled, f"the map stayed empty; diagnostics {h.diag()}\n{h.log()}"
    cloud = next(c for c in reversed(h.received[topic]) if c.width * c.height > 0)
    assert tuple(fields_of(cloud)) == MAP_CLOUD_FIELDS and cloud.header.frame_id == "world"
    res = h.call(h.query, QueryText.Request(texts=["chair", "lamp"], scope=QueryText.Request.MAP))
    assert res.success and [s.label for s in res.segments] == ["chair", "lamp"], res.message
    assert all(not s.masks and s.header.frame_id == "world" for s in res.segments)
    saved = h.call(h.save_map, MapFile.Request(path=str(tmp_path / "map.ply")))
    assert saved.success and (tmp_path / "map.ply").is_file(), saved.message
    voxels = int(saved.message.split()[1])
    cleared = h.call(h.clear_map, Trigger.Request())
    assert cleared.success and "cleared" in cleared.message
    loaded = h.call(h.load_map, MapFile.Request(path=str(tmp_path / "map.ply")))
    assert loaded.success and f"loaded {voxels} voxels" in loaded.message, loaded.message
    (tmp_path / "garbage.ply").write_bytes(b"garbage" * 50)
    other = SemanticMap(MapConfig(), MapIdentity("another_model.pt", "minilm", 384, 16, 16))
    other.save(tmp_path / "other.ply")
    (tmp_path / "file").write_text("x")
    bad = [
        (h.load_map, str(tmp_path / "missing.ply"), "no such map file"),
        (h.load_map, str(tmp_path / "garbage.ply"), "not a PLY"),
        (h.load_map, str(tmp_path / "other.ply"), "made by model 'another_model.pt'"),
        (h.save_map, str(tmp_path / "file" / "map.ply"), "cannot write map file"),
        (h.save_map, "  ", "path is empty"),
    ]
    for client, path, expected in bad:
        res = h.call(client, MapFile.Request(path=path))
        assert not res.success and expected in res.message and "\n" not in res.message, res
    # The map is as loaded: saving again writes as many voxels (no set was sent since).
    again = h.call(h.save_map, MapFile.Request(path=str(tmp_path / "again.ply")))
    assert again.success and f"saved {voxels} voxels" in again.message, again.message
    res = h.call(h.query, QueryText.Request(texts=["chair"], scope=7))
    assert not res.success and "scope must be VIEW (0) or MAP (1)" in res.message


def test_the_viewer_serves_from_the_node_and_a_hanging_client_stalls_nothing(harness):
    h = harness
    _ensure_outputs(h, [f"{NODE}/cam_a/depth"])
    found = re.search(r"viewer at (http://\S+)", h.log_path.read_text())
    assert found, h.log()
    with urllib.request.urlopen(found.group(1), timeout=30) as page:
        assert page.status == 200 and b"<html" in page.read(65536).lower()
    address = urllib.parse.urlsplit(found.group(1))
    with socket.create_connection((address.hostname, address.port), timeout=10) as hung:
        hung.sendall(b"GET / HTTP/1.1\r\nHost: robot\r\n")  # never finished, never read
        _ensure_outputs(h, [f"{NODE}/cam_a/depth", f"{NODE}/semantic_cloud"], timeout=60.0)
        res = h.call(h.query, QueryText.Request(texts=["chair"]))
        assert res.success, res.message
    _ensure_outputs(h, [f"{NODE}/cam_a/depth"], timeout=60.0)  # and after it went away


def test_lifecycle_cleanup_frees_the_scene_and_reconfigures(harness):
    h = harness
    _ensure_outputs(h, [f"{NODE}/cam_a/depth"])

    def transition(tid: int) -> None:
        res = h.call(h.change_state, ChangeState.Request(transition=Transition(id=tid)), 240.0)
        assert res.success, f"transition {tid} failed:\n{h.log()}"

    def state() -> str:
        return h.call(h.get_state, GetState.Request()).current_state.label

    def map_voxels() -> int:
        h.diagnostics.clear()
        assert h.spin_until(lambda: bool(h.diagnostics), 20.0)
        return int(h.diag()["map_voxels"])

    assert state() == "active"
    before = map_voxels()
    assert before > 0
    transition(Transition.TRANSITION_DEACTIVATE)
    transition(Transition.TRANSITION_ACTIVATE)
    assert map_voxels() == before  # the map survives deactivate / activate
    transition(Transition.TRANSITION_DEACTIVATE)
    assert state() == "inactive"
    assert h.spin_until(lambda: not h.seg.service_is_ready(), 20.0)
    transition(Transition.TRANSITION_CLEANUP)
    assert state() == "unconfigured"
    transition(Transition.TRANSITION_CONFIGURE)
    transition(Transition.TRANSITION_ACTIVATE)
    assert state() == "active"
    res = h.call(h.seg, SegmentPoint.Request(prompt_type=0, camera_name="cam_a", u=1.0, v=1.0))
    assert not res.success and "no encoded scene yet" in res.message  # cleanup dropped it
    assert map_voxels() == 0  # and the map
    h.wait_for_matches()
    _ensure_outputs(h, [f"{NODE}/cam_a/depth"])


def test_sigterm_exits_zero(harness):
    h = harness
    h.proc.send_signal(signal.SIGTERM)
    code = h.proc.wait(timeout=30)
    assert code == 0, h.log()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))

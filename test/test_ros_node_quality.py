"""Issue 8 quality acceptance, across processes, with the trained default checkpoints.

sim_rig publishes 2 cameras at 10 Hz with ground truth (``~/<camera>/gt_depth``,
``~/<camera>/gt_labels``); semanticsplat_node runs the shipped checkpoints (the model as
config/bringup.yaml has it: ``small_stereo``). Checked:

* depth: the semantic cloud's points lie, in median, within 5% of their distance to the camera
  from the true surfaces (the acceptance line; ``eval.metrics.surface_distance_ratio``), and,
  stricter, the published depth images are within 5% along each ray;
* labels: the node's labels agree with the true classes at least as often as the pipeline does
  on the same frames in-process (the model and classification `semanticsplat eval` measures,
  here at the camera's resolution), within 1 point; across scenes the two are compared in the
  README (`semanticsplat eval --rig stereo` vs `tools/stereo_quality.py`);
* services from this (another) process: segment_point in pixel and 3D-point form (the node's
  ``segment_refinement``, object), query_text for 'chair' and a synonym ('seat'), each with
  IoU >= 0.5 against ground truth and the centroid / box in fixed_frame.

Skipped until the default checkpoints are trained (assets/checkpoints).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from semanticsplat_ros.pipeline import DEFAULT_MODEL_CHECKPOINT

CHECKPOINTS = DEFAULT_MODEL_CHECKPOINT.parent
MODEL = "small_stereo"  # config/bringup.yaml's: the default fine-tuned for this stereo rig
REQUIRED = [
    CHECKPOINTS / n for n in ("semanticsplat_small_stereo.pt", "tiny_sam.pt", "tiny_lseg.pt")
]

pytestmark = [
    pytest.mark.ros,
    pytest.mark.slow,
    pytest.mark.skipif(
        not all(p.is_file() for p in REQUIRED),
        reason="default checkpoint not trained yet (assets/checkpoints)",
    ),
]

CAMERAS = ("head_left", "head_right")
W, H = 128, 96  # sim rig images
IW, IH = 96, 72  # model input (the node default)
CHAIR = 3  # CLASS_NAMES index


def _graph_yaml(path: Path) -> Path:
    path.write_text(
        f"""/**/semanticsplat_node:
  ros__parameters:
    cameras: ["head_left", "head_right"]
    fixed_frame: world
    model_checkpoint: {MODEL}
    device: auto
    input_width: {IW}
    input_height: {IH}
    cloud_stride: 1
    min_opacity: 0.0
    diagnostics_period_s: 0.5
/**/sim_rig:
  ros__parameters:
    rig: stereo
    cameras: ["head_left", "head_right"]
    scene_seed: 200005  # a hold-out scene with a dining set (chairs in view from the start)
    rate_hz: 10.0
    width: {W}
    height: {H}
"""
    )
    return path


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    pytest.importorskip("rclpy")
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2

    from semanticsplat_ros.ros.bringup import Graph, node_command, sim_rig_command
    from semanticsplat_ros.ros.conversions import stamp_to_nanoseconds
    from semanticsplat_ros.ros.tf_buffer import TfBuffer, TfListener

    tmp = tmp_path_factory.mktemp("quality")
    params = _graph_yaml(tmp / "graph.yaml")
    log = (tmp / "nodes.log").open("w")
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
    by_stamp: dict[str, dict[int, object]] = {}
    qos = QoSProfile(depth=30, reliability=ReliabilityPolicy.RELIABLE)

    def listen(msg_type, topic, key):
        by_stamp[key] = {}
        node.create_subscription(
            msg_type,
            topic,
            lambda m: by_stamp[key].__setitem__(stamp_to_nanoseconds(m.header.stamp), m),
            qos,
        )

    for c in CAMERAS:
        listen(Image, f"/semanticsplat_node/{c}/depth", f"depth/{c}")
        listen(Image, f"/semanticsplat_node/{c}/labels", f"labels/{c}")
        listen(Image, f"/sim_rig/{c}/gt_depth", f"gt_depth/{c}")
        listen(Image, f"/sim_rig/{c}/gt_labels", f"gt_labels/{c}")
        listen(Image, f"/{c}/image_raw", f"image/{c}")
        listen(CameraInfo, f"/{c}/camera_info", f"info/{c}")
    listen(PointCloud2, "/semanticsplat_node/semantic_cloud", "cloud")
    tf = TfBuffer(cache_duration=60.0)
    TfListener(node, tf)

    class Live:
        pass

    live = Live()
    live.node, live.executor, live.by_stamp, live.tf, live.graph = (
        node,
        executor,
        by_stamp,
        tf,
        graph,
    )

    def complete_stamps() -> list[int]:
        keys = [k for k in by_stamp if k != "cloud"]
        common = set(by_stamp["cloud"])
        for k in keys:
            common &= set(by_stamp[k])
        return sorted(common)

    def spin_for(pred, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not pred():
            assert not graph.exited(), (tmp / "nodes.log").read_text()[-3000:]
            executor.spin_once(timeout_sec=0.05)
        return pred()

    live.complete_stamps, live.spin_for = complete_stamps, spin_for
    try:
        assert spin_for(lambda: len(complete_stamps()) >= 3, 600.0), "no complete frames"
        yield live
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        graph.stop(signal.SIGTERM, 30.0)
        log.close()


def _frame(live, stamp: int):
    from semanticsplat_ros.ros.conversions import camera_info_to_intrinsics, image_to_numpy

    out = {}
    for c in CAMERAS:
        b = live.by_stamp
        out[c] = {
            "depth": image_to_numpy(b[f"depth/{c}"][stamp]),
            "labels": image_to_numpy(b[f"labels/{c}"][stamp]),
            "gt_depth": image_to_numpy(b[f"gt_depth/{c}"][stamp]),
            "gt_labels": image_to_numpy(b[f"gt_labels/{c}"][stamp]),
            "image": image_to_numpy(b[f"image/{c}"][stamp]),
            "K": camera_info_to_intrinsics(b[f"info/{c}"][stamp]).K,
            "c2w": live.tf.lookup("world", f"{c}_optical_frame", stamp * 1e-9),
        }
    return out


@pytest.mark.timeout(300)
def test_cloud_points_lie_within_5_percent_of_their_distance_from_the_true_surfaces(live):
    """The acceptance line: each cloud point's distance to the true surfaces (both cameras' true
    depth maps, unprojected) over its distance to the camera, in median."""
    from semanticsplat_ros.eval.metrics import surface_distance_ratio
    from semanticsplat_ros.geometry.projection import unproject_depth
    from semanticsplat_ros.ros.conversions import cloud_to_semantic

    ratios = []
    for stamp in live.complete_stamps()[-3:]:
        frame = _frame(live, stamp)
        surface, centres = [], []
        for c in CAMERAS:
            gt = torch.as_tensor(frame[c]["gt_depth"], dtype=torch.float32)
            K, c2w = (torch.as_tensor(frame[c][k], dtype=torch.float32) for k in ("K", "c2w"))
            surface.append(unproject_depth(gt, K, c2w)[gt > 0].numpy())
            centres.append(np.asarray(frame[c]["c2w"])[:3, 3])
        xyz = cloud_to_semantic(live.by_stamp["cloud"][stamp]).xyz
        assert len(xyz) > 0.5 * len(CAMERAS) * IW * IH, "the cloud lost most of its points"
        ratios.append(surface_distance_ratio(xyz, np.stack(centres), np.concatenate(surface)))
    median = float(np.median(np.concatenate(ratios)))
    assert median <= 0.05, f"semantic cloud: median distance to the true surfaces {median:.3f}"


@pytest.mark.timeout(300)
def test_depth_images_within_5_percent_along_the_ray(live):
    errors = []
    for stamp in live.complete_stamps()[-3:]:
        frame = _frame(live, stamp)
        for c in CAMERAS:
            gt, pred = frame[c]["gt_depth"], frame[c]["depth"]
            valid = gt > 0
            errors.append(np.abs(pred[valid] - gt[valid]) / gt[valid])
    median = float(np.median(np.concatenate(errors)))
    assert median <= 0.05, f"depth images: median relative error {median:.3f}"


@pytest.mark.timeout(300)
def test_labels_agree_with_truth_as_often_as_the_pipeline(live):
    from semanticsplat_ros.pipeline import CameraFrame, PipelineConfig, SemanticSplatPipeline

    pipeline = SemanticSplatPipeline(
        PipelineConfig(model_checkpoint=MODEL, input_width=IW, input_height=IH, device="cpu")
    )
    node_hits = ref_hits = total = 0
    for stamp in live.complete_stamps()[-3:]:
        frame = _frame(live, stamp)
        frames = [
            CameraFrame(c, frame[c]["image"], frame[c]["K"], frame[c]["c2w"], stamp * 1e-9)
            for c in CAMERAS
        ]
        scene = pipeline.encode(frames)
        for i, c in enumerate(CAMERAS):
            gt = frame[c]["gt_labels"]
            valid = gt != 255
            node_hits += int((frame[c]["labels"][valid] == gt[valid]).sum())
            ref_hits += int((scene.label_image(i)[valid] == gt[valid]).sum())
            total += int(valid.sum())
    node_acc, ref_acc = node_hits / total, ref_hits / total
    assert node_acc >= ref_acc - 0.01, f"node {node_acc:.3f} vs pipeline {ref_acc:.3f}"


def _chair_pixel_at(live, stamp: int):
    """(u, v) inside the largest chair region of the left camera at ``stamp``, or None."""
    from scipy import ndimage

    from semanticsplat_ros.ros.conversions import image_to_numpy

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


def _chair_pixel(live):
    """A stamp and a pixel inside the largest chair region of the left camera."""
    for stamp in reversed(live.complete_stamps()):
        picked = _chair_pixel_at(live, stamp)
        if picked is not None:
            return stamp, *picked
    pytest.fail("no chair covering 1% of the left image in the frames received")


def _call(live, client, request, timeout=120.0):
    assert client.wait_for_service(timeout_sec=timeout)
    future = client.call_async(request)
    assert live.spin_for(future.done, timeout)
    return future.result()


@pytest.mark.timeout(300)
def test_segment_point_and_query_text_iou(live):
    from geometry_msgs.msg import PointStamped

    from semanticsplat_msgs.srv import QueryText, SegmentPoint
    from semanticsplat_ros.ros.conversions import image_to_numpy, make_header

    # Wait for a frame with a chair; the services answer on the latest scene, so compare with
    # the ground truth of the scene's stamp (segments carry it).
    picked, u, v = _chair_pixel(live)
    seg = live.node.create_client(SegmentPoint, "/semanticsplat_node/segment_point")
    query = live.node.create_client(QueryText, "/semanticsplat_node/query_text")

    def gt_at(msg):
        from semanticsplat_ros.ros.conversions import stamp_to_nanoseconds

        stamp = stamp_to_nanoseconds(msg.header.stamp)
        assert live.spin_for(lambda: stamp in live.by_stamp["gt_labels/head_left"], 10.0)
        return image_to_numpy(live.by_stamp["gt_labels/head_left"][stamp]), stamp

    # The pixel must be picked on the frame the node answers on (its latest scene), which a
    # moving rig replaces about once a second: pick, call, and re-pick on the answer's frame
    # until the two agree.
    for _ in range(10):
        res = _call(
            live,
            seg,
            SegmentPoint.Request(prompt_type=0, camera_name="head_left", u=float(u), v=float(v)),
        )
        assert res.success, res.message
        gt, stamp = gt_at(res.segments[0])
        if stamp == picked:
            break
        again = _chair_pixel_at(live, stamp)
        if again is None:  # no chair in the newest frame: take the newest frame with one
            picked, u, v = _chair_pixel(live)
        else:
            picked, (u, v) = stamp, again
    assert stamp == picked, "the node's scene kept changing under the pixel prompt"
    from scipy import ndimage

    regions, _ = ndimage.label(gt == CHAIR)
    target = regions == regions[v, u] if regions[v, u] else gt == CHAIR
    best = max(
        _iou(image_to_numpy(s.masks[list(s.camera_names).index("head_left")]) == 255, target)
        for s in res.segments
    )
    assert best >= 0.5, f"pixel prompt: best IoU {best:.2f}"
    assert all(s.header.frame_id == "world" for s in res.segments)
    # 3D form: the true surface point of that pixel, given in the camera's optical frame.
    frame = _frame(live, stamp)["head_left"]
    z = float(frame["gt_depth"][v, u])
    K = frame["K"]
    point = PointStamped(header=make_header("head_left_optical_frame"))
    point.point.x = (u + 0.5 - K[0, 2]) / K[0, 0] * z
    point.point.y = (v + 0.5 - K[1, 2]) / K[1, 1] * z
    point.point.z = z
    res3d = _call(live, seg, SegmentPoint.Request(prompt_type=1, point=point))
    assert res3d.success, res3d.message
    gt3d, _ = gt_at(res3d.segments[0])
    regions3d, _ = ndimage.label(gt3d == CHAIR)
    target3d = regions3d == regions3d[v, u] if regions3d[v, u] else gt3d == CHAIR
    best3d = max(
        _iou(image_to_numpy(s.masks[list(s.camera_names).index("head_left")]) == 255, target3d)
        for s in res3d.segments
        if "head_left" in s.camera_names
    )
    assert best3d >= 0.5, f"3D prompt: best IoU {best3d:.2f}"
    c = res3d.segments[-1].centroid
    assert np.all(np.isfinite([c.x, c.y, c.z]))
    for text in ("chair", "seat"):
        res = _call(live, query, QueryText.Request(texts=[text]))
        assert res.success, res.message
        s = res.segments[0]
        gt_q, _ = gt_at(s)
        mask = image_to_numpy(s.masks[list(s.camera_names).index("head_left")]) == 255
        iou = _iou(mask, gt_q == CHAIR)
        assert iou >= 0.5, f"query {text!r}: IoU {iou:.2f}"
        assert s.points.header.frame_id == "world" and s.box.size.x >= 0

"""The node's services from another process, with the trained default checkpoints.

segment_point in pixel and 3D-point form (the node's ``segment_refinement``, object) and
query_text for 'chair' and a synonym ('seat'), each with IoU >= 0.5 against ground truth and the
centroid / box in fixed_frame. The services answer on the node's latest scene, which a moving rig
replaces about once a second; the rig here replays a single frame (``loop_s`` = one tick), so every
scene the node encodes has the same ground truth and the prompt made on one frame holds for the
scene that answers it.
"""

from __future__ import annotations

import numpy as np
import pytest
from geometry_msgs.msg import PointStamped
from quality_graph import CHAIR, Live, chair_pixel_at, iou, running_graph
from scipy import ndimage

from semanticsplat_msgs.srv import QueryText, SegmentPoint
from semanticsplat_ros.ros.conversions import image_to_numpy, make_header, stamp_to_nanoseconds

pytestmark = [pytest.mark.ros, pytest.mark.slow]


@pytest.fixture(scope="module")
def still(tmp_path_factory):
    with running_graph(tmp_path_factory.mktemp("services"), loop_s=0.1, frames=2) as graph:
        yield graph


def _truth(live: Live, msg) -> tuple[np.ndarray, int]:
    """The left camera's true labels at the stamp of an answer's segment."""
    stamp = stamp_to_nanoseconds(msg.header.stamp)
    assert live.spin_for(lambda: stamp in live.by_stamp["gt_labels/head_left"], 10.0)
    return image_to_numpy(live.by_stamp["gt_labels/head_left"][stamp]), stamp


def _best_iou(segments, target: np.ndarray) -> float:
    return max(
        iou(image_to_numpy(s.masks[list(s.camera_names).index("head_left")]) == 255, target)
        for s in segments
        if "head_left" in s.camera_names
    )


def _region(gt: np.ndarray, u: int, v: int) -> np.ndarray:
    """The chair region holding (u, v), or every chair pixel when (u, v) is on none."""
    regions, _ = ndimage.label(gt == CHAIR)
    return regions == regions[v, u] if regions[v, u] else gt == CHAIR


@pytest.mark.timeout(300)
def test_segment_point_and_query_text_iou(still):
    picked = still.complete_stamps()[-1]
    pixel = chair_pixel_at(still, picked)
    assert pixel is not None, "no chair covering 1% of the left image"
    u, v = pixel
    seg = still.node.create_client(SegmentPoint, "/semanticsplat_node/segment_point")
    query = still.node.create_client(QueryText, "/semanticsplat_node/query_text")
    res = still.call(
        seg, SegmentPoint.Request(prompt_type=0, camera_name="head_left", u=float(u), v=float(v))
    )
    assert res.success, res.message
    gt, _ = _truth(still, res.segments[0])
    picked_gt = image_to_numpy(still.by_stamp["gt_labels/head_left"][picked])
    assert np.array_equal(gt, picked_gt), "the rig moved: the answer's truth differs"
    best = _best_iou(res.segments, _region(gt, u, v))
    assert best >= 0.5, f"pixel prompt: best IoU {best:.2f}"
    assert all(s.header.frame_id == "world" for s in res.segments)
    # 3D form: the true surface point of that pixel, given in the camera's optical frame.
    frame = still.frame(picked)["head_left"]
    z = float(frame["gt_depth"][v, u])
    K = frame["K"]
    point = PointStamped(header=make_header("head_left_optical_frame"))
    point.point.x = (u + 0.5 - K[0, 2]) / K[0, 0] * z
    point.point.y = (v + 0.5 - K[1, 2]) / K[1, 1] * z
    point.point.z = z
    res3d = still.call(seg, SegmentPoint.Request(prompt_type=1, point=point))
    assert res3d.success, res3d.message
    gt3d, _ = _truth(still, res3d.segments[0])
    best3d = _best_iou(res3d.segments, _region(gt3d, u, v))
    assert best3d >= 0.5, f"3D prompt: best IoU {best3d:.2f}"
    c = res3d.segments[-1].centroid
    assert np.all(np.isfinite([c.x, c.y, c.z]))
    for text in ("chair", "seat"):
        res = still.call(query, QueryText.Request(texts=[text]))
        assert res.success, res.message
        s = res.segments[0]
        gt_q, _ = _truth(still, s)
        mask = image_to_numpy(s.masks[list(s.camera_names).index("head_left")]) == 255
        score = iou(mask, gt_q == CHAIR)
        assert score >= 0.5, f"query {text!r}: IoU {score:.2f}"
        assert s.points.header.frame_id == "world" and s.box.size.x >= 0

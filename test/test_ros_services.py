"""ros/services.py: service requests -> pipeline -> responses, without a running ROS graph.

Random weights (plumbing only): what is checked is the contract — conventions (ROS pixel
centres, xyzw quaternions, frames, headers), and that every bad request gets success=false with a
message naming the problem.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from geometry_msgs.msg import PointStamped

from semanticsplat_msgs.srv import QueryText, SegmentPoint, SetClasses
from semanticsplat_ros.data.sim_rig import SimRig, SimRigConfig
from semanticsplat_ros.mapping import MapConfig, map_for_model
from semanticsplat_ros.pipeline import (
    CameraFrame,
    PipelineConfig,
    PointNotVisibleError,
    SemanticSplatPipeline,
)
from semanticsplat_ros.queries import oriented_box
from semanticsplat_ros.ros.conversions import (
    cloud_to_semantic,
    fields_of,
    image_to_numpy,
    make_header,
    make_transform,
    rotmat_to_wxyz,
)
from semanticsplat_ros.ros.map_host import MAP_CLOUD_FIELDS, MapHost
from semanticsplat_ros.ros.services import (
    NO_SCENE_MESSAGE,
    LatestScene,
    answer_query_text,
    answer_segment_point,
    answer_set_classes,
    box_to_msg,
    check_ros_pixel,
    check_texts,
    point_to_fixed_frame,
    ros_pixel_to_core,
)
from semanticsplat_ros.ros.tf_buffer import TfBuffer

W, H = 80, 60
CAMERAS = ("cam_a", "cam_b")


@pytest.fixture(scope="module")
def pipeline() -> SemanticSplatPipeline:
    torch.manual_seed(0)
    return SemanticSplatPipeline(
        PipelineConfig(random_weights=True, input_width=64, input_height=48, device="cpu")
    )


@pytest.fixture(scope="module")
def rig_frame():
    return SimRig(SimRigConfig(rig="stereo", cameras=CAMERAS, width=W, height=H)).render(0.5)


@pytest.fixture(scope="module")
def latest(pipeline, rig_frame) -> LatestScene:
    frames = [
        CameraFrame(name, rig_frame.images[i], rig_frame.K[i], rig_frame.c2w[i], stamp=12.25)
        for i, name in enumerate(CAMERAS)
    ]
    headers = {name: make_header(f"{name}_optical_frame", 12.25) for name in CAMERAS}
    return LatestScene(pipeline.encode(frames), headers)


def pixel_request(camera: str, u: float, v: float) -> SegmentPoint.Request:
    return SegmentPoint.Request(
        prompt_type=SegmentPoint.Request.PIXEL, camera_name=camera, u=float(u), v=float(v)
    )


def point_request(xyz, frame: str, stamp: float = 0.0) -> SegmentPoint.Request:
    point = PointStamped(header=make_header(frame, stamp))
    point.point.x, point.point.y, point.point.z = (float(c) for c in xyz)
    return SegmentPoint.Request(prompt_type=SegmentPoint.Request.POINT, point=point)


# --------------------------------------------------------------------------------------------
# Conventions
# --------------------------------------------------------------------------------------------


def test_ros_pixels_have_integer_centres():
    assert ros_pixel_to_core(0.0, 0.0) == (0.5, 0.5)
    assert ros_pixel_to_core(79.0, 59.0) == (79.5, 59.5)
    check_ros_pixel("c", -0.5, -0.5, W, H)  # the top-left pixel's edge is inside
    check_ros_pixel("c", W - 0.51, H - 0.51, W, H)
    for u, v in [(W - 0.5, 0.0), (0.0, H - 0.5), (-0.6, 3.0), (float("nan"), 1.0)]:
        with pytest.raises(ValueError, match="camera 'c'"):
            check_ros_pixel("c", u, v, W, H)


def test_box_quaternion_goes_from_wxyz_to_xyzw():
    angle = 0.7
    R = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    rng = np.random.default_rng(0)
    local = rng.uniform(-1, 1, (500, 3)) * np.array([2.0, 0.5, 0.1])
    pts = torch.as_tensor(local @ R.T + np.array([1.0, 2.0, 3.0]))
    box = oriented_box(pts.float())
    msg = box_to_msg(box)
    q = box.quat_wxyz.double().numpy()
    q = q / np.linalg.norm(q)
    o = msg.center.orientation
    # Same rotation (q and -q are equal rotations).
    sign = np.sign(q[0]) if q[0] != 0 else 1.0
    np.testing.assert_allclose(
        np.array([o.w, o.x, o.y, o.z]) * np.sign(o.w or 1.0), q * sign, atol=1e-6
    )
    assert msg.center.position.x == pytest.approx(float(box.center[0]), abs=1e-5)
    assert msg.size.x == pytest.approx(float(box.size[0]), abs=1e-5)
    # An empty box keeps its NaN centre, with a valid identity orientation.
    empty = box_to_msg(oriented_box(torch.zeros(0, 3)))
    assert np.isnan(empty.center.position.x) and empty.center.orientation.w == 1.0


def test_check_texts_names_the_bad_entry():
    assert check_texts([" chair ", "a seat"]) == ["chair", "a seat"]
    with pytest.raises(ValueError, match="texts is empty"):
        check_texts([])
    with pytest.raises(ValueError, match=r"texts\[1\]: query text is empty"):
        check_texts(["chair", "   "])
    with pytest.raises(ValueError, match=r"texts\[0\] has 10240 characters; the limit is 256"):
        check_texts(["x" * 10240])
    with pytest.raises(ValueError, match=r"texts\[0\].*257 characters"):
        check_texts(["y" * 257])


def test_point_is_transformed_into_the_fixed_frame_at_its_stamp():
    tf = TfBuffer(cache_duration=30.0)
    # world -> base moves 1 m along x between t=10 and t=12.
    rot = np.eye(4)
    tf.set_transform("world", "base", 10.0, make_transform([0, 0, 0], [1, 0, 0, 0]))
    tf.set_transform("world", "base", 12.0, make_transform([1, 0, 0], [1, 0, 0, 0]))
    rot[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
    tf.set_transform(
        "base", "tool", 0.0, make_transform([0, 0, 0.5], rotmat_to_wxyz(rot[:3, :3])), static=True
    )
    req = point_request([1.0, 0.0, 0.0], "tool", stamp=11.0)
    p = point_to_fixed_frame(req.point, "world", tf)
    np.testing.assert_allclose(p, [0.5, 1.0, 0.5], atol=1e-9)
    # Stamp 0 = latest transform (t = 12).
    p = point_to_fixed_frame(point_request([1.0, 0.0, 0.0], "tool").point, "world", tf)
    np.testing.assert_allclose(p, [1.0, 1.0, 0.5], atol=1e-9)
    # Empty frame = fixed frame; no lookup needed.
    p = point_to_fixed_frame(point_request([1.0, 2.0, 3.0], "").point, "world", None)
    np.testing.assert_allclose(p, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="cannot transform the point from 'nowhere' to 'world'"):
        point_to_fixed_frame(point_request([0, 0, 0], "nowhere").point, "world", tf)
    with pytest.raises(ValueError, match="NaN"):
        point_to_fixed_frame(point_request([np.nan, 0, 0], "world").point, "world", tf)


# --------------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------------


def test_segment_point_pixel_form(pipeline, latest):
    res = answer_segment_point(pipeline, latest, pixel_request("cam_a", 40, 30), "world")
    assert res.success, res.message
    assert [s.label for s in res.segments] == ["small", "medium", "large"]
    for seg in res.segments:
        assert seg.header.frame_id == "world"
        assert seg.header.stamp.sec == 12 and seg.header.stamp.nanosec == 250_000_000
        assert 0.0 <= seg.score <= 1.0
        assert seg.camera_names[0] == "cam_a"
        mask_msg = seg.masks[0]
        assert mask_msg.header.frame_id == "cam_a_optical_frame"
        assert (mask_msg.width, mask_msg.height, mask_msg.encoding) == (W, H, "mono8")
        mask = image_to_numpy(mask_msg)
        assert set(np.unique(mask)) <= {0, 255}
        assert seg.pixel_counts[0] == int((mask == 255).sum())
        pts = cloud_to_semantic(seg.points)
        assert seg.points.header.frame_id == "world"
        if len(pts.xyz):
            np.testing.assert_allclose(
                [seg.centroid.x, seg.centroid.y, seg.centroid.z], pts.xyz.mean(0), atol=1e-3
            )


def test_segment_point_prompts_the_clicked_pixel_in_the_core_convention(pipeline, latest):
    """ROS pixel (u, v) must reach the pipeline as (u + 0.5, v + 0.5)."""
    ros = answer_segment_point(pipeline, latest, pixel_request("cam_b", 20, 10), "world")
    direct = pipeline.segment_pixel(latest.scene, "cam_b", 20.5, 10.5)
    assert ros.success, ros.message
    for seg, ref in zip(ros.segments, direct, strict=True):
        i = list(seg.camera_names).index("cam_b")
        np.testing.assert_array_equal(image_to_numpy(seg.masks[i]) == 255, ref.masks["cam_b"])


def test_segment_point_3d_form_matches_the_pixel_it_projects_to(pipeline, latest):
    scene = latest.scene
    # The 3D point of the scene's depth at cam_a's centre pixel, given in cam_a's own frame.
    depth = scene.depth_image(0)
    z = float(depth[30, 40])
    K = scene.K[0].numpy() * np.array([[W / 64], [H / 48], [1]])
    p_cam = np.array([(40.5 - K[0, 2]) / K[0, 0] * z, (30.5 - K[1, 2]) / K[1, 1] * z, z])
    tf = TfBuffer()
    tf.set_transform("world", "cam_a_optical_frame", 0.0, scene.c2w[0].double().numpy(), True)
    res = answer_segment_point(
        pipeline, latest, point_request(p_cam, "cam_a_optical_frame"), "world", tf
    )
    assert res.success, res.message
    assert "in 'world'" in res.message
    assert len(res.segments) == 3 and all(s.header.frame_id == "world" for s in res.segments)
    assert "cam_a" in list(res.segments[0].camera_names)


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (pixel_request("cam_z", 1, 1), "unknown camera 'cam_z'"),
        (pixel_request("", 1, 1), "camera_name is empty"),
        (pixel_request("cam_a", 80, 10), "outside camera 'cam_a'"),
        (pixel_request("cam_a", 10, -3), "outside camera 'cam_a'"),
        (pixel_request("cam_a", float("nan"), 3), "not finite"),
        (point_request([1, 2, 3], "nowhere"), "cannot transform the point from 'nowhere'"),
        (point_request([float("inf"), 2, 3], "world"), "NaN or Inf"),
        (point_request([0.0, 0.0, -50.0], "world"), "not visible in any camera"),
        (SegmentPoint.Request(prompt_type=7), "prompt_type must be PIXEL (0) or POINT (1)"),
    ],
)
def test_segment_point_bad_requests_fail_with_a_message(pipeline, latest, request_, expected):
    res = answer_segment_point(pipeline, latest, request_, "world", TfBuffer())
    assert not res.success
    assert expected in res.message
    assert len(res.segments) == 0


def test_calls_before_the_first_scene_fail_clearly(pipeline):
    res = answer_segment_point(pipeline, None, pixel_request("cam_a", 1, 1), "world")
    assert not res.success and res.message == NO_SCENE_MESSAGE
    res = answer_query_text(pipeline, None, QueryText.Request(texts=["chair"]), "world")
    assert not res.success and "no encoded scene yet" in res.message
    # Text checks come first: a bad text is reported even without a scene.
    res = answer_query_text(pipeline, None, QueryText.Request(texts=[""]), "world")
    assert not res.success and "texts[0]: query text is empty" in res.message


def test_query_text_one_segment_per_text(pipeline, latest):
    res = answer_query_text(
        pipeline, latest, QueryText.Request(texts=["chair", "seat", "couch"]), "world"
    )
    assert res.success, res.message
    assert [s.label for s in res.segments] == ["chair", "seat", "couch"]
    for seg in res.segments:
        assert list(seg.camera_names) == list(CAMERAS)
        assert [m.header.frame_id for m in seg.masks] == [f"{c}_optical_frame" for c in CAMERAS]
        assert seg.points.header.frame_id == "world"
        assert len(cloud_to_semantic(seg.points).xyz) <= sum(seg.pixel_counts)


@pytest.mark.parametrize(
    ("texts", "threshold", "expected"),
    [
        ([], 0.0, "texts is empty"),
        (["chair", ""], 0.0, "texts[1]: query text is empty"),
        (["z" * 10_000], 0.0, "texts[0] has 10000 characters; the limit is 256"),
        (["bad\x07bell"], 0.0, "control characters"),
        (["chair"], 1.5, "threshold must be in (0, 1)"),
        (["chair"], float("nan"), "threshold must be in (0, 1)"),
    ],
)
def test_query_text_bad_requests_fail_with_a_message(pipeline, latest, texts, threshold, expected):
    res = answer_query_text(
        pipeline, latest, QueryText.Request(texts=texts, threshold=threshold), "world"
    )
    assert not res.success
    assert expected in res.message


def test_query_text_reuses_the_cached_language_field(pipeline, latest, monkeypatch):
    """Answering a text query must not run the network again: only the text encoder."""

    def no_model(*args, **kwargs):
        raise AssertionError("the model ran during a text query")

    monkeypatch.setattr(pipeline.model, "forward", no_model)
    res = answer_query_text(pipeline, latest, QueryText.Request(texts=["table"]), "world")
    assert res.success, res.message


def test_set_classes_relabels_the_latest_scene(pipeline, latest):
    before = pipeline.classes
    try:
        res, relabelled = answer_set_classes(
            pipeline,
            latest,
            SetClasses.Request(names=["mug", "table"], prompts=["a coffee mug", "a table"]),
        )
        assert res.success, res.message
        assert "mug, table" in res.message
        assert relabelled is not latest and relabelled.scene.classes == ("mug", "table")
        assert int(relabelled.scene.labels.max()) <= 1
        assert relabelled.image_headers is latest.image_headers
        for names, prompts, expected in [
            ([], [], "names is empty"),
            (["a", "b"], ["only one"], "got 1 prompts for 2 names"),
            (["a", "a"], [], "unique"),
            (["ok", ""], [], "names: texts[1]: query text is empty"),
        ]:
            bad, same = answer_set_classes(
                pipeline, latest, SetClasses.Request(names=names, prompts=prompts)
            )
            assert not bad.success and expected in bad.message, bad.message
            assert same is latest
        assert pipeline.classes == ("mug", "table")  # failed calls changed nothing
    finally:
        pipeline.set_classes(before)


def test_internal_errors_are_answered_not_raised(pipeline, latest, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("mask decoder exploded")

    monkeypatch.setattr(pipeline, "segment_pixel", boom)
    traces: list[str] = []
    res = answer_segment_point(
        pipeline, latest, pixel_request("cam_a", 3, 3), "world", None, traces.append
    )
    assert not res.success
    assert res.message == "internal error (RuntimeError): mask decoder exploded"
    assert traces and "mask decoder exploded" in traces[0]


# --------------------------------------------------------------------------------------------
# The map's answers (ros/map_host.py)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def host(pipeline, latest) -> MapHost:
    scene = latest.scene
    config = MapConfig(max_range_m=20.0)
    host = MapHost(map_for_model(config, pipeline.model, "random-weights", "minilm"))
    host.fuse(scene, pipeline)
    return host


def test_points_no_camera_sees_are_answered_from_the_map(pipeline, latest, host, rig_frame):
    cloud = host.map.to_cloud()
    # The latest scene turned around: its cameras see none of the map's voxels.
    turned = latest.scene.c2w.clone()
    turned[:, :3, :3] = -turned[:, :3, :3]
    away = LatestScene(dataclasses.replace(latest.scene, c2w=turned), latest.image_headers)
    point = cloud.xyz[len(cloud.xyz) // 2].astype(np.float64)
    with pytest.raises(PointNotVisibleError):
        pipeline.segment_point(away.scene, point)
    header = make_header("world", 12.25)
    res = answer_segment_point(
        pipeline,
        away,
        point_request(point, "world"),
        "world",
        TfBuffer(),
        from_map=lambda p: host.segment_point(p, header),
    )
    assert res.success and "answered from the semantic map" in res.message, res.message
    assert len(res.segments) == 1 and not res.segments[0].masks
    assert res.segments[0].label in pipeline.classes
    # Neither the cameras nor the map: both reasons in one line.
    res = answer_segment_point(
        pipeline,
        away,
        point_request([0.0, 0.0, -50.0], "world"),
        "world",
        TfBuffer(),
        from_map=lambda p: host.segment_point(p, header),
    )
    assert not res.success and "nor does the semantic map: no map voxel" in res.message


def test_map_scope_queries_answer_per_text(pipeline, host):
    header = make_header("world", 12.25)
    request = QueryText.Request(texts=["chair", "floor"], scope=QueryText.Request.MAP)
    res = host.query(pipeline, request, header)
    assert res.success and [s.label for s in res.segments] == ["chair", "floor"]
    assert all(s.header.frame_id == "world" and not s.masks for s in res.segments)
    found = [s for s in res.segments if s.points.width]
    assert all(np.isfinite([s.centroid.x, s.centroid.y, s.centroid.z]).all() for s in found)
    for bad, expected in (([""], "texts[0]"), (["chair"] * 0, "texts is empty")):
        res = host.query(pipeline, QueryText.Request(texts=bad, scope=1), header)
        assert not res.success and expected in res.message
    res = host.query(pipeline, QueryText.Request(texts=["chair"], threshold=1.0), header)
    assert not res.success and "threshold" in res.message


def test_map_cloud_message_fields(host):
    msg = host.cloud_msg(make_header("world", 1.0))
    assert tuple(fields_of(msg)) == MAP_CLOUD_FIELDS
    assert msg.width * msg.height == len(host.map)

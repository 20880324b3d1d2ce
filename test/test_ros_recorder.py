"""ros/recorder.py: keyframes, message -> ScanNet scene round trips (no ROS graph), and the live
recorder on the sim rig over Fast DDS."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo

from semanticsplat_ros.data.scannet import ScanNetDataset, ScanNetScene, read_matrix
from semanticsplat_ros.ros.conversions import (
    camera_info_to_intrinsics,
    check_rigid,
    make_header,
    make_transform,
    numpy_to_image,
)
from semanticsplat_ros.ros.recorder_params import validate_recorder_params
from semanticsplat_ros.ros.recording import (
    CameraRecord,
    DatasetRecorder,
    RecorderStats,
    SkippedSetError,
    decode_frame,
    depth_to_metres,
    is_keyframe,
    lookup_pose,
    pose_change,
    record_to_views,
)
from semanticsplat_ros.ros.tf_buffer import TfBuffer

ROOT = Path(__file__).resolve().parents[1]
W, H = 64, 48


def _rot_z(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])


def _pose(t=(0.0, 0.0, 0.0), yaw_deg: float = 0.0) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = _rot_z(yaw_deg)
    T[:3, 3] = t
    return T


def _camera_info(fx=50.25, fy=51.75, cx=31.25, cy=23.75, width=W, height=H, frame="cam_optical"):
    """A CameraInfo in the ROS convention (pixel centres on integers), no distortion."""
    msg = CameraInfo()
    msg.header = make_header(frame, 12.5)
    msg.width, msg.height = width, height
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = [float(fx), 0.0, float(cx), 0.0, float(fy), float(cy), 0.0, 0.0, 1.0]
    msg.r = np.eye(3).reshape(-1).tolist()
    msg.p = [float(fx), 0.0, float(cx), 0.0, 0.0, float(fy), float(cy), 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


# --------------------------------------------------------------------------------------------
# Keyframes
# --------------------------------------------------------------------------------------------


def test_keyframe_rule_first_set_translation_and_rotation_thresholds():
    # The first set is always written.
    assert is_keyframe(None, _pose(), 0.05, 5.0)
    last = _pose((1.0, 2.0, 0.5), 30.0)
    # Parked: neither threshold reached.
    assert not is_keyframe(last, last, 0.05, 5.0)
    assert not is_keyframe(last, _pose((1.03, 2.0, 0.5), 33.0), 0.05, 5.0)
    # Translation alone (3D distance of the camera centres) reaches its threshold.
    assert is_keyframe(last, _pose((1.03, 2.04, 0.5), 30.0), 0.05, 5.0)  # 5 cm
    # Rotation alone (turning in place) reaches its threshold.
    assert is_keyframe(last, _pose((1.0, 2.0, 0.5), 35.5), 0.05, 5.0)
    assert is_keyframe(last, _pose((1.0, 2.0, 0.5), 24.0), 0.05, 5.0)  # either direction
    # Both thresholds 0: every set.
    assert is_keyframe(last, last, 0.0, 0.0)
    t, r = pose_change(last, _pose((1.3, 2.4, 0.5), 30.0 - 120.0))
    assert t == pytest.approx(0.5) and r == pytest.approx(120.0)
    # Tiny angles are exact (atan2, not arccos of a trace).
    assert pose_change(last, _pose((1.0, 2.0, 0.5), 30.001))[1] == pytest.approx(0.001, rel=1e-6)


def test_dataset_recorder_tracks_the_last_written_pose(tmp_path):
    rec = DatasetRecorder(tmp_path, ["cam"], min_translation_m=0.1, min_rotation_deg=10.0)
    rgb = np.zeros((H, W, 3), np.uint8)
    K = camera_info_to_intrinsics(_camera_info()).K

    def record(x: float) -> CameraRecord:
        return CameraRecord("cam", 0.0, rgb, K, _pose((x, 0.0, 0.0)))

    assert rec.is_keyframe(_pose((0.0, 0.0, 0.0)))
    rec.write_set([record(0.0)])
    # 6 cm, then 12 cm from the *written* pose (not from the last seen one).
    assert not rec.is_keyframe(_pose((0.06, 0.0, 0.0)))
    assert rec.is_keyframe(_pose((0.12, 0.0, 0.0)))


# --------------------------------------------------------------------------------------------
# Messages -> record -> write_scene -> ScanNetScene
# --------------------------------------------------------------------------------------------


def test_a_set_round_trips_through_write_scene_with_the_same_pose_k_image_and_depth(tmp_path):
    rng = np.random.default_rng(0)
    infos = {
        "left": _camera_info(frame="left_optical"),
        "right": _camera_info(fx=60.5, fy=60.5, cx=32.0, cy=24.25, frame="right_optical"),
    }
    rgb = {c: rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for c in infos}
    depth_mm = rng.integers(0, 9000, (H, W)).astype(np.uint16)
    c2w = {
        "left": make_transform(
            [0.5, -1.25, 1.5], [0.9, 0.1, -0.3, 0.2] / np.linalg.norm([0.9, 0.1, -0.3, 0.2])
        ),
        "right": _pose((0.61, -1.25, 1.5), 17.0),
    }
    # bgr8 on the wire for the left camera: decoding must give RGB back.
    images = {
        "left": numpy_to_image(rgb["left"][..., ::-1].copy(), "bgr8", infos["left"].header),
        "right": numpy_to_image(rgb["right"], "rgb8", infos["right"].header),
    }
    depth = {"left": None, "right": numpy_to_image(depth_mm, "16UC1", infos["right"].header)}
    rec = DatasetRecorder(tmp_path, ["left", "right"], scene_prefix="t", near=0.5, far=8.0)
    records = []
    for c in ("left", "right"):
        decoded = decode_frame(c, 12.5, images[c], infos[c], depth[c])
        assert decoded.frame_id == f"{c}_optical"
        records.append(CameraRecord(c, 12.5, decoded.rgb, decoded.K, c2w[c], decoded.depth))
    assert rec.write_set(records) == 0
    for c in ("left", "right"):
        scene = ScanNetScene(tmp_path / f"t_{c}")
        assert len(scene) == 1 and (scene.near, scene.far) == (0.5, 8.0)
        views = scene.load_views([0])
        np.testing.assert_allclose(views.c2w[0].double().numpy(), c2w[c], atol=1e-6)
        # One conversion path: our K (centres +0.5) in memory, camera_info's K on disk.
        K_ours = camera_info_to_intrinsics(infos[c]).K
        np.testing.assert_allclose(views.K[0].double().numpy(), K_ours, atol=1e-6)
        on_disk = read_matrix(tmp_path / f"t_{c}" / "intrinsic" / "intrinsic_color.txt")
        np.testing.assert_allclose(on_disk[:3, :3].reshape(-1), infos[c].k, atol=1e-12)
        loaded = (views.images[0].permute(1, 2, 0).numpy() * 255.0).round().astype(np.uint8)
        np.testing.assert_array_equal(loaded, rgb[c])
    right_depth = ScanNetScene(tmp_path / "t_right").load_views([0]).depth[0].numpy()
    np.testing.assert_allclose(right_depth, depth_mm / 1000.0, atol=1e-6)
    # No depth topic: zeros (unknown), so that the loader finds a depth file per frame.
    assert ScanNetScene(tmp_path / "t_left").load_views([0]).depth.abs().max() == 0


def test_record_to_views_shapes_and_ranges():
    rgb = np.full((H, W, 3), 255, np.uint8)
    K = camera_info_to_intrinsics(_camera_info()).K
    views = record_to_views(CameraRecord("c", 1.0, rgb, K, _pose()), 0.25, 10.0)
    assert views.images.shape == (1, 3, H, W) and float(views.images.max()) == 1.0
    assert views.K.shape == (1, 3, 3) and views.c2w.shape == (1, 4, 4)
    assert views.depth.shape == (1, H, W)
    with pytest.raises(ValueError, match="NaN"):
        bad = _pose()
        bad[0, 3] = np.nan
        record_to_views(CameraRecord("c", 1.0, rgb, K, bad), 0.25, 10.0)


def test_bad_messages_skip_with_a_reason():
    info = _camera_info()
    rgb = np.zeros((H, W, 3), np.uint8)
    ok = numpy_to_image(rgb, "rgb8", info.header)
    cases = [
        ("size_mismatch", numpy_to_image(np.zeros((H, W + 2, 3), np.uint8), "rgb8"), info, None),
        (
            "bad_image",
            numpy_to_image(np.zeros((H, W), np.uint16), "16UC1", info.header),
            info,
            None,
        ),
        ("bad_depth", ok, info, numpy_to_image(np.zeros((H, W), np.uint8), "mono8", info.header)),
        (
            "size_mismatch",
            ok,
            info,
            numpy_to_image(np.zeros((H // 2, W // 2), np.float32), "32FC1"),
        ),
        (
            "bad_depth",
            ok,
            info,
            numpy_to_image(np.zeros((H, W), np.float32), "32FC1", make_header("other")),
        ),
    ]
    distorted = _camera_info()
    distorted.d = [0.1, 0.0, 0.0, 0.0, 0.0]
    cases.append(("bad_camera_info", ok, distorted, None))
    no_frame = _camera_info(frame="")
    cases.append(("no_frame_id", numpy_to_image(rgb, "rgb8"), no_frame, None))
    for reason, image, camera_info, depth in cases:
        with pytest.raises(SkippedSetError) as err:
            decode_frame("cam", 1.0, image, camera_info, depth)
        assert err.value.reason == reason, (reason, str(err.value))


def test_depth_to_metres_reads_metres_and_millimetres_and_zeroes_invalid_pixels():
    metres = np.array([[1.5, np.nan], [-1.0, np.inf]], np.float32)
    np.testing.assert_array_equal(
        depth_to_metres(numpy_to_image(metres, "32FC1")), [[1.5, 0.0], [0.0, 0.0]]
    )
    mm = np.array([[1500, 0], [65535, 1]], np.uint16)
    np.testing.assert_allclose(
        depth_to_metres(numpy_to_image(mm, "16UC1")), [[1.5, 0.0], [65.535, 0.001]], rtol=1e-6
    )


def test_changed_intrinsics_and_max_frames_refuse_the_set(tmp_path):
    rec = DatasetRecorder(tmp_path, ["a", "b"], max_frames=2, min_translation_m=0.0)
    rgb = np.zeros((H, W, 3), np.uint8)
    K = camera_info_to_intrinsics(_camera_info()).K
    K2 = camera_info_to_intrinsics(_camera_info(fx=55.0)).K

    def records(Kb: np.ndarray, x: float) -> list[CameraRecord]:
        return [
            CameraRecord("a", x, rgb, K, _pose((x, 0, 0))),
            CameraRecord("b", x, rgb, Kb, _pose((x + 0.11, 0, 0))),
        ]

    assert rec.write_set(records(K, 0.0)) == 0
    with pytest.raises(SkippedSetError) as err:
        rec.write_set(records(K2, 1.0))
    assert err.value.reason == "intrinsics_changed"
    # Nothing of the refused set reached the disk: indices stay aligned.
    assert sorted(p.name for p in (tmp_path / "rec_a" / "color").iterdir()) == ["0.png"]
    assert rec.write_set(records(K, 2.0)) == 1 and rec.done
    with pytest.raises(SkippedSetError) as err:
        rec.write_set(records(K, 3.0))
    assert err.value.reason == "max_frames"
    # A second recording into the same scene folders is refused, not merged.
    with pytest.raises(FileExistsError, match="already holds frames"):
        DatasetRecorder(tmp_path, ["a", "b"])
    DatasetRecorder(tmp_path, ["a", "b"], scene_prefix="rec2")  # another prefix is fine


def test_a_failed_write_removes_the_frame_from_every_camera(tmp_path):
    rec = DatasetRecorder(tmp_path, ["a", "b"], min_translation_m=0.0)
    rgb = np.zeros((H, W, 3), np.uint8)
    K = camera_info_to_intrinsics(_camera_info()).K
    records = [CameraRecord(c, 0.0, rgb, K, _pose()) for c in ("a", "b")]
    assert rec.write_set(records) == 0
    # Camera b's pose folder becomes unwritable (a file in its place): a is written first, then
    # b fails, and a's frame 1 must go again so that frame indices stay aligned.
    pose_dir = tmp_path / "rec_b" / "pose"
    for f in pose_dir.iterdir():
        f.unlink()
    pose_dir.rmdir()
    pose_dir.write_text("not a folder")
    with pytest.raises(SkippedSetError) as err:
        rec.write_set(records)
    assert err.value.reason == "write_failed" and rec.frames_written == 1
    assert sorted(p.name for p in (tmp_path / "rec_a" / "color").iterdir()) == ["0.png"]
    assert sorted(p.name for p in (tmp_path / "rec_a" / "pose").iterdir()) == ["0.txt"]
    # A pose that is not rigid is refused before anything is written.
    bad = [CameraRecord(c, 0.0, rgb, K, np.full((4, 4), np.nan)) for c in ("a", "b")]
    with pytest.raises(SkippedSetError) as err:
        rec.write_set(bad)
    assert err.value.reason == "bad_record"


def test_lookup_pose_reports_missing_tf_and_nan_poses():
    tf = TfBuffer(cache_duration=10.0)
    tf.set_transform("world", "cam_optical", 1.0, _pose((1.0, 0.0, 0.0)))
    tf.set_transform("world", "cam_optical", 2.0, _pose((2.0, 0.0, 0.0)))
    T = lookup_pose(tf, "world", "cam_optical", 1.5, wait_s=0.0)
    np.testing.assert_allclose(T[:3, 3], [1.5, 0.0, 0.0])
    for frame, stamp in (("nowhere", 1.5), ("cam_optical", 5.0)):
        with pytest.raises(SkippedSetError) as err:
            lookup_pose(tf, "world", frame, stamp, wait_s=0.0)
        assert err.value.reason == "no_tf"

    class NanLookup:
        def lookup(self, target, source, stamp=None):
            return np.full((4, 4), np.nan)

        def can_transform(self, target, source, stamp=None):
            return True

    with pytest.raises(SkippedSetError) as err:
        lookup_pose(NanLookup(), "world", "cam_optical", 1.0, wait_s=0.0)
    assert err.value.reason == "bad_pose"


def test_stats_count_sets_by_reason_from_several_threads():
    stats = RecorderStats()
    threads = [
        threading.Thread(target=lambda: [stats.count("skipped", "no_tf") for _ in range(500)])
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats.count("written")
    assert stats.skipped == 2000 and stats.reasons == {"no_tf": 2000}
    assert "sets_written=1 sets_skipped=2000 (no_tf=2000)" in stats.summary()


def test_parameters_are_validated_with_every_problem_listed():
    p = validate_recorder_params(
        {"cameras": ["l", "r"], "out_dir": "/tmp/x", "depth_topics": ["l/depth", ""]}
    )
    assert p.camera_names == ["l", "r"] and p.depth_topics == ("l/depth", "")
    assert p.cameras[0].image_topic == "l/image_raw"
    assert (p.min_translation_m, p.min_rotation_deg, p.max_frames) == (0.05, 5.0, 0)
    assert validate_recorder_params({"cameras": ["l"], "out_dir": "o"}).depth_topics == ("",)
    with pytest.raises(ValueError) as err:
        validate_recorder_params(
            {"cameras": ["l", "r"], "depth_topics": ["d"], "near": 5.0, "far": 1.0, "speed": 1}
        )
    text = str(err.value)
    for expected in ("out_dir is required", "depth_topics has 1 entries", "near (5.0)", "'speed'"):
        assert expected in text
    with pytest.raises(ValueError, match="must be a float"):
        validate_recorder_params({"cameras": ["l"], "out_dir": "o", "min_translation_m": 1})
    with pytest.raises(ValueError, match="at least one camera"):
        validate_recorder_params({"out_dir": "o"})


def test_pure_modules_import_without_rclpy():
    code = (
        "import sys, semanticsplat_ros.ros.recording, semanticsplat_ros.ros.recorder_params;"
        " print('rclpy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------------------------
# Live: sim_rig -> recorder -> ScanNetDataset
# --------------------------------------------------------------------------------------------


def _stop(proc: subprocess.Popen, sig: int) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.mark.ros
@pytest.mark.slow
def test_recorder_writes_the_sim_rig_as_a_loadable_scannet_dataset(tmp_path):
    out_dir = tmp_path / "dataset"
    params = tmp_path / "recorder.yaml"
    params.write_text(
        "/**/semanticsplat_recorder:\n"
        "  ros__parameters:\n"
        "    cameras: [head_left, head_right]\n"
        # The sim rig's ground-truth depth (32FC1, same header) for the left camera only.
        '    depth_topics: ["/sim_rig/head_left/gt_depth", ""]\n'
        f"    out_dir: {out_dir}\n"
        "    scene_prefix: sim\n"
        "    fixed_frame: world\n"
        "    max_frames: 3\n"
        "    min_translation_m: 0.005\n"
        "    min_rotation_deg: 0.5\n"
        "    near: 0.3\n"
        "    far: 9.0\n"
    )
    env = dict(os.environ)  # conftest's ROS_DOMAIN_ID and localhost discovery
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "semanticsplat_ros.ros.sim_rig",
            "--ros-args",
            "--params-file",
            str(ROOT / "config" / "bringup.yaml"),
            "-p",
            "rig:=stereo",
            "-p",
            f"width:={W}",
            "-p",
            f"height:={H}",
            "-p",
            "rate_hz:=10.0",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    rec = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "semanticsplat_ros.ros.recorder",
            "--ros-args",
            "--params-file",
            str(params),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    scenes = [out_dir / "sim_head_left", out_dir / "sim_head_right"]
    try:
        deadline = time.monotonic() + 60.0
        # pose/<i>.txt is the last file write_scene writes for a frame.
        while time.monotonic() < deadline and not all(
            (s / "pose" / "2.txt").is_file() for s in scenes
        ):
            assert sim.poll() is None, sim.stdout.read().decode()
            assert rec.poll() is None, rec.stdout.read().decode()
            time.sleep(0.2)
    finally:
        _stop(rec, signal.SIGINT)
        _stop(sim, signal.SIGTERM)
    rec_log = rec.stdout.read().decode()
    assert rec.returncode == 0, rec_log
    assert sim.returncode == 0, sim.stdout.read().decode()
    assert all((s / "pose" / "2.txt").is_file() for s in scenes), rec_log
    assert "sets_written=3" in rec_log and "max_frames (3) reached" in rec_log

    data = ScanNetDataset(out_dir, H, W, num_context=2, num_target=1)
    assert [s.name for s in data.scenes] == ["sim_head_left", "sim_head_right"]
    for scene in data.scenes:
        assert len(scene) == 3  # max_frames: no frame 3
        assert (scene.near, scene.far) == (pytest.approx(0.3), pytest.approx(9.0))
        for T in scene.c2w.double().numpy():
            check_rigid(T, atol=1e-5)
        # The sim rig's camera_info: cx_ros = w/2 - 0.5 on disk, w/2 in our convention.
        np.testing.assert_allclose(scene.K_color[:2, 2].numpy(), [W / 2, H / 2], atol=1e-6)
    left, right = (s.c2w.double().numpy() for s in data.scenes)
    for i in range(3):
        baseline = np.linalg.inv(left[i]) @ right[i]
        np.testing.assert_allclose(baseline[:3, 3], [0.11, 0.0, 0.0], atol=1e-4)
    # Keyframes: the rig moved between written sets.
    for i in range(2):
        moved, turned = pose_change(left[i], left[i + 1])
        assert moved >= 0.005 - 1e-5 or turned >= 0.5 - 1e-3
    left_depth = data.scenes[0].load_views([0, 1, 2]).depth
    assert left_depth.max() > 0.1 and (left_depth > 0).float().mean() > 0.5
    assert data.scenes[1].load_views([0]).depth.abs().max() == 0  # no depth topic: unknown
    example = data[0]
    assert example.context.images.shape == (2, 3, H, W)
    assert example.context.images.std() > 0

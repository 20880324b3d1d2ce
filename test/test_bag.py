"""``semanticsplat bag``: bags written by another program (rosbags' Writer, both storage formats)
to datasets with the true poses, clean failures on bad bags, and ``bag run``'s depth against the
pipeline run in-process on the same sets."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from bag_helpers import SIM_CONFIG, SIM_H, SIM_W, read_depth_images, read_map_clouds
from PIL import Image as PILImage
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from scipy.spatial.transform import Rotation

from semanticsplat_ros.cli import main as cli_main
from semanticsplat_ros.data.scannet import ScanNetScene, read_intrinsics, read_matrix
from semanticsplat_ros.data.sim_rig import SimRig
from semanticsplat_ros.pipeline import CameraFrame
from semanticsplat_ros.ros.bag_run import bag_run
from semanticsplat_ros.ros.map_host import MAP_CLOUD_FIELDS
from semanticsplat_ros.ros.recording import is_keyframe

TS = get_typestore(Stores.ROS2_HUMBLE)
T = TS.types
NS = 1_000_000_000
W, H = 64, 48
START = 1_700_000_000 * NS
CAMERAS = ("cam_a", "cam_b")
# base_link -> <camera>_optical: cameras 12 cm apart looking forward (optical z = base x).
R_BASE_OPTICAL = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
MOUNTS = {
    "cam_a": (R_BASE_OPTICAL, np.array([0.1, 0.06, 0.3])),
    "cam_b": (
        R_BASE_OPTICAL @ Rotation.from_euler("y", 8, degrees=True).as_matrix(),
        [0.1, -0.06, 0.3],
    ),
}
K_ROS = np.array([[50.0, 0.0, 31.5], [0.0, 50.0, 23.5], [0.0, 0.0, 1.0]])


def _matrix(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    M = np.eye(4)
    M[:3, :3], M[:3, 3] = R, t
    return M


def base_pose(t: float) -> np.ndarray:
    """True ``T_map_base_link`` at ``t`` seconds since the start: a curve with a yaw turn."""
    R = Rotation.from_euler("zyx", [25.0 * t, 4.0 * np.sin(t), 2.0 * t], degrees=True).as_matrix()
    return _matrix(R, np.array([0.8 * t, 0.3 * np.sin(2.0 * t), 0.05 * t]))


def true_c2w(camera: str, t: float) -> np.ndarray:
    R, p = MOUNTS[camera]
    return base_pose(t) @ _matrix(R, np.asarray(p, dtype=np.float64))


def _header(frame: str, t_ns: int):
    sec, nsec = divmod(t_ns, NS)
    return T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec), frame_id=frame
    )


def _tf(parent: str, child: str, M: np.ndarray, t_ns: int):
    x, y, z, w = Rotation.from_matrix(M[:3, :3]).as_quat()
    tr = T["geometry_msgs/msg/Transform"](
        translation=T["geometry_msgs/msg/Vector3"](x=M[0, 3], y=M[1, 3], z=M[2, 3]),
        rotation=T["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w),
    )
    return T["geometry_msgs/msg/TransformStamped"](
        header=_header(parent, t_ns), child_frame_id=child, transform=tr
    )


def write_foreign_bag(
    path: Path,
    storage: StoragePlugin,
    sets: int = 6,
    no_tf_sets: int = 1,
    depth_m: float = 0.0,
    encoding: str = "rgb8",
):
    """A bag as a robot's recorder would write it: ``map -> base_link`` on /tf at 20 Hz,
    ``base_link -> <camera>_optical`` on /tf_static, camera_info + rgb8 images at 10 Hz.
    The first ``no_tf_sets`` sets come before any /tf (unusable: counted, not fatal);
    ``depth_m`` > 0 adds a 32FC1 depth image of that constant depth for the first camera;
    ``encoding`` ``16UC1`` writes the colour topics in an encoding the node does not take."""
    rng = np.random.default_rng(0)
    tf0 = START + no_tf_sets * NS // 10
    with Writer(path, version=9, storage_plugin=storage) as w:
        conns = {}

        def write(topic, msg, t_ns):
            if topic not in conns:
                conns[topic] = w.add_connection(topic, msg.__msgtype__, typestore=TS)
            w.write(conns[topic], t_ns, TS.serialize_cdr(msg, msg.__msgtype__))

        statics = [
            _tf("base_link", f"{c}_optical", _matrix(R, np.asarray(p)), START)
            for c, (R, p) in MOUNTS.items()
        ]
        write("/tf_static", T["tf2_msgs/msg/TFMessage"](transforms=statics), START)
        for k in range(2 * sets):
            t_ns = START + k * NS // 20
            if t_ns >= tf0:
                tf = _tf("map", "base_link", base_pose((t_ns - START) / NS), t_ns)
                write("/tf", T["tf2_msgs/msg/TFMessage"](transforms=[tf]), t_ns)
            if k % 2:
                continue
            for camera in CAMERAS:
                header = _header(f"{camera}_optical", t_ns)
                P = np.zeros((3, 4))
                P[:, :3] = K_ROS
                info = T["sensor_msgs/msg/CameraInfo"](
                    header=header,
                    height=H,
                    width=W,
                    distortion_model="plumb_bob",
                    d=np.zeros(5),
                    k=K_ROS.reshape(-1),
                    r=np.eye(3).reshape(-1),
                    p=P.reshape(-1),
                    binning_x=0,
                    binning_y=0,
                    roi=T["sensor_msgs/msg/RegionOfInterest"](
                        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
                    ),
                )
                write(f"/{camera}/camera_info", info, t_ns)
                channels = 3 if encoding == "rgb8" else 2  # 16UC1: two bytes a pixel
                pixels = rng.integers(0, 256, (H, W, channels), dtype=np.uint8).reshape(-1)
                image = T["sensor_msgs/msg/Image"](
                    header=header,
                    height=H,
                    width=W,
                    encoding=encoding,
                    is_bigendian=0,
                    step=channels * W,
                    data=pixels,
                )
                write(f"/{camera}/image_raw", image, t_ns)
                if depth_m and camera == CAMERAS[0]:
                    metres = np.full((H, W), depth_m, np.float32).view(np.uint8).reshape(-1)
                    depth = T["sensor_msgs/msg/Image"](
                        header=header,
                        height=H,
                        width=W,
                        encoding="32FC1",
                        is_bigendian=0,
                        step=4 * W,
                        data=metres,
                    )
                    write(f"/{camera}/depth", depth, t_ns)


def params_file(tmp_path: Path) -> Path:
    lines = ["/**/semanticsplat_node:", "  ros__parameters:", f"    cameras: {list(CAMERAS)}"]
    for c in CAMERAS:
        lines += [
            f"    {c}:",
            f"      image_topic: {c}/image_raw",
            f"      camera_info_topic: {c}/camera_info",
        ]
    lines += ["    fixed_frame: odom", "    input_width: 64", "    input_height: 48"]
    path = tmp_path / "params.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "storage", [StoragePlugin.MCAP, StoragePlugin.SQLITE3], ids=["mcap", "sqlite3"]
)
def test_foreign_bag_to_dataset_has_the_true_poses(tmp_path, storage, capsys):
    bag = tmp_path / "in_bag"
    write_foreign_bag(bag, storage)
    out = tmp_path / "ds"
    rc = cli_main(
        [
            "bag",
            "to-dataset",
            str(bag),
            "--out",
            str(out),
            "--params-file",
            str(params_file(tmp_path)),
            "--node-param",
            "fixed_frame:=map",
            "--min-translation",
            "0",
            "--min-rotation",
            "0",
        ]
    )
    printed = capsys.readouterr().out
    assert rc == 0, printed
    # Set 0 precedes the first /tf sample: skipped and counted, not fatal.
    assert "sets_written=5 sets_skipped=1 (no_tf=1)" in printed
    for camera in CAMERAS:
        scene = out / f"bag_{camera}"
        assert len(ScanNetScene(scene).color_files) == 5
        K = read_intrinsics(scene / "intrinsic" / "intrinsic_color.txt").double().numpy()
        np.testing.assert_allclose(K[:2, 2], K_ROS[:2, 2] + 0.5, atol=1e-6)
        for i in range(5):
            t = (i + 1) / 10.0
            c2w = read_matrix(scene / "pose" / f"{i}.txt")
            assert np.abs(c2w - true_c2w(camera, t)).max() < 1e-4, (camera, i)


def test_keyframe_rule_thins_out_sets(tmp_path, capsys):
    bag = tmp_path / "in_bag"
    write_foreign_bag(bag, StoragePlugin.MCAP, sets=6, no_tf_sets=0)
    rc = cli_main(
        [
            "bag",
            "to-dataset",
            str(bag),
            "--out",
            str(tmp_path / "ds"),
            "--params-file",
            str(params_file(tmp_path)),
            "--node-param",
            "fixed_frame:=map",
            "--min-translation",
            "0.15",
            "--min-rotation",
            "90",
        ]
    )
    printed = capsys.readouterr().out
    assert rc == 0
    # The recorder's rule on the true poses of the first camera decides the same sets.
    last, expected = None, 0
    for k in range(6):
        c2w = true_c2w("cam_a", k / 10.0)
        if is_keyframe(last, c2w, 0.15, 90.0):
            last, expected = c2w, expected + 1
    assert 1 < expected < 6
    assert f"sets_written={expected} sets_skipped=0 not_keyframe={6 - expected}" in printed
    assert len(ScanNetScene(tmp_path / "ds" / "bag_cam_b").color_files) == expected


def test_registered_depth_is_written(tmp_path, capsys):
    bag = tmp_path / "in_bag"
    write_foreign_bag(bag, StoragePlugin.MCAP, sets=3, no_tf_sets=0, depth_m=2.25)
    out = tmp_path / "ds"
    rc = cli_main(
        [
            "bag",
            "to-dataset",
            str(bag),
            "--out",
            str(out),
            "--params-file",
            str(params_file(tmp_path)),
            "--node-param",
            "fixed_frame:=map",
            "--min-translation",
            "0",
            "--min-rotation",
            "0",
            "--depth-topic",
            "cam_a:=cam_a/depth",
        ]
    )
    assert rc == 0, capsys.readouterr()
    for i in range(3):
        mm_a = np.asarray(PILImage.open(out / "bag_cam_a" / "depth" / f"{i}.png"))
        mm_b = np.asarray(PILImage.open(out / "bag_cam_b" / "depth" / f"{i}.png"))
        assert mm_a.shape == (H, W) and np.all(mm_a == 2250)
        assert np.all(mm_b == 0)  # no depth topic: ScanNet's "unknown"


def _run_cli(args: list[str], capsys) -> tuple[int, str]:
    rc = cli_main(args)
    return rc, capsys.readouterr().err


def test_bad_bags_fail_with_one_line(tmp_path, capsys):
    params = ["--params-file", str(params_file(tmp_path)), "--node-param", "fixed_frame:=map"]
    rc, err = _run_cli(
        ["bag", "to-dataset", str(tmp_path / "nope"), "--out", str(tmp_path / "a"), *params], capsys
    )
    assert rc == 2 and "does not exist" in err and err.count("\n") == 1

    bag = tmp_path / "in_bag"
    write_foreign_bag(bag, StoragePlugin.MCAP)
    rc, err = _run_cli(
        [
            "bag",
            "to-dataset",
            str(bag),
            "--out",
            str(tmp_path / "b"),
            "--params-file",
            str(params_file(tmp_path)),
            "--node-param",
            "cam_b.image_topic:=cam_b/image_rect",
        ],
        capsys,
    )
    assert rc == 2 and err.count("\n") == 1
    assert "/cam_b/image_rect (image of camera cam_b)" in err and "/cam_a/image_raw" in err

    rc, err = _run_cli(
        [
            "bag",
            "to-dataset",
            str(bag),
            "--out",
            str(tmp_path / "c"),
            *params,
            "--node-param",
            "sync_slop_s:=fast",
        ],
        capsys,
    )
    assert rc == 2 and "sync_slop_s" in err and err.count("\n") == 1


def test_a_bag_with_no_usable_set_fails_with_one_line_saying_why(tmp_path, capsys):
    params = ["--params-file", str(params_file(tmp_path)), "--node-param", "fixed_frame:=map"]
    depth_bag = tmp_path / "depth_only_bag"
    write_foreign_bag(depth_bag, StoragePlugin.MCAP, encoding="16UC1")
    for command, out in (("to-dataset", "ds"), ("run", "out_bag")):
        rc, err = _run_cli(
            ["bag", command, str(depth_bag), "--out", str(tmp_path / out), *params], capsys
        )
        assert rc == 2 and err.count("\n") == 1, err
        assert err.startswith(f"semanticsplat bag {command}: error: no set"), err
        assert "sets skipped for bad_image" in err and "16UC1" in err, err
    bag = tmp_path / "in_bag"
    write_foreign_bag(bag, StoragePlugin.SQLITE3)
    no_tf = [*params, "--node-param", "fixed_frame:=elsewhere"]  # no TF reaches this frame
    rc, err = _run_cli(
        ["bag", "to-dataset", str(bag), "--out", str(tmp_path / "ds2"), *no_tf], capsys
    )
    assert rc == 2 and err.count("\n") == 1 and "'elsewhere'" in err, err


@pytest.mark.slow
@pytest.mark.parametrize(
    "storage", [StoragePlugin.MCAP, StoragePlugin.SQLITE3], ids=["mcap", "sqlite3"]
)
def test_truncated_bag_fails_cleanly(tmp_path, storage):
    bag = tmp_path / "in_bag"
    write_foreign_bag(bag, storage)
    (data,) = [p for p in bag.iterdir() if p.suffix in (".mcap", ".db3")]
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "semanticsplat_ros.cli",
            "bag",
            "to-dataset",
            str(bag),
            "--out",
            str(tmp_path / "ds"),
            "--params-file",
            str(params_file(tmp_path)),
            "--node-param",
            "fixed_frame:=map",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "truncated or corrupt" in lines[0] and str(bag) in lines[0]
    assert not (tmp_path / "ds").exists() or not any((tmp_path / "ds").rglob("*.png"))


def test_record_sim_then_run_gives_the_in_process_depth(sim_bag_run):
    counts = sim_bag_run.record_counts
    assert counts["/tf"] == 3 and counts["/tf_static"] == 1
    assert counts["/head_left/image_raw"] == counts["/head_right/camera_info"] == 3
    summary, params, pipeline = sim_bag_run.summary, sim_bag_run.params, sim_bag_run.pipeline
    assert (summary.sets, summary.encoded, summary.skipped) == (3, 3, 0)
    assert summary.messages["/tf"] == 3 and summary.messages["/tf_static"] == 1

    with Reader(sim_bag_run.out_bag) as reader:
        topics = set(reader.topics)
        assert "/semanticsplat_node/semantic_cloud" in topics
        assert "/semanticsplat_node/head_left/class_masks/chair" in topics
        for conn, _, raw in reader.messages():
            if conn.topic.endswith("/depth"):
                msg = TS.deserialize_cdr(raw, conn.msgtype)
                assert (msg.width, msg.height) == (SIM_W, SIM_H)
                assert msg.header.frame_id.endswith("_optical_frame")
    depth = read_depth_images(sim_bag_run.out_bag)  # also checks stamps == log times, 32FC1
    assert len(depth) == 6

    rig = SimRig(SIM_CONFIG)
    for k in range(3):
        frame = rig.frame_at(k / 10.0)
        frames = [
            CameraFrame(c, frame.images[i], frame.K[i], frame.c2w[i], START / NS + k / 10.0)
            for i, c in enumerate(rig.cameras)
        ]
        scene = pipeline.encode(frames, params.near or None, params.far)
        for i, camera in enumerate(rig.cameras):
            got = depth[(camera, START + k * NS // 10)]
            expected = scene.depth_image(i)
            assert np.abs(got - expected).max() <= 1e-4
            assert float(expected.max()) > 0.1


def test_bag_run_writes_the_map_cloud_in_bag_time(sim_bag_run):
    topic = "/semanticsplat_node/map_cloud"
    clouds = read_map_clouds(sim_bag_run.out_bag, topic)
    # Sets at +0.0, +0.1, +0.2 s; map_publish_period_s 0.15: the tick at +0.15 s writes the map
    # of the first two sets (stamped with the newest, +0.1 s); the end writes the final map.
    assert [c.log_time_ns - START for c in clouds] == [15 * NS // 100, 2 * NS // 10]
    for cloud, stamp in zip(clouds, (NS // 10, 2 * NS // 10), strict=True):
        assert abs(cloud.stamp_ns - START - stamp) < 1_000  # float seconds in the map
        assert cloud.frame_id == "world"
        assert cloud.field_names == MAP_CLOUD_FIELDS
        assert cloud.points > 200
    summary = json.loads(sim_bag_run.summary.to_json())
    assert summary["map_enabled"] is True
    assert summary["map_clouds"] == summary["messages"][topic] == 2
    assert summary["map_voxels"] == clouds[-1].points
    assert summary["map_fuse_errors"] == 0


def test_bag_run_without_the_map_writes_no_map_cloud(tmp_path, sim_bag_run):
    params = replace(sim_bag_run.params, map_enabled=False)
    out_bag = tmp_path / "out_bag"
    summary = bag_run(sim_bag_run.sim_bag, out_bag, params, sim_bag_run.pipeline)
    assert summary.encoded == 3 and summary.map_clouds == 0 and not summary.map_enabled
    with Reader(out_bag) as reader:
        assert "/semanticsplat_node/map_cloud" not in reader.topics
        assert reader.topics["/semanticsplat_node/head_left/depth"].msgcount == 3

"""Round trips of ros/conversions.py over every encoding and several sizes (as cv_bridge does)."""

from __future__ import annotations

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Quaternion, Transform
from sensor_msgs.msg import PointCloud2, PointField

from semanticsplat_ros.ros import conversions as cv

SIZES = [(1, 1), (2, 3), (7, 5), (48, 64), (61, 37)]


def _random_pixels(rng: np.random.Generator, encoding: str, h: int, w: int) -> np.ndarray:
    spec = cv.IMAGE_ENCODINGS[encoding]
    shape = (h, w) if spec.channels == 1 else (h, w, spec.channels)
    if spec.dtype == np.float32:
        return rng.normal(size=shape).astype(np.float32)
    return rng.integers(0, np.iinfo(spec.dtype).max + 1, size=shape).astype(spec.dtype)


@pytest.mark.parametrize("encoding", sorted(cv.IMAGE_ENCODINGS))
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("padding", [0, 3])
@pytest.mark.parametrize("big_endian", [False, True])
def test_image_round_trip(encoding, size, padding, big_endian):
    rng = np.random.default_rng(hash((encoding, size, padding)) % 2**32)
    h, w = size
    pixels = _random_pixels(rng, encoding, h, w)
    spec = cv.IMAGE_ENCODINGS[encoding]
    row = w * spec.channels * spec.dtype.itemsize
    header = cv.make_header("cam_optical", 12.5)
    msg = cv.numpy_to_image(
        pixels, encoding, header=header, step=row + padding, is_bigendian=big_endian
    )
    assert (msg.height, msg.width, msg.step) == (h, w, row + padding)
    assert msg.encoding == encoding and bool(msg.is_bigendian) == big_endian
    assert len(msg.data) == (row + padding) * h
    back = cv.image_to_numpy(msg)
    assert back.dtype == spec.dtype and back.shape == pixels.shape
    np.testing.assert_array_equal(back, pixels)
    assert msg.header.frame_id == "cam_optical"


def test_image_big_endian_bytes_are_swapped():
    pixels = np.array([[0x0102]], dtype=np.uint16)
    assert bytes(cv.numpy_to_image(pixels, "mono16", is_bigendian=True).data) == b"\x01\x02"
    assert bytes(cv.numpy_to_image(pixels, "mono16").data) == b"\x02\x01"


def test_image_errors():
    img = cv.numpy_to_image(np.zeros((4, 5, 3), np.uint8), "rgb8")
    img.encoding = "yuv422"
    with pytest.raises(ValueError, match="unsupported image encoding 'yuv422'"):
        cv.image_to_numpy(img)
    img = cv.numpy_to_image(np.zeros((4, 5, 3), np.uint8), "rgb8")
    img.data = bytes(len(img.data) - 1)
    with pytest.raises(ValueError, match="expected step\\*height"):
        cv.image_to_numpy(img)
    img = cv.numpy_to_image(np.zeros((4, 5, 3), np.uint8), "rgb8")
    img.step = 5
    with pytest.raises(ValueError, match="step 5 is smaller"):
        cv.image_to_numpy(img)
    with pytest.raises(TypeError, match="needs dtype uint8"):
        cv.numpy_to_image(np.zeros((4, 5, 3), np.float32), "rgb8")
    with pytest.raises(ValueError, match="needs shape"):
        cv.numpy_to_image(np.zeros((4, 5), np.uint8), "rgb8")
    with pytest.raises(ValueError, match="unsupported"):
        cv.numpy_to_image(np.zeros((4, 5), np.uint8), "jpeg")


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8"])
def test_image_to_rgb8(encoding):
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    if encoding == "mono8":
        src = rgb[..., 0]
        expected = np.repeat(src[..., None], 3, axis=2)
    else:
        src = rgb[..., ::-1] if encoding.startswith("bgr") else rgb
        if encoding.endswith("a8"):
            src = np.concatenate([src, np.full((2, 3, 1), 7, np.uint8)], axis=2)
        expected = rgb
    out = cv.image_to_rgb8(cv.numpy_to_image(src, encoding))
    np.testing.assert_array_equal(out, expected)
    with pytest.raises(ValueError, match="expected a colour image"):
        cv.image_to_rgb8(cv.numpy_to_image(np.zeros((2, 2), np.float32), "32FC1"))


def test_camera_info_round_trip_shifts_principal_point():
    K = np.array([[100.0, 0.0, 32.0], [0.0, 110.0, 24.0], [0.0, 0.0, 1.0]])
    msg = cv.intrinsics_to_camera_info(K, 64, 48, cv.make_header("cam", 1.0))
    assert msg.k[2] == pytest.approx(31.5) and msg.k[5] == pytest.approx(23.5)
    assert msg.p[2] == pytest.approx(31.5) and list(msg.d) == [0.0] * 5
    intr = cv.camera_info_to_intrinsics(msg)
    np.testing.assert_allclose(intr.K, K)
    assert (intr.width, intr.height, intr.frame_id) == (64, 48, "cam")
    np.testing.assert_allclose(cv.camera_info_to_intrinsics(msg, rectified=True).K, K)


def test_camera_info_binning_and_roi_describe_the_published_image():
    K = np.array([[200.0, 0.0, 64.0], [0.0, 200.0, 48.0], [0.0, 0.0, 1.0]])
    msg = cv.intrinsics_to_camera_info(K, 128, 96)
    msg.binning_x = msg.binning_y = 2
    intr = cv.camera_info_to_intrinsics(msg)
    # Pixel-centre convention: halving the image halves every entry of K exactly.
    np.testing.assert_allclose(intr.K[:2], K[:2] / 2)
    assert (intr.width, intr.height) == (64, 48)
    msg = cv.intrinsics_to_camera_info(K, 128, 96)
    msg.roi.x_offset, msg.roi.y_offset, msg.roi.width, msg.roi.height = 10, 4, 50, 40
    intr = cv.camera_info_to_intrinsics(msg)
    assert intr.K[0, 2] == pytest.approx(54.0) and intr.K[1, 2] == pytest.approx(44.0)
    assert (intr.width, intr.height) == (50, 40)


def test_camera_info_errors():
    K = np.array([[100.0, 0.0, 32.0], [0.0, 100.0, 24.0], [0.0, 0.0, 1.0]])
    msg = cv.intrinsics_to_camera_info(K, 64, 48)
    msg.d = [0.1, 0.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="non-zero distortion"):
        cv.camera_info_to_intrinsics(msg)
    assert cv.camera_info_to_intrinsics(msg, rectified=True).width == 64
    msg = cv.intrinsics_to_camera_info(K, 64, 48)
    msg.k = [0.0] * 9
    with pytest.raises(ValueError, match="not calibrated"):
        cv.camera_info_to_intrinsics(msg)
    msg = cv.intrinsics_to_camera_info(K, 64, 48)
    msg.k[0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        cv.camera_info_to_intrinsics(msg)
    intr = cv.camera_info_to_intrinsics(cv.intrinsics_to_camera_info(K, 64, 48))
    image = cv.numpy_to_image(np.zeros((40, 64, 3), np.uint8), "rgb8")
    with pytest.raises(ValueError, match="image is 64x40 but its camera_info describes 64x48"):
        cv.check_image_matches_camera_info(image, intr)


def _random_rigid(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    return cv.make_transform(rng.normal(size=3), q / np.linalg.norm(q))


def test_transform_and_pose_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(20):
        T = _random_rigid(rng)
        np.testing.assert_allclose(
            cv.transform_msg_to_matrix(cv.matrix_to_transform_msg(T)), T, atol=1e-12
        )
        np.testing.assert_allclose(cv.pose_msg_to_matrix(cv.matrix_to_pose_msg(T)), T, atol=1e-12)
        q = cv.rotmat_to_wxyz(T[:3, :3])
        np.testing.assert_allclose(cv.wxyz_to_rotmat(q), T[:3, :3], atol=1e-12)


def test_quaternion_order_is_xyzw_in_messages_and_wxyz_inside():
    # 90 degrees about z.
    s = np.sqrt(0.5)
    msg = Quaternion(x=0.0, y=0.0, z=s, w=s)
    np.testing.assert_allclose(cv.quaternion_msg_to_wxyz(msg), [s, 0, 0, s])
    R = cv.wxyz_to_rotmat([s, 0, 0, s])
    np.testing.assert_allclose(R @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    back = cv.wxyz_to_quaternion_msg([s, 0, 0, s])
    assert (back.x, back.y, back.z, back.w) == pytest.approx((0, 0, s, s))


def test_transform_nan_and_bad_quaternion_rejected():
    t = Transform()
    t.rotation = Quaternion(x=0.0, y=0.0, z=0.0, w=0.0)
    with pytest.raises(ValueError, match="not a unit quaternion"):
        cv.transform_msg_to_matrix(t)
    t.rotation = Quaternion(x=0.0, y=0.0, z=0.0, w=1.0)
    t.translation.x = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        cv.transform_msg_to_matrix(t)
    t.translation.x = 0.0
    t.rotation.w = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        cv.transform_msg_to_matrix(t)
    bad = np.eye(4)
    bad[0, 0] = -1.0
    with pytest.raises(ValueError, match="not a proper rotation"):
        cv.matrix_to_pose_msg(bad)


def test_time_conversions():
    assert cv.stamp_to_nanoseconds(Time(sec=3, nanosec=5)) == 3_000_000_005
    assert cv.stamp_to_seconds(Time(sec=3, nanosec=500_000_000)) == 3.5
    assert cv.seconds_to_stamp(1.25) == Time(sec=1, nanosec=250_000_000)
    assert cv.nanoseconds_to_stamp(1_700_000_000_123_456_789) == Time(
        sec=1_700_000_000, nanosec=123_456_789
    )
    with pytest.raises(ValueError, match="negative"):
        cv.seconds_to_stamp(-1.0)
    with pytest.raises(ValueError, match="finite"):
        cv.seconds_to_stamp(float("nan"))


def test_pack_rgb_matches_rviz_bit_layout():
    packed = cv.pack_rgb(np.array([[0x12, 0x34, 0x56]], np.uint8))
    assert packed.dtype == np.float32
    assert int(packed.view(np.uint32)[0]) == 0x123456
    np.testing.assert_array_equal(cv.unpack_rgb(packed), [[0x12, 0x34, 0x56]])
    np.testing.assert_array_equal(
        cv.pack_rgb(np.array([[1.0, 0.0, 0.5]])).view(np.uint32), [0xFF0080]
    )


@pytest.mark.parametrize("n", [0, 1, 17, 1000])
@pytest.mark.parametrize("label_dtype", [np.uint16, np.uint32])
def test_semantic_cloud_round_trip(n, label_dtype):
    rng = np.random.default_rng(n)
    xyz = rng.normal(size=(n, 3)).astype(np.float32)
    rgb = rng.integers(0, 256, size=(n, 3)).astype(np.uint8)
    labels = rng.integers(0, 8, size=n)
    scores = rng.random(n).astype(np.float32)
    msg = cv.semantic_cloud(xyz, rgb, labels, scores, cv.make_header("world", 2.0), label_dtype)
    assert cv.fields_of(msg) == list(cv.SEMANTIC_CLOUD_FIELDS)
    by_name = {f.name: f for f in msg.fields}
    assert by_name["rgb"].datatype == PointField.FLOAT32
    assert by_name["label"].datatype == (
        PointField.UINT16 if label_dtype is np.uint16 else PointField.UINT32
    )
    assert all(
        f.offset % np.dtype(cv._POINTFIELD_DTYPES[f.datatype]).itemsize == 0 for f in msg.fields
    )
    assert (msg.height, msg.width) == (1, n) and msg.row_step == msg.point_step * n
    back = cv.cloud_to_semantic(msg)
    np.testing.assert_array_equal(back.xyz, xyz)
    np.testing.assert_array_equal(back.rgb, rgb)
    np.testing.assert_array_equal(back.labels, labels)
    np.testing.assert_array_equal(back.scores, scores)


def test_semantic_cloud_errors():
    with pytest.raises(ValueError, match="NaN"):
        cv.semantic_cloud(np.full((1, 3), np.nan), np.zeros((1, 3), np.uint8), [0], [1.0])
    with pytest.raises(ValueError, match="must both have shape"):
        cv.semantic_cloud(np.zeros((2, 3)), np.zeros((2, 3), np.uint8), [0], [1.0, 1.0])
    with pytest.raises(ValueError, match="labels must be in"):
        cv.semantic_cloud(np.zeros((1, 3)), np.zeros((1, 3), np.uint8), [70000], [1.0])


def test_cloud_unpack_handles_padding_big_endian_and_rows():
    # A hand-made organised cloud: 2 rows x 3 points, x (f4 @0), intensity (u2 @6), 12-byte
    # points, 4 bytes of row padding, big-endian.
    h, w, point_step, row_step = 2, 3, 12, 40
    rows = np.zeros((h, row_step), np.uint8)
    dt = np.dtype(
        {"names": ["x", "i"], "formats": [">f4", ">u2"], "offsets": [0, 6], "itemsize": 12}
    )
    pts = np.zeros(h * w, dt)
    pts["x"] = np.arange(6) * 1.5
    pts["i"] = np.arange(6) + 300
    rows[:, : w * point_step] = pts.view(np.uint8).reshape(h, w * point_step)
    msg = PointCloud2(
        height=h, width=w, point_step=point_step, row_step=row_step, is_bigendian=True
    )
    msg.fields = [
        PointField(name="x", offset=0, datatype=PointField.FLOAT32, count=1),
        PointField(name="i", offset=6, datatype=PointField.UINT16, count=1),
    ]
    msg.data = rows.tobytes()
    out = cv.cloud_to_structured(msg)
    np.testing.assert_array_equal(out["x"], np.arange(6) * 1.5)
    np.testing.assert_array_equal(out["i"], np.arange(6) + 300)
    msg.data = rows.tobytes()[:-1]
    with pytest.raises(ValueError, match="expected row_step\\*height"):
        cv.cloud_to_structured(msg)


def test_gaussians_cloud_layout():
    n = 5
    rng = np.random.default_rng(1)
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    msg = cv.gaussians_cloud(
        rng.normal(size=(n, 3)),
        rng.random((n, 3)),
        rng.random(n),
        rng.random((n, 3)) * 0.1,
        q,
        feature_colors=rng.integers(0, 256, (n, 3)).astype(np.uint8),
        header=cv.make_header("world"),
    )
    assert cv.fields_of(msg) == [name for name, _ in cv.GAUSSIAN_CLOUD_FIELDS]
    assert msg.point_step == 4 * len(cv.GAUSSIAN_CLOUD_FIELDS)
    pts = cv.cloud_to_structured(msg)
    np.testing.assert_allclose(
        np.stack([pts[f"rot_{i}"] for i in range(4)], axis=1), q.astype(np.float32)
    )
    with pytest.raises(ValueError, match="quats_wxyz must have shape"):
        cv.gaussians_cloud(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros(2), np.zeros((2, 3)), q)

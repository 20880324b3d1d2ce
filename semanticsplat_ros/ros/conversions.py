"""ROS message <-> numpy conversions (cv_bridge-like, no cv_bridge, no sensor_msgs_py).

Everything here is pure numpy over the message classes, so it is unit-tested without a running
ROS graph. Conventions at this boundary:

* Images: ``(h, w)`` arrays for one-channel encodings, ``(h, w, c)`` otherwise, native byte order.
* Intrinsics: ROS ``CameraInfo`` puts pixel centres on integers (OpenCV); the core puts them at
  ``(j + 0.5, i + 0.5)``. So ``cx_ours = cx_ros + 0.5`` and ``cy_ours = cy_ros + 0.5``.
* Quaternions: ``geometry_msgs`` stores xyzw; the core (and every array returned here) uses wxyz.
* Transforms: 4×4 float64 homogeneous matrices; a ``Transform`` from parent to child frame is the
  matrix mapping child-frame points into the parent frame (tf2's convention).
* Times: ``builtin_interfaces/Time`` <-> float seconds or integer nanoseconds.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Pose, Quaternion, Transform, Vector3
from numpy.typing import ArrayLike, NDArray
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header

from semanticsplat_ros.geometry import quat_to_rotmat, rotmat_to_quat

# --------------------------------------------------------------------------------------------
# Time
# --------------------------------------------------------------------------------------------

_NS = 1_000_000_000


def stamp_to_nanoseconds(stamp: Time) -> int:
    """Integer nanoseconds of a ``builtin_interfaces/Time``."""
    return int(stamp.sec) * _NS + int(stamp.nanosec)


def stamp_to_seconds(stamp: Time) -> float:
    """Float seconds of a ``builtin_interfaces/Time`` (float64: ~100 ns resolution at 2^31 s)."""
    return stamp_to_nanoseconds(stamp) / _NS


def nanoseconds_to_stamp(nanoseconds: int) -> Time:
    """``builtin_interfaces/Time`` of integer nanoseconds (>= 0)."""
    ns = int(nanoseconds)
    if ns < 0:
        raise ValueError(f"ROS time cannot be negative, got {ns} ns")
    sec, nanosec = divmod(ns, _NS)
    if sec >= 2**31:
        raise ValueError(f"ROS time {ns} ns does not fit in a signed 32-bit seconds field")
    return Time(sec=sec, nanosec=nanosec)


def seconds_to_stamp(seconds: float) -> Time:
    """``builtin_interfaces/Time`` of float seconds (>= 0, finite), rounded to the nanosecond."""
    if not np.isfinite(seconds):
        raise ValueError(f"time must be finite, got {seconds}")
    return nanoseconds_to_stamp(round(float(seconds) * _NS))


def make_header(frame_id: str, stamp: Time | float | int | None = None) -> Header:
    """A ``std_msgs/Header``; ``stamp`` as a Time, float seconds, or None (zero)."""
    if stamp is None:
        stamp = Time()
    elif isinstance(stamp, float | int):
        stamp = seconds_to_stamp(float(stamp))
    return Header(frame_id=frame_id, stamp=stamp)


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageEncoding:
    """Storage of one ``sensor_msgs/Image`` encoding: element dtype and channel count."""

    dtype: np.dtype
    channels: int


IMAGE_ENCODINGS: dict[str, ImageEncoding] = {
    "rgb8": ImageEncoding(np.dtype(np.uint8), 3),
    "bgr8": ImageEncoding(np.dtype(np.uint8), 3),
    "rgba8": ImageEncoding(np.dtype(np.uint8), 4),
    "bgra8": ImageEncoding(np.dtype(np.uint8), 4),
    "mono8": ImageEncoding(np.dtype(np.uint8), 1),
    "8UC1": ImageEncoding(np.dtype(np.uint8), 1),
    "mono16": ImageEncoding(np.dtype(np.uint16), 1),
    "16UC1": ImageEncoding(np.dtype(np.uint16), 1),
    "32FC1": ImageEncoding(np.dtype(np.float32), 1),
}
"""Encodings this package reads and writes (the ``sensor_msgs/image_encodings`` names)."""

_HOST_BIG_ENDIAN = sys.byteorder == "big"


def _encoding(encoding: str) -> ImageEncoding:
    spec = IMAGE_ENCODINGS.get(encoding)
    if spec is None:
        raise ValueError(
            f"unsupported image encoding {encoding!r}; supported: {', '.join(IMAGE_ENCODINGS)}"
        )
    return spec


def image_to_numpy(msg: Image) -> NDArray:
    """Pixels of a ``sensor_msgs/Image`` as a new array in native byte order.

    Returns ``(h, w)`` for one-channel encodings and ``(h, w, c)`` otherwise, with the dtype of
    the encoding (uint8, uint16 or float32). Row padding (``step`` larger than a row) is dropped
    and big-endian data is swapped. Raises ValueError for an unsupported encoding, a zero or
    inconsistent size, or a ``data`` length that is not ``step * height``.
    """
    if not isinstance(msg, Image):
        raise TypeError(f"expected sensor_msgs/Image, got {type(msg).__name__}")
    spec = _encoding(msg.encoding)
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0:
        raise ValueError(f"image has an empty size {w}x{h}")
    row_bytes = w * spec.channels * spec.dtype.itemsize
    if step < row_bytes:
        raise ValueError(
            f"image step {step} is smaller than a {msg.encoding} row of width {w} ({row_bytes} bytes)"
        )
    data = msg.data
    if len(data) != step * h:
        raise ValueError(
            f"image data has {len(data)} bytes, expected step*height = {step}*{h} = {step * h}"
        )
    raw = np.frombuffer(data, dtype=np.uint8).reshape(h, step)[:, :row_bytes]
    dtype = spec.dtype.newbyteorder(">" if msg.is_bigendian else "<")
    pixels = np.ascontiguousarray(raw).view(dtype).reshape(h, w, spec.channels)
    pixels = pixels.astype(spec.dtype.newbyteorder("="), copy=True)
    return pixels[..., 0] if spec.channels == 1 else pixels


def numpy_to_image(
    array: ArrayLike,
    encoding: str,
    header: Header | None = None,
    step: int | None = None,
    is_bigendian: bool = False,
) -> Image:
    """A ``sensor_msgs/Image`` of ``(h, w)`` or ``(h, w, c)`` pixels.

    ``array``'s dtype must match the encoding exactly (no silent rescaling): uint8 for ``*8``,
    uint16 for ``mono16``/``16UC1``, float32 for ``32FC1``. ``step`` (bytes per row) may exceed the
    row size to add padding; ``is_bigendian`` selects the byte order written to ``data``.
    """
    spec = _encoding(encoding)
    pixels = np.asarray(array)
    if pixels.dtype != spec.dtype:
        raise TypeError(f"encoding {encoding!r} needs dtype {spec.dtype}, got {pixels.dtype}")
    if pixels.ndim == 2 and spec.channels == 1:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or pixels.shape[2] != spec.channels:
        raise ValueError(
            f"encoding {encoding!r} needs shape (h, w{', ' + str(spec.channels) if spec.channels > 1 else ''}),"
            f" got {pixels.shape}"
        )
    h, w = pixels.shape[:2]
    if h == 0 or w == 0:
        raise ValueError(f"cannot make an image of empty size {w}x{h}")
    row_bytes = w * spec.channels * spec.dtype.itemsize
    step = row_bytes if step is None else int(step)
    if step < row_bytes:
        raise ValueError(f"step {step} is smaller than the row size {row_bytes} bytes")
    ordered = pixels.astype(spec.dtype.newbyteorder(">" if is_bigendian else "<"), copy=False)
    rows = np.ascontiguousarray(ordered).view(np.uint8).reshape(h, row_bytes)
    if step > row_bytes:
        padded = np.zeros((h, step), dtype=np.uint8)
        padded[:, :row_bytes] = rows
        rows = padded
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width, msg.encoding = h, w, encoding
    msg.is_bigendian = int(bool(is_bigendian))
    msg.step = step
    msg.data = rows.tobytes()
    return msg


def image_to_rgb8(msg: Image) -> NDArray[np.uint8]:
    """Any colour or mono8 image as ``(h, w, 3)`` uint8 RGB (the model's input format).

    Raises ValueError for depth/16-bit encodings, which are not camera colour images.
    """
    if msg.encoding not in ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "8UC1"):
        raise ValueError(
            f"expected a colour image (rgb8, bgr8, rgba8, bgra8 or mono8), got {msg.encoding!r}"
        )
    pixels = image_to_numpy(msg)
    if pixels.ndim == 2:
        return np.repeat(pixels[..., None], 3, axis=2)
    if msg.encoding.startswith("bgr"):
        pixels = pixels[..., 2::-1]
    return np.ascontiguousarray(pixels[..., :3])


# --------------------------------------------------------------------------------------------
# Camera intrinsics
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CameraIntrinsics:
    """A pinhole camera from ``sensor_msgs/CameraInfo``, in the core's convention.

    K:        (3, 3) float64 intrinsics in pixels of the published image, pixel centres at +0.5.
    width, height: size in pixels of the images this camera_info describes.
    frame_id: the optical frame (OpenCV axes) of the camera.
    """

    K: NDArray[np.float64]
    width: int
    height: int
    frame_id: str


def camera_info_to_intrinsics(
    msg: CameraInfo, rectified: bool = False, distortion_atol: float = 1e-9
) -> CameraIntrinsics:
    """Intrinsics of a ``CameraInfo`` in the core's convention (``cx, cy`` shifted by +0.5).

    The model needs undistorted pinhole images. With ``rectified=False`` the images are taken to
    be raw: ``K`` is read and any non-zero distortion coefficient raises ValueError (rectify
    first, e.g. with image_proc, and subscribe to ``image_rect``). With ``rectified=True`` the
    images are the rectified stream of this camera_info: ``P[:3, :3]`` is used and ``D`` ignored.
    Binning and a region of interest are applied, so ``K`` describes the published image.
    """
    if not isinstance(msg, CameraInfo):
        raise TypeError(f"expected sensor_msgs/CameraInfo, got {type(msg).__name__}")
    if rectified:
        P = np.asarray(msg.p, dtype=np.float64).reshape(3, 4)
        K = P[:, :3].copy()
    else:
        K = np.asarray(msg.k, dtype=np.float64).reshape(3, 3).copy()
        D = np.asarray(msg.d, dtype=np.float64)
        if not np.all(np.isfinite(D)):
            raise ValueError("camera_info distortion D contains NaN or Inf")
        if D.size and np.abs(D).max() > distortion_atol:
            raise ValueError(
                f"camera_info has non-zero distortion ({msg.distortion_model or 'unknown model'},"
                f" D={np.round(D, 6).tolist()}): semanticsplat needs rectified images; subscribe to"
                " the rectified stream (image_proc's image_rect) and set rectified=True to use P"
            )
    if not np.all(np.isfinite(K)):
        raise ValueError("camera_info intrinsics contain NaN or Inf")
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(
            f"camera_info focal lengths must be positive (fx={K[0, 0]}, fy={K[1, 1]});"
            " an all-zero K means the camera is not calibrated"
        )
    if not np.allclose(K[2], [0.0, 0.0, 1.0]):
        raise ValueError(f"camera_info K last row must be (0, 0, 1), got {K[2].tolist()}")
    width, height = int(msg.width), int(msg.height)
    roi = msg.roi
    if roi.width > 0 and roi.height > 0:
        K[0, 2] -= roi.x_offset
        K[1, 2] -= roi.y_offset
        width, height = int(roi.width), int(roi.height)
    K[0, 2] += 0.5
    K[1, 2] += 0.5
    bx, by = max(int(msg.binning_x), 1), max(int(msg.binning_y), 1)
    if bx > 1 or by > 1:
        K[0, :] /= bx
        K[1, :] /= by
        width, height = width // bx, height // by
    if width <= 0 or height <= 0:
        raise ValueError(f"camera_info has an empty image size {width}x{height}")
    return CameraIntrinsics(K=K, width=width, height=height, frame_id=msg.header.frame_id)


def intrinsics_to_camera_info(
    K: ArrayLike, width: int, height: int, header: Header | None = None
) -> CameraInfo:
    """``CameraInfo`` of an undistorted pinhole camera with core intrinsics ``K`` (3×3).

    Writes ``cx_ros = cx - 0.5`` (and ``cy``), ``distortion_model = plumb_bob`` with ``D = 0``,
    identity ``R`` and ``P = [K | 0]`` (monocular).
    """
    K_ours = np.asarray(K, dtype=np.float64)
    if K_ours.shape != (3, 3):
        raise ValueError(f"K must be 3x3, got shape {K_ours.shape}")
    if not np.all(np.isfinite(K_ours)):
        raise ValueError("K contains NaN or Inf")
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    K_ros = K_ours.copy()
    K_ros[0, 2] -= 0.5
    K_ros[1, 2] -= 0.5
    msg = CameraInfo()
    if header is not None:
        msg.header = header
    msg.width, msg.height = int(width), int(height)
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = K_ros.reshape(-1).tolist()
    msg.r = np.eye(3).reshape(-1).tolist()
    P = np.zeros((3, 4))
    P[:, :3] = K_ros
    msg.p = P.reshape(-1).tolist()
    return msg


def check_image_matches_camera_info(image: Image, intrinsics: CameraIntrinsics) -> None:
    """Raise ValueError unless the image has the size the camera_info describes."""
    if (int(image.width), int(image.height)) != (intrinsics.width, intrinsics.height):
        raise ValueError(
            f"image is {image.width}x{image.height} but its camera_info describes"
            f" {intrinsics.width}x{intrinsics.height}"
        )


# --------------------------------------------------------------------------------------------
# Quaternions and rigid transforms (numpy, wxyz)
# --------------------------------------------------------------------------------------------

QUATERNION_NORM_TOLERANCE = 0.01
"""|‖q‖² - 1| allowed before a quaternion is rejected (tf2's bound); within it, q is normalised."""


def quaternion_msg_to_wxyz(q: Quaternion) -> NDArray[np.float64]:
    """Unit wxyz quaternion of a ``geometry_msgs/Quaternion`` (xyzw fields).

    Raises ValueError for NaN/Inf or a norm too far from 1 (the all-zero default included).
    """
    wxyz = np.array([q.w, q.x, q.y, q.z], dtype=np.float64)
    return normalize_wxyz(wxyz, name="quaternion")


def normalize_wxyz(q: ArrayLike, name: str = "quaternion") -> NDArray[np.float64]:
    """Validate and normalise one wxyz quaternion (see ``QUATERNION_NORM_TOLERANCE``)."""
    wxyz = np.asarray(q, dtype=np.float64)
    if wxyz.shape != (4,):
        raise ValueError(f"{name} must have 4 components, got shape {wxyz.shape}")
    if not np.all(np.isfinite(wxyz)):
        raise ValueError(f"{name} contains NaN or Inf: {wxyz.tolist()}")
    norm2 = float(wxyz @ wxyz)
    if abs(norm2 - 1.0) > QUATERNION_NORM_TOLERANCE:
        raise ValueError(f"{name} is not a unit quaternion (|q|^2 = {norm2:.6g}): {wxyz.tolist()}")
    return wxyz / np.sqrt(norm2)


def wxyz_to_quaternion_msg(q: ArrayLike) -> Quaternion:
    """``geometry_msgs/Quaternion`` (xyzw fields) of a wxyz quaternion."""
    w, x, y, z = normalize_wxyz(q)
    return Quaternion(x=float(x), y=float(y), z=float(z), w=float(w))


def wxyz_to_rotmat(q: ArrayLike) -> NDArray[np.float64]:
    """Rotation matrices ``(..., 3, 3)`` of wxyz quaternions ``(..., 4)`` (normalised first)."""
    return quat_to_rotmat(torch.as_tensor(np.asarray(q, dtype=np.float64))).numpy()


def rotmat_to_wxyz(R: ArrayLike) -> NDArray[np.float64]:
    """Unit wxyz quaternion (w >= 0) of one 3×3 rotation matrix."""
    m = np.asarray(R, dtype=np.float64)
    if m.shape != (3, 3):
        raise ValueError(f"rotation must be 3x3, got shape {m.shape}")
    return rotmat_to_quat(torch.from_numpy(m)).numpy()


def make_transform(translation: ArrayLike, wxyz: ArrayLike) -> NDArray[np.float64]:
    """4×4 float64 rigid transform from a translation (3,) and a wxyz quaternion (4,)."""
    t = np.asarray(translation, dtype=np.float64)
    if t.shape != (3,):
        raise ValueError(f"translation must have 3 components, got shape {t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError(f"translation contains NaN or Inf: {t.tolist()}")
    T = np.eye(4)
    T[:3, :3] = wxyz_to_rotmat(normalize_wxyz(wxyz))
    T[:3, 3] = t
    return T


def check_rigid(T: ArrayLike, name: str = "transform", atol: float = 1e-4) -> NDArray[np.float64]:
    """Return ``T`` as a float64 4×4 after checking it is a finite rigid transform."""
    M = np.asarray(T, dtype=np.float64)
    if M.shape != (4, 4):
        raise ValueError(f"{name} must be 4x4, got shape {M.shape}")
    if not np.all(np.isfinite(M)):
        raise ValueError(f"{name} contains NaN or Inf")
    if not np.allclose(M[3], [0.0, 0.0, 0.0, 1.0], atol=atol):
        raise ValueError(f"{name} bottom row must be (0, 0, 0, 1), got {M[3].tolist()}")
    R = M[:3, :3]
    if not np.allclose(R @ R.T, np.eye(3), atol=atol * 10) or np.linalg.det(R) < 0:
        raise ValueError(f"{name} rotation block is not a proper rotation")
    return M


def transform_msg_to_matrix(msg: Transform) -> NDArray[np.float64]:
    """4×4 matrix of a ``geometry_msgs/Transform`` (maps child-frame points to the parent frame)."""
    t = msg.translation
    return make_transform([t.x, t.y, t.z], quaternion_msg_to_wxyz(msg.rotation))


def matrix_to_transform_msg(T: ArrayLike) -> Transform:
    """``geometry_msgs/Transform`` of a 4×4 rigid transform."""
    M = check_rigid(T)
    x, y, z = (float(v) for v in M[:3, 3])
    return Transform(
        translation=Vector3(x=x, y=y, z=z),
        rotation=wxyz_to_quaternion_msg(rotmat_to_wxyz(M[:3, :3])),
    )


def pose_msg_to_matrix(msg: Pose) -> NDArray[np.float64]:
    """4×4 matrix of a ``geometry_msgs/Pose`` (the body frame expressed in the header frame)."""
    p = msg.position
    return make_transform([p.x, p.y, p.z], quaternion_msg_to_wxyz(msg.orientation))


def matrix_to_pose_msg(T: ArrayLike) -> Pose:
    """``geometry_msgs/Pose`` of a 4×4 rigid transform."""
    M = check_rigid(T, name="pose")
    x, y, z = (float(v) for v in M[:3, 3])
    return Pose(
        position=Point(x=x, y=y, z=z),
        orientation=wxyz_to_quaternion_msg(rotmat_to_wxyz(M[:3, :3])),
    )


# --------------------------------------------------------------------------------------------
# PointCloud2
# --------------------------------------------------------------------------------------------

_POINTFIELD_DTYPES: dict[int, np.dtype] = {
    PointField.INT8: np.dtype(np.int8),
    PointField.UINT8: np.dtype(np.uint8),
    PointField.INT16: np.dtype(np.int16),
    PointField.UINT16: np.dtype(np.uint16),
    PointField.INT32: np.dtype(np.int32),
    PointField.UINT32: np.dtype(np.uint32),
    PointField.FLOAT32: np.dtype(np.float32),
    PointField.FLOAT64: np.dtype(np.float64),
}
_DTYPE_POINTFIELDS: dict[np.dtype, int] = {v: k for k, v in _POINTFIELD_DTYPES.items()}


def pack_rgb(rgb: ArrayLike) -> NDArray[np.float32]:
    """RViz's packed colour: ``(n, 3)`` RGB (uint8, or float in [0, 1]) -> ``(n,)`` float32.

    The float's bits are the uint32 ``0x00RRGGBB``, which RViz's RGB8 transformer reads from a
    field named ``rgb``.
    """
    c = np.asarray(rgb)
    if c.ndim != 2 or c.shape[1] != 3:
        raise ValueError(f"rgb must have shape (n, 3), got {c.shape}")
    if c.dtype != np.uint8:
        if not np.issubdtype(c.dtype, np.floating):
            raise TypeError(f"rgb must be uint8 or float in [0, 1], got {c.dtype}")
        if not np.all(np.isfinite(c)):
            raise ValueError("rgb contains NaN or Inf")
        c = np.clip(np.rint(c * 255.0), 0, 255).astype(np.uint8)
    c32 = c.astype(np.uint32)
    packed = (c32[:, 0] << 16) | (c32[:, 1] << 8) | c32[:, 2]
    return packed.view(np.float32)


def unpack_rgb(packed: ArrayLike) -> NDArray[np.uint8]:
    """Inverse of ``pack_rgb``: ``(n,)`` float32 -> ``(n, 3)`` uint8 RGB."""
    bits = np.ascontiguousarray(np.asarray(packed, dtype=np.float32)).view(np.uint32)
    return np.stack([(bits >> 16) & 0xFF, (bits >> 8) & 0xFF, bits & 0xFF], axis=-1).astype(
        np.uint8
    )


def structured_to_cloud(points: NDArray, header: Header | None = None) -> PointCloud2:
    """An unordered (height 1) ``PointCloud2`` of a 1-D numpy structured array.

    Each field becomes a ``PointField``; field dtypes must be one of PointField's eight scalar
    types (subarray fields ``(k,)`` become ``count = k``). Fields are packed in declaration
    order, each aligned to its own size, little-endian.
    """
    if not isinstance(points, np.ndarray) or points.dtype.names is None:
        raise TypeError("points must be a numpy structured array")
    if points.ndim != 1:
        raise ValueError(f"points must be 1-D (n,), got shape {points.shape}")
    names, formats, offsets, fields = [], [], [], []
    offset = 0
    max_align = 1
    for name in points.dtype.names:
        field_dtype = points.dtype.fields[name][0]
        base, shape = field_dtype.base, field_dtype.shape
        scalar = np.dtype(base).newbyteorder("=")
        if scalar not in _DTYPE_POINTFIELDS:
            raise TypeError(f"field {name!r} has dtype {base}, not a PointField type")
        count = int(np.prod(shape)) if shape else 1
        align = scalar.itemsize
        offset = -(-offset // align) * align
        max_align = max(max_align, align)
        names.append(name)
        formats.append((scalar.newbyteorder("<"), shape) if shape else scalar.newbyteorder("<"))
        offsets.append(offset)
        fields.append(
            PointField(name=name, offset=offset, datatype=_DTYPE_POINTFIELDS[scalar], count=count)
        )
        offset += scalar.itemsize * count
    point_step = -(-offset // max_align) * max_align
    packed_dtype = np.dtype(
        {"names": names, "formats": formats, "offsets": offsets, "itemsize": point_step}
    )
    packed = np.zeros(points.shape[0], dtype=packed_dtype)
    for name in names:
        packed[name] = points[name]
    msg = PointCloud2()
    if header is not None:
        msg.header = header
    msg.height, msg.width = 1, int(points.shape[0])
    msg.fields = fields
    msg.is_bigendian = False
    msg.point_step = point_step
    msg.row_step = point_step * int(points.shape[0])
    msg.data = packed.tobytes()
    msg.is_dense = bool(
        all(
            np.all(np.isfinite(points[n]))
            for n in names
            if np.issubdtype(points.dtype.fields[n][0].base, np.floating)
        )
    )
    return msg


def cloud_to_structured(msg: PointCloud2) -> NDArray:
    """All points of a ``PointCloud2`` as a 1-D structured array (``height * width`` rows).

    Handles padding between fields and points (``point_step``) and rows (``row_step``), both byte
    orders, and ``count > 1`` fields (subarrays). Fields are returned in offset order, native
    byte order. Raises ValueError for malformed clouds.
    """
    if not isinstance(msg, PointCloud2):
        raise TypeError(f"expected sensor_msgs/PointCloud2, got {type(msg).__name__}")
    h, w = int(msg.height), int(msg.width)
    point_step, row_step = int(msg.point_step), int(msg.row_step)
    order = ">" if msg.is_bigendian else "<"
    names, formats, offsets, native = [], [], [], []
    for f in sorted(msg.fields, key=lambda f: f.offset):
        dt = _POINTFIELD_DTYPES.get(int(f.datatype))
        if dt is None:
            raise ValueError(f"field {f.name!r} has unknown PointField datatype {f.datatype}")
        count = max(int(f.count), 1)
        end = int(f.offset) + dt.itemsize * count
        if end > point_step:
            raise ValueError(f"field {f.name!r} ends at byte {end}, beyond point_step {point_step}")
        names.append(f.name)
        offsets.append(int(f.offset))
        formats.append((dt.newbyteorder(order), (count,)) if count > 1 else dt.newbyteorder(order))
        native.append((f.name, dt, (count,)) if count > 1 else (f.name, dt))
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate field names in cloud: {names}")
    if h * w == 0:
        return np.zeros(0, dtype=native)
    if row_step < w * point_step:
        raise ValueError(f"row_step {row_step} is smaller than width*point_step {w * point_step}")
    if len(msg.data) != row_step * h:
        raise ValueError(
            f"cloud data has {len(msg.data)} bytes, expected row_step*height = {row_step * h}"
        )
    raw = np.frombuffer(msg.data, dtype=np.uint8).reshape(h, row_step)[:, : w * point_step]
    dtype = np.dtype(
        {"names": names, "formats": formats, "offsets": offsets, "itemsize": point_step}
    )
    view = np.ascontiguousarray(raw).reshape(-1).view(dtype)
    out = np.empty(view.shape[0], dtype=native)
    for name in names:
        out[name] = view[name]
    return out


SEMANTIC_CLOUD_FIELDS = ("x", "y", "z", "rgb", "label", "score")
"""Fields of ``~/semantic_cloud`` and of ``Segment.points``, in order."""


def semantic_cloud(
    xyz: ArrayLike,
    rgb: ArrayLike,
    labels: ArrayLike,
    scores: ArrayLike,
    header: Header | None = None,
    label_dtype: type = np.uint16,
) -> PointCloud2:
    """The semantic ``PointCloud2``: x y z (float32, metres), rgb (packed float32), label, score.

    xyz: (n, 3) points in ``header.frame_id``; rgb: (n, 3) uint8 or float in [0, 1];
    labels: (n,) class ids >= 0 (stored as ``label_dtype``, uint16 or uint32);
    scores: (n,) confidences. Raises ValueError for mismatched lengths, NaN points or labels that
    do not fit ``label_dtype``.
    """
    p = np.asarray(xyz)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"xyz must have shape (n, 3), got {p.shape}")
    n = p.shape[0]
    lab = np.asarray(labels)
    sc = np.asarray(scores)
    if lab.shape != (n,) or sc.shape != (n,):
        raise ValueError(
            f"labels {lab.shape} and scores {sc.shape} must both have shape ({n},) like xyz"
        )
    if not np.all(np.isfinite(p)):
        raise ValueError("xyz contains NaN or Inf; drop invalid points before packing")
    ldt = np.dtype(label_dtype)
    if ldt not in (np.dtype(np.uint16), np.dtype(np.uint32)):
        raise TypeError(f"label_dtype must be uint16 or uint32, got {ldt}")
    if n and (lab.min() < 0 or lab.max() > np.iinfo(ldt).max):
        raise ValueError(f"labels must be in [0, {np.iinfo(ldt).max}] for {ldt}")
    dtype = np.dtype(
        [("x", "f4"), ("y", "f4"), ("z", "f4"), ("rgb", "f4"), ("label", ldt), ("score", "f4")]
    )
    pts = np.empty(n, dtype=dtype)
    pts["x"], pts["y"], pts["z"] = p[:, 0], p[:, 1], p[:, 2]
    pts["rgb"] = pack_rgb(rgb) if n else np.zeros(0, np.float32)
    pts["label"] = lab
    pts["score"] = sc
    return structured_to_cloud(pts, header)


@dataclass(frozen=True)
class SemanticPoints:
    """Decoded semantic cloud: xyz (n, 3) float32, rgb (n, 3) uint8, labels (n,), scores (n,)."""

    xyz: NDArray[np.float32]
    rgb: NDArray[np.uint8]
    labels: NDArray[np.integer]
    scores: NDArray[np.float32]


def cloud_to_semantic(msg: PointCloud2) -> SemanticPoints:
    """Inverse of ``semantic_cloud``; raises ValueError if a field is missing."""
    pts = cloud_to_structured(msg)
    missing = [f for f in SEMANTIC_CLOUD_FIELDS if f not in (pts.dtype.names or ())]
    if missing:
        raise ValueError(f"cloud lacks semantic fields {missing}")
    xyz = np.stack([pts["x"], pts["y"], pts["z"]], axis=-1).astype(np.float32)
    return SemanticPoints(xyz, unpack_rgb(pts["rgb"]), pts["label"].copy(), pts["score"].copy())


GAUSSIAN_CLOUD_FIELDS = (
    ("x", 1),
    ("y", 1),
    ("z", 1),
    ("rgb", 1),
    ("opacity", 1),
    ("scale_0", 1),
    ("scale_1", 1),
    ("scale_2", 1),
    ("rot_0", 1),
    ("rot_1", 1),
    ("rot_2", 1),
    ("rot_3", 1),
    ("feature_rgb", 1),
)
"""Fields of ``~/gaussians`` (all float32): centre (m), colour (packed, RViz RGB8), opacity in
[0, 1], per-axis scale (m, not log), rotation wxyz (``rot_0`` = w), and a packed colour of the
semantic feature's first three PCA components (``feature_rgb``; shown in RViz by renaming or with
an Intensity transformer on another field)."""


def gaussians_cloud(
    means: ArrayLike,
    colors: ArrayLike,
    opacities: ArrayLike,
    scales: ArrayLike,
    quats_wxyz: ArrayLike,
    feature_colors: ArrayLike | None = None,
    header: Header | None = None,
) -> PointCloud2:
    """A ``PointCloud2`` of Gaussians for RViz (layout: ``GAUSSIAN_CLOUD_FIELDS``).

    means (n, 3) metres; colors (n, 3) in [0, 1] or uint8; opacities (n,) in [0, 1];
    scales (n, 3) metres; quats_wxyz (n, 4); feature_colors (n, 3) or None (black).
    """
    m = np.asarray(means, dtype=np.float32)
    if m.ndim != 2 or m.shape[1] != 3:
        raise ValueError(f"means must have shape (n, 3), got {m.shape}")
    n = m.shape[0]
    shapes: Mapping[str, tuple[ArrayLike, tuple[int, ...]]] = {
        "colors": (colors, (n, 3)),
        "opacities": (opacities, (n,)),
        "scales": (scales, (n, 3)),
        "quats_wxyz": (quats_wxyz, (n, 4)),
    }
    for name, (value, shape) in shapes.items():
        if np.shape(value) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {np.shape(value)}")
    if not np.all(np.isfinite(m)):
        raise ValueError("means contain NaN or Inf")
    feats = np.zeros((n, 3), np.uint8) if feature_colors is None else np.asarray(feature_colors)
    if feats.shape != (n, 3):
        raise ValueError(f"feature_colors must have shape {(n, 3)}, got {feats.shape}")
    dtype = np.dtype([(name, "f4") for name, _ in GAUSSIAN_CLOUD_FIELDS])
    pts = np.empty(n, dtype=dtype)
    pts["x"], pts["y"], pts["z"] = m[:, 0], m[:, 1], m[:, 2]
    pts["rgb"] = pack_rgb(colors) if n else np.zeros(0, np.float32)
    pts["opacity"] = np.asarray(opacities, dtype=np.float32)
    s = np.asarray(scales, dtype=np.float32)
    q = np.asarray(quats_wxyz, dtype=np.float32)
    for i in range(3):
        pts[f"scale_{i}"] = s[:, i]
    for i in range(4):
        pts[f"rot_{i}"] = q[:, i]
    pts["feature_rgb"] = pack_rgb(feats) if n else np.zeros(0, np.float32)
    return structured_to_cloud(pts, header)


def fields_of(msg: PointCloud2) -> Sequence[str]:
    """Field names of a cloud in offset order."""
    return [f.name for f in sorted(msg.fields, key=lambda f: f.offset)]

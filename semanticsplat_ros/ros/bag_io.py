"""Reading and writing ROS 2 bags (MCAP and sqlite3) with ``rosbags``, without a ROS graph.

Reading: ``open_bag`` opens a bag folder (or a bare ``.mcap`` / ``.db3`` file) and turns every
way it can fail (missing path, truncated or corrupt storage) into ``BagError`` with a one-line
message; ``require_topics`` names the configured topics a bag lacks and lists those it has;
``iter_messages`` yields the chosen topics in log-time order, deserialized with rosbags' ROS 2
Humble typestore (the same definitions as Jazzy and Kilted for the message types read here).

rosbags' messages are dataclasses with ``sensor_msgs``' field names; the project's conversions
check ``isinstance`` against the real ``sensor_msgs`` classes, so ``ros_image`` and
``ros_camera_info`` copy them into those. TF is read straight from rosbags' dataclasses
(``tf_transforms``).

Writing: ``BagWriter`` writes an MCAP bag (rosbag2 version 9) from raw CDR bytes: rclpy messages
(``write_ros``: ``rclpy.serialization.serialize_message``), rosbags messages (``write_rosbags``:
the typestore's ``serialize_cdr``, no rclpy needed) or bytes read from another bag
(``write_raw``). ``/tf_static`` is offered transient-local, as tf2 publishes it, so a player
latches it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from numpy.typing import NDArray
from rclpy.serialization import serialize_message
from rosbags.interfaces import (
    Connection,
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer, WriterError
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CameraInfo, Image, RegionOfInterest
from std_msgs.msg import Header

from semanticsplat_ros.ros.conversions import make_transform, normalize_wxyz

TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
"""Message definitions used to (de)serialize; Image, CameraInfo and TFMessage are the same in
Humble, Jazzy and Kilted."""
IMAGE_TYPE = "sensor_msgs/msg/Image"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
TF_TYPE = "tf2_msgs/msg/TFMessage"
POINTCLOUD_TYPE = "sensor_msgs/msg/PointCloud2"
TF_TOPIC = "/tf"
TF_STATIC_TOPIC = "/tf_static"
NS = 1_000_000_000

# Errors a damaged storage file raises while its messages are read (rosbags reads lazily).
_READ_ERRORS = (ReaderError, OSError, EOFError, ValueError, KeyError, IndexError, struct.error)


class BagError(Exception):
    """A bag cannot be used; the message is one line naming the bag and the problem."""


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def bag_topic(topic: str) -> str:
    """The absolute name a recorded topic has in a bag (``head_left/image_raw`` ->
    ``/head_left/image_raw``; bags store fully qualified names)."""
    return "/" + topic.lstrip("~/")


def open_bag(path: str | Path) -> Reader:
    """An opened ``rosbags`` Reader of a bag folder or a bare .mcap / .db3 file.

    BagError (one line) when the path does not exist, is not a bag, or its storage is truncated
    or corrupt.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise BagError(f"bag {path} does not exist")
    if path.is_dir() and not (path / "metadata.yaml").is_file():
        found = sorted(p.name for p in path.iterdir() if p.suffix in (".mcap", ".db3"))
        hint = f" (pass one of its storage files: {', '.join(found)})" if found else ""
        raise BagError(f"{path} is not a ROS 2 bag: it has no metadata.yaml{hint}")
    try:
        reader = Reader(path)
        reader.open()
    except (*_READ_ERRORS, ImportError) as exc:
        raise BagError(
            f"bag {path} cannot be read (truncated or corrupt?): {_one_line(exc)}"
        ) from None
    return reader


def bag_topics(reader: Reader) -> dict[str, str]:
    """``{topic: message type}`` of every topic in the bag."""
    return {topic: info.msgtype or "?" for topic, info in reader.topics.items()}


def require_topics(reader: Reader, wanted: Mapping[str, str]) -> None:
    """BagError unless every topic of ``wanted`` (``{topic: what it is for}``) is in the bag.

    The message names the missing topics and lists the topics the bag has.
    """
    have = bag_topics(reader)
    missing = [f"{t} ({why})" for t, why in wanted.items() if t not in have]
    if missing:
        listed = ", ".join(f"{t} [{m}]" for t, m in sorted(have.items())) or "none"
        raise BagError(
            f"bag {reader.path} has no {', '.join(missing)}; its topics: {listed}"
            " (set the topics with --params-file or --node-param)"
        )


def connections_of(reader: Reader, topics: Sequence[str]) -> list[Connection]:
    """The reader's connections on ``topics``."""
    wanted = set(topics)
    return [c for c in reader.connections if c.topic in wanted]


@dataclass(frozen=True)
class BagMessage:
    """One message read from a bag: its connection, log time (ns), raw CDR and the
    deserialized rosbags dataclass."""

    connection: Connection
    log_time_ns: int
    raw: bytes
    msg: Any

    @property
    def topic(self) -> str:
        return self.connection.topic


def iter_messages(reader: Reader, topics: Sequence[str]) -> Iterator[BagMessage]:
    """Messages of ``topics`` in log-time order, deserialized with ``TYPESTORE``.

    BagError when the storage turns out to be truncated or corrupt while reading, or a message
    does not deserialize as its declared type.
    """
    connections = connections_of(reader, topics)
    if not connections:
        return
    try:
        for connection, log_time, raw in reader.messages(connections=connections):
            try:
                msg = TYPESTORE.deserialize_cdr(raw, connection.msgtype)
            except Exception as exc:  # rosbags raises assorted errors on bad CDR
                raise BagError(
                    f"bag {reader.path}: a {connection.msgtype} message on {connection.topic} at"
                    f" {log_time / NS:.6f} s does not deserialize: {_one_line(exc)}"
                ) from None
            yield BagMessage(connection, int(log_time), bytes(raw), msg)
    except _READ_ERRORS as exc:
        raise BagError(
            f"bag {reader.path} is truncated or corrupt: reading stopped with {_one_line(exc)}"
        ) from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# --------------------------------------------------------------------------------------------
# rosbags dataclasses -> rclpy messages, TF
# --------------------------------------------------------------------------------------------


def stamp_ns(stamp: Any) -> int:
    """Integer nanoseconds of a Time-like object (``sec``, ``nanosec``)."""
    return int(stamp.sec) * NS + int(stamp.nanosec)


def ros_header(header: Any) -> Header:
    """``std_msgs/Header`` of a rosbags header."""
    stamp = Time(sec=int(header.stamp.sec), nanosec=int(header.stamp.nanosec))
    return Header(stamp=stamp, frame_id=str(header.frame_id))


def ros_image(msg: Any) -> Image:
    """``sensor_msgs/Image`` with the fields of a rosbags Image (the pixel bytes are copied)."""
    out = Image()
    out.header = ros_header(msg.header)
    out.height, out.width = int(msg.height), int(msg.width)
    out.encoding = str(msg.encoding)
    out.is_bigendian = int(msg.is_bigendian)
    out.step = int(msg.step)
    out.data = np.asarray(msg.data, dtype=np.uint8).tobytes()
    return out


def ros_camera_info(msg: Any) -> CameraInfo:
    """``sensor_msgs/CameraInfo`` with the fields of a rosbags CameraInfo."""
    out = CameraInfo()
    out.header = ros_header(msg.header)
    out.height, out.width = int(msg.height), int(msg.width)
    out.distortion_model = str(msg.distortion_model)
    out.d = [float(x) for x in msg.d]
    out.k = [float(x) for x in msg.k]
    out.r = [float(x) for x in msg.r]
    out.p = [float(x) for x in msg.p]
    out.binning_x, out.binning_y = int(msg.binning_x), int(msg.binning_y)
    roi = msg.roi
    out.roi = RegionOfInterest(
        x_offset=int(roi.x_offset),
        y_offset=int(roi.y_offset),
        height=int(roi.height),
        width=int(roi.width),
        do_rectify=bool(roi.do_rectify),
    )
    return out


@dataclass(frozen=True)
class StampedTransform:
    """``T_parent_child`` (4x4 float64, metres) at ``stamp`` seconds."""

    parent: str
    child: str
    stamp: float
    T: NDArray[np.float64]


def tf_transforms(msg: Any) -> list[StampedTransform]:
    """The transforms of a rosbags ``tf2_msgs/TFMessage``; ValueError for a NaN or zero
    quaternion (the caller counts it, the rest of the bag is still used)."""
    out = []
    for ts in msg.transforms:
        t, q = ts.transform.translation, ts.transform.rotation
        wxyz = normalize_wxyz([q.w, q.x, q.y, q.z], name=f"rotation of {ts.child_frame_id!r}")
        T = make_transform([t.x, t.y, t.z], wxyz)
        stamp = stamp_ns(ts.header.stamp) / NS
        out.append(StampedTransform(str(ts.header.frame_id), str(ts.child_frame_id), stamp, T))
    return out


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _qos(latched: bool) -> Qos:
    zero = QosTime(sec=0, nsec=0)
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=1 if latched else 10,
        reliability=QosReliability.RELIABLE,
        durability=QosDurability.TRANSIENT_LOCAL if latched else QosDurability.VOLATILE,
        deadline=zero,
        lifespan=zero,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=zero,
        avoid_ros_namespace_conventions=False,
    )


def ros_msgtype(msg: Any) -> str:
    """``pkg/msg/Name`` of an rclpy message object."""
    cls = type(msg)
    package = cls.__module__.split(".")[0]
    return f"{package}/msg/{cls.__name__}"


class BagWriter:
    """Writes an MCAP bag (rosbag2 version 9); one connection per topic, added on first use.

    Use as a context manager; ``path`` must not exist yet (a bag is never overwritten).
    """

    def __init__(self, path: str | Path, storage: str = "mcap") -> None:
        self.path = Path(path).expanduser()
        if self.path.exists():
            raise BagError(f"output bag {self.path} exists already; pick another --out")
        if not self.path.parent.is_dir():
            raise BagError(f"the folder {self.path.parent} of the output bag does not exist")
        plugin = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}[storage]
        self._writer = Writer(self.path, version=9, storage_plugin=plugin)
        self._connections: dict[str, Connection] = {}
        self.counts: dict[str, int] = {}

    def __enter__(self) -> BagWriter:
        try:
            self._writer.open()
        except (WriterError, OSError) as exc:
            raise BagError(f"cannot create bag {self.path}: {_one_line(exc)}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.close()

    def _connection(self, topic: str, msgtype: str) -> Connection:
        connection = self._connections.get(topic)
        if connection is None:
            connection = self._writer.add_connection(
                topic,
                msgtype,
                typestore=TYPESTORE,
                offered_qos_profiles=[_qos(latched=topic == TF_STATIC_TOPIC)],
            )
            self._connections[topic] = connection
            self.counts[topic] = 0
        elif connection.msgtype != msgtype:
            raise ValueError(f"topic {topic} carries {connection.msgtype}, not {msgtype}")
        return connection

    def write_raw(self, topic: str, msgtype: str, log_time_ns: int, raw: bytes) -> None:
        """Write CDR bytes of a ``msgtype`` message on ``topic`` at ``log_time_ns``."""
        self._writer.write(self._connection(topic, msgtype), int(log_time_ns), raw)
        self.counts[topic] += 1

    def write_ros(self, topic: str, log_time_ns: int, msg: Any) -> None:
        """Write an rclpy message (serialized with ``rclpy.serialization``)."""
        self.write_raw(topic, ros_msgtype(msg), log_time_ns, serialize_message(msg))

    def write_rosbags(self, topic: str, log_time_ns: int, msg: Any) -> None:
        """Write a rosbags dataclass message (serialized with ``TYPESTORE``; no rclpy)."""
        msgtype = msg.__msgtype__
        self.write_raw(topic, msgtype, log_time_ns, bytes(TYPESTORE.serialize_cdr(msg, msgtype)))

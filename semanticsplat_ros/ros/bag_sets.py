"""Synchronised, posed camera sets of a ROS 2 bag, as the node would have seen them live.

``load_bag_params`` reads ``semanticsplat_node``'s parameters (the bringup YAML plus
``--node-param NAME:=VALUE`` overrides, values parsed as YAML like ``ros2 run -p``). ``BagSets``
opens the bag, checks the configured topics, loads the whole ``/tf`` and ``/tf_static`` history
into a ``TfBuffer`` (first pass: TF is small, and a set's pose then never waits for TF that is
recorded later), then replays images and camera_info in log-time order through the node's
``CameraSetSync`` (second pass), yielding every complete set with its TF. Poses are looked up at
each image's header stamp with the recorder's ``lookup_pose``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sensor_msgs.msg import CameraInfo, Image

from semanticsplat_ros.ros.bag_io import (
    NS,
    TF_STATIC_TOPIC,
    TF_TOPIC,
    BagError,
    BagMessage,
    bag_topic,
    iter_messages,
    open_bag,
    require_topics,
    ros_camera_info,
    ros_image,
    stamp_ns,
    tf_transforms,
)
from semanticsplat_ros.ros.params import NodeParams, read_params_file, validate_params
from semanticsplat_ros.ros.recording import depth_stream
from semanticsplat_ros.ros.tf_buffer import TfBuffer
from semanticsplat_ros.ros.time_sync import CameraFrameSet, CameraSetSync


def parse_node_params(items: Sequence[str]) -> dict[str, Any]:
    """``["name:=value", ...]`` -> ``{name: value}``, values read as YAML (``[a, b]`` is a list,
    ``true`` a bool, ``0.5`` a float). ValueError for a malformed item."""
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition(":=")
        if not sep or not name.strip():
            raise ValueError(f"--node-param {item!r} must look like name:=value")
        try:
            out[name.strip()] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            raise ValueError(f"--node-param {item!r}: the value is not valid YAML") from None
    return out


def load_bag_params(params_file: str | Path | None, overrides: Sequence[str] = ()) -> NodeParams:
    """``semanticsplat_node``'s parameters: ``params_file`` (None: the schema's defaults) with
    ``--node-param`` overrides on top; ValueError listing every problem."""
    values: dict[str, Any] = read_params_file(params_file) if params_file else {}
    values.update(parse_node_params(overrides))
    try:
        return validate_params(values)
    except ValueError as exc:
        raise ValueError(" ".join(str(exc).split())) from None


def parse_depth_topics(items: Sequence[str], cameras: Sequence[str]) -> dict[str, str]:
    """``["camera:=topic", ...]`` -> ``{camera: bag topic}``; ValueError for unknown cameras."""
    out: dict[str, str] = {}
    for item in items:
        camera, sep, topic = item.partition(":=")
        if not sep or not camera.strip() or not topic.strip():
            raise ValueError(f"--depth-topic {item!r} must look like camera:=topic")
        if camera.strip() not in cameras:
            raise ValueError(f"--depth-topic {item!r}: no camera {camera!r} (cameras: {cameras})")
        out[camera.strip()] = bag_topic(topic.strip())
    return out


@dataclass
class BagSetStats:
    """What the replay saw: messages per kind, TF messages refused, sync counters."""

    images: int = 0
    camera_infos: int = 0
    tf_messages: int = 0
    bad_tf: int = 0
    sets: int = 0
    images_without_camera_info: int = 0
    unmatched_images: int = 0
    tf_frames: list[str] = field(default_factory=list)


class BagSets:
    """The synchronised sets of a bag for ``params``'s cameras (see the module docstring).

    ``depth_topics`` (``{camera: topic}``, optional) adds registered depth images to the sets
    (stream ``depth_stream(camera)``). BagError for an unreadable bag or missing topics.
    """

    def __init__(
        self,
        bag: str | Path,
        params: NodeParams,
        depth_topics: Mapping[str, str] | None = None,
    ) -> None:
        self.params = params
        self.reader = open_bag(bag)
        self.path = Path(bag)
        self.depth_topics = dict(depth_topics or {})
        self.stats = BagSetStats()
        # topic -> (kind, stream)
        self.routes: dict[str, tuple[str, str]] = {}
        wanted: dict[str, str] = {}
        for camera in params.cameras:
            image, info = bag_topic(camera.image_topic), bag_topic(camera.camera_info_topic)
            self.routes[image] = ("image", camera.name)
            self.routes[info] = ("camera_info", camera.name)
            wanted[image] = f"image of camera {camera.name}"
            wanted[info] = f"camera_info of camera {camera.name}"
        for camera, topic in self.depth_topics.items():
            self.routes[topic] = ("image", depth_stream(camera))
            wanted[topic] = f"depth of camera {camera}"
        require_topics(self.reader, wanted)
        topics = self.reader.topics
        if TF_TOPIC not in topics and TF_STATIC_TOPIC not in topics:
            raise BagError(
                f"bag {self.path} has neither {TF_TOPIC} nor {TF_STATIC_TOPIC}: the cameras'"
                f" poses in {params.fixed_frame!r} cannot be looked up"
            )
        self.tf_messages: list[BagMessage] = []
        self.tf = self._load_tf()

    @property
    def image_count(self) -> int:
        """Colour images of the configured cameras in the bag (the progress bar's total)."""
        counts = self.reader.topics
        return sum(counts[t].msgcount for t, (k, s) in self.routes.items() if k == "image")

    def _load_tf(self) -> TfBuffer:
        duration_s = max(self.reader.duration / NS, 0.0)
        tf = TfBuffer(cache_duration=duration_s + 3600.0, tolerance=self.params.tf_tolerance_s)
        for message in iter_messages(self.reader, [TF_TOPIC, TF_STATIC_TOPIC]):
            self.tf_messages.append(message)
            self.stats.tf_messages += 1
            static = message.topic == TF_STATIC_TOPIC
            try:
                for t in tf_transforms(message.msg):
                    tf.set_transform(t.parent, t.child, t.stamp, t.T, static=static)
            except ValueError:
                self.stats.bad_tf += 1
        self.stats.tf_frames = sorted(tf.frames())
        return tf

    def __iter__(self) -> Iterator[CameraFrameSet[Image, CameraInfo]]:
        p = self.params
        streams = p.camera_names + [depth_stream(c) for c in self.depth_topics]
        sync: CameraSetSync[Image, CameraInfo] = CameraSetSync(
            streams, p.sync_slop_s, queue_size=p.sync_queue_size
        )
        for message in iter_messages(self.reader, list(self.routes)):
            kind, stream = self.routes[message.topic]
            stamp = stamp_ns(message.msg.header.stamp) / NS
            if kind == "camera_info":
                self.stats.camera_infos += 1
                info = ros_camera_info(message.msg)
                sync.add_camera_info(stream, stamp, info)
                for camera in self.depth_topics:
                    if camera == stream:
                        # Registered depth shares its colour camera's intrinsics.
                        sync.add_camera_info(depth_stream(camera), stamp, info)
                continue
            self.stats.images += int(stream in p.camera_names)
            if sync.add_image(stream, stamp, ros_image(message.msg)):
                frame_set = sync.take_latest()
                if frame_set is not None:
                    self.stats.sets += 1
                    yield frame_set
        self.stats.images_without_camera_info = sync.no_camera_info
        self.stats.unmatched_images = sync.stats.dropped_messages

    def close(self) -> None:
        if self.reader.is_open:
            self.reader.close()

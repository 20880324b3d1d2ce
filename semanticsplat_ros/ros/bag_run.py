"""``semanticsplat bag run``: the pipeline over every synchronised set of a bag, into an MCAP bag.

Each set goes through the node's steps (decode, TF pose at each image stamp, ``encode``) and the
node's output messages are built by the same pure functions (``outputs.py``), on the node's topic
names (``/<node>/<camera>/depth``, ``.../labels``, ``.../class_masks/<class>``,
``/<node>/semantic_cloud``), stamped like their inputs; the input ``/tf`` and ``/tf_static`` are
copied, so the output bag plays in RViz or Foxglove. The publish_* parameters choose the
outputs as they do on the node. Unusable sets are counted by reason in the summary.

With ``map_enabled`` every encoded set is also fused into the node's persistent map (``MapHost``,
the node's code) and ``/<node>/map_cloud`` is written as the node's timer would publish it, on a
bag-time clock: timer ticks every ``map_publish_period_s`` from the first set's stamp; a tick
writes the map when a set was fused since the last write, at the tick's time, stamped with the
newest fused set's stamp (the node's header), frame ``fixed_frame``; the final map is written
once more at the last set's stamp if a set was fused after the last tick.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from std_msgs.msg import Header

from semanticsplat_ros.pipeline import CameraFrame, EncodedScene, SemanticSplatPipeline
from semanticsplat_ros.ros.bag_dataset import posed_records
from semanticsplat_ros.ros.bag_io import NS, BagMessage, BagWriter, stamp_ns
from semanticsplat_ros.ros.bag_sets import BagSets
from semanticsplat_ros.ros.conversions import make_header
from semanticsplat_ros.ros.map_host import MapHost
from semanticsplat_ros.ros.outputs import (
    class_mask_msg,
    class_topic_names,
    depth_msg,
    labels_msg,
    semantic_cloud_msg,
)
from semanticsplat_ros.ros.params import NODE_NAME, NodeParams
from semanticsplat_ros.ros.recording import RecorderStats, SkippedSetError
from semanticsplat_ros.ros.services import LatestScene


def output_topics(params: NodeParams, classes: tuple[str, ...]) -> dict[str, list[str]]:
    """The node's output topic names per kind (``depth``, ``labels``, ``class_masks``,
    ``semantic_cloud``, and ``map_cloud`` with ``map_enabled``), as the node resolves ``~/...``
    in the root namespace."""
    base = f"/{NODE_NAME}"
    tokens = class_topic_names(classes)
    topics: dict[str, list[str]] = {"depth": [], "labels": [], "class_masks": []}
    for camera in params.camera_names:
        topics["depth"].append(f"{base}/{camera}/depth")
        topics["labels"].append(f"{base}/{camera}/labels")
        topics["class_masks"] += [f"{base}/{camera}/class_masks/{t}" for t in tokens]
    topics["semantic_cloud"] = [f"{base}/semantic_cloud"]
    if params.map_enabled:
        topics["map_cloud"] = [f"{base}/map_cloud"]
    return topics


@dataclass
class RunSummary:
    """What ``bag_run`` did; ``to_json`` is the ``--summary`` file."""

    bag: str
    out_bag: str
    sets: int = 0
    encoded: int = 0
    skipped: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    encode_seconds: float = 0.0
    sets_per_second: float = 0.0
    messages: dict[str, int] = field(default_factory=dict)
    why_none: str = ""
    """When no set was encoded: why (``RecorderStats.why_none``)."""
    map_enabled: bool = False
    map_clouds: int = 0
    """``map_cloud`` messages written."""
    map_voxels: int = 0
    """Voxels of the map at the end."""
    map_fuse_errors: int = 0
    """Encoded sets the map refused (the node reports these in its diagnostics)."""
    map_seconds: float = 0.0
    """Time spent fusing and building map clouds (part of ``seconds``)."""
    bag_stats: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    def line(self) -> str:
        """One line for the terminal."""
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.skipped_reasons.items()))
        return (
            f"sets={self.sets} encoded={self.encoded} skipped={self.skipped}"
            + (f" ({reasons})" if reasons else "")
            + f" in {self.seconds:.1f} s ({self.sets_per_second:.2f} sets/s);"
            + (
                f" map {self.map_voxels} voxels, {self.map_clouds} map clouds;"
                if self.map_enabled
                else ""
            )
            + f" wrote {sum(self.messages.values())} messages to {self.out_bag}"
        )


def write_outputs(
    writer: BagWriter,
    pipeline: SemanticSplatPipeline,
    scene: EncodedScene,
    headers: Mapping[str, Header],
    params: NodeParams,
) -> None:
    """Write the node's outputs of one encoded set, each at its header's stamp."""
    topics = output_topics(params, scene.classes)
    base = f"/{NODE_NAME}"
    tokens = class_topic_names(scene.classes)
    for i, camera in enumerate(scene.names):
        header = headers[camera]
        t_ns = stamp_ns(header.stamp)
        if params.publish_depth:
            writer.write_ros(f"{base}/{camera}/depth", t_ns, depth_msg(scene, i, header))
        if params.publish_labels:
            labels = scene.label_image(i)
            msg = labels_msg(labels, len(scene.classes), header)
            writer.write_ros(f"{base}/{camera}/labels", t_ns, msg)
            for k, token in enumerate(tokens):
                mask = class_mask_msg(labels, k, header)
                writer.write_ros(f"{base}/{camera}/class_masks/{token}", t_ns, mask)
    if params.publish_semantic_cloud:
        cloud_header = LatestScene(scene, dict(headers)).header(params.fixed_frame)
        cloud = semantic_cloud_msg(
            pipeline, scene, cloud_header, params.cloud_stride, params.min_opacity
        )
        writer.write_ros(topics["semantic_cloud"][0], stamp_ns(cloud_header.stamp), cloud)


class BagMap:
    """The node's map (``MapHost.for_node``) and its ``map_cloud`` timer on the bag's clock
    (see the module docstring)."""

    def __init__(self, params: NodeParams, pipeline: SemanticSplatPipeline) -> None:
        self.host = MapHost.for_node(params, pipeline)
        self.topic = output_topics(params, ())["map_cloud"][0]
        self.fixed_frame = params.fixed_frame
        self.period_ns = max(1, round(params.map_publish_period_s * NS))
        self.start_ns: int | None = None  # the timer's start: the first set's stamp
        self.fused_ns: int | None = None  # stamp of the latest set fused since the last write
        self.clouds = 0
        self.fuse_errors = 0
        self.seconds = 0.0

    def _write(self, writer: BagWriter, log_time_ns: int) -> None:
        started = time.perf_counter()
        header = make_header(self.fixed_frame, self.host.map.stamp)  # the node's _map_header
        writer.write_ros(self.topic, log_time_ns, self.host.cloud_msg(header))
        self.clouds += 1
        self.fused_ns = None
        self.seconds += time.perf_counter() - started

    def advance(self, writer: BagWriter, now_ns: int) -> None:
        """The bag clock reached ``now_ns``: run the timer ticks up to it (at most one write:
        the map does not change between sets)."""
        if self.start_ns is None:
            self.start_ns = now_ns
        if self.fused_ns is None:
            return
        # The first tick after the latest fusion.
        tick_ns = self.start_ns + (self.fused_ns - self.start_ns) // self.period_ns * self.period_ns
        tick_ns += self.period_ns
        if tick_ns <= now_ns:
            self._write(writer, tick_ns)

    def fuse(self, scene: EncodedScene, pipeline: SemanticSplatPipeline, t_ns: int) -> None:
        """Fuse a set stamped ``t_ns`` (a refusal is counted, as the node does)."""
        started = time.perf_counter()
        try:
            self.host.fuse(scene, pipeline)
        except (ValueError, TypeError):
            self.fuse_errors += 1
        else:
            self.fused_ns = t_ns
        self.seconds += time.perf_counter() - started

    def finish(self, writer: BagWriter) -> None:
        """The end of the bag: the final map, at the last fused set's stamp."""
        if self.fused_ns is not None:
            self._write(writer, self.fused_ns)


def _flush_tf(writer: BagWriter, pending: list[BagMessage], until_ns: int | None) -> None:
    """Copy the input TF messages logged at or before ``until_ns`` (None: all) unchanged."""
    while pending and (until_ns is None or pending[0].log_time_ns <= until_ns):
        m = pending.pop(0)
        writer.write_raw(m.topic, m.connection.msgtype, m.log_time_ns, m.raw)


def bag_run(
    bag: str | Path,
    out_bag: str | Path,
    params: NodeParams,
    pipeline: SemanticSplatPipeline,
    progress: Callable[[int], None] | None = None,
) -> RunSummary:
    """Encode every synchronised set of ``bag`` and write the outputs to the MCAP ``out_bag``.

    ``progress(n)``: colour images consumed since the last call. BagError for an unusable input
    bag or an output bag that exists already.
    """
    summary = RunSummary(bag=str(bag), out_bag=str(out_bag), map_enabled=params.map_enabled)
    stats = RecorderStats()
    started = time.perf_counter()
    sets = BagSets(bag, params)
    bag_map = BagMap(params, pipeline) if params.map_enabled else None
    try:
        with BagWriter(out_bag) as writer:
            pending = list(sets.tf_messages)
            seen = 0
            for frame_set in sets:
                stats.count("sets")
                if progress is not None:
                    progress(sets.stats.images - seen)
                    seen = sets.stats.images
                try:
                    records = posed_records(frame_set, sets) or []  # no keyframe rule
                    frames = [CameraFrame(r.camera, r.rgb, r.K, r.c2w, r.stamp) for r in records]
                    t0 = time.perf_counter()
                    try:
                        scene = pipeline.encode(frames, params.near or None, params.far)
                    except ValueError as exc:
                        raise SkippedSetError("encode_refused", str(exc)) from None
                    summary.encode_seconds += time.perf_counter() - t0
                except SkippedSetError as exc:
                    stats.count("skipped", exc.reason, str(exc))
                    continue
                headers = {f.camera: f.image.header for f in frame_set.frames}
                t_ns = max(stamp_ns(h.stamp) for h in headers.values())
                _flush_tf(writer, pending, t_ns)
                if bag_map is not None:
                    bag_map.advance(writer, t_ns)
                write_outputs(writer, pipeline, scene, headers, params)
                if bag_map is not None:
                    bag_map.fuse(scene, pipeline, t_ns)
                stats.count("written")
            if bag_map is not None:
                bag_map.finish(writer)
            _flush_tf(writer, pending, None)
            if progress is not None:
                progress(sets.stats.images - seen)
            summary.messages = dict(writer.counts)
    finally:
        sets.close()
    summary.sets, summary.encoded, summary.skipped = stats.sets, stats.written, stats.skipped
    summary.skipped_reasons = dict(stats.reasons)
    summary.why_none = "" if summary.encoded else stats.why_none()
    summary.seconds = time.perf_counter() - started
    summary.sets_per_second = summary.encoded / summary.seconds if summary.seconds > 0 else 0.0
    summary.bag_stats = asdict(sets.stats)
    if bag_map is not None:
        summary.map_clouds, summary.map_fuse_errors = bag_map.clouds, bag_map.fuse_errors
        summary.map_voxels, summary.map_seconds = len(bag_map.host.map), bag_map.seconds
    return summary

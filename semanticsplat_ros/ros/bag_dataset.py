"""``semanticsplat bag to-dataset``: a bag's synchronised sets as a ScanNet-layout dataset.

The same steps as the live ``semanticsplat_record`` node, on a bag: ``BagSets`` replays images
and camera_info through the node's sync and the bag's TF; the recorder's pure pieces
(``recording.py``) do the rest: ``lookup_pose`` at each image stamp, the shared keyframe rule
(``DatasetRecorder.is_keyframe``), ``decode_frame`` and ``DatasetRecorder.write_set`` (one scene
folder ``<out>/<scene_prefix>_<camera>`` per camera, frame ``i`` of every camera from set ``i``).
Sets that cannot be used are counted by reason (``RecorderStats``), never fatal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from sensor_msgs.msg import CameraInfo, Image

from semanticsplat_ros.data.types import DEFAULT_NEAR
from semanticsplat_ros.ros.bag_sets import BagSets
from semanticsplat_ros.ros.params import NodeParams
from semanticsplat_ros.ros.recording import (
    CameraRecord,
    DatasetRecorder,
    RecorderStats,
    SkippedSetError,
)
from semanticsplat_ros.ros.recording import posed_records as recording_posed_records
from semanticsplat_ros.ros.time_sync import CameraFrameSet


@dataclass(frozen=True)
class KeyframeRule:
    """When a set is written (``recording.is_keyframe``) and how many at most.

    min_translation_m / min_rotation_deg: the first camera moved / turned at least this much
    since the last written set (both 0: every set); max_frames: 0 = no limit.
    """

    min_translation_m: float = 0.05
    min_rotation_deg: float = 5.0
    max_frames: int = 0


def posed_records(
    frame_set: CameraFrameSet[Image, CameraInfo],
    bag: BagSets,
    recorder: DatasetRecorder | None = None,
) -> list[CameraRecord] | None:
    """Decoded, posed records of a set (``recorder`` given: None when it is not a keyframe).

    SkippedSetError (``no_tf``, ``bad_image``, ``size_mismatch``, ...) when a camera's messages
    or pose are unusable.
    """
    p = bag.params
    return recording_posed_records(
        frame_set, p.camera_names, bag.depth_topics, bag.tf, p.fixed_frame, p.rectified,
        recorder, wait_s=0,
    )  # fmt: skip


@dataclass(frozen=True)
class DatasetResult:
    """What ``bag_to_dataset`` wrote: scene folders, frames per camera and the counters."""

    scene_dirs: list[Path]
    frames: int
    stats: RecorderStats


def bag_to_dataset(
    bag: str | Path,
    out_dir: str | Path,
    params: NodeParams,
    rule: KeyframeRule = KeyframeRule(),
    scene_prefix: str = "bag",
    depth_topics: Mapping[str, str] | None = None,
    progress: Callable[[int], None] | None = None,
) -> DatasetResult:
    """Write the keyframes of ``bag`` to ``out_dir`` (ScanNet layout, see the module docstring).

    ``progress(n)`` is called with the number of colour images consumed since the last call.
    BagError for an unusable bag, FileExistsError when a scene folder already holds frames.
    """
    sets = BagSets(bag, params, depth_topics)
    try:
        recorder = DatasetRecorder(
            out_dir,
            params.camera_names,
            scene_prefix=scene_prefix,
            near=params.near or DEFAULT_NEAR,
            far=params.far,
            min_translation_m=rule.min_translation_m,
            min_rotation_deg=rule.min_rotation_deg,
            max_frames=rule.max_frames,
        )
        stats = RecorderStats()
        seen = 0
        for frame_set in sets:
            stats.count("sets")
            if progress is not None:
                progress(sets.stats.images - seen)
                seen = sets.stats.images
            try:
                records = posed_records(frame_set, sets, recorder)
                if records is None:
                    stats.count("not_keyframe")
                    continue
                recorder.write_set(records)
                stats.count("written")
            except SkippedSetError as exc:
                stats.count("skipped", exc.reason, str(exc))
            if recorder.done:
                break
        if progress is not None:
            progress(sets.stats.images - seen)
    finally:
        sets.close()
    dirs = [recorder.scene_dir(c) for c in params.camera_names] if recorder.frames_written else []
    return DatasetResult(dirs, recorder.frames_written, stats)

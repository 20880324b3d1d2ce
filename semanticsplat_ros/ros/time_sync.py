"""Approximate-time synchronisation of N stamped streams; the newest complete set wins.

Pure Python and thread-safe: subscription callbacks call ``add`` from any thread, the inference
thread calls ``take_latest`` / ``wait_for_set``. Nothing here imports rclpy, so it is unit-tested
with plain floats.

A *set* holds one message per stream whose stamps all lie within ``slop`` seconds of each other
(max - min <= slop). When a message completes a set, the set becomes the single pending set: an
older pending set that the consumer had not taken yet is dropped (counted), so stale frames never
queue up behind a slow consumer. Queued messages at or before a set's stamps are removed.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Info = TypeVar("Info")


@dataclass(frozen=True)
class SyncedSet(Generic[T]):
    """One message per stream, in the synchroniser's stream order.

    stamp:  the newest stamp in the set (seconds); sets are ordered by it.
    stamps: each item's stamp (seconds), same order as ``items``.
    """

    stamp: float
    stamps: tuple[float, ...]
    items: tuple[T, ...]

    @property
    def spread(self) -> float:
        """max - min of the stamps, seconds (<= slop)."""
        return max(self.stamps) - min(self.stamps)


@dataclass
class SyncStats:
    """Counters since construction (all monotonically increasing).

    received:   messages passed to ``add``.
    sets:       complete sets formed.
    taken:      sets handed to the consumer.
    superseded: complete sets dropped because a newer one formed before they were taken.
    stale:      messages dropped on arrival: at or older than their stream's last set stamp.
    overflow:   messages pushed out of a full per-stream queue without joining a set.
    unmatched:  queued messages removed because a newer set formed without them.
    """

    received: int = 0
    sets: int = 0
    taken: int = 0
    superseded: int = 0
    stale: int = 0
    overflow: int = 0
    unmatched: int = 0

    @property
    def dropped_messages(self) -> int:
        return self.stale + self.overflow + self.unmatched


@dataclass
class _Stream(Generic[T]):
    queue: deque[tuple[float, T]] = field(default_factory=deque)
    last_set_stamp: float = -math.inf


class ApproximateTimeSync(Generic[T]):
    """Synchronise ``streams`` (any hashable names) with a slop in seconds.

    queue_size bounds each stream's queue of not-yet-matched messages (the oldest is dropped).
    """

    def __init__(self, streams: Sequence[Hashable], slop: float, queue_size: int = 5) -> None:
        names = list(streams)
        if not names:
            raise ValueError("need at least one stream to synchronise")
        if len(set(names)) != len(names):
            raise ValueError(f"stream names must be unique, got {names}")
        if not (isinstance(slop, int | float) and math.isfinite(slop) and slop >= 0):
            raise ValueError(f"slop must be a finite number of seconds >= 0, got {slop!r}")
        if not isinstance(queue_size, int) or queue_size < 1:
            raise ValueError(f"queue_size must be an integer >= 1, got {queue_size!r}")
        self._names = names
        self._index = {name: i for i, name in enumerate(names)}
        self._slop = float(slop)
        self._queue_size = queue_size
        self._streams: list[_Stream[T]] = [_Stream() for _ in names]
        self._pending: SyncedSet[T] | None = None
        self._stats = SyncStats()
        self._cond = threading.Condition(threading.Lock())

    @property
    def streams(self) -> list[Hashable]:
        return list(self._names)

    @property
    def slop(self) -> float:
        return self._slop

    @property
    def stats(self) -> SyncStats:
        """A snapshot of the counters."""
        with self._cond:
            return SyncStats(**vars(self._stats))

    def add(self, stream: Hashable, stamp: float, item: T) -> SyncedSet[T] | None:
        """Queue ``item`` stamped ``stamp`` (seconds) on ``stream``.

        Returns the set it completed (also made the pending set), or None. Raises KeyError for an
        unknown stream and ValueError for a non-finite stamp.
        """
        index = self._index.get(stream)
        if index is None:
            raise KeyError(f"unknown stream {stream!r}; streams are {self._names}")
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise ValueError(f"stamp must be finite, got {stamp}")
        with self._cond:
            self._stats.received += 1
            s = self._streams[index]
            if stamp <= s.last_set_stamp:
                self._stats.stale += 1
                return None
            # Keep the queue sorted by stamp (arrivals are usually in order: append).
            queue = s.queue
            if not queue or queue[-1][0] < stamp:
                queue.append((stamp, item))
            else:
                entries = [e for e in queue if e[0] != stamp] + [(stamp, item)]
                entries.sort(key=lambda e: e[0])
                queue.clear()
                queue.extend(entries)
            while len(queue) > self._queue_size:
                queue.popleft()
                self._stats.overflow += 1
            found = self._find_set(index, stamp)
            if found is None:
                return None
            self._emit(found)
            return self._pending

    def _find_set(self, index: int, stamp: float) -> list[tuple[float, T]] | None:
        """The tightest set containing the new message (then the newest), or None."""
        slop = self._slop
        candidates: list[list[tuple[float, T]]] = []
        for i, s in enumerate(self._streams):
            if i == index:
                candidates.append([e for e in s.queue if e[0] == stamp])
            else:
                near = [e for e in s.queue if abs(e[0] - stamp) <= slop]
                if not near:
                    return None
                candidates.append(near)
        # Windows [lo, lo + slop] that contain the new stamp; lo ranges over candidate stamps.
        lows = sorted({e[0] for c in candidates for e in c if stamp - slop <= e[0] <= stamp})
        best: tuple[float, float, list[tuple[float, T]]] | None = None
        for lo in lows:
            hi = lo + slop
            chosen = []
            for c in candidates:
                inside = [e for e in c if lo <= e[0] <= hi]
                if not inside:
                    break
                chosen.append(min(inside, key=lambda e: (abs(e[0] - stamp), -e[0])))
            else:
                stamps = [e[0] for e in chosen]
                spread, newest = max(stamps) - min(stamps), max(stamps)
                if best is None or (spread, -newest) < (best[0], -best[1]):
                    best = (spread, newest, chosen)
        return None if best is None else best[2]

    def _emit(self, chosen: list[tuple[float, T]]) -> None:
        for s, (stamp, _) in zip(self._streams, chosen, strict=True):
            s.last_set_stamp = stamp
            kept = deque(e for e in s.queue if e[0] > stamp)
            # Everything at or before the set's stamp is consumed: the member itself, and older
            # messages that never made a set.
            self._stats.unmatched += len(s.queue) - len(kept) - 1
            s.queue = kept
        if self._pending is not None:
            self._stats.superseded += 1
        stamps = tuple(e[0] for e in chosen)
        self._pending = SyncedSet(
            stamp=max(stamps), stamps=stamps, items=tuple(e[1] for e in chosen)
        )
        self._stats.sets += 1
        self._cond.notify_all()

    def take_latest(self) -> SyncedSet[T] | None:
        """The newest complete set not yet taken (and forget it), or None."""
        with self._cond:
            out, self._pending = self._pending, None
            if out is not None:
                self._stats.taken += 1
            return out

    def wait_for_set(self, timeout: float | None = None) -> SyncedSet[T] | None:
        """Block until a set is pending (or ``timeout`` seconds pass), then take it."""
        with self._cond:
            self._cond.wait_for(lambda: self._pending is not None, timeout=timeout)
            out, self._pending = self._pending, None
            if out is not None:
                self._stats.taken += 1
            return out

    def reset(self) -> None:
        """Forget queued messages, the pending set and the per-stream history (e.g. on a clock
        jump back when playing a bag in a loop); counters are kept."""
        with self._cond:
            self._streams = [_Stream() for _ in self._names]
            self._pending = None


@dataclass(frozen=True)
class CameraFrame(Generic[T, Info]):
    """One camera's image and its camera_info in a synchronised set."""

    camera: str
    stamp: float
    image: T
    camera_info: Info


@dataclass(frozen=True)
class CameraFrameSet(Generic[T, Info]):
    """Synchronised frames of all cameras, in the configured camera order."""

    stamp: float
    frames: tuple[CameraFrame[T, Info], ...]

    def __getitem__(self, camera: str) -> CameraFrame[T, Info]:
        for frame in self.frames:
            if frame.camera == camera:
                return frame
        raise KeyError(f"no camera {camera!r} in this set")


class CameraSetSync(Generic[T, Info]):
    """Approximate-time sync of N cameras' images, each with its camera_info.

    ``sync_camera_info=True``: image and camera_info are separate streams, both synchronised (a
    set has 2N members). ``False`` (the usual case: intrinsics rarely change): the latest
    camera_info of each camera is cached and attached to its image; images from a camera with no
    camera_info yet are dropped (counted in ``no_camera_info``).
    """

    def __init__(
        self,
        cameras: Sequence[str],
        slop: float,
        queue_size: int = 5,
        sync_camera_info: bool = False,
    ) -> None:
        self._cameras = list(cameras)
        self._sync_info = bool(sync_camera_info)
        streams: list[Any] = (
            [(c, kind) for c in self._cameras for kind in ("image", "info")]
            if self._sync_info
            else list(self._cameras)
        )
        self._sync: ApproximateTimeSync[Any] = ApproximateTimeSync(streams, slop, queue_size)
        self._info: dict[str, Info] = {}
        self._no_info = 0
        self._lock = threading.Lock()

    @property
    def cameras(self) -> list[str]:
        return list(self._cameras)

    @property
    def stats(self) -> SyncStats:
        return self._sync.stats

    @property
    def no_camera_info(self) -> int:
        """Images dropped because their camera had no camera_info yet."""
        with self._lock:
            return self._no_info

    def _check(self, camera: str) -> None:
        if camera not in self._cameras:
            raise KeyError(f"unknown camera {camera!r}; cameras are {self._cameras}")

    def add_camera_info(self, camera: str, stamp: float, info: Info) -> None:
        self._check(camera)
        if self._sync_info:
            self._sync.add((camera, "info"), stamp, info)
        else:
            with self._lock:
                self._info[camera] = info

    def add_image(self, camera: str, stamp: float, image: T) -> bool:
        """Queue an image; returns True when it completed a set."""
        self._check(camera)
        if self._sync_info:
            return self._sync.add((camera, "image"), stamp, image) is not None
        with self._lock:
            info = self._info.get(camera)
            if info is None:
                self._no_info += 1
                return False
        return self._sync.add(camera, stamp, (image, info)) is not None

    def _to_frames(self, synced: SyncedSet[Any] | None) -> CameraFrameSet[T, Info] | None:
        if synced is None:
            return None
        frames = []
        if self._sync_info:
            for i, camera in enumerate(self._cameras):
                image, info = synced.items[2 * i], synced.items[2 * i + 1]
                frames.append(CameraFrame(camera, synced.stamps[2 * i], image, info))
        else:
            for camera, stamp, (image, info) in zip(
                self._cameras, synced.stamps, synced.items, strict=True
            ):
                frames.append(CameraFrame(camera, stamp, image, info))
        return CameraFrameSet(stamp=synced.stamp, frames=tuple(frames))

    def take_latest(self) -> CameraFrameSet[T, Info] | None:
        return self._to_frames(self._sync.take_latest())

    def wait_for_set(self, timeout: float | None = None) -> CameraFrameSet[T, Info] | None:
        return self._to_frames(self._sync.wait_for_set(timeout))

    def reset(self) -> None:
        self._sync.reset()

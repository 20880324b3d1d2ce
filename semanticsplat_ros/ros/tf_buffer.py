"""A small TF buffer: stamped and static transforms in a tree, interpolated lookups.

``TfBuffer`` is pure numpy (unit-tested without ROS); ``tf_listener.py`` feeds it from ``/tf``
and ``/tf_static`` or wraps ``tf2_ros.Buffer``. Every source of poses answers the same
``TransformLookup`` protocol: ``lookup(target_frame, source_frame, stamp) -> (4, 4)``;
``wait_for_lookup`` retries one while its transform has not arrived yet.

Convention (tf2's): ``lookup(target, source, t)`` returns ``T_target_source``, the matrix mapping
points expressed in ``source`` into ``target`` at time ``t``. A transform stored with
``parent``/``child`` maps child-frame points into the parent frame.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from semanticsplat_ros.ros.conversions import check_rigid, rotmat_to_wxyz, wxyz_to_rotmat


class TfLookupError(LookupError):
    """A transform could not be looked up (base class of the errors below)."""


class UnknownFrameError(TfLookupError):
    """A frame was never received."""


class ConnectivityError(TfLookupError):
    """Both frames are known but have no common ancestor."""


class ExtrapolationError(TfLookupError):
    """The requested time lies outside the stored history beyond the tolerance."""


class TransformLookup(Protocol):
    """What the node needs from TF: a 4×4 ``T_target_source`` at a time (float seconds)."""

    def lookup(
        self, target_frame: str, source_frame: str, stamp: float | None = None
    ) -> NDArray[np.float64]: ...

    def can_transform(
        self, target_frame: str, source_frame: str, stamp: float | None = None
    ) -> bool: ...

    def close(self) -> None:
        """Stop listening (idempotent)."""
        ...


# --------------------------------------------------------------------------------------------
# numpy helpers (wxyz quaternions, as in the core)
# --------------------------------------------------------------------------------------------


def slerp(q0: ArrayLike, q1: ArrayLike, alpha: float) -> NDArray[np.float64]:
    """Spherical interpolation of unit wxyz quaternions along the shortest arc."""
    a = np.asarray(q0, dtype=np.float64)
    b = np.asarray(q1, dtype=np.float64)
    dot = float(a @ b)
    if dot < 0.0:
        b, dot = -b, -dot
    if dot > 0.9995:
        q = a + alpha * (b - a)
        return q / np.linalg.norm(q)
    theta = math.acos(min(dot, 1.0))
    s = math.sin(theta)
    q = (math.sin((1.0 - alpha) * theta) / s) * a + (math.sin(alpha * theta) / s) * b
    return q / np.linalg.norm(q)


def _matrix(translation: NDArray[np.float64], quat: NDArray[np.float64]) -> NDArray[np.float64]:
    T = np.eye(4)
    T[:3, :3] = wxyz_to_rotmat(quat)
    T[:3, 3] = translation
    return T


@dataclass
class _Edge:
    """Transforms of one child frame relative to its parent, sorted by stamp."""

    parent: str
    static: bool
    stamps: list[float] = field(default_factory=list)
    translations: list[NDArray[np.float64]] = field(default_factory=list)
    quats: list[NDArray[np.float64]] = field(default_factory=list)


STAMP_EPSILON_S = 1e-6
"""Stamps this close are the same instant: a ROS stamp (int ns) read as float seconds through
another path may differ in the last bits (~0.2 µs at today's epoch seconds)."""


class TfBuffer:
    """Transform tree with a time history per edge; thread-safe.

    cache_duration: seconds of history kept per dynamic edge (older samples are pruned).
    tolerance:      how far (seconds) a lookup may lie outside an edge's history and still use its
                    first/last sample instead of raising ExtrapolationError (0 = tf2's strictness).
    """

    def __init__(self, cache_duration: float = 10.0, tolerance: float = 0.0) -> None:
        if not (math.isfinite(cache_duration) and cache_duration > 0):
            raise ValueError(f"cache_duration must be > 0 seconds, got {cache_duration}")
        if not (math.isfinite(tolerance) and tolerance >= 0):
            raise ValueError(f"tolerance must be >= 0 seconds, got {tolerance}")
        self.cache_duration = float(cache_duration)
        self.tolerance = float(tolerance)
        self._edges: dict[str, _Edge] = {}
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- writing

    def set_transform(
        self,
        parent: str,
        child: str,
        stamp: float,
        transform: ArrayLike,
        static: bool = False,
    ) -> None:
        """Store ``T_parent_child`` (4×4 rigid) at ``stamp`` seconds.

        Static transforms hold at all times (the latest one replaces the previous). A child that
        moves to another parent forgets its history. Raises ValueError for NaN/Inf, a non-rigid
        matrix, empty or equal frame names, or a transform that would close a loop.
        """

        parent, child = _frame(parent), _frame(child)
        if not parent or not child:
            raise ValueError(f"frame names must be non-empty (parent={parent!r}, child={child!r})")
        if parent == child:
            raise ValueError(f"a transform from {parent!r} to itself is not allowed")
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise ValueError(f"stamp of {parent!r} -> {child!r} must be finite, got {stamp}")
        T = check_rigid(transform, name=f"transform {parent!r} -> {child!r}")
        translation = T[:3, 3].copy()
        quat = rotmat_to_wxyz(T[:3, :3])
        with self._lock:
            # Refuse loops: the new parent must not descend from the child.
            frame: str | None = parent
            while frame is not None:
                if frame == child:
                    raise ValueError(f"transform {parent!r} -> {child!r} would create a loop")
                edge = self._edges.get(frame)
                frame = edge.parent if edge is not None else None
            edge = self._edges.get(child)
            if edge is None or edge.parent != parent or edge.static != static:
                edge = _Edge(parent=parent, static=static)
                self._edges[child] = edge
            if static:
                edge.stamps, edge.translations, edge.quats = [stamp], [translation], [quat]
                return
            i = bisect.bisect_left(edge.stamps, stamp)
            if i < len(edge.stamps) and edge.stamps[i] == stamp:
                edge.translations[i], edge.quats[i] = translation, quat
            else:
                edge.stamps.insert(i, stamp)
                edge.translations.insert(i, translation)
                edge.quats.insert(i, quat)
            cutoff = edge.stamps[-1] - self.cache_duration
            drop = bisect.bisect_left(edge.stamps, cutoff)
            if drop:
                del edge.stamps[:drop], edge.translations[:drop], edge.quats[:drop]

    def clear(self) -> None:
        with self._lock:
            self._edges.clear()

    # ---------------------------------------------------------------- reading

    def frames(self) -> set[str]:
        """Every frame seen, as a parent or a child."""
        with self._lock:
            return set(self._edges) | {e.parent for e in self._edges.values()}

    def parent_of(self, frame: str) -> str | None:
        with self._lock:
            edge = self._edges.get(_frame(frame))
            return edge.parent if edge else None

    def _chain(self, frame: str) -> list[str]:
        """frame, its parent, ..., the root."""
        chain = [frame]
        while (edge := self._edges.get(chain[-1])) is not None:
            chain.append(edge.parent)
        return chain

    def _edge_at(self, child: str, stamp: float | None) -> NDArray[np.float64]:
        edge = self._edges[child]
        if edge.static or (stamp is None and len(edge.stamps) == 1):
            return _matrix(edge.translations[-1], edge.quats[-1])
        stamps = edge.stamps
        if stamp is None:
            stamp = stamps[-1]
        if stamp > stamps[-1]:
            if stamp - stamps[-1] > self.tolerance + STAMP_EPSILON_S:
                raise ExtrapolationError(
                    f"lookup of {edge.parent!r} -> {child!r} would extrapolate into the future:"
                    f" requested {stamp:.6f} s, newest is {stamps[-1]:.6f} s"
                    f" ({stamp - stamps[-1]:.6f} s beyond, tolerance {self.tolerance} s)"
                )
            return _matrix(edge.translations[-1], edge.quats[-1])
        if stamp < stamps[0]:
            if stamps[0] - stamp > self.tolerance + STAMP_EPSILON_S:
                raise ExtrapolationError(
                    f"lookup of {edge.parent!r} -> {child!r} would extrapolate into the past:"
                    f" requested {stamp:.6f} s, oldest is {stamps[0]:.6f} s"
                    f" ({stamps[0] - stamp:.6f} s before, tolerance {self.tolerance} s)"
                )
            return _matrix(edge.translations[0], edge.quats[0])
        i = bisect.bisect_left(stamps, stamp)
        if stamps[i] == stamp:
            return _matrix(edge.translations[i], edge.quats[i])
        t0, t1 = stamps[i - 1], stamps[i]
        alpha = (stamp - t0) / (t1 - t0)
        translation = (1 - alpha) * edge.translations[i - 1] + alpha * edge.translations[i]
        return _matrix(translation, slerp(edge.quats[i - 1], edge.quats[i], alpha))

    def _latest_common_time(self, frames: list[str]) -> float | None:
        """tf2's "time 0": the newest time every dynamic edge on the path has data for."""
        newest = [
            self._edges[f].stamps[-1]
            for f in frames
            if f in self._edges and not self._edges[f].static
        ]
        return min(newest) if newest else None

    def lookup(
        self, target_frame: str, source_frame: str, stamp: float | None = None
    ) -> NDArray[np.float64]:
        """``T_target_source`` (4×4 float64) at ``stamp`` seconds; None = latest common time.

        Raises UnknownFrameError, ConnectivityError or ExtrapolationError (all TfLookupError,
        a LookupError) with a message naming the frames and times involved.
        """
        target, source = _frame(target_frame), _frame(source_frame)
        if stamp is not None:
            stamp = float(stamp)
            if not math.isfinite(stamp):
                raise ValueError(f"lookup stamp must be finite, got {stamp}")
        with self._lock:
            known = set(self._edges) | {e.parent for e in self._edges.values()}
            for name, frame in (("target", target), ("source", source)):
                if frame not in known:
                    listed = ", ".join(sorted(known)) or "none yet"
                    raise UnknownFrameError(
                        f"{name} frame {frame!r} does not exist (known frames: {listed})"
                    )
            if target == source:
                return np.eye(4)
            up_source = self._chain(source)
            up_target = self._chain(target)
            common = next((f for f in up_source if f in set(up_target)), None)
            if common is None:
                raise ConnectivityError(
                    f"frames {source!r} and {target!r} are not connected: their roots are"
                    f" {up_source[-1]!r} and {up_target[-1]!r}"
                )
            path_source = up_source[: up_source.index(common)]
            path_target = up_target[: up_target.index(common)]
            if stamp is None:
                stamp = self._latest_common_time(path_source + path_target)
            # T_common_source = T_common_... @ T_parent_source
            T_common_source = np.eye(4)
            for child in reversed(path_source):
                T_common_source = T_common_source @ self._edge_at(child, stamp)
            T_common_target = np.eye(4)
            for child in reversed(path_target):
                T_common_target = T_common_target @ self._edge_at(child, stamp)
        return _invert(T_common_target) @ T_common_source

    def can_transform(
        self, target_frame: str, source_frame: str, stamp: float | None = None
    ) -> bool:
        try:
            self.lookup(target_frame, source_frame, stamp)
        except TfLookupError:
            return False
        return True


def _frame(name: str) -> str:
    # tf2 ignores a leading slash in frame ids.
    if not isinstance(name, str):
        raise TypeError(f"frame names must be strings, got {type(name).__name__}")
    return name[1:] if name.startswith("/") else name


def _invert(T: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.eye(4)
    R = T[:3, :3]
    out[:3, :3] = R.T
    out[:3, 3] = -R.T @ T[:3, 3]
    return out


def wait_for_lookup(
    lookup: TransformLookup,
    target_frame: str,
    source_frame: str,
    stamp: float,
    wait_s: float,
    stop: threading.Event | None = None,
    poll_s: float = 0.01,
) -> NDArray[np.float64]:
    """``lookup(target_frame, source_frame, stamp)``, retried for up to ``wait_s`` while the
    transform has not arrived yet (extrapolation or an unknown frame: TF may lag the images a
    little); other lookup errors, the last error after the wait, or ``stop`` being set raise."""

    deadline = time.monotonic() + wait_s
    while True:
        try:
            return lookup.lookup(target_frame, source_frame, stamp)
        except (ExtrapolationError, UnknownFrameError):
            if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
                raise
            time.sleep(poll_s)

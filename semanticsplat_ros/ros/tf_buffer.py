"""A small TF buffer: stamped and static transforms in a tree, interpolated lookups.

``TfBuffer`` is pure numpy (unit-tested without ROS). ``TfListener`` feeds it from ``/tf`` and
``/tf_static`` subscriptions; ``Tf2RosLookup`` wraps ``tf2_ros.Buffer`` where tf2_ros exists, and
``make_transform_lookup`` picks between them. All three answer the same ``TransformLookup``
protocol: ``lookup(target_frame, source_frame, stamp) -> (4, 4)``.

Convention (tf2's): ``lookup(target, source, t)`` returns ``T_target_source``, the matrix mapping
points expressed in ``source`` into ``target`` at time ``t``. A transform stored with
``parent``/``child`` maps child-frame points into the parent frame.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    from rclpy.node import Node


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


def _quat_from_rotmat(R: NDArray[np.float64]) -> NDArray[np.float64]:
    from semanticsplat_ros.ros.conversions import rotmat_to_wxyz

    return rotmat_to_wxyz(R)


def _rotmat_from_quat(q: NDArray[np.float64]) -> NDArray[np.float64]:
    from semanticsplat_ros.ros.conversions import wxyz_to_rotmat

    return wxyz_to_rotmat(q)


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
    T[:3, :3] = _rotmat_from_quat(quat)
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
        from semanticsplat_ros.ros.conversions import check_rigid

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
        quat = _quat_from_rotmat(T[:3, :3])
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


# --------------------------------------------------------------------------------------------
# ROS adapters (rclpy imported lazily: the buffer above stays importable without ROS)
# --------------------------------------------------------------------------------------------


def tf2_ros_available() -> bool:
    """True when tf2_ros (and so a real TF buffer) can be imported."""
    import importlib.util

    return importlib.util.find_spec("tf2_ros") is not None


class TfListener:
    """Fills a ``TfBuffer`` from ``/tf`` and ``/tf_static`` (tf2_msgs/TFMessage).

    QoS as tf2_ros's listener: /tf keep-last 100, volatile; /tf_static keep-last 100, reliable,
    transient-local (late joiners get the static transforms). Malformed transforms (NaN, zero
    quaternion, empty frame) are skipped and counted in ``rejected``; the latest reason is kept
    in ``last_error``, and ``on_error`` (if given) is called with it. The listener never raises
    from its callbacks.

    With ``spin_thread`` (as tf2_ros's ``TransformListener(spin_thread=True)``) the
    subscriptions live on a node of their own (``<node>_tf_listener``, same namespace and
    context), spun by its own executor in a daemon thread: /tf is taken in as it arrives even
    when ``node``'s executor is saturated by camera streams. Without it, a busy executor serves
    the reliable /tf queue late, and the newest transform falls seconds behind the images.
    ``callback_group`` then does not apply. ``destroy()`` stops the thread.
    """

    def __init__(
        self,
        node: Node,
        buffer: TfBuffer,
        on_error: Callable[[str], None] | None = None,
        callback_group: Any = None,
        spin_thread: bool = False,
    ) -> None:
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
        from tf2_msgs.msg import TFMessage

        self._thread: threading.Thread | None = None
        self._executor: Any = None
        self._running = threading.Event()
        self._own_node: Node | None = None
        if spin_thread:
            import rclpy
            from rclpy.executors import SingleThreadedExecutor

            self._own_node = rclpy.create_node(
                f"{node.get_name()}_tf_listener",
                namespace=node.get_namespace(),
                context=node.context,
                start_parameter_services=False,
            )
            node = self._own_node
            callback_group = None
            self._executor = SingleThreadedExecutor(context=node.context)
        self.buffer = buffer
        self.received = 0
        self.rejected = 0
        self.last_error = ""
        self._on_error = on_error
        dynamic_qos = QoSProfile(
            depth=100, history=HistoryPolicy.KEEP_LAST, durability=DurabilityPolicy.VOLATILE
        )
        static_qos = QoSProfile(
            depth=100,
            history=HistoryPolicy.KEEP_LAST,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self._subs = [
            node.create_subscription(
                TFMessage,
                "/tf",
                lambda msg: self._on_message(msg, False),
                dynamic_qos,
                callback_group=callback_group,
            ),
            node.create_subscription(
                TFMessage,
                "/tf_static",
                lambda msg: self._on_message(msg, True),
                static_qos,
                callback_group=callback_group,
            ),
        ]
        self._node = node
        if self._executor is not None:
            self._executor.add_node(node)
            self._running.set()
            self._thread = threading.Thread(
                target=self._spin, name=f"{node.get_name()}_spin", daemon=True
            )
            self._thread.start()

    def _spin(self) -> None:
        context = self._node.context
        while self._running.is_set() and context.ok():
            try:
                self._executor.spin_once(timeout_sec=0.1)
            except Exception:  # context shut down under us: the process is exiting
                if not context.ok() or not self._running.is_set():
                    return
                raise

    def _on_message(self, msg: Any, static: bool) -> None:
        from semanticsplat_ros.ros.conversions import stamp_to_seconds, transform_msg_to_matrix

        for ts in msg.transforms:
            self.received += 1
            try:
                self.buffer.set_transform(
                    ts.header.frame_id,
                    ts.child_frame_id,
                    stamp_to_seconds(ts.header.stamp),
                    transform_msg_to_matrix(ts.transform),
                    static=static,
                )
            except (ValueError, TypeError) as exc:
                self.rejected += 1
                self.last_error = (
                    f"ignored transform {ts.header.frame_id!r} -> {ts.child_frame_id!r}: {exc}"
                )
                if self._on_error is not None:
                    self._on_error(self.last_error)

    def destroy(self) -> None:
        """Drop the subscriptions (and with ``spin_thread``, stop the thread and its node)."""
        self._running.clear()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)
        for sub in self._subs:
            self._node.destroy_subscription(sub)
        self._subs = []
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(timeout_sec=1.0)
        own, self._own_node = self._own_node, None
        if own is not None:
            own.destroy_node()


class Tf2RosLookup:
    """``TransformLookup`` over ``tf2_ros.Buffer`` + ``TransformListener`` (real ROS installs).

    tf2's exceptions are re-raised as this module's TfLookupError subclasses.
    """

    def __init__(
        self,
        node: Node,
        cache_duration: float = 10.0,
        tolerance: float = 0.0,
        spin_thread: bool = False,
    ) -> None:
        import tf2_ros
        from rclpy.duration import Duration

        self._tf2 = tf2_ros
        self.tolerance = float(tolerance)
        self.buffer = tf2_ros.Buffer(cache_time=Duration(seconds=cache_duration), node=node)
        self.listener = tf2_ros.TransformListener(self.buffer, node, spin_thread=spin_thread)

    def lookup(
        self, target_frame: str, source_frame: str, stamp: float | None = None
    ) -> NDArray[np.float64]:
        from rclpy.time import Time

        from semanticsplat_ros.ros.conversions import transform_msg_to_matrix

        tf2 = self._tf2
        when = Time() if stamp is None else Time(nanoseconds=round(float(stamp) * 1e9))
        try:
            msg = self.buffer.lookup_transform(target_frame, source_frame, when)
        except tf2.ExtrapolationException as exc:
            if stamp is not None and self.tolerance > 0:
                # Retry at the latest time when within tolerance of it (as TfBuffer does).
                latest = self.buffer.lookup_transform(target_frame, source_frame, Time())
                from semanticsplat_ros.ros.conversions import stamp_to_seconds

                if abs(stamp_to_seconds(latest.header.stamp) - float(stamp)) <= self.tolerance:
                    return transform_msg_to_matrix(latest.transform)
            raise ExtrapolationError(str(exc)) from exc
        except tf2.ConnectivityException as exc:
            raise ConnectivityError(str(exc)) from exc
        except tf2.LookupException as exc:
            raise UnknownFrameError(str(exc)) from exc
        except tf2.TransformException as exc:
            raise TfLookupError(str(exc)) from exc
        try:
            return transform_msg_to_matrix(msg.transform)
        except ValueError as exc:
            raise TfLookupError(
                f"transform {target_frame!r} <- {source_frame!r} is invalid: {exc}"
            ) from exc

    def can_transform(
        self, target_frame: str, source_frame: str, stamp: float | None = None
    ) -> bool:
        try:
            self.lookup(target_frame, source_frame, stamp)
        except TfLookupError:
            return False
        return True

    def close(self) -> None:
        """Stop listening (tf2_ros's listener and, with spin_thread, its thread)."""
        self.listener.unregister()


class BufferLookup:
    """``TransformLookup`` of our ``TfBuffer`` fed by a ``TfListener``."""

    def __init__(
        self,
        node: Node,
        cache_duration: float = 10.0,
        tolerance: float = 0.0,
        on_error: Callable[[str], None] | None = None,
        callback_group: Any = None,
        spin_thread: bool = False,
    ) -> None:
        self.buffer = TfBuffer(cache_duration=cache_duration, tolerance=tolerance)
        self.listener = TfListener(node, self.buffer, on_error, callback_group, spin_thread)

    def lookup(
        self, target_frame: str, source_frame: str, stamp: float | None = None
    ) -> NDArray[np.float64]:
        return self.buffer.lookup(target_frame, source_frame, stamp)

    def can_transform(
        self, target_frame: str, source_frame: str, stamp: float | None = None
    ) -> bool:
        return self.buffer.can_transform(target_frame, source_frame, stamp)

    def close(self) -> None:
        """Stop listening (and, with spin_thread, the listener's thread and node)."""
        self.listener.destroy()


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
    import time

    deadline = time.monotonic() + wait_s
    while True:
        try:
            return lookup.lookup(target_frame, source_frame, stamp)
        except (ExtrapolationError, UnknownFrameError):
            if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
                raise
            time.sleep(poll_s)


def make_transform_lookup(
    node: Node,
    cache_duration: float = 10.0,
    tolerance: float = 0.0,
    prefer_tf2_ros: bool = True,
    on_error: Callable[[str], None] | None = None,
    callback_group: Any = None,
    spin_thread: bool = False,
) -> TransformLookup:
    """tf2_ros's buffer when importable (and preferred), else ``TfBuffer`` + ``TfListener``.

    ``on_error`` and ``callback_group`` apply to our own listener only (tf2_ros reports rejected
    transforms in its own log and uses its own subscriptions). ``spin_thread``: take /tf in on a
    node and thread of its own (both listeners; see ``TfListener``).
    """
    if prefer_tf2_ros and tf2_ros_available():
        return Tf2RosLookup(node, cache_duration, tolerance, spin_thread)
    return BufferLookup(node, cache_duration, tolerance, on_error, callback_group, spin_thread)

"""TF from a running graph: ``TfListener`` feeds a ``TfBuffer`` from ``/tf`` and ``/tf_static``
subscriptions; ``Tf2RosLookup`` wraps ``tf2_ros.Buffer`` where tf2_ros is installed (a ROS 2
install; the pip wheels have none); ``make_transform_lookup`` picks one. Each answers
``tf_buffer.TransformLookup``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import rclpy
from numpy.typing import NDArray
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.time import Time
from tf2_msgs.msg import TFMessage

from semanticsplat_ros.ros.conversions import stamp_to_seconds, transform_msg_to_matrix
from semanticsplat_ros.ros.tf_buffer import (
    ConnectivityError,
    ExtrapolationError,
    TfBuffer,
    TfLookupError,
    TransformLookup,
    UnknownFrameError,
)

try:  # a ROS 2 install has tf2_ros; the pip wheels do not, and TfBuffer stands in
    import tf2_ros
except ImportError:
    tf2_ros = None


def tf2_ros_available() -> bool:
    """True when tf2_ros (and so a real TF buffer) can be imported."""
    return tf2_ros is not None


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

        self._thread: threading.Thread | None = None
        self._executor: Any = None
        self._running = threading.Event()
        self._own_node: Node | None = None
        if spin_thread:
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

        if tf2_ros is None:
            raise RuntimeError("tf2_ros is not installed; use BufferLookup")
        self._tf2 = tf2_ros
        self.tolerance = float(tolerance)
        self.buffer = tf2_ros.Buffer(cache_time=Duration(seconds=cache_duration), node=node)
        self.listener = tf2_ros.TransformListener(self.buffer, node, spin_thread=spin_thread)

    def lookup(
        self, target_frame: str, source_frame: str, stamp: float | None = None
    ) -> NDArray[np.float64]:

        tf2 = self._tf2
        when = Time() if stamp is None else Time(nanoseconds=round(float(stamp) * 1e9))
        try:
            msg = self.buffer.lookup_transform(target_frame, source_frame, when)
        except tf2.ExtrapolationException as exc:
            if stamp is not None and self.tolerance > 0:
                # Retry at the latest time when within tolerance of it (as TfBuffer does).
                latest = self.buffer.lookup_transform(target_frame, source_frame, Time())

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

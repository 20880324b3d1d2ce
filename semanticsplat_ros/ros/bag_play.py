"""Playing a bag into a running ROS 2 graph, as ``ros2 bag play`` would (no ros2cli here).

``load_messages`` reads a bag's topics once and deserializes them with rclpy into the real
message classes (``pkg/msg/Name`` imported from ``pkg.msg``), keeping each message's header
stamps; ``BagPlayer`` publishes them on their recorded topics, ``/tf_static`` transient-local
(as tf2 latches it), everything else reliable (a reliable publisher also serves best-effort
subscribers). ``play`` keeps the recorded timing (log times) and can loop the bag with fresh
stamps, like ``sim_rig``'s pre-rendered loop: loop ``k`` shifts every stamp so that the bag's
first message is stamped at the wall-clock time it is published. ``ticks`` groups messages by
log time, for a caller that feeds a node one set at a time.

Run as ``python -m semanticsplat_ros.ros.bag_play BAG [--loop] [--restamp] [--ros-args ...]``
(the ``bench bag`` benchmark does); SIGINT or SIGTERM stops it with exit code 0.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rclpy.signals import SignalHandlerOptions
from rclpy.utilities import remove_ros_args

from semanticsplat_ros.ros.bag_io import TF_STATIC_TOPIC, TF_TOPIC, BagError, open_bag
from semanticsplat_ros.ros.conversions import nanoseconds_to_stamp, stamp_to_nanoseconds


@dataclass(frozen=True)
class PlayMessage:
    """One message to publish: topic, log time (ns), the rclpy message and its recorded header
    stamps (ns; one per transform of a TFMessage, none for a message without a header)."""

    topic: str
    log_time_ns: int
    msg: Any
    stamps_ns: tuple[int, ...]


def message_class(msgtype: str) -> type:
    """The rclpy class of ``pkg/msg/Name``; BagError when it cannot be imported here."""
    parts = msgtype.split("/")
    try:
        package, kind, name = parts
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ImportError, AttributeError, ValueError):
        raise BagError(f"message type {msgtype} is not installed here; cannot play it") from None


def _stamped_headers(msg: Any) -> list[Any]:
    """The headers whose stamps ``restamp`` moves: a TFMessage's transforms' or the message's."""
    if hasattr(msg, "transforms"):
        return [t.header for t in msg.transforms]
    return [msg.header] if hasattr(msg, "header") else []


def restamp(message: PlayMessage, shift_ns: int) -> Any:
    """Set the message's header stamps to their recorded values + ``shift_ns``; the message."""
    for header, stamp in zip(_stamped_headers(message.msg), message.stamps_ns, strict=True):
        header.stamp = nanoseconds_to_stamp(stamp + shift_ns)
    return message.msg


def load_messages(bag: str | Path, topics: Sequence[str] | None = None) -> list[PlayMessage]:
    """The messages of ``topics`` (None: all) in log-time order; BagError for an unusable bag."""
    reader = open_bag(bag)
    try:
        wanted = set(topics) if topics is not None else None
        connections = [c for c in reader.connections if wanted is None or c.topic in wanted]
        classes = {c.msgtype: message_class(c.msgtype) for c in connections}
        out = []
        for connection, log_time, raw in reader.messages(connections=connections):
            msg = deserialize_message(bytes(raw), classes[connection.msgtype])
            stamps = tuple(stamp_to_nanoseconds(h.stamp) for h in _stamped_headers(msg))
            out.append(PlayMessage(connection.topic, int(log_time), msg, stamps))
        return out
    finally:
        reader.close()


class BagPlayer:
    """Publishes ``messages`` from ``node`` (see the module docstring)."""

    def __init__(self, node: Node, messages: Sequence[PlayMessage]) -> None:
        if not messages:
            raise ValueError("there is nothing to play: the bag has no messages on its topics")
        self.node = node
        self.messages = list(messages)
        self.publishers: dict[str, Any] = {}
        for m in self.messages:
            if m.topic not in self.publishers:
                self.publishers[m.topic] = node.create_publisher(
                    type(m.msg), m.topic, self._qos(m.topic)
                )
        self.published = 0

    @staticmethod
    def _qos(topic: str) -> QoSProfile:
        latched = topic == TF_STATIC_TOPIC
        return QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=1 if latched else (100 if topic == TF_TOPIC else 10),
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
        )

    def ticks(self) -> list[list[PlayMessage]]:
        """The messages grouped by log time, in order."""
        groups: list[list[PlayMessage]] = []
        for m in self.messages:
            if groups and groups[-1][0].log_time_ns == m.log_time_ns:
                groups[-1].append(m)
            else:
                groups.append([m])
        return groups

    def wait_for_subscribers(
        self, topics: Sequence[str], timeout_s: float, spin: Callable[[], None]
    ) -> bool:
        """Call ``spin`` until every publisher of ``topics`` has a subscriber (or the timeout)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(self.publishers[t].get_subscription_count() > 0 for t in topics):
                return True
            spin()
        return False

    def publish(self, messages: Sequence[PlayMessage], shift_ns: int | None = None) -> None:
        """Publish ``messages`` now: as recorded (``shift_ns`` None) or restamped."""
        for m in messages:
            msg = m.msg if shift_ns is None else restamp(m, shift_ns)
            self.publishers[m.topic].publish(msg)
            self.published += 1

    def play(self, stop: threading.Event, loop: bool = False, restamp_now: bool = False) -> int:
        """Publish with the recorded timing until the end (or, with ``loop``, until ``stop``);
        ``restamp_now``: stamps follow the wall clock (see the module docstring). Returns the
        number of messages published."""
        ticks = self.ticks()
        first = ticks[0][0].log_time_ns
        span = ticks[-1][0].log_time_ns - first
        period = span // (len(ticks) - 1) if len(ticks) > 1 else 100_000_000
        loop_ns = span + period
        start_wall = time.time_ns()
        k = 0
        while not stop.is_set():
            base = start_wall + k * loop_ns
            for tick in ticks:
                due = base + tick[0].log_time_ns - first
                wait = (due - time.time_ns()) / 1e9
                if (wait > 0 and stop.wait(wait)) or stop.is_set():
                    return self.published
                if k > 0:  # latched: the first loop's /tf_static is still held
                    tick = [m for m in tick if m.topic != TF_STATIC_TOPIC]
                self.publish(tick, base - first if restamp_now else None)
            if not loop:
                break
            k += 1
        return self.published


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m semanticsplat_ros.ros.bag_play BAG [--loop] [--restamp] [--ros-args ...]``."""
    args = list(sys.argv if argv is None else argv)
    parser = argparse.ArgumentParser(prog="bag_play", description=__doc__.split("\n")[0])
    parser.add_argument("bag", type=Path)
    parser.add_argument("--loop", action="store_true", help="replay until stopped")
    parser.add_argument("--restamp", action="store_true", help="stamps follow the wall clock")
    options = parser.parse_args(remove_ros_args(args)[1:])
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        messages = load_messages(options.bag)
        if not messages:
            raise BagError(f"bag {options.bag} has no messages")
    except BagError as exc:
        sys.stderr.write(f"bag_play: error: {exc}\n")
        return 2
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("bag_play")
    try:
        BagPlayer(node, messages).play(stop, loop=options.loop, restamp_now=options.restamp)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

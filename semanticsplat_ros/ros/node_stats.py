"""What the node's inference and output threads measure, behind /diagnostics and the benchmark."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from semanticsplat_ros.ros.time_sync import CameraSetSync


@dataclass
class NodeStats:
    """What the inference thread measured (guarded by ``lock``)."""

    encoded: int = 0
    skipped: int = 0
    errors: int = 0
    last_error: str = ""
    last_error_time: float = -math.inf
    recent_errors: deque = field(default_factory=lambda: deque(maxlen=8))
    """The latest distinct error messages, oldest first."""
    latencies: deque = field(default_factory=lambda: deque(maxlen=50))
    """Seconds from the newest image stamp of a set to its outputs being published."""
    processing: deque = field(default_factory=lambda: deque(maxlen=50))
    """Seconds of the inference thread's work per set (image decoding, pose lookup, encode,
    hand-off); publishing and map fusion run beside the next encode, on the output thread."""
    encode: deque = field(default_factory=lambda: deque(maxlen=50))
    """Seconds per set in the pipeline's encode alone (part of processing)."""
    fusion: deque = field(default_factory=lambda: deque(maxlen=50))
    """Seconds per set spent fusing the scene into the semantic map (on the output thread)."""
    done_times: deque = field(default_factory=lambda: deque(maxlen=30))
    """Monotonic times at which sets finished."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, message: str, skipped: bool) -> None:
        with self.lock:
            self.errors += 1
            self.skipped += int(skipped)
            self.last_error = message
            self.last_error_time = time.monotonic()
            if message in self.recent_errors:
                self.recent_errors.remove(message)
            self.recent_errors.append(message)

    def done(
        self, latency: float, processing: float, encode: float, fusion: float | None = None
    ) -> None:
        with self.lock:
            self.encoded += 1
            self.latencies.append(latency)
            self.processing.append(processing)
            self.encode.append(encode)
            if fusion is not None:
                self.fusion.append(fusion)
            self.done_times.append(time.monotonic())

    def rate_hz(self, window_s: float = 10.0) -> float:
        with self.lock:
            now = time.monotonic()
            times = [t for t in self.done_times if now - t <= window_s]
        if len(times) < 2:
            return 0.0
        return (len(times) - 1) / max(times[-1] - times[0], 1e-9)


def median(values: Sequence[float]) -> float:
    return float(np.median(values)) if len(values) else float("nan")


def diagnostic_status(
    stats: NodeStats,
    sync: CameraSetSync | None,
    configured: bool,
    period_s: float,
    extra: dict[str, str],
    name: str,
    hardware_id: str,
) -> DiagnosticStatus:
    """The node's DiagnosticStatus: rates, latencies, drops and errors from ``stats`` and
    ``sync``, then ``extra`` values (cameras, images received, map size)."""
    sync_stats = sync.stats if sync is not None else None
    with stats.lock:
        latencies = list(stats.latencies)
        processing = list(stats.processing)
        encode = list(stats.encode)
        fusion = list(stats.fusion)
        encoded, skipped, errors = stats.encoded, stats.skipped, stats.errors
        last_error, error_age = stats.last_error, time.monotonic() - stats.last_error_time
        recent_errors = [e[:300] for e in stats.recent_errors]
    rate = stats.rate_hz()
    values = {
        "rate_hz": f"{rate:.3f}",
        "latency_s_median": f"{median(latencies):.4f}",
        "latency_s_last": f"{latencies[-1]:.4f}" if latencies else "nan",
        "processing_s_median": f"{median(processing):.4f}",
        "encode_s_median": f"{median(encode):.4f}",
        "map_fusion_s_median": f"{median(fusion):.4f}",
        "sets_encoded": str(encoded),
        "sets_skipped": str(skipped),
        "errors": str(errors),
        "last_error": last_error,
        "recent_errors": "\n".join(recent_errors),
        **extra,
    }
    if sync is not None and sync_stats is not None:
        values.update(
            {
                "sets_formed": str(sync_stats.sets),
                "sets_dropped": str(sync_stats.superseded),
                "messages_dropped": str(sync_stats.dropped_messages),
                "messages_stale": str(sync_stats.stale),
                "messages_unmatched": str(sync_stats.unmatched),
                "messages_overflow": str(sync_stats.overflow),
                "images_without_camera_info": str(sync.no_camera_info),
            }
        )
    recent = error_age <= max(2.0 * period_s, 2.0)
    if not configured:
        level, message = DiagnosticStatus.ERROR, "not configured"
    elif recent:
        level, message = DiagnosticStatus.WARN, last_error
    elif encoded == 0:
        level, message = DiagnosticStatus.WARN, "waiting for a synchronised set of images"
    else:
        level = DiagnosticStatus.OK
        message = f"{rate:.2f} Hz, latency {median(latencies):.3f} s"
    return DiagnosticStatus(
        level=level,
        name=name,
        message=message[:1000],
        hardware_id=hardware_id,
        values=[KeyValue(key=k, value=v[:3000]) for k, v in values.items()],
    )

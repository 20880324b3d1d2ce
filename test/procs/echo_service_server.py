"""A tiny service server used by test_interfaces_wire.py, run in its own process.

SegmentPoint: answers with 3 segments whose masks are u×v mono8 images and whose labels name the
requested camera. SetClasses: echoes the names. Exits on SIGTERM.
"""

from __future__ import annotations

import contextlib
import signal
import sys

import rclpy
from rclpy.node import Node
from sensor_msgs.msg import Image

from semanticsplat_msgs.msg import Segment
from semanticsplat_msgs.srv import SegmentPoint, SetClasses


class EchoServer(Node):
    def __init__(self) -> None:
        super().__init__("echo_service_server")
        self.create_service(SegmentPoint, "segment_point", self.on_segment_point)
        self.create_service(SetClasses, "set_classes", self.on_set_classes)

    def on_segment_point(self, request, response):
        if request.prompt_type != SegmentPoint.Request.PIXEL:
            response.success = False
            response.message = "only PIXEL prompts in the echo server"
            return response
        for level, score in (("small", 0.5), ("medium", 0.7), ("large", 0.9)):
            mask = Image()
            mask.height, mask.width = int(request.v), int(request.u)
            mask.encoding = "mono8"
            mask.step = mask.width
            mask.data = bytes([255]) * (mask.width * mask.height)
            segment = Segment(label=f"{request.camera_name}:{level}", score=score)
            segment.camera_names = [request.camera_name]
            segment.masks = [mask]
            segment.pixel_counts = [mask.width * mask.height]
            response.segments.append(segment)
        response.success = True
        response.message = "ok"
        return response

    def on_set_classes(self, request, response):
        response.success = len(request.names) > 0
        response.message = ",".join(request.names) if request.names else "no names given"
        return response


def main() -> int:
    rclpy.init()
    node = EchoServer()
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    print("ready", flush=True)
    # SIGTERM shuts the context down, which ends spin with ExternalShutdownException.
    with contextlib.suppress(Exception):
        rclpy.spin(node)
    return 0


if __name__ == "__main__":
    sys.exit(main())

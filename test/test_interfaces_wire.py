"""The generated semanticsplat_msgs services work on the wire between two processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rclpy

from semanticsplat_msgs.srv import QueryText, SegmentPoint, SetClasses

SERVER = Path(__file__).parent / "procs" / "echo_service_server.py"


def test_generated_types_have_the_contract_fields():
    req = SegmentPoint.Request()
    assert SegmentPoint.Request.PIXEL == 0 and SegmentPoint.Request.POINT == 1
    assert {"prompt_type", "camera_name", "u", "v", "point"} <= set(
        req.get_fields_and_field_types()
    )
    res = QueryText.Response()
    assert {"success", "message", "segments"} <= set(res.get_fields_and_field_types())
    assert set(SetClasses.Request().get_fields_and_field_types()) == {"names", "prompts"}


@pytest.fixture
def server_process():
    proc = subprocess.Popen(
        [sys.executable, str(SERVER)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        line = proc.stdout.readline()
        assert line.strip() == "ready", proc.stderr.read()
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def call(node, client, request, timeout=20.0):
    future = client.call_async(request)
    deadline = time.monotonic() + timeout
    while not future.done() and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    assert future.done(), "service call timed out"
    return future.result()


def test_service_round_trip_across_processes(server_process):
    rclpy.init()
    node = rclpy.create_node("wire_test_client")
    try:
        seg_client = node.create_client(SegmentPoint, "segment_point")
        cls_client = node.create_client(SetClasses, "set_classes")
        assert seg_client.wait_for_service(timeout_sec=20.0), "server never appeared"
        assert cls_client.wait_for_service(timeout_sec=20.0)

        req = SegmentPoint.Request(prompt_type=SegmentPoint.Request.PIXEL, camera_name="head_left")
        req.u, req.v = 7.0, 5.0
        res = call(node, seg_client, req)
        assert res.success, res.message
        assert [s.label for s in res.segments] == [
            "head_left:small",
            "head_left:medium",
            "head_left:large",
        ]
        mask = res.segments[2].masks[0]
        assert (mask.width, mask.height, mask.encoding) == (7, 5, "mono8")
        assert bytes(mask.data) == bytes([255]) * 35
        assert res.segments[1].score == pytest.approx(0.7)

        bad = call(node, seg_client, SegmentPoint.Request(prompt_type=SegmentPoint.Request.POINT))
        assert not bad.success and "PIXEL" in bad.message

        res2 = call(node, cls_client, SetClasses.Request(names=["mug", "table"]))
        assert res2.success and res2.message == "mug,table"
    finally:
        node.destroy_node()
        rclpy.shutdown()

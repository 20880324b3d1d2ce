"""LatestHandoff: the node's output thread works on the newest scene, never blocks the encoder."""

from __future__ import annotations

import threading

from semanticsplat_ros.ros.handoff import LatestHandoff


def test_items_are_worked_on_newest_first_and_a_waiting_one_is_replaced():
    gate, started = threading.Event(), threading.Event()
    done: list[int] = []

    def work(item: int) -> None:
        started.set()
        gate.wait(5.0)
        done.append(item)

    handoff = LatestHandoff(work, "test_outputs", on_error=lambda exc: None)
    handoff.put(1)  # taken at once, held at the gate
    assert started.wait(5.0)
    for item in (2, 3, 4):  # 2 and 3 wait in turn and are replaced by the next
        handoff.put(item)
    gate.set()
    assert handoff.wait_idle(5.0)
    assert done == [1, 4]
    assert handoff.replaced == 2
    handoff.stop()


def test_a_failing_item_is_reported_and_the_thread_carries_on():
    errors: list[BaseException] = []
    done: list[int] = []

    def work(item: int) -> None:
        if item == 1:
            raise RuntimeError("publisher gone")
        done.append(item)

    handoff = LatestHandoff(work, "test_outputs", on_error=errors.append)
    handoff.put(1)
    assert handoff.wait_idle(5.0)
    handoff.put(2)
    assert handoff.wait_idle(5.0)
    assert [str(e) for e in errors] == ["publisher gone"] and done == [2]
    handoff.stop()


def test_stop_finishes_the_pending_item_and_ends_the_thread():
    done: list[int] = []
    handoff = LatestHandoff(done.append, "test_outputs", on_error=lambda exc: None)
    handoff.put(7)
    handoff.stop(timeout=5.0)
    assert done == [7]
    assert not handoff.is_alive()

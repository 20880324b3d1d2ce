"""ros/time_sync.py: approximate-time sets, newest complete set wins, bounded queues, threads."""

from __future__ import annotations

import random
import threading

import pytest

from semanticsplat_ros.ros.time_sync import ApproximateTimeSync, CameraSetSync


def test_exact_stamps_make_one_set_in_stream_order():
    sync: ApproximateTimeSync[str] = ApproximateTimeSync(["a", "b", "c"], slop=0.01)
    assert sync.add("b", 1.0, "b1") is None
    assert sync.add("c", 1.0, "c1") is None
    out = sync.add("a", 1.0, "a1")
    assert out is not None and out.items == ("a1", "b1", "c1") and out.stamp == 1.0
    assert sync.take_latest() is out
    assert sync.take_latest() is None
    stats = sync.stats
    assert (stats.received, stats.sets, stats.taken, stats.dropped_messages) == (3, 1, 1, 0)


def test_stamps_outside_the_slop_never_pair():
    sync: ApproximateTimeSync[int] = ApproximateTimeSync(["a", "b"], slop=0.02)
    sync.add("a", 1.00, 1)
    assert sync.add("b", 1.03, 2) is None
    assert sync.add("b", 1.015, 3) is not None
    assert sync.take_latest().stamps == (1.00, 1.015)


def test_spread_of_the_whole_set_is_bounded_by_slop():
    # a-b and b-c are each within slop, but a-c is not: no set with b=1.0.
    sync: ApproximateTimeSync[int] = ApproximateTimeSync(["a", "b", "c"], slop=0.02)
    sync.add("a", 0.985, 0)
    sync.add("c", 1.015, 0)
    assert sync.add("b", 1.0, 0) is None
    # A c message that fits with a completes the set with the tightest window.
    out = sync.add("c", 0.99, 1)
    assert out is not None and out.spread <= 0.02
    assert out.stamps == (0.985, 1.0, 0.99)


def test_newest_complete_set_wins_and_superseded_sets_are_counted():
    sync: ApproximateTimeSync[float] = ApproximateTimeSync(["a", "b"], slop=0.005)
    for k in range(5):
        t = 1.0 + 0.1 * k
        sync.add("a", t, t)
        sync.add("b", t + 0.001, t)
    latest = sync.take_latest()
    assert latest is not None and latest.items == (1.4, 1.4)
    stats = sync.stats
    assert stats.sets == 5 and stats.superseded == 4 and stats.taken == 1


def test_late_messages_are_stale_and_unmatched_ones_are_dropped():
    sync: ApproximateTimeSync[int] = ApproximateTimeSync(["a", "b"], slop=0.01)
    sync.add("a", 1.0, 0)
    sync.add("a", 2.0, 0)
    assert sync.add("b", 2.0, 0) is not None  # a@1.0 is consumed as unmatched
    assert sync.add("b", 1.0, 0) is None  # older than b's last set: stale
    stats = sync.stats
    assert stats.unmatched == 1 and stats.stale == 1


def test_queues_are_bounded():
    sync: ApproximateTimeSync[int] = ApproximateTimeSync(["a", "b"], slop=0.001, queue_size=3)
    for k in range(10):
        sync.add("a", float(k), k)
    assert sync.stats.overflow == 7
    # Only the 3 newest a messages remain to be matched.
    assert sync.add("b", 6.0, 0) is None
    assert sync.add("b", 8.0, 0).items == (8, 0)


def test_out_of_order_arrival_within_a_stream():
    sync: ApproximateTimeSync[str] = ApproximateTimeSync(["a", "b"], slop=0.01)
    sync.add("a", 2.0, "a2")
    sync.add("a", 1.0, "a1")
    out = sync.add("b", 1.0, "b1")
    assert out is not None and out.items == ("a1", "b1")
    assert sync.add("b", 2.0, "b2").items == ("a2", "b2")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"streams": [], "slop": 0.1}, "at least one stream"),
        ({"streams": ["a", "a"], "slop": 0.1}, "unique"),
        ({"streams": ["a"], "slop": -1.0}, "slop"),
        ({"streams": ["a"], "slop": float("nan")}, "slop"),
        ({"streams": ["a"], "slop": 0.1, "queue_size": 0}, "queue_size"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ApproximateTimeSync(**kwargs)


def test_bad_stream_and_stamp():
    sync: ApproximateTimeSync[int] = ApproximateTimeSync(["a"], slop=0.1)
    with pytest.raises(KeyError, match="unknown stream"):
        sync.add("z", 1.0, 0)
    with pytest.raises(ValueError, match="finite"):
        sync.add("a", float("nan"), 0)


def test_random_jitter_sets_are_valid():
    rng = random.Random(3)
    names = ["c0", "c1", "c2", "c3"]
    sync: ApproximateTimeSync[tuple[str, int]] = ApproximateTimeSync(names, slop=0.01, queue_size=4)
    emitted = []
    for frame in range(200):
        order = names[:]
        rng.shuffle(order)
        for name in order:
            if rng.random() < 0.1:
                continue  # a dropped frame on this camera
            out = sync.add(name, frame / 30 + rng.uniform(-0.004, 0.004), (name, frame))
            if out is not None:
                emitted.append(out)
    assert len(emitted) > 100
    for s in emitted:
        assert s.spread <= 0.01
        assert [item[0] for item in s.items] == names
        assert len({item[1] for item in s.items}) == 1  # all members from the same frame
    assert [s.stamp for s in emitted] == sorted(s.stamp for s in emitted)


def test_threaded_producers_and_a_slow_consumer():
    cameras = ["c0", "c1", "c2", "c3"]
    sync: ApproximateTimeSync[int] = ApproximateTimeSync(cameras, slop=0.001)
    frames = 300
    taken: list[int] = []
    done = threading.Event()

    # Cameras capture together (a barrier per frame) but their callbacks race each other.
    barrier = threading.Barrier(len(cameras))

    def produce(name: str) -> None:
        for k in range(frames):
            barrier.wait(timeout=10)
            sync.add(name, k * 0.033, k)

    def consume() -> None:
        while not done.is_set() or sync.stats.sets > sync.stats.taken + sync.stats.superseded:
            s = sync.wait_for_set(timeout=0.01)
            if s is not None:
                taken.append(s.items[0])
                done.wait(0.002)  # slow inference

    consumer = threading.Thread(target=consume)
    consumer.start()
    producers = [threading.Thread(target=produce, args=(c,)) for c in cameras]
    for p in producers:
        p.start()
    for p in producers:
        p.join()
    done.set()
    consumer.join(timeout=10)
    stats = sync.stats
    assert not consumer.is_alive()
    assert stats.sets == frames  # every frame completed exactly once
    assert stats.taken + stats.superseded == stats.sets
    assert taken == sorted(taken) and taken[-1] == frames - 1  # never older than one taken before


def test_camera_set_sync_with_cached_camera_info():
    sync: CameraSetSync[str, str] = CameraSetSync(["left", "right"], slop=0.01)
    assert sync.add_image("left", 1.0, "L1") is False
    assert sync.no_camera_info == 1
    sync.add_camera_info("left", 0.0, "Kl")
    sync.add_camera_info("right", 0.0, "Kr")
    sync.add_image("left", 2.0, "L2")
    assert sync.add_image("right", 2.005, "R2") is True
    frames = sync.take_latest()
    assert frames is not None and frames.stamp == 2.005
    assert frames["right"].image == "R2" and frames["right"].camera_info == "Kr"
    assert frames["left"].stamp == 2.0 and frames["left"].camera_info == "Kl"
    with pytest.raises(KeyError, match="unknown camera"):
        sync.add_image("wrist", 1.0, "x")


def test_camera_set_sync_with_synchronised_camera_info():
    sync: CameraSetSync[str, str] = CameraSetSync(
        ["left", "right"], slop=0.01, sync_camera_info=True
    )
    sync.add_image("left", 1.0, "L1")
    sync.add_image("right", 1.0, "R1")
    sync.add_camera_info("left", 1.0, "Kl1")
    assert sync.take_latest() is None  # right camera_info missing
    sync.add_camera_info("right", 1.0, "Kr1")
    frames = sync.take_latest()
    assert frames is not None
    assert [(f.camera, f.image, f.camera_info) for f in frames.frames] == [
        ("left", "L1", "Kl1"),
        ("right", "R1", "Kr1"),
    ]

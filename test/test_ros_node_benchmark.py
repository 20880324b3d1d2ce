"""ros/benchmark.py: `semanticsplat bench node --quick` runs the rig + node graph and reports."""

from __future__ import annotations

import math

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_quick_node_benchmark_reports_latency_rate_drops_and_memory():
    from semanticsplat_ros.ros.benchmark import benchmark

    result = benchmark(device="cpu", quick=True)
    assert result["node_alive"] is True
    assert result["exit_codes"] == {"semanticsplat_node": 0, "sim_rig": 0}
    assert result["clouds_received"] > 0 and result["rate_hz"] > 0
    assert 0 < result["latency_s_median"] < 30
    assert set(result["dropped"]) == {"sets", "messages", "skipped"}
    assert all(v >= 0 for v in result["dropped"].values())
    # the rig's input is always valid
    assert result["dropped"]["skipped"] == 0, result.get("log_tail")
    assert result["rss_mb_after_warmup"] > 100 and math.isfinite(result["rss_growth"])
    assert result["config"]["cameras"] == ["front", "left", "back", "right"]
    # the same sets, timed in the node: encode is part of processing, fusion of the map beside it
    assert 0 < result["encode_s_median"] <= result["processing_s_median"]
    assert result["overhead_ratio"] >= 1.0
    assert result["map_fusion_s_median"] > 0 and result["map_fusion_ratio"] > 0
    assert result["map_voxels"] > 0


def test_bad_device_is_refused():
    from semanticsplat_ros.ros.benchmark import benchmark

    with pytest.raises(ValueError, match="device must be auto, cpu or cuda"):
        benchmark(device="tpu")
    with pytest.raises(ValueError, match="duration must be a positive number"):
        benchmark(device="cpu", duration_s=-1.0)

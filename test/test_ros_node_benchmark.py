"""ros/benchmark.py: `semanticsplat bench node --quick` runs the rig + node graph and reports."""

from __future__ import annotations

import math

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_quick_node_benchmark_reports_both_rigs():
    from semanticsplat_ros.ros.benchmark import BENCH_RIGS, benchmark

    results = benchmark(device="cpu", quick=True)
    assert list(results) == ["stereo", "ring4"]
    for name, result in results.items():
        assert result["node_alive"] is True, name
        assert result["exit_codes"] == {"semanticsplat_node": 0, "sim_rig": 0}
        assert result["clouds_received"] > 0 and result["rate_hz"] > 0
        assert 0 < result["latency_s_median"] < 30
        assert set(result["dropped"]) == {"sets", "messages", "skipped"}
        assert all(v >= 0 for v in result["dropped"].values())
        # the rig's input is always valid
        assert result["dropped"]["skipped"] == 0, result.get("log_tail")
        assert result["rss_mb_after_warmup"] > 100 and math.isfinite(result["rss_growth"])
        assert result["config"]["cameras"] == list(BENCH_RIGS[name].cameras)
        # the same sets, timed in the node: encode is part of processing, fusion of the map
        # beside it
        assert 0 < result["encode_s_median"] <= result["processing_s_median"]
        assert result["overhead_ratio"] >= 1.0
        assert result["map_fusion_s_median"] > 0 and result["map_fusion_ratio"] > 0
        assert result["map_voxels"] > 0
        # both services answered while the node encoded
        assert result["service_failures"] == {"query_text": 0, "segment_pixel": 0}
        assert result["query_text_calls"] > 0 and result["query_text_ms_median"] > 0
        assert result["segment_pixel_calls"] > 0 and result["segment_pixel_ms_median"] > 0


def test_bad_device_is_refused():
    from semanticsplat_ros.ros.benchmark import benchmark

    with pytest.raises(ValueError, match="device must be auto, cpu or cuda"):
        benchmark(device="tpu")
    with pytest.raises(ValueError, match="duration must be a positive number"):
        benchmark(device="cpu", duration_s=-1.0)
    with pytest.raises(ValueError, match="rigs must be among stereo, ring4"):
        benchmark(device="cpu", rigs=("hexapod",))

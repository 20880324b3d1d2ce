"""BENCHMARKS.md is written from benchmark results: machine, scalars and case tables."""

from __future__ import annotations

import argparse

import pytest

from semanticsplat_ros.bench import add_arguments, machine_description, markdown_report, run


def test_markdown_report_has_machine_scalars_and_cases():
    results = {
        "render": {
            "device": "cpu",
            "cases": [
                {"name": "2x64x64", "fwd_s": 0.0351, "speedup": 110.6},
                {"name": "4x256x256", "fwd_s": 1.5, "speedup": None},
            ],
        },
        "data": {"render_2x128_s": 0.0452, "nested": {"a": 1}},
    }
    text = markdown_report(results)
    assert "## Machine" in text and machine_description()["cores"] in text
    assert "| name | fwd_s | speedup |" in text
    assert "| 2x64x64 | 0.0351 | 110.6 |" in text
    assert "| 4x256x256 | 1.5 | n/a |" in text
    assert "| `render_2x128_s` | 0.0452 |" in text
    assert "| `nested.a` | 1 |" in text
    assert "## GPU" in text


def test_model_benchmark_measures_in_a_fresh_process():
    from semanticsplat_ros.model import benchmark as model_benchmark

    result = model_benchmark.benchmark(device="cpu", quick=True)
    assert result["device"] == "cpu" and result["height"] == 64
    assert result["eager_ms"] > 0 and result["peak_rss_mb"] > 0
    assert result["runtime"] == "onnx" and result["runtime_ms"] > 0
    assert result["runtime_speedup"] == pytest.approx(result["eager_ms"] / result["runtime_ms"])
    assert result["runtime_depth_max_abs_m"] <= 1e-3
    assert result["params"]["paper"] > result["params"]["small"] > 0


def test_eval_benchmark_reports_time_and_headline_figures():
    from semanticsplat_ros.eval import benchmark as eval_benchmark

    result = eval_benchmark.benchmark(device="cpu", quick=True)
    assert result["eval_s_per_scene"] > 0 and result["feedforward_s"] > 0
    for key in eval_benchmark.HEADLINE_KEYS:
        assert key in result
    assert 0.0 <= result["language.target.ours.miou"] <= 1.0
    assert 5.0 < result["nvs.psnr"] < 60.0


def test_duration_is_refused_for_a_benchmark_that_does_not_run_for_a_time():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(ValueError, match="--duration applies to node only, not 'render'"):
        run(parser.parse_args(["render", "--duration", "5"]))

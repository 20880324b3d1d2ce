"""BENCHMARKS.md is written from benchmark results: machine, scalars and case tables."""

from __future__ import annotations

from semanticsplat_ros.bench import machine_description, markdown_report


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

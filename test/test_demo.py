"""The demo: report.py's helpers, and `semanticsplat demo --random-weights` end to end (tiny
images).

The end-to-end test starts the real graph (sim_rig + semanticsplat_node subprocesses) on its
own ROS domain id (the demo picks one; conftest keeps DDS on loopback), so it is marked ros/slow.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semanticsplat_ros.ply import read_ply
from semanticsplat_ros.report import (
    QUERIES,
    depth_median_relative_error,
    format_summary,
    interior_pixel,
    label_agreement,
    pick_prompt_pixel,
    pooled_mask_iou,
    query_class,
    safe_name,
)

W, H = 80, 60
IN_W, IN_H = 64, 48
CAMERAS = ("head_left", "head_right")

SUMMARY_KEYS = {
    "random_weights",
    "warning",
    "cameras",
    "latency",
    "depth_median_abs_rel",
    "label_agreement",
    "point_prompt",
    "queries",
    "cloud_points",
    "gaussians_published",
    "gaussians_exported",
    "files",
}


def test_query_classes_and_file_names():
    assert [query_class(q) for q in QUERIES] == ["chair", "table", "sofa", "bed"]
    assert query_class("unicorn") is None
    assert safe_name("Dining table!") == "dining_table" and safe_name("???") == "query"


def test_prompt_pixel_lies_deep_inside_the_object():
    labels = np.full((30, 40), 0, dtype=np.uint8)
    labels[5:25, 10:30] = 4  # a table
    labels[0:2, 0:2] = 3  # a few chair pixels, under the size threshold
    r, c, name = pick_prompt_pixel(labels, min_fraction=0.01)
    assert name == "table" and 12 <= r <= 17 and 17 <= c <= 22
    assert pick_prompt_pixel(np.zeros((10, 10), np.uint8)) == (5, 5, "none")
    assert interior_pixel(np.eye(5, dtype=bool)) in {(i, i) for i in range(5)}
    with pytest.raises(ValueError, match="non-empty"):
        interior_pixel(np.zeros((3, 3), bool))


def test_metrics():
    gt = np.array([[1.0, 2.0], [0.0, 4.0]])
    pred = np.array([[1.1, 2.0], [5.0, 2.0]])
    assert depth_median_relative_error(pred, gt) == pytest.approx(0.1)
    assert np.isnan(depth_median_relative_error(np.ones((2, 2)), np.zeros((2, 2))))
    with pytest.raises(ValueError, match="shapes differ"):
        depth_median_relative_error(np.ones((2, 2)), np.ones((3, 2)))
    assert label_agreement(np.array([1, 2, 3]), np.array([1, 0, 255])) == pytest.approx(0.5)
    a = np.array([[True, True], [False, False]])
    b = np.array([[True, False], [True, False]])
    assert pooled_mask_iou({"x": a, "y": a}, {"x": b}) == pytest.approx(1 / 3)
    empty = np.zeros((2, 2), bool)
    assert np.isnan(pooled_mask_iou({"x": empty}, {"x": empty}))


def _run_demo(out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "semanticsplat_ros.cli", "demo", "--out", str(out)]
    cmd += ["--width", str(W), "--height", str(H), "--input-width", str(IN_W)]
    cmd += ["--input-height", str(IN_H), "--device", "cpu", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=420, env=env)


def test_missing_checkpoint_is_a_one_line_error(tmp_path):
    res = _run_demo(tmp_path / "demo", "--checkpoint", str(tmp_path / "missing.pt"))
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing.pt not found" in lines[0], res.stderr


def _demo_args(*argv: str):
    from semanticsplat_ros.ros import demo

    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    return parser.parse_args(["--random-weights", "--device", "cpu", *argv])


@pytest.mark.ros
def test_node_param_overrides_the_params_file_for_node_and_pipeline():
    from semanticsplat_ros.ros import demo

    sizes = ["--width", str(W), "--height", str(H), "--input-width", str(IN_W)]
    sizes += ["--input-height", str(IN_H)]
    base = demo.node_setup(_demo_args(*sizes))
    args = _demo_args(
        *sizes,
        "--node-param", "sam_checkpoint=vit_b:/w/sam.pth",
        "--node-param", "clip_checkpoint=open_clip:ViT-B-16:/w/clip.bin",
        "--node-param", "far:=12.5",
    )  # fmt: skip
    setup = demo.node_setup(args)
    assert base.params.sam_checkpoint != "vit_b:/w/sam.pth" and base.params.far != 12.5
    assert setup.params.sam_checkpoint == "vit_b:/w/sam.pth"
    assert setup.params.clip_checkpoint == "open_clip:ViT-B-16:/w/clip.bin"
    assert setup.params.far == 12.5  # a float, read as YAML
    assert setup.params.camera_names == base.params.camera_names  # the rest is the file's
    config = demo.pipeline_config(args, setup.params)  # the in-process pipeline's
    assert config.sam_spec.architecture == "vit_b" and config.far == 12.5
    assert config.language_checkpoint == "open_clip:ViT-B-16:/w/clip.bin"
    node_cmd = demo.graph_commands(args, setup)["semanticsplat_node"]
    pairs = [node_cmd[i + 1] for i, a in enumerate(node_cmd) if a == "-p"]
    assert pairs[-3:] == [
        "sam_checkpoint:=vit_b:/w/sam.pth",
        "clip_checkpoint:=open_clip:ViT-B-16:/w/clip.bin",
        "far:=12.5",
    ]
    assert "device:=cpu" in pairs and "--params-file" in node_cmd


@pytest.mark.ros
@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("sam_chekpoint=vit_b:/w/sam.pth", "unknown parameter 'sam_chekpoint' (did you mean"),
        ("far=12", "far must be a float; write 12.0"),
        ("text_encoder=clip", "text_encoder must be one of"),
        ("sam_checkpoint", "'sam_checkpoint' must look like NAME=VALUE"),
        ("=vit_b:/w/sam.pth", "must look like NAME=VALUE"),
        ("device=cuda", "the demo sets it itself (use --device)"),
    ],
)
def test_bad_node_param_is_a_one_line_usage_error(tmp_path, capsys, item, message):
    from semanticsplat_ros.cli import main

    out = tmp_path / "demo"
    code = main(["demo", "--random-weights", "--out", str(out), "--node-param", item])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("semanticsplat demo: error: --node-param")
    assert message in lines[0], lines[0]
    assert not out.exists()  # refused before anything started


@pytest.mark.ros
@pytest.mark.slow
def test_demo_random_weights_end_to_end(tmp_path):
    out = tmp_path / "demo"
    with socket.socket() as probe:  # a free port for the viewer
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    viewer = ("--viewer", str(port), "--viewer-seconds", "1")
    res = _run_demo(out, "--random-weights", "--seconds", "1", "--timeout", "240", *viewer)
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"
    assert re.search(
        r"viewer at http://127\.0\.0\.1:\d+/ \(the graph keeps running until 1 s\)", res.stderr
    )
    assert "RANDOM WEIGHTS — plumbing only" in res.stdout
    sized = {}
    for cam in CAMERAS:
        for kind in ("rgb", "depth", "gt_depth", "labels", "gt_labels"):
            sized[f"{kind}_{cam}.png"] = (W, H)
    others = ["pca_seg.png", "pca_lang.png", "overview.png"]
    others += [f"point_prompt_{level}.png" for level in ("small", "medium", "large")]
    others += [f"query_{q}.png" for q in QUERIES]
    for name in [*sized, *others]:
        path = out / name
        assert path.is_file(), f"{name} missing; have {sorted(p.name for p in out.iterdir())}"
        with Image.open(path) as im:
            im.load()
            assert im.mode == "RGB"
            if name in sized:
                assert im.size == sized[name], name
            assert im.info.get("Comment") == "RANDOM WEIGHTS — plumbing only", name
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) >= SUMMARY_KEYS
    assert summary["random_weights"] and summary["cameras"] == list(CAMERAS)
    assert set(summary["queries"]) == set(QUERIES)
    assert summary["cloud_points"] > 0
    assert summary["latency"]["service_round_trip_s"]["query_text"] > 0
    assert summary["graph_exit_codes"] == {"semanticsplat_node": 0, "sim_rig": 0}
    for value in summary["depth_median_abs_rel"].values():
        assert value is None or value >= 0
    ply = read_ply(out / "scene.ply")
    assert len(ply.means) == summary["gaussians_exported"] == 2 * IN_W * IN_H
    index = (out / "index.md").read_text()
    assert "RANDOM WEIGHTS — plumbing only" in index
    for name in summary["files"]:
        assert (out / name).exists() and f"`{name}`" in index
    # The same text is printed: the summary lines name every query.
    assert format_summary(summary).splitlines()[0] in res.stdout


@pytest.mark.ros
@pytest.mark.slow
def test_demo_timeout_names_what_never_arrived_and_stops_the_graph(tmp_path):
    out = tmp_path / "demo"
    res = _run_demo(out, "--random-weights", "--timeout", "0.5")
    assert res.returncode == 1, res.stdout
    error = [line for line in res.stderr.splitlines() if line.startswith("semanticsplat demo:")]
    assert len(error) == 1 and "no complete scene within 0.5 s: nothing on" in error[0], res.stderr
    assert "/semanticsplat_node/semantic_cloud" in error[0]
    assert "stopping the graph (SIGTERM)" in res.stderr

"""export.py: semantic Gaussians -> PLY round trip, and the ``export-ply`` command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from semanticsplat_ros.cli import main as cli_main
from semanticsplat_ros.export import (
    export_scene_ply,
    parse_frames,
    scene_ply_gaussians,
    synthetic_frames,
)
from semanticsplat_ros.pipeline import PipelineConfig, SemanticSplatPipeline
from semanticsplat_ros.ply import read_ply


@pytest.fixture(scope="module")
def pipeline() -> SemanticSplatPipeline:
    return SemanticSplatPipeline(
        PipelineConfig(random_weights=True, device="cpu", input_width=32, input_height=24)
    )


@pytest.fixture(scope="module")
def scene(pipeline):
    return pipeline.encode(synthetic_frames(seed=1, height=30, width=40))


def test_round_trip_has_one_gaussian_per_pixel_with_its_label(pipeline, scene, tmp_path):
    path = export_scene_ply(pipeline, scene, tmp_path / "scene.ply")
    ply = read_ply(path)
    v, h, w = scene.labels.shape
    assert (v, h, w) == (2, 24, 32)
    n = v * h * w
    assert ply.means.shape == (n, 3)
    g = scene.gaussians
    assert ply.seg_features.shape == (n, scene.seg_dim) and scene.seg_dim > 0
    assert ply.lang_features.shape == (n, g.feature_dim - scene.seg_dim)
    assert ply.lang_features.shape[1] > 0
    np.testing.assert_array_equal(ply.labels, scene.labels.reshape(-1).numpy())
    np.testing.assert_allclose(ply.scores, scene.scores.reshape(-1).numpy(), atol=1e-6)
    # Pixel (i, j) of view k is Gaussian k*h*w + i*w + j.
    k, i, j = 1, 5, 7
    index = k * h * w + i * w + j
    assert ply.labels[index] == int(scene.labels[k, i, j])
    np.testing.assert_allclose(ply.means, g.means[0].numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        ply.seg_features, g.features[0, :, : scene.seg_dim].numpy(), rtol=1e-5, atol=1e-5
    )


def test_labels_follow_the_pipelines_class_list(pipeline, scene):
    try:
        pipeline.set_classes(["chair", "table"])
        ply = scene_ply_gaussians(pipeline, scene)
        assert set(np.unique(ply.labels)) <= {0, 1}
    finally:
        pipeline.set_classes(PipelineConfig().classes)


def test_parse_frames():
    assert parse_frames("0, 10,20") == [0, 10, 20]
    assert parse_frames("") is None
    with pytest.raises(ValueError, match="--frames"):
        parse_frames("a,b")


def test_command_writes_ply_and_sidecar(tmp_path, capsys):
    out = tmp_path / "x.ply"
    argv = ["export-ply", "--out", str(out), "--seed", "2", "--random-weights", "--device", "cpu"]
    argv += ["--height", "30", "--width", "40", "--input-height", "24", "--input-width", "32"]
    assert cli_main(argv) == 0
    assert "RANDOM WEIGHTS — plumbing only" in capsys.readouterr().out
    ply = read_ply(out)
    assert len(ply.means) == 2 * 24 * 32
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["random_weights"] and meta["num_gaussians"] == len(ply.means)
    assert meta["classes"][3] == "chair"


def test_command_from_a_scannet_folder(tmp_path):
    from semanticsplat_ros.data.raycast import render_views
    from semanticsplat_ros.data.rigs import rig_cameras
    from semanticsplat_ros.data.scannet import write_scene
    from semanticsplat_ros.data.world import make_scene

    scene = make_scene(3)
    c2w, K = rig_cameras(scene, "stereo", 0.0, 24, 32)
    write_scene(tmp_path / "data", "scene0", render_views(scene, c2w, K, 24, 32))
    out = tmp_path / "s.ply"
    argv = ["export-ply", "--out", str(out), "--scannet-scene", str(tmp_path / "data" / "scene0")]
    argv += ["--random-weights", "--device", "cpu", "--input-height", "24", "--input-width", "32"]
    assert cli_main(argv) == 0
    assert len(read_ply(out).means) == 2 * 24 * 32
    bad = ["export-ply", "--out", str(out), "--scannet-scene", str(tmp_path / "data" / "scene0")]
    assert cli_main([*bad, "--random-weights", "--device", "cpu", "--frames", "0,5"]) == 1


def test_missing_checkpoint_is_a_one_line_error(tmp_path, capsys):
    argv = ["export-ply", "--out", str(tmp_path / "x.ply"), "--checkpoint", str(tmp_path / "no.pt")]
    assert cli_main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no.pt not found" in err and "--random-weights" in err
    assert cli_main(["export-ply", "--out", str(tmp_path / "x.txt"), "--random-weights"]) == 1

"""The browser viewer: splat conversion, colour modes, threads, the ``view`` command, and a real
headless Chromium drawing the bundled model's sim scene (it fails, not skips, without one:
``.ci/install-browser`` installs it)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from semanticsplat_ros import cli
from semanticsplat_ros.data.sim_rig import SimRig, SimRigConfig
from semanticsplat_ros.export import export_scene_ply
from semanticsplat_ros.mapping import MapConfig, map_for_model
from semanticsplat_ros.pipeline import CameraFrame, PipelineConfig, SemanticSplatPipeline
from semanticsplat_ros.viewer import (
    COLOR_MODES,
    SceneViewer,
    ViewerConfig,
    mode_colors,
    pipeline_point_prompt,
    pipeline_text_query,
    query_heat,
    scene_cameras,
    scene_splats,
)
from semanticsplat_ros.viewer.benchmark import benchmark as viewer_benchmark
from semanticsplat_ros.viewer.files import load_view_file
from semanticsplat_ros.viewer.screenshot import HeadlessBrowser, find_chromium
from semanticsplat_ros.viewer.splats import pick_splat


@pytest.fixture(scope="module")
def encoded():
    pipeline = SemanticSplatPipeline(
        PipelineConfig(model_checkpoint="small_stereo", input_width=96, input_height=72)
    )
    rig = SimRig(SimRigConfig())
    frame = rig.render(0.0)
    frames = [
        CameraFrame(name, frame.images[i], frame.K[i], frame.c2w[i], stamp=0.0)
        for i, name in enumerate(rig.cameras)
    ]
    return pipeline, pipeline.encode(frames)


@pytest.fixture
def viewer(encoded):
    pipeline, _ = encoded
    v = SceneViewer(
        ViewerConfig(port=0, stats_period_s=0.05, map_period_s=0.05),
        pipeline_text_query(pipeline),
        pipeline_point_prompt(pipeline),
    )
    yield v
    v.stop()


def test_splats_carry_the_scene_gaussians(encoded):
    _, scene = encoded
    splats = scene_splats(scene)
    g = scene.gaussians
    assert splats.num_splats == g.num_gaussians == scene.labels.numel()
    np.testing.assert_allclose(splats.centers, g.means[0].numpy(), atol=1e-6)
    # Covariance eigenvalues are the squared scales.
    eig = np.sort(np.linalg.eigvalsh(splats.covariances[:50].astype(np.float64)), axis=1)
    scales = np.sort(g.scales[0, :50].double().numpy() ** 2, axis=1)
    np.testing.assert_allclose(eig, scales, rtol=1e-3, atol=1e-9)
    assert np.array_equal(splats.labels, scene.labels.reshape(-1).numpy())
    cams = scene_cameras(scene)
    assert [c.name for c in cams] == scene.names
    assert cams[0].image.shape == (72, 96, 3) and cams[0].image.dtype == np.uint8
    np.testing.assert_allclose(cams[0].position, scene.c2w[0, :3, 3].numpy(), atol=1e-6)


def test_every_colour_mode_colours_every_splat(encoded):
    pipeline, scene = encoded
    splats = scene_splats(scene)
    heat = query_heat(pipeline, scene, "chair")
    assert heat.shape == (splats.num_splats,) and 0 <= heat.min() <= heat.max() <= 1
    colours = {}
    for mode in COLOR_MODES:
        colours[mode], note = mode_colors(splats, mode, heat)
        assert colours[mode].shape == (splats.num_splats, 3) and colours[mode].dtype == np.uint8
        assert note == ""
        assert colours[mode].std(axis=0).max() > 5, mode  # not a single colour
    for a in COLOR_MODES:
        for b in COLOR_MODES:
            if a < b:
                assert np.abs(colours[a].astype(int) - colours[b]).mean() > 5, (a, b)
    grey, note = mode_colors(splats, "query", None)
    assert "text query" in note and np.ptp(grey) == 0
    with pytest.raises(ValueError, match="colour mode"):
        mode_colors(splats, "depth")


def test_a_ray_through_a_pixel_picks_its_gaussian(encoded):
    _, scene = encoded
    splats = scene_splats(scene)
    i, j = 40, 50  # a pixel of view 0: its Gaussian is number i * w + j
    origin = scene.c2w[0, :3, 3].numpy()
    target = splats.centers[i * 96 + j]
    index = pick_splat(splats, origin, target - origin)
    assert index is not None
    hit = splats.centers[index]
    assert np.linalg.norm(hit - target) < 0.1
    with pytest.raises(ValueError, match="3D ray"):
        pick_splat(splats, origin, [0.0, 0.0, 0.0])


def test_update_scene_returns_at_once_and_drops_stale_scenes(viewer, encoded):
    _, scene = encoded
    times = []
    for _ in range(200):
        t0 = time.perf_counter()
        viewer.update_scene(scene)
        times.append(time.perf_counter() - t0)
    assert np.median(times) < 5e-4, np.median(times)
    assert viewer.flush(20.0)
    assert viewer.timings["convert_s"] < 2.0
    assert viewer._serial < 200  # older scenes were dropped, not all converted
    with pytest.raises(TypeError, match="EncodedScene"):
        viewer.update_scene("scene")  # type: ignore[arg-type]


def test_queries_answer_on_the_shown_scene_and_errors_become_text(viewer, encoded):
    _, scene = encoded
    assert viewer.run_text_query("chair").startswith("no live scene")
    viewer.update_scene(scene)
    assert viewer.flush(20.0)
    message = viewer.run_text_query("chair")
    assert message.startswith("chair: score"), message
    assert viewer.flush(20.0) and viewer.mode == "query"
    point = scene_splats(scene).centers[40 * 96 + 50]
    message = viewer.run_point_prompt(point)
    assert all(level in message for level in ("small", "medium", "large")), message
    assert viewer._gui_prompt_result.content == message

    def broken(_scene, _text):
        raise RuntimeError("the model is busy\nsecond line")

    viewer._text_query = broken
    assert viewer.run_text_query("chair") == "error: the model is busy second line"
    assert viewer._gui_query_result.content == "error: the model is busy second line"
    viewer.update_stats({"rate_hz": 1.5, "latency_ms": 250.123})
    assert viewer.flush(5.0)
    assert viewer._gui_stats.content == "- rate_hz: 1.5\n- latency_ms: 250"


def test_bad_config_and_host_are_one_line_errors():
    with pytest.raises(ValueError, match="port"):
        ViewerConfig(port=70000)
    with pytest.raises(ValueError, match="up_direction"):
        ViewerConfig(up_direction="up")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="viewer"):
        SceneViewer(ViewerConfig(port=0, host="192.0.2.1"))  # TEST-NET: not this machine


def test_view_command_opens_scene_and_map_files(encoded, tmp_path: Path, capsys):
    pipeline, scene = encoded
    ply = export_scene_ply(pipeline, scene, tmp_path / "scene.ply")
    smap = map_for_model(MapConfig(), pipeline.model, "small_stereo", "minilm")
    smap.fuse(scene, pipeline.class_embeddings)
    map_path = smap.save(tmp_path / "map.ply")
    assert load_view_file(ply).splats.num_splats == scene.gaussians.num_gaussians
    assert len(load_view_file(map_path).cloud.xyz) == len(smap)
    for path in (ply, map_path):
        assert cli.main(["view", str(path), "--port", "0", "--seconds", "0.1"]) == 0
        assert "serving http://127.0.0.1:" in capsys.readouterr().out
    garbage = tmp_path / "garbage.ply"
    garbage.write_bytes(b"not a ply at all")
    for bad in (tmp_path / "missing.ply", garbage):
        assert cli.main(["view", str(bad), "--port", "0"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("semanticsplat view: error:") and "\n" not in err, err


def _centre(image: np.ndarray) -> np.ndarray:
    """The canvas left of viser's control panel (about 400 px wide), without the corner axes."""
    h, w = image.shape[:2]
    return image[h // 8 : 7 * h // 8, w // 10 : w - 420].astype(np.float64)


def test_a_real_browser_draws_the_splats_and_the_query_heat(viewer, encoded):
    find_chromium()  # fails (does not skip) without a browser: run .ci/install-browser
    _, scene = encoded
    with HeadlessBrowser(width=800, height=440) as browser:
        browser.open(viewer.url)
        browser.wait_until_stable(timeout_s=30.0, settle=1, min_wait_s=1.0)
        browser.hide_notifications()
        empty = browser.wait_until_stable(timeout_s=30.0, settle=1)
        viewer.update_scene(scene)
        assert viewer.flush(20.0)
        browser.wait_until_changed(empty, timeout_s=30.0)
        drawn = browser.wait_until_stable(timeout_s=30.0, settle=1)
        message = viewer.run_text_query("chair")
        assert message.startswith("chair"), message
        assert viewer.flush(20.0)
        browser.wait_until_changed(drawn, timeout_s=30.0)
        heat = browser.wait_until_stable(timeout_s=30.0, settle=1)
    assert _centre(empty).std() < 3.0, "the empty scene should be a blank canvas"
    assert _centre(drawn).std() > 20.0, "no splats drawn"
    assert np.abs(_centre(drawn) - _centre(empty)).mean() > 20.0
    assert np.abs(_centre(heat) - _centre(drawn)).mean() > 5.0, "the query did not recolour"
    # The heat map's hot end (inferno: yellow-orange) shows where the query matched.
    hot = (heat[..., 0] > 200) & (heat[..., 2] < 120)
    assert hot.sum() > 50


def test_quick_viewer_benchmark_reports_on_off_and_hanging():
    result = viewer_benchmark(device="cpu", quick=True)
    for phase in ("off", "on", "hanging"):
        assert result[f"encode_s_median_{phase}"] > 0
    assert result["encode_ratio_on"] > 0 and result["encode_ratio_hanging"] > 0
    assert result["client_messages"] > 0 and result["client_mib_received"] > 0.1
    assert result["map_voxels"] > 1000
    with pytest.raises(ValueError, match="device"):
        viewer_benchmark(device="tpu")

"""Real-data depth: the Middlebury Motorcycle pair (scikit-image), ours through the pipeline and
OpenCV's StereoSGBM at the node's input, scored against the true depth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from skimage import data as skimage_data

from semanticsplat_ros.cli import main as cli_main
from semanticsplat_ros.pipeline_config import PipelineConfig
from semanticsplat_ros.real.middlebury import (
    NODE_MODEL,
    depth_figures,
    evaluate_middlebury,
    load_motorcycle,
    sample_at_centres,
    sgbm_depth,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pair():
    return load_motorcycle()


def test_the_pair_and_its_calibration_agree_with_the_true_disparity(pair):
    H, W = pair.depth.shape
    assert pair.left.shape == pair.right.shape == (H, W, 3) and pair.left.dtype == np.uint8
    known = np.isfinite(pair.depth)
    assert known.mean() > 0.8
    assert 1.0 < np.nanpercentile(pair.depth, 1) < np.nanpercentile(pair.depth, 99) < 8.0
    # A left pixel at its true depth, projected into the right camera, lands where the
    # disparity says: x_right = x_left - d (the poses, K_right's doffs and the depth agree).
    rows, cols = np.nonzero(known)
    pick = np.random.default_rng(0).choice(rows.size, 500, replace=False)
    y, x = rows[pick], cols[pick]
    z = pair.depth[y, x]
    pix = np.stack([x + 0.5, y + 0.5, np.ones_like(z)])  # pixel centres at +0.5
    points = np.linalg.inv(pair.K_left) @ pix * z
    c2w_left, c2w_right = pair.poses
    world = c2w_left[:3, :3] @ points + c2w_left[:3, 3:]
    in_right = np.linalg.inv(c2w_right)[:3, :3] @ world + np.linalg.inv(c2w_right)[:3, 3:]
    uv = pair.K_right @ in_right
    x_right = uv[0] / uv[2] - 0.5
    disparity = np.asarray(skimage_data.stereo_motorcycle()[2])[y, x]
    np.testing.assert_allclose(x_right, x - disparity, atol=1e-6)
    np.testing.assert_allclose(uv[1] / uv[2] - 0.5, y, atol=1e-6)


def test_sampling_at_centres_and_the_figures():
    values = np.arange(16.0).reshape(4, 4)
    np.testing.assert_array_equal(sample_at_centres(values, 2, 2), [[5.0, 7.0], [13.0, 15.0]])
    truth = np.array([[1.0, 2.0], [np.nan, 4.0]])
    pred = np.array([[1.1, np.nan], [3.0, 4.0]])
    f = depth_figures(pred, truth)
    assert f["coverage"] == pytest.approx(2 / 3)
    assert f["median_rel"] == pytest.approx(0.05) and f["abs_rel"] == pytest.approx(0.05)
    nothing = depth_figures(np.full((2, 2), np.nan), truth)
    assert nothing["coverage"] == 0.0 and np.isnan(nothing["median_rel"])


def test_sgbm_at_the_node_input_matches_the_truth_on_most_pixels(pair):
    h, w = PipelineConfig.input_height, PipelineConfig.input_width
    depth = sgbm_depth(pair, h, w)
    assert depth.shape == (h, w)
    f = depth_figures(depth, sample_at_centres(pair.depth, h, w))
    # A classical matcher on a real, textured pair: most pixels matched, a few percent off.
    assert f["coverage"] > 0.4 and f["median_rel"] < 0.1, f


def test_the_defaults_are_the_nodes():
    params = yaml.safe_load((ROOT / "config" / "bringup.yaml").read_text())
    node = params["/**/semanticsplat_node"]["ros__parameters"]
    assert node["model_checkpoint"] == NODE_MODEL
    assert (node["input_width"], node["input_height"]) == (
        PipelineConfig.input_width,
        PipelineConfig.input_height,
    )


@pytest.mark.slow
def test_eval_real_middlebury_writes_figures_and_a_panel(tmp_path, capsys):
    out, panel = tmp_path / "m.json", tmp_path / "m.png"
    code = cli_main(
        [
            "eval",
            "--real",
            "middlebury",
            "--device",
            "cpu",
            "--json",
            str(out),
            "--panel",
            str(panel),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "StereoSGBM" in printed and "median rel. error" in printed
    results = json.loads(out.read_text())
    assert results["resolution"] == [72, 96] and results["checkpoint"] == NODE_MODEL
    for method in ("ours", "sgbm"):
        r = results[method]
        assert np.isfinite(r["median_rel"]) and np.isfinite(r["abs_rel"]), method
        assert 0 < r["coverage"] <= 1 and r["seconds"] > 0
    assert results["ours"]["coverage"] == 1.0  # one depth per input pixel
    # the model sees a real scene at 2-5 m: its depth is of the right order, whatever its error
    assert results["ours"]["median_rel"] < 0.5
    with Image.open(panel) as im:
        assert im.width > 4 * 96 and im.height > 72


def test_eval_real_refuses_an_unknown_dataset(capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["eval", "--real", "kitti"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_a_missing_checkpoint_is_one_line(tmp_path, capsys):
    code = cli_main(["eval", "--real", "middlebury", "--checkpoint", str(tmp_path / "none.pt")])
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("semanticsplat eval: error:") and "\n" not in err


def test_evaluate_middlebury_at_another_input(tmp_path):
    config = PipelineConfig(
        model_checkpoint=NODE_MODEL, input_width=64, input_height=48, device="cpu", runtime="torch"
    )
    results = evaluate_middlebury(config, None)
    assert results["resolution"] == [48, 64] and "panel" not in results
    assert np.isfinite(results["ours"]["median_rel"])

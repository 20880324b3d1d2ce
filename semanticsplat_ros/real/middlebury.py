"""Depth on real images: the Middlebury 2014 "Motorcycle" pair, run through the pipeline as the
node runs it, with OpenCV's StereoSGBM on the same input beside it.

    semanticsplat eval --real middlebury --json out/eval/middlebury.json  (real/commands.py)

scikit-image ships the pair (``skimage.data.stereo_motorcycle``: both views and the ground-truth
disparity, down-sampled 4x from the benchmark's full size, 741x500). The calibration is
Middlebury's for Motorcycle, scaled to those images as scikit-image's docstring gives it. Both
methods see the pair resized to the node's input (default 96x72, the bundled stereo model's) and
are scored against the true depth sampled at the centres of those pixels: the median relative
error, AbsRel and the share of true pixels each method gives a depth for. Nothing is trained or
tuned on this pair.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semanticsplat_ros.metrics import relative_depth_errors
from semanticsplat_ros.pipeline import CameraFrame, SemanticSplatPipeline
from semanticsplat_ros.pipeline_config import PipelineConfig
from semanticsplat_ros.visualize import depth_range, depth_to_rgb, image_grid, save_png

NODE_MODEL = "small_stereo"
"""``model_checkpoint`` of config/bringup.yaml: what the node runs by default."""

# Middlebury 2014 Motorcycle (calib.txt: f 3979.911 px, doffs 124.343 px, baseline 193.001 mm)
# at scikit-image's 4x down-sampled size, as its docstring gives it.
FOCAL_PX = 994.978
CX, CY = 311.193, 254.877
DOFFS_PX = 31.086
"""x of the right camera's principal point minus the left's: depth = f * B / (d + doffs)."""
BASELINE_M = 0.193001


@dataclass(frozen=True)
class StereoPair:
    """A rectified pair with its calibration and ground truth (left view)."""

    left: np.ndarray
    """(H, W, 3) uint8 RGB."""
    right: np.ndarray
    K_left: np.ndarray
    K_right: np.ndarray
    baseline_m: float
    depth: np.ndarray
    """(H, W) true z-depth of the left view, metres; NaN where unknown."""

    @property
    def poses(self) -> tuple[np.ndarray, np.ndarray]:
        """camera-to-world of both views in the left camera's frame (OpenCV axes)."""
        right = np.eye(4)
        right[0, 3] = self.baseline_m
        return np.eye(4), right


def load_motorcycle() -> StereoPair:
    """The Motorcycle pair bundled with scikit-image. ImportError says what to install."""
    try:
        from skimage import data
    except ImportError as exc:
        raise ImportError(
            "the Middlebury pair ships with scikit-image: pip install scikit-image"
        ) from exc
    left, right, disparity = data.stereo_motorcycle()
    disparity = np.asarray(disparity, dtype=np.float64)
    valid = np.isfinite(disparity) & (disparity + DOFFS_PX > 0)
    depth = np.full(disparity.shape, np.nan)
    depth[valid] = FOCAL_PX * BASELINE_M / (disparity[valid] + DOFFS_PX)
    K = np.array([[FOCAL_PX, 0.0, CX + 0.5], [0.0, FOCAL_PX, CY + 0.5], [0.0, 0.0, 1.0]])
    K_right = K.copy()
    K_right[0, 2] += DOFFS_PX
    return StereoPair(left, right, K, K_right, BASELINE_M, depth)


def sample_at_centres(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """``values`` (H, W, ...) at the centres of a (height, width) grid over the same image."""
    H, W = values.shape[:2]
    rows = np.minimum(((np.arange(height) + 0.5) * H / height).astype(np.int64), H - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * W / width).astype(np.int64), W - 1)
    return values[np.ix_(rows, cols)]


def depth_figures(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Median relative error and AbsRel where both are known, and the share of the known truth
    that ``pred`` covers (finite, > 0). NaN/0 when nothing overlaps."""
    rel, known = relative_depth_errors(pred, truth)
    if not rel.size:
        return {"median_rel": float("nan"), "abs_rel": float("nan"), "coverage": 0.0}
    return {
        "median_rel": float(np.median(rel)),
        "abs_rel": float(rel.mean()),
        "coverage": float(rel.size / max(int(known.sum()), 1)),
    }


def sgbm_depth(pair: StereoPair, height: int, width: int) -> np.ndarray:
    """OpenCV StereoSGBM on the pair resized to (height, width): z-depth there, NaN where it
    finds no match. ImportError says what to install."""
    try:
        import cv2
    except ImportError as exc:
        raise ImportError(
            "the SGBM reference needs OpenCV: pip install opencv-python-headless"
        ) from exc
    sx = width / pair.left.shape[1]
    gray = [
        cv2.cvtColor(
            cv2.resize(im, (width, height), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY
        )
        for im in (pair.left, pair.right)
    ]
    block = 5
    matcher = cv2.StereoSGBM_create(
        minDisparity=0,
        numDisparities=max(16, int(np.ceil(width / 8 / 16)) * 16),
        blockSize=block,
        P1=8 * block * block,
        P2=32 * block * block,
        uniquenessRatio=10,
        speckleWindowSize=50,
        speckleRange=2,
        mode=cv2.STEREO_SGBM_MODE_HH,
    )
    disparity = matcher.compute(gray[0], gray[1]).astype(np.float64) / 16.0
    denom = disparity + DOFFS_PX * sx
    depth = np.full(disparity.shape, np.nan)
    ok = disparity >= 0
    depth[ok] = FOCAL_PX * sx * pair.baseline_m / denom[ok]
    return depth


def our_depth(pipeline: SemanticSplatPipeline, pair: StereoPair) -> tuple[np.ndarray, float]:
    """The pipeline's depth of the left view at its input resolution, and the encode's seconds."""
    c2w_left, c2w_right = pair.poses
    frames = [
        CameraFrame("left", pair.left, pair.K_left, c2w_left),
        CameraFrame("right", pair.right, pair.K_right, c2w_right),
    ]
    started = time.perf_counter()
    scene = pipeline.encode(frames)
    seconds = time.perf_counter() - started
    return scene.depth[0].detach().cpu().numpy().astype(np.float64), seconds


def panel(pair: StereoPair, truth: np.ndarray, ours: np.ndarray, sgbm: np.ndarray) -> np.ndarray:
    """Image, truth, ours and SGBM at the evaluation's resolution, one depth colour scale."""
    h, w = truth.shape
    image = sample_at_centres(pair.left, h, w)
    near, far = depth_range(truth)
    scale = max(1, 192 // w)
    tiles = [image, *(depth_to_rgb(d, near, far) for d in (truth, ours, sgbm))]
    tiles = [np.repeat(np.repeat(t, scale, axis=0), scale, axis=1) for t in tiles]
    return image_grid(
        [tiles],
        captions=[["image (left)", "truth", "ours", "StereoSGBM"]],
        title=f"Middlebury 2014 Motorcycle at {w}x{h}: depth {near:.1f}-{far:.1f} m",
    )


def evaluate_middlebury(config: PipelineConfig, panel_path: Path | None) -> dict[str, Any]:
    """Ours and SGBM on the Motorcycle pair at ``config``'s input resolution."""
    pair = load_motorcycle()
    h, w = config.input_height, config.input_width
    truth = sample_at_centres(pair.depth, h, w)
    pipeline = SemanticSplatPipeline(config)
    ours, encode_s = our_depth(pipeline, pair)
    started = time.perf_counter()
    sgbm = sgbm_depth(pair, h, w)
    sgbm_s = time.perf_counter() - started
    results: dict[str, Any] = {
        "dataset": "middlebury-2014/motorcycle (scikit-image, 741x500)",
        "resolution": [h, w],
        "checkpoint": config.model_checkpoint,
        "truth_coverage": float(np.isfinite(truth).mean()),
        "ours": {**depth_figures(ours, truth), "seconds": encode_s},
        "sgbm": {**depth_figures(sgbm, truth), "seconds": sgbm_s},
    }
    if panel_path is not None:
        results["panel"] = str(save_png(panel_path, panel(pair, truth, ours, sgbm)))
    return results

"""visualize.py: shapes, dtypes, colour semantics and input validation of the figure helpers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from semanticsplat_ros.data.classes import CLASS_COLORS
from semanticsplat_ros.visualize import (
    banner,
    depth_to_rgb,
    draw_marker,
    image_grid,
    labels_to_rgb,
    mask_contour,
    overlay_labels,
    overlay_mask,
    pca_rgb,
    save_png,
)


def _rgb(h: int = 12, w: int = 16, value: int = 100) -> np.ndarray:
    return np.full((h, w, 3), value, dtype=np.uint8)


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ np.array([0.2126, 0.7152, 0.0722])


def test_depth_colormap_is_monotone_and_marks_invalid():
    depth = np.linspace(0.5, 5.0, 64, dtype=np.float32)[None].repeat(3, axis=0)
    depth[1, 5] = 0.0
    depth[2, 7] = np.nan
    out = depth_to_rgb(depth, near=0.5, far=5.0, cmap="inferno")
    assert out.shape == (3, 64, 3) and out.dtype == np.uint8
    lum = _luminance(out[0])
    assert np.all(np.diff(lum) <= 0) and lum[0] > lum[-1] + 100  # near bright, far dark
    assert (out[1, 5] == 0).all() and (out[2, 7] == 0).all()
    # Clipped outside [near, far]; default range from the data.
    clipped = depth_to_rgb(np.array([[0.1, 0.5, 5.0, 50.0]]), near=0.5, far=5.0)
    assert (clipped[0, 0] == clipped[0, 1]).all() and (clipped[0, 2] == clipped[0, 3]).all()
    assert depth_to_rgb(depth).shape == (3, 64, 3)


def test_depth_colormap_rejects_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        depth_to_rgb(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="near < far"):
        depth_to_rgb(np.ones((2, 2)), near=3.0, far=1.0)
    with pytest.raises(ValueError, match="colour map"):
        depth_to_rgb(np.ones((2, 2)), cmap="no_such_map")


def test_label_overlay_blends_known_classes_only():
    labels = np.array([[0, 3], [255, -1]])
    colored = labels_to_rgb(labels)
    assert colored.dtype == np.uint8 and colored.shape == (2, 2, 3)
    assert tuple(colored[0, 1]) == CLASS_COLORS[3]
    assert (colored[1] == 0).all()
    img = _rgb(2, 2)
    out = overlay_labels(img, labels, alpha=1.0)
    assert tuple(out[0, 0]) == CLASS_COLORS[0] and tuple(out[0, 1]) == CLASS_COLORS[3]
    assert (out[1] == 100).all()  # unknown ids leave the image untouched
    half = overlay_labels(img, labels, alpha=0.5)
    expected = np.round((np.array(CLASS_COLORS[3]) + 100) / 2)
    assert np.abs(half[0, 1].astype(int) - expected).max() <= 1
    with_legend = overlay_labels(_rgb(40, 200), np.full((40, 200), 4), legend=True)
    assert with_legend.shape[0] > 40 and with_legend.shape[1] == 200
    with pytest.raises(ValueError, match="shape"):
        overlay_labels(img, np.zeros((3, 3), dtype=int))
    with pytest.raises(ValueError, match="integer"):
        labels_to_rgb(np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="uint8"):
        overlay_labels(img.astype(np.float32), labels)
    with pytest.raises(ValueError, match="alpha"):
        overlay_labels(img, labels, alpha=1.5)


def test_mask_overlay_highlights_and_outlines():
    mask = np.zeros((10, 10), dtype=bool)
    mask[2:8, 3:7] = True
    contour = mask_contour(mask)
    assert contour[2, 3] and contour[7, 6] and not contour[4, 4] and not contour[0, 0]
    out = overlay_mask(_rgb(10, 10), mask, color=(255, 0, 0), alpha=0.5, dim_outside=0.5)
    assert out.shape == (10, 10, 3) and out.dtype == np.uint8
    assert tuple(out[2, 3]) == (255, 255, 255)  # contour
    assert out[4, 4, 0] > 150 and out[4, 4, 1] < 60  # reddened inside
    assert tuple(out[0, 0]) == (50, 50, 50)  # dimmed outside
    with pytest.raises(ValueError, match="shape"):
        overlay_mask(_rgb(10, 10), mask[:5])
    marked = draw_marker(_rgb(20, 20, 0), 10, 10)
    assert marked.shape == (20, 20, 3) and marked.any()


def test_pca_of_three_clusters_gives_three_consistent_colours():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 32)) * 5.0
    # Two views, each a different arrangement of the same three clusters.
    ids = [np.repeat(np.arange(3), 20).reshape(6, 10), np.repeat([2, 0, 1], 16).reshape(6, 8)]
    views = [
        np.transpose(centres[i] + 0.01 * rng.normal(size=(*i.shape, 32)), (2, 0, 1)) for i in ids
    ]
    rgbs = pca_rgb(views)
    assert [r.shape for r in rgbs] == [(6, 10, 3), (6, 8, 3)]
    assert all(r.dtype == np.uint8 for r in rgbs)
    colour = {}
    for r, i in zip(rgbs, ids, strict=True):
        for k in range(3):
            pixels = r[i == k].astype(int)
            mean = pixels.mean(axis=0)
            assert np.abs(pixels - mean).max() <= 12  # one colour per cluster
            if k in colour:  # the same cluster has the same colour in both views
                assert np.abs(colour[k] - mean).max() <= 12
            colour[k] = mean
    for a in range(3):
        for b in range(a + 1, 3):
            assert np.abs(colour[a] - colour[b]).max() > 60  # distinct colours


def test_pca_accepts_a_stacked_array_and_rejects_bad_input():
    f = np.random.default_rng(1).normal(size=(2, 5, 4, 6)).astype(np.float32)
    out = pca_rgb(f)
    assert len(out) == 2 and out[0].shape == (4, 6, 3)
    constant = pca_rgb(np.ones((1, 4, 3, 3)))
    assert (constant[0] == 128).all()
    with pytest.raises(ValueError, match="channels"):
        pca_rgb([np.zeros((4, 2, 2)), np.zeros((5, 2, 2))])
    with pytest.raises(ValueError, match=r"\(v, c, h, w\)"):
        pca_rgb(np.zeros((4, 2, 2)))
    with pytest.raises(ValueError, match="no feature maps"):
        pca_rgb([])


def test_grid_banner_and_png(tmp_path):
    a, b = _rgb(10, 20, 50), _rgb(16, 8, 200)
    grid = image_grid([[a, b], [None, a]], captions=[["a", "b"], ["", "c"]], title="T — x")
    assert grid.dtype == np.uint8 and grid.ndim == 3
    assert grid.shape[1] >= 20 + 8 and grid.shape[0] >= 10 + 16
    with pytest.raises(ValueError, match="at least one tile"):
        image_grid([])
    with pytest.raises(ValueError, match="captions"):
        image_grid([[a]], captions=[["x", "y"]])
    flagged = banner(_rgb(40, 120), "RANDOM WEIGHTS — plumbing only")
    assert flagged.shape == (40, 120, 3) and (flagged[:13] != 100).any()
    path = save_png(tmp_path / "sub" / "x.png", grid, {"Comment": "RANDOM WEIGHTS — plumbing only"})
    with Image.open(path) as im:
        assert im.size == (grid.shape[1], grid.shape[0]) and im.mode == "RGB"
        assert im.info["Comment"] == "RANDOM WEIGHTS — plumbing only"
    with pytest.raises(ValueError, match=r"\.png"):
        save_png(tmp_path / "x.jpg", grid)

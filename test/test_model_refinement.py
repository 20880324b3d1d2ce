"""Cascade depth refinement: per-pixel plane sweep, local cost volume, module and model wiring."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from semanticsplat_ros.checkpoint import save_checkpoint
from semanticsplat_ros.geometry import plane_sweep_grid, relative_pose
from semanticsplat_ros.geometry.plane_sweep import plane_sweep_grid_per_pixel
from semanticsplat_ros.model import SemanticSplat, SemanticSplatConfig, load_model
from semanticsplat_ros.model.cost_volume import local_correlation_cost_volume
from semanticsplat_ros.model.depth_head import (
    DepthHead,
    DepthHeadConfig,
    local_inverse_candidates,
    normalized_inverse_to_depth,
)
from semanticsplat_ros.model.layers import UNetConfig
from semanticsplat_ros.model.testing import random_views, textured_plane_views, tiny_config


def _patch_features(images: torch.Tensor, size: int = 5) -> torch.Tensor:
    """Zero-mean, unit-norm 5×5 patches per pixel (normalised cross-correlation)."""
    b, v, _, h, w = images.shape
    patches = F.unfold(images.flatten(0, 1), size, padding=size // 2)
    patches = patches - patches.mean(dim=1, keepdim=True)
    patches = patches / patches.norm(dim=1, keepdim=True).clamp_min(1e-6)
    return patches.reshape(b, v, -1, h, w)


def test_per_pixel_plane_sweep_equals_plane_sweep_with_shared_depths() -> None:
    views = random_views(2, 2, 12, 20, seed=1)
    K, c2w = views.K[:, 0], views.c2w
    c2w = c2w.clone()
    c2w[:, 1, 2, 3] = 0.1  # some forward motion too
    ref_to_src = relative_pose(c2w[:, 0], c2w[:, 1])
    depths = torch.tensor([[0.5, 1.0, 2.5, 9.0], [0.7, 1.5, 3.0, 4.0]])
    grid, valid = plane_sweep_grid(K, K, ref_to_src, depths, 12, 20)
    per_pixel = depths[:, :, None, None].expand(2, 4, 12, 20)
    grid_pp, valid_pp = plane_sweep_grid_per_pixel(K, K, ref_to_src, per_pixel, 12, 20)
    assert grid_pp.shape == (2, 4, 12, 20, 2) and valid_pp.shape == (2, 4, 12, 20)
    assert torch.allclose(grid_pp, grid, atol=1e-6)
    assert torch.equal(valid_pp, valid)
    # Truly per pixel: changing one pixel's depth moves only that pixel's sample.
    changed = per_pixel.clone()
    changed[0, 1, 3, 4] = 5.0
    grid_c, _ = plane_sweep_grid_per_pixel(K, K, ref_to_src, changed, 12, 20)
    diff = (grid_c - grid_pp).abs().sum(-1)
    assert diff[0, 1, 3, 4] > 1e-3 and diff.sum() == diff[0, 1, 3, 4]


def test_per_pixel_plane_sweep_rejects_bad_shapes() -> None:
    K = torch.eye(3).expand(2, 3, 3)
    pose = torch.eye(4).expand(2, 4, 4)
    with pytest.raises(ValueError, match="depths must be"):
        plane_sweep_grid_per_pixel(K, K, pose, torch.ones(2, 4, 8, 9), 8, 8)
    with pytest.raises(ValueError, match="ref_to_src"):
        plane_sweep_grid_per_pixel(K, K, pose[:1], torch.ones(2, 4, 8, 8), 8, 8)


def test_local_candidates_surround_the_centre_and_stay_in_range() -> None:
    centre = torch.tensor([[[0.0, 0.02, 0.5, 0.97, 1.0]]])
    cand = local_inverse_candidates(centre, 5, 0.1)
    assert cand.shape == (1, 5, 1, 5)
    assert cand.min() >= 0.0 and cand.max() <= 1.0 + 1e-6
    width = cand[:, -1] - cand[:, 0]
    assert torch.allclose(width, torch.full_like(width, 0.2))  # shifted at the ends, not cut
    assert (cand[:, 0] <= centre + 1e-6).all() and (cand[:, -1] >= centre - 1e-6).all()
    assert torch.allclose(cand[0, :, 0, 2], torch.tensor([0.4, 0.45, 0.5, 0.55, 0.6]))
    wide = local_inverse_candidates(centre, 3, 0.8)  # wider than [0, 1]: the whole range
    assert torch.allclose(wide[0, :, 0, 0], torch.tensor([0.0, 0.5, 1.0]))


@pytest.mark.parametrize("num_views", [2, 3])
@pytest.mark.parametrize("offset_bins", [0.5, -1.0])
def test_local_cost_volume_peaks_at_true_depth(num_views: int, offset_bins: float) -> None:
    # Coarse bins of D = 8 over [1, 8] m; the coarse estimate is off by a fraction of a bin (or
    # a whole one) and the 9 local candidates, 0.5 bin apart, contain the true inverse depth.
    size, near, far, coarse_d = 48, 1.0, 8.0, 8
    bin_width = 1.0 / (coarse_d - 1)
    true_inverse = 1.0 - 3 * bin_width
    plane_depth = float(
        normalized_inverse_to_depth(torch.tensor([true_inverse]), torch.tensor([near]), torch.tensor([far]))[0]
    )  # fmt: skip
    baseline = 0.3
    views = textured_plane_views(
        plane_depth, size, size, num_views=num_views, baseline=baseline, near=near, far=far
    )
    feats = _patch_features(views.images)
    centre = torch.full((num_views, size, size), true_inverse + offset_bins * bin_width)
    candidates = local_inverse_candidates(centre, 9, 2.0 * bin_width)  # (v, 9, h, w)
    true_index = round((true_inverse - float(candidates[0, 0, 0, 0])) / (0.5 * bin_width))
    assert 0 < true_index < 8
    assert torch.allclose(candidates[:, true_index], torch.tensor(true_inverse), atol=1e-5)
    depths = normalized_inverse_to_depth(candidates, views.near[0], views.far[0])
    cost = local_correlation_cost_volume(feats, views.K, views.c2w, depths[None])
    assert cost.shape == (1, num_views, 9, size, size)
    fx = float(views.K[0, 0, 0, 0])
    margin = math.ceil(fx * baseline * (num_views - 1) / plane_depth) + 3
    best = cost[0, :, :, 3:-3, margin:-margin].argmax(dim=1)
    assert (best - true_index).abs().le(1).float().mean() > 0.98
    assert (best == true_index).float().mean() > 0.9


def _depth_head(refine_candidates: int) -> DepthHead:
    config = DepthHeadConfig(
        unet=UNetConfig(channels=8),
        refine_channels=8,
        refine_candidates=refine_candidates,
        cascade_channels=8,
    )
    return DepthHead(latent_dim=6, num_depths=8, full_channels=5, downsample=4, config=config)


@pytest.mark.parametrize("num_views", [2, 3])
def test_depth_head_with_cascade_shapes_and_ranges(num_views: int) -> None:
    torch.manual_seed(0)
    head = _depth_head(6)
    b, h, w = 2, 16, 24
    n = b * num_views
    views = random_views(b, num_views, h, w)
    out = head(
        torch.randn(n, 6, h // 4, w // 4),
        torch.randn(n, 8, h // 4, w // 4),
        views.images.flatten(0, 1),
        torch.randn(n, 5, h, w),
        views.near.flatten(0, 1),
        views.far.flatten(0, 1),
        views.K.flatten(0, 1),
        views.c2w.flatten(0, 1),
        num_views,
    )
    assert out.depth.shape == out.coarse_depth.shape == out.inverse.shape == (n, h, w)
    assert out.probs.shape == (n, 8, h // 4, w // 4)
    assert out.refine_probs is not None and out.refine_probs.shape == (n, 6, h, w)
    assert torch.allclose(out.refine_probs.sum(1), torch.ones(n, h, w), atol=1e-5)
    assert out.inverse.min() >= 0.0 and out.inverse.max() <= 1.0 + 1e-6
    assert out.depth.min() >= 0.5 - 1e-4 and out.depth.max() <= 10.0 + 1e-3
    # The refined estimate stays inside the window around the coarse one (±2 bins, shifted by
    # at most 2 more at the ends of the range).
    coarse_inv = 1.0 / out.coarse_depth
    span = 2.0 / 7 * (1 / 0.5 - 1 / 10.0)
    assert ((1.0 / out.depth - coarse_inv).abs() <= 2 * span * 1.0001).all()


def test_depth_head_without_cascade_is_the_coarse_depth() -> None:
    head = _depth_head(0)
    assert head.cascade is None
    views = random_views(1, 2, 16, 16)
    out = head(
        torch.randn(2, 6, 4, 4), torch.randn(2, 8, 4, 4), views.images[0], torch.randn(2, 5, 16, 16),
        views.near[0], views.far[0], views.K[0], views.c2w[0], 2,
    )  # fmt: skip
    assert out.refine_probs is None
    assert torch.equal(out.depth, out.coarse_depth)


def test_invalid_cascade_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="refine_candidates"):
        _depth_head(1)
    with pytest.raises(ValueError, match="refine_span"):
        DepthHead(6, 8, 5, 4, DepthHeadConfig(refine_span=0.0))


def test_gradients_from_a_photometric_stand_in_reach_the_cascade() -> None:
    torch.manual_seed(2)
    model = SemanticSplat(tiny_config())
    assert model.depth_head.cascade is not None
    views = random_views(1, 3, 16, 16, seed=5)
    out = model(views)
    assert out.depth.shape == out.coarse_depth.shape == (1, 3, 16, 16)
    # Only the Gaussian centres carry the loss, as in a photometric loss through the renderer.
    (out.gaussians.means * torch.randn_like(out.gaussians.means)).sum().backward()
    for prefix in ("depth_head.cascade.", "depth_head.unet.", "backbone.stem."):
        grads = [p.grad for name, p in model.named_parameters() if name.startswith(prefix)]
        assert grads and all(g is not None and g.abs().sum() > 0 for g in grads), prefix


def test_presets_enable_the_cascade() -> None:
    assert SemanticSplatConfig.small().depth.refine_candidates == 8
    assert SemanticSplatConfig.paper().depth.refine_candidates == 8


def test_checkpoint_without_cascade_field_loads_with_cascade_off(tmp_path: Path) -> None:
    config = tiny_config()
    config = dataclasses.replace(
        config, depth=dataclasses.replace(config.depth, refine_candidates=0)
    )
    model = SemanticSplat(config)
    old = config.to_dict()
    del old["depth"]["refine_candidates"]
    path = save_checkpoint(tmp_path / "old.pt", model, old)
    loaded, _ = load_model(path)
    assert loaded.config.depth.refine_candidates == 0 and loaded.depth_head.cascade is None
    # A new checkpoint with the cascade keeps it.
    new_model = SemanticSplat(tiny_config())
    path = save_checkpoint(tmp_path / "new.pt", new_model, new_model.config)
    assert load_model(path)[0].depth_head.cascade is not None

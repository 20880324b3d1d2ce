"""Plane-sweep cost volume, convex upsampling and the multi-view transformer's symmetry."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from semanticsplat_ros.geometry import inverse_depth_candidates
from semanticsplat_ros.model.cost_volume import correlation_cost_volume
from semanticsplat_ros.model.depth_head import convex_upsample
from semanticsplat_ros.model.testing import textured_plane_views
from semanticsplat_ros.model.transformer import MultiViewTransformer, TransformerConfig


def _patch_features(images: torch.Tensor, size: int = 5) -> torch.Tensor:
    """Zero-mean, unit-norm 5×5 patches per pixel: correlation becomes normalised
    cross-correlation (what a learned matching feature approximates)."""
    b, v, _, h, w = images.shape
    patches = F.unfold(images.flatten(0, 1), size, padding=size // 2)  # (bv, c·size², h·w)
    patches = patches - patches.mean(dim=1, keepdim=True)
    patches = patches / patches.norm(dim=1, keepdim=True).clamp_min(1e-6)
    return patches.reshape(b, v, -1, h, w)


@pytest.mark.parametrize("num_views", [2, 3])
@pytest.mark.parametrize("true_index", [4, 11])
def test_cost_volume_peaks_at_true_depth(num_views: int, true_index: int) -> None:
    # Correlation of bilinearly warped features snaps to whole-pixel shifts, so candidates are
    # spaced ~0.5 px of disparity apart here and we ask for the peak within one candidate.
    d, size = 16, 48
    near, far = 1.0, 8.0
    plane_depth = float(inverse_depth_candidates(near, far, d)[true_index])
    baseline = 0.2
    views = textured_plane_views(
        plane_depth, size, size, num_views=num_views, baseline=baseline, near=near, far=far
    )
    feats = _patch_features(views.images)
    cost, depths = correlation_cost_volume(feats, views.K, views.c2w, views.near, views.far, d)
    assert cost.shape == (1, num_views, d, size, size)
    assert torch.allclose(depths[0, 0, true_index], torch.tensor(plane_depth))
    # Score pixels whose true match lies inside every other view (the widest disparity is to the
    # farthest view), away from the patch border.
    fx = float(views.K[0, 0, 0, 0])
    margin = math.ceil(fx * baseline * (num_views - 1) / plane_depth) + 3
    best = cost[0, :, :, 3:-3, margin:-margin].argmax(dim=1)
    assert (best - true_index).abs().le(1).float().mean() > 0.9
    assert (best == true_index).float().mean() > 0.5


def test_cost_volume_rejects_single_view() -> None:
    views = textured_plane_views(2.0, 16, 16)
    with pytest.raises(ValueError, match="at least 2 views"):
        correlation_cost_volume(
            views.images[:, :1], views.K[:, :1], views.c2w[:, :1], views.near[:, :1],
            views.far[:, :1], 8,
        )  # fmt: skip


def test_convex_upsample_of_constant_is_constant_and_in_range() -> None:
    x = torch.full((2, 1, 4, 5), 0.7)
    mask = torch.randn(2, 9 * 16, 4, 5)
    up = convex_upsample(x, mask, 4)
    assert up.shape == (2, 1, 16, 20)
    assert torch.allclose(up, torch.full_like(up, 0.7), atol=1e-6)
    ramp = torch.arange(20.0).reshape(1, 1, 4, 5)
    up = convex_upsample(ramp, torch.randn(1, 144, 4, 5), 4)
    assert up.min() >= 0.0 - 1e-5 and up.max() <= 19.0 + 1e-5


def test_transformer_is_view_permutation_equivariant() -> None:
    torch.manual_seed(0)
    net = MultiViewTransformer(32, TransformerConfig(blocks=2, heads=4)).eval()
    x = torch.randn(2, 4, 32, 4, 4)
    perm = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        out = net(x)
        out_perm = net(x[:, perm])
    assert torch.allclose(out_perm, out[:, perm], atol=1e-5)
    # Cross-view attention really mixes views: changing one view changes the others' outputs.
    x2 = x.clone()
    x2[:, 0] = torch.randn_like(x2[:, 0])
    with torch.no_grad():
        assert not torch.allclose(net(x2)[:, 1], out[:, 1], atol=1e-4)

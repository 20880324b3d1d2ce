"""Plane-sweep correlation cost volumes: global over D inverse-depth candidates (MVSplat-style)
and local, with per-pixel candidates around a coarse estimate (cascade refinement)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from semanticsplat_ros.geometry import (
    inverse_depth_candidates,
    plane_sweep_grid,
    relative_pose,
    warp_to_reference,
)
from semanticsplat_ros.geometry.plane_sweep import plane_sweep_grid_per_pixel
from semanticsplat_ros.model.transformer import other_view_indices


@dataclass
class CostVolumeConfig:
    """Plane-sweep settings."""

    num_depths: int = 32
    """D: depth candidates, uniform in inverse depth between each view's near and far."""


def correlation_cost_volume(
    features: Float[Tensor, "b v c h w"],
    K: Float[Tensor, "b v 3 3"],
    c2w: Float[Tensor, "b v 4 4"],
    near: Float[Tensor, "b v"],
    far: Float[Tensor, "b v"],
    num_depths: int,
) -> tuple[Float[Tensor, "b v d h w"], Float[Tensor, "b v d"]]:
    """Correlation of each view's features with every other view warped onto its depth planes.

    ``K`` are intrinsics at the resolution of ``features`` (pixels); ``c2w`` camera-to-world
    (OpenCV frame); ``near``/``far`` in metres. For reference view i and candidate depth d the
    cost is ⟨F_i, warp(F_j, d)⟩ / √c, averaged over all views j ≠ i (zeros where view j does not
    see the point). Returns (cost volume, the candidate depths per view, index 0 = near).
    """
    b, v, c, h, w = features.shape
    if v < 2:
        raise ValueError(f"a cost volume needs at least 2 views, got {v}")
    if K.shape != (b, v, 3, 3) or c2w.shape != (b, v, 4, 4):
        raise ValueError(
            f"K must be {(b, v, 3, 3)} and c2w {(b, v, 4, 4)}, got {tuple(K.shape)}, "
            f"{tuple(c2w.shape)}"
        )
    depths = inverse_depth_candidates(near, far, num_depths, dtype=features.dtype)  # (b, v, d)
    others = other_view_indices(v, features.device)  # (v, v-1)
    ref = torch.arange(v, device=features.device).unsqueeze(1).expand_as(others)
    n = b * v * (v - 1)
    K_ref = K[:, ref].reshape(n, 3, 3)
    K_src = K[:, others].reshape(n, 3, 3)
    ref_to_src = relative_pose(c2w[:, ref], c2w[:, others]).reshape(n, 4, 4)
    pair_depths = depths[:, ref].reshape(n, num_depths)
    grid, _ = plane_sweep_grid(K_ref, K_src, ref_to_src, pair_depths, h, w)
    warped = warp_to_reference(features[:, others].reshape(n, c, h, w), grid)  # (n, c, d, h, w)
    ref_features = features[:, ref].reshape(n, c, 1, h, w)
    corr = (ref_features * warped).sum(dim=1) / math.sqrt(c)  # (n, d, h, w)
    cost = corr.reshape(b, v, v - 1, num_depths, h, w).mean(dim=2)
    return cost, depths


def local_correlation_cost_volume(
    features: Float[Tensor, "b v c h w"],
    K: Float[Tensor, "b v 3 3"],
    c2w: Float[Tensor, "b v 4 4"],
    depths: Float[Tensor, "b v d h w"],
) -> Float[Tensor, "b v d h w"]:
    """Correlation cost volume at per-pixel candidate depths (the cascade stage's local sweep).

    ``depths[:, i, k]`` is the k-th candidate z-depth (metres) of every pixel of view i; ``K`` are
    intrinsics at the resolution of ``features`` (pixels), ``c2w`` camera-to-world (OpenCV). The
    cost is ⟨F_i, warp(F_j, depth)⟩ / √c averaged over all views j ≠ i (zeros where view j does
    not see the point), as in ``correlation_cost_volume``.
    """
    b, v, c, h, w = features.shape
    if v < 2:
        raise ValueError(f"a cost volume needs at least 2 views, got {v}")
    if K.shape != (b, v, 3, 3) or c2w.shape != (b, v, 4, 4):
        raise ValueError(
            f"K must be {(b, v, 3, 3)} and c2w {(b, v, 4, 4)}, got {tuple(K.shape)}, "
            f"{tuple(c2w.shape)}"
        )
    if depths.ndim != 5 or depths.shape[:2] != (b, v) or depths.shape[3:] != (h, w):
        raise ValueError(f"depths must be (b={b}, v={v}, d, {h}, {w}), got {tuple(depths.shape)}")
    d = depths.shape[2]
    others = other_view_indices(v, features.device)  # (v, v-1)
    ref = torch.arange(v, device=features.device).unsqueeze(1).expand_as(others)
    n = b * v * (v - 1)
    K_ref = K[:, ref].reshape(n, 3, 3)
    K_src = K[:, others].reshape(n, 3, 3)
    ref_to_src = relative_pose(c2w[:, ref], c2w[:, others]).reshape(n, 4, 4)
    pair_depths = depths[:, ref].reshape(n, d, h, w)
    grid, _ = plane_sweep_grid_per_pixel(K_ref, K_src, ref_to_src, pair_depths, h, w)
    warped = warp_to_reference(features[:, others].reshape(n, c, h, w), grid)  # (n, c, d, h, w)
    ref_features = features[:, ref].reshape(n, c, 1, h, w)
    corr = (ref_features * warped).sum(dim=1) / math.sqrt(c)  # (n, d, h, w)
    return corr.reshape(b, v, v - 1, d, h, w).mean(dim=2)

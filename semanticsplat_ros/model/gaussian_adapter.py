"""Gaussian heads: one Gaussian per pixel with centre from unprojected depth (MVSplat-style)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor, nn

from semanticsplat_ros.geometry import (
    normalize_quat,
    quat_multiply,
    rotmat_to_quat,
    unproject_depth,
)
from semanticsplat_ros.model.layers import conv3x3


@dataclass
class GaussianAdapterConfig:
    """Parameter heads and ranges of the per-pixel Gaussians."""

    hidden_channels: int = 32
    """Width of the first of the two convolutions of the parameter head."""

    scale_min: float = 0.5
    """Smallest Gaussian scale, in pixel footprints (depth / focal length)."""

    scale_max: float = 3.0
    """Largest Gaussian scale, in pixel footprints."""

    opacity_bias: float = 2.0
    """Initial opacity logit (sigmoid(2) ≈ 0.88: start nearly opaque)."""


RAW_CHANNELS = 1 + 3 + 4 + 3  # opacity, scale, rotation (wxyz), colour


@dataclass
class GaussianParameters:
    """Per-pixel Gaussians of n views (n = b·v), world frame.

    means (n, h, w, 3) metres; quats (n, h, w, 4) wxyz; scales (n, h, w, 3) metres;
    opacities (n, h, w) in [0, 1]; colors (n, h, w, 3) in [0, 1].
    """

    means: Float[Tensor, "n h w 3"]
    quats: Float[Tensor, "n h w 4"]
    scales: Float[Tensor, "n h w 3"]
    opacities: Float[Tensor, "n h w"]
    colors: Float[Tensor, "n h w 3"]


class GaussianAdapter(nn.Module):
    """Two convolutions over (image, features, latent, depth) → Gaussian parameters."""

    def __init__(self, in_channels: int, config: GaussianAdapterConfig) -> None:
        super().__init__()
        self.config = config
        self.head = nn.Sequential(
            conv3x3(3 + in_channels + 1, config.hidden_channels),
            nn.GELU(),
            conv3x3(config.hidden_channels, RAW_CHANNELS),
        )
        with torch.no_grad():
            # Small, not zero: start near the pixel colour / identity rotation, keep gradients.
            self.head[-1].weight.mul_(0.01)
            bias = torch.zeros(RAW_CHANNELS)
            bias[0] = config.opacity_bias
            bias[4] = 1.0  # identity rotation (w = 1)
            self.head[-1].bias.copy_(bias)

    def forward(
        self,
        images: Float[Tensor, "n 3 h w"],
        features: Float[Tensor, "n c h w"],
        depth: Float[Tensor, "n h w"],
        inverse: Float[Tensor, "n h w"],
        K: Float[Tensor, "n 3 3"],
        c2w: Float[Tensor, "n 4 4"],
    ) -> GaussianParameters:
        x = torch.cat([images * 2.0 - 1.0, features, inverse.unsqueeze(1)], dim=1)
        raw = self.head(x).permute(0, 2, 3, 1)  # (n, h, w, 11)
        opacity_raw, scale_raw, quat_raw, color_raw = raw.split([1, 3, 4, 3], dim=-1)
        cfg = self.config
        # Scale ∝ depth / focal: a Gaussian covers the same few pixels at any distance.
        focal = 0.5 * (K[:, 0, 0] + K[:, 1, 1])
        footprint = depth / focal[:, None, None]
        scales = (
            cfg.scale_min + (cfg.scale_max - cfg.scale_min) * torch.sigmoid(scale_raw)
        ) * footprint.unsqueeze(-1)
        # Rotations are predicted in the camera frame and rotated into the world frame.
        q_c2w = rotmat_to_quat(c2w[:, :3, :3])[:, None, None, :].expand_as(quat_raw)
        quats = normalize_quat(quat_multiply(q_c2w, normalize_quat(quat_raw)))
        # Colour is a residual on the pixel's own colour (logit space).
        pixel = images.permute(0, 2, 3, 1).clamp(1e-3, 1.0 - 1e-3)
        colors = torch.sigmoid(torch.logit(pixel) + color_raw)
        means = unproject_depth(depth, K, c2w)
        return GaussianParameters(
            means=means,
            quats=quats,
            scales=scales,
            opacities=torch.sigmoid(opacity_raw.squeeze(-1)),
            colors=colors,
        )

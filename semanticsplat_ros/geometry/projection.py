"""Small single-purpose projection helpers (OpenCV frame, K in pixels, centres at +0.5)."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor


def homogenize_points(points: Float[Tensor, "*batch 3"]) -> Float[Tensor, "*batch 4"]:
    """Append a 1 to every point."""
    return torch.cat([points, torch.ones_like(points[..., :1])], dim=-1)


def transform_points(
    transform: Float[Tensor, "*batch 4 4"], points: Float[Tensor, "*batch n 3"]
) -> Float[Tensor, "*batch n 3"]:
    """Apply rigid/affine 4×4 transforms to point sets: ``R @ p + t``."""
    R = transform[..., :3, :3]
    t = transform[..., :3, 3]
    return points @ R.transpose(-1, -2) + t.unsqueeze(-2)


def project(
    points_cam: Float[Tensor, "*batch n 3"],
    K: Float[Tensor, "*batch 3 3"],
    eps: float = 1e-8,
) -> tuple[Float[Tensor, "*batch n 2"], Float[Tensor, "*batch n"]]:
    """Project camera-frame points to pixels. Returns (uv in pixels, depth z in metres).

    Points at or behind the camera get depth <= 0; their uv are finite but meaningless.
    """
    z = points_cam[..., 2]
    safe_z = torch.where(z.abs() < eps, torch.full_like(z, eps), z)
    xy = points_cam[..., :2] / safe_z.unsqueeze(-1)
    fx = K[..., 0, 0].unsqueeze(-1)
    fy = K[..., 1, 1].unsqueeze(-1)
    cx = K[..., 0, 2].unsqueeze(-1)
    cy = K[..., 1, 2].unsqueeze(-1)
    skew = K[..., 0, 1].unsqueeze(-1)
    u = fx * xy[..., 0] + skew * xy[..., 1] + cx
    v = fy * xy[..., 1] + cy
    return torch.stack([u, v], dim=-1), z


def unproject(
    uv: Float[Tensor, "*batch n 2"],
    depth: Float[Tensor, "*batch n"],
    K: Float[Tensor, "*batch 3 3"],
) -> Float[Tensor, "*batch n 3"]:
    """Lift pixels with metric depth (z, not ray length) to camera-frame points."""
    fx = K[..., 0, 0].unsqueeze(-1)
    fy = K[..., 1, 1].unsqueeze(-1)
    cx = K[..., 0, 2].unsqueeze(-1)
    cy = K[..., 1, 2].unsqueeze(-1)
    skew = K[..., 0, 1].unsqueeze(-1)
    y = (uv[..., 1] - cy) / fy
    x = (uv[..., 0] - cx - skew * y) / fx
    return torch.stack([x * depth, y * depth, depth], dim=-1)


def pixel_centers(
    height: int, width: int, device: torch.device | str | None = None, dtype=torch.float32
) -> Float[Tensor, "h w 2"]:
    """Pixel-centre coordinates (u, v) = (j + 0.5, i + 0.5) for an h×w image."""
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    v, u = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype) + 0.5,
        torch.arange(width, device=device, dtype=dtype) + 0.5,
        indexing="ij",
    )
    return torch.stack([u, v], dim=-1)


def unproject_depth(
    depth: Float[Tensor, "*batch h w"],
    K: Float[Tensor, "*batch 3 3"],
    c2w: Float[Tensor, "*batch 4 4"] | None = None,
) -> Float[Tensor, "*batch h w 3"]:
    """Lift a depth map (z in metres) to 3D points; world frame when ``c2w`` is given."""
    h, w = depth.shape[-2:]
    uv = pixel_centers(h, w, device=depth.device, dtype=depth.dtype).reshape(-1, 2)
    batch = depth.shape[:-2]
    uv = uv.expand(*batch, h * w, 2)
    pts = unproject(uv, depth.reshape(*batch, h * w), K)
    if c2w is not None:
        pts = transform_points(c2w, pts)
    return pts.reshape(*batch, h, w, 3)


def point_grid(height: int, width: int, n: int = 32) -> Float[Tensor, "p 2"]:
    """An n×n grid of points (u, v) in pixels at the centres of an n×n cell partition of an
    h×w image (row-major, u fastest; our convention: pixel centres at +0.5)."""
    if height <= 0 or width <= 0 or n <= 0:
        raise ValueError("height, width and n must be positive")
    us = (torch.arange(n, dtype=torch.float32) + 0.5) * width / n
    vs = (torch.arange(n, dtype=torch.float32) + 0.5) * height / n
    v, u = torch.meshgrid(vs, us, indexing="ij")
    return torch.stack([u.reshape(-1), v.reshape(-1)], dim=-1)

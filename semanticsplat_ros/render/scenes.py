"""Random scenes that look like the model's output, for tests and benchmarks.

Gaussians are "per pixel" of a few context cameras: each sits on a context camera's ray at
1–5 m, with a footprint of about 1–3 px (σ of 0.5–1.5 px) in that camera. Target cameras are
small perturbations of the context cameras, so most Gaussians are in view.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor

from semanticsplat_ros.geometry.cameras import invert_pose
from semanticsplat_ros.geometry.projection import transform_points, unproject
from semanticsplat_ros.geometry.quaternions import quat_to_rotmat
from semanticsplat_ros.render.types import Gaussians


def pinhole_intrinsics(
    width: int, height: int, fov_x_deg: float = 60.0, dtype: torch.dtype = torch.float32
) -> Float[Tensor, "3 3"]:
    """Centred pinhole K in pixels (square pixels) for a horizontal field of view."""
    f = 0.5 * width / math.tan(math.radians(fov_x_deg) / 2)
    return torch.tensor([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]], dtype=dtype)


def jittered_c2w(
    count: int, generator: torch.Generator, angle_deg: float = 5.0, shift: float = 0.2
) -> Float[Tensor, "count 4 4"]:
    """Camera-to-world poses near the identity: rotation up to ``angle_deg``, shift in metres."""
    axis = torch.randn(count, 3, generator=generator)
    axis = axis / axis.norm(dim=-1, keepdim=True)
    angle = torch.rand(count, generator=generator) * math.radians(angle_deg)
    quat = torch.cat([torch.cos(angle / 2)[:, None], axis * torch.sin(angle / 2)[:, None]], -1)
    c2w = torch.eye(4).repeat(count, 1, 1)
    c2w[:, :3, :3] = quat_to_rotmat(quat)
    c2w[:, :3, 3] = (torch.rand(count, 3, generator=generator) * 2 - 1) * shift
    return c2w


def random_scene(
    batch: int,
    views: int,
    height: int,
    width: int,
    gaussians: int,
    features: int,
    *,
    context_views: int = 2,
    depth_range: tuple[float, float] = (1.0, 5.0),
    footprint_px: tuple[float, float] = (0.5, 1.5),
    opacity_range: tuple[float, float] = (0.1, 1.0),
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> tuple[Gaussians, Float[Tensor, "b v 4 4"], Float[Tensor, "b v 3 3"]]:
    """Gaussians (b, n) and target cameras (w2c, K) of size ``height``×``width``."""
    g = torch.Generator().manual_seed(seed)
    n = gaussians
    K = pinhole_intrinsics(width, height)
    ctx_c2w = jittered_c2w(batch * context_views, g).reshape(batch, context_views, 4, 4)
    which = torch.randint(0, context_views, (batch, n), generator=g)
    c2w = torch.gather(ctx_c2w, 1, which[..., None, None].expand(batch, n, 4, 4))
    uv = torch.rand(batch, n, 2, generator=g) * torch.tensor([width, height])
    lo, hi = depth_range
    z = lo + (hi - lo) * torch.rand(batch, n, generator=g)
    pts_cam = unproject(uv, z, K)
    means = transform_points(c2w, pts_cam.unsqueeze(-2)).squeeze(-2)
    flo, fhi = footprint_px
    sigma_px = flo + (fhi - flo) * torch.rand(batch, n, 3, generator=g)
    scales = sigma_px * z.unsqueeze(-1) / K[0, 0]
    quats = torch.randn(batch, n, 4, generator=g)
    olo, ohi = opacity_range
    opacities = olo + (ohi - olo) * torch.rand(batch, n, generator=g)
    colors = torch.rand(batch, n, 3, generator=g)
    feats = torch.randn(batch, n, features, generator=g)
    target_c2w = jittered_c2w(batch * views, g).reshape(batch, views, 4, 4)
    w2c = invert_pose(target_c2w)
    Ks = K.expand(batch, views, 3, 3).clone()
    gs = Gaussians(means, quats, scales, opacities, colors, feats)
    return Gaussians(*(t.to(dtype) for t in gs._fields())), w2c.to(dtype), Ks.to(dtype)

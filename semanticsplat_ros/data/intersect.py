"""Ray-primitive intersection in the primitives' local (yaw-rotated) frames, shared by the
renderer (``raycast``) and the shadow rays of ``lighting``."""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor

from semanticsplat_ros.data.scene import KIND_BOX, KIND_CYLINDER, KIND_ROOM_FACE, PrimitiveTable

EPS = 1e-4
"""Smallest ray parameter counted as a hit (metres): no self-hit at a ray's start."""


def rotate_to_local(x: Tensor, y: Tensor, c: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
    """(x, y) in a primitive's local frame: R(yaw)^T applied, with c, s = cos, sin of yaw."""
    return c * x + s * y, -s * x + c * y


def intersect_pairs(
    table: PrimitiveTable, origins: Tensor, dirs: Tensor, prim: Tensor
) -> Float[Tensor, " m"]:
    """Ray parameter of the first hit of ray m with solid ``prim[m]`` (inf if none).

    origins, dirs: (m, 3) world frame; prim: (m,) indices of solids (not room faces).
    Rays starting inside a solid do not hit it (cameras never start inside furniture).
    """
    center = table.center[prim]
    half = table.half[prim]
    c, s = table.cos_yaw[prim], table.sin_yaw[prim]
    kind = table.kind[prim]
    rel = origins - center
    ox, oy = rotate_to_local(rel[:, 0], rel[:, 1], c, s)
    oz = rel[:, 2]
    dx, dy = rotate_to_local(dirs[:, 0], dirs[:, 1], c, s)
    dz = dirs[:, 2]
    o = torch.stack([ox, oy, oz], dim=1)
    d = torch.stack([dx, dy, dz], dim=1)
    d_safe = torch.where(d.abs() < 1e-12, torch.full_like(d, 1e-12), d)
    inv = 1.0 / d_safe
    t1 = (-half - o) * inv
    t2 = (half - o) * inv
    tmin = torch.minimum(t1, t2)
    tmax = torch.maximum(t1, t2)
    # Box: intersection of the three slabs.
    box_near = tmin.amax(dim=1)
    box_far = tmax.amin(dim=1)
    # Cylinder (axis local z): infinite cylinder ∩ z slab.
    r = half[:, 0]
    a = dx * dx + dy * dy
    bh = ox * dx + oy * dy
    cc = ox * ox + oy * oy - r * r
    disc = bh * bh - a * cc
    sq = disc.clamp_min(0.0).sqrt()
    a_safe = a.clamp_min(1e-12)
    cyl_near = torch.maximum((-bh - sq) / a_safe, tmin[:, 2])
    cyl_far = torch.minimum((-bh + sq) / a_safe, tmax[:, 2])
    cyl_ok = disc >= 0
    # Rays (almost) parallel to the axis: inside the radius -> only the caps bound the hit.
    parallel = a < 1e-12
    cyl_near = torch.where(parallel, tmin[:, 2], cyl_near)
    cyl_far = torch.where(parallel, tmax[:, 2], cyl_far)
    cyl_ok = torch.where(parallel, cc <= 0, cyl_ok)
    # Sphere.
    a3 = (d * d).sum(dim=1)
    b3 = (o * d).sum(dim=1)
    c3 = (o * o).sum(dim=1) - r * r
    disc3 = b3 * b3 - a3 * c3
    sq3 = disc3.clamp_min(0.0).sqrt()
    sph_near = (-b3 - sq3) / a3.clamp_min(1e-12)
    sph_far = (-b3 + sq3) / a3.clamp_min(1e-12)

    is_box = kind == KIND_BOX
    is_cyl = kind == KIND_CYLINDER
    t_near = torch.where(is_box, box_near, torch.where(is_cyl, cyl_near, sph_near))
    t_far = torch.where(is_box, box_far, torch.where(is_cyl, cyl_far, sph_far))
    ok = torch.where(is_box, torch.ones_like(cyl_ok), torch.where(is_cyl, cyl_ok, disc3 >= 0))
    ok = ok & (kind != KIND_ROOM_FACE) & (t_near <= t_far) & (t_near > EPS)
    return torch.where(ok, t_near, torch.full_like(t_near, math.inf))

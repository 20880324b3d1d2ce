"""Optional lighting terms of ``raycast.shade``: shadows, point lights, ambient occlusion.

All three work on surface points (world frame, metres) with their normals and primitives and use
the analytic primitives of the packed ``PrimitiveTable``:

* **shadows** (``Scene.shadows``): one shadow ray per point that faces the light; the key light
  (directional) and each point light light only the points whose ray reaches them. Only solids
  cast shadows: the room's faces do not block the key light (it enters as through a skylight,
  as in the unshadowed look). Point-light rays start at the light,
  so a solid that contains the light (a lamp shade) does not shadow it.
* **point lights**: inverse-square falloff, ``scene.POINT_LIGHT_GAIN * intensity * color *
  max(n . l, 0) / max(d, 0.1 m)^2``.
* **ambient occlusion** (``Scene.ao_strength``): signed-distance AO. The scene's distance field
  (inside of the room box ∪ every solid's analytic box / cylinder / sphere SDF, the point's own
  primitive left out) is sampled at ``AO_DISTANCES`` along the normal; a sample at height h whose
  nearest surface is closer than h is occluded by (h - sdf) / h, and the weighted sum ``occ`` in
  [0, 1] darkens the ambient, fill and bounce light by ``1 - ao_strength * occ``. Corners of the
  room, the floor under and next to furniture and creases between parts darken within ~0.3 m.

Culling: points are taken in runs of ``GROUP`` consecutive points (the renderer hands them over
in 4×4 pixel tiles, so a run is spatially compact); each run's bounds are tested against each
solid's bounding box, and only the (point, solid) pairs that pass, refined per pair, are
intersected exactly.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from semanticsplat_ros.data.intersect import intersect_pairs, rotate_to_local
from semanticsplat_ros.data.scene import (
    KIND_CYLINDER,
    KIND_ROOM_FACE,
    KIND_SPHERE,
    POINT_LIGHT_GAIN,
    PointLight,
    PrimitiveTable,
    Scene,
)

GROUP = 16
"""Consecutive points culled together."""

AO_DISTANCES = (0.05, 0.14, 0.3)
"""Heights (metres) along the normal at which ambient occlusion samples the distance field."""

AO_WEIGHTS = (0.4, 0.35, 0.25)
"""Weights of the AO samples (sum 1)."""

_OFFSET = 1e-3
"""Shadow rays start this far (metres) off the surface along the normal."""


def _group_bounds(x: Float[Tensor, "n k"]) -> tuple[Float[Tensor, "g k"], Float[Tensor, "g k"]]:
    """Per-coordinate min and max of every run of GROUP consecutive rows (last run padded)."""
    n = x.shape[0]
    pad = (-n) % GROUP
    if pad:
        x = torch.cat([x, x[-1:].expand(pad, -1)])
    runs = x.reshape(-1, GROUP, x.shape[1])
    return runs.amin(dim=1), runs.amax(dim=1)


def _expand(mask: Bool[Tensor, "g p"], n: int) -> tuple[Int[Tensor, " m"], Int[Tensor, " m"]]:
    """(point, column) pairs for every point of every run whose mask entry is set."""
    run, col = torch.nonzero(mask, as_tuple=True)
    point = (run[:, None] * GROUP + torch.arange(GROUP, device=mask.device)).reshape(-1)
    col = col[:, None].expand(-1, GROUP).reshape(-1)
    keep = point < n
    return point[keep], col[keep]


def _solids(table: PrimitiveTable) -> Int[Tensor, " p"]:
    return torch.nonzero(table.kind != KIND_ROOM_FACE)[:, 0]


def _light_frame(light: Tensor) -> Tensor:
    """(3, 3) rows e1, e2, light: an orthonormal frame whose third axis points to the light."""
    helper = (
        torch.tensor([1.0, 0.0, 0.0])
        if abs(float(light[2])) > 0.9
        else torch.tensor([0.0, 0.0, 1.0])
    )
    e1 = torch.linalg.cross(light, helper.to(light))
    e1 = e1 / e1.norm()
    e2 = torch.linalg.cross(light, e1)
    return torch.stack([e1, e2, light])


def key_light_visibility(
    table: PrimitiveTable,
    points: Float[Tensor, "n 3"],
    normals: Float[Tensor, "n 3"],
    prim: Int[Tensor, " n"],
    light_dir: Float[Tensor, " 3"],
) -> Bool[Tensor, " n"]:
    """Whether each point sees the directional light ``light_dir`` (unit, towards the light).

    Points facing away from the light are reported visible (their key term is 0 anyway).
    """
    n = points.shape[0]
    visible = torch.ones(n, dtype=torch.bool, device=points.device)
    solids = _solids(table)
    idx = torch.nonzero(normals @ light_dir > 0)[:, 0]
    if solids.numel() == 0 or idx.numel() == 0:
        return visible
    frame = _light_frame(light_dir)
    origins = points[idx] + _OFFSET * normals[idx]
    coords = origins @ frame.T  # (m, 3): e1, e2, towards the light
    lo, hi = table.aabb_min[solids], table.aabb_max[solids]
    bits = torch.tensor([[(k >> i) & 1 for i in range(3)] for k in range(8)], device=lo.device)
    corners = torch.where(bits[None].bool(), hi[:, None], lo[:, None]) @ frame.T  # (p, 8, 3)
    s_lo, s_hi = corners.amin(dim=1), corners.amax(dim=1)
    g_lo, g_hi = _group_bounds(coords)
    mask = (g_lo[:, None, :2] <= s_hi[None, :, :2]).all(-1)
    mask &= (g_hi[:, None, :2] >= s_lo[None, :, :2]).all(-1)
    mask &= g_lo[:, None, 2] < s_hi[None, :, 2]
    point, col = _expand(mask, idx.numel())
    c = coords[point]
    keep = (c[:, :2] >= s_lo[col, :2]).all(-1) & (c[:, :2] <= s_hi[col, :2]).all(-1)
    keep &= (c[:, 2] < s_hi[col, 2]) & (solids[col] != prim[idx[point]])
    point, col = point[keep], col[keep]
    t = intersect_pairs(table, origins[point], light_dir.expand(point.numel(), 3), solids[col])
    blocked = point[torch.isfinite(t)]
    visible[idx[blocked]] = False
    return visible


def _bounding_spheres(table: PrimitiveTable, solids: Tensor) -> tuple[Tensor, Tensor]:
    """Centres (p, 3) and radii (p,) of spheres that contain the solids."""
    return table.center[solids], table.half[solids].norm(dim=1)


def _segment_blocked(
    table: PrimitiveTable, start: Float[Tensor, " 3"], ends: Float[Tensor, "m 3"], own: Tensor
) -> Bool[Tensor, " m"]:
    """Whether a solid (other than ``own``) crosses the segment from ``start`` to each end.

    Culling: the cone from ``start`` around each run's bounding sphere against the solids'
    bounding spheres, then each segment against the spheres.
    """
    m = ends.shape[0]
    blocked = torch.zeros(m, dtype=torch.bool, device=ends.device)
    solids = _solids(table)
    if solids.numel() == 0 or m == 0:
        return blocked
    centre, radius = _bounding_spheres(table, solids)
    g_lo, g_hi = _group_bounds(ends)
    g_dir = (g_lo + g_hi) / 2 - start
    g_dist = g_dir.norm(dim=1).clamp_min(1e-6)
    g_rad = (g_hi - g_lo).norm(dim=1) / 2
    s_dir = centre - start
    s_dist = s_dir.norm(dim=1).clamp_min(1e-6)
    cos = ((g_dir / g_dist[:, None]) @ (s_dir / s_dist[:, None]).T).clamp(-1.0, 1.0)
    g_ang = torch.asin((g_rad / g_dist).clamp_max(1.0))
    s_ang = torch.asin((radius / s_dist).clamp_max(1.0))
    mask = torch.acos(cos) <= g_ang[:, None] + s_ang[None] + 1e-3
    mask &= (s_dist - radius)[None] <= (g_dist + g_rad)[:, None]
    point, col = _expand(mask, m)
    seg = [ends[:, a][point] - start[a] for a in range(3)]
    rel = [s_dir[:, a][col] for a in range(3)]
    seg2 = (seg[0] * seg[0] + seg[1] * seg[1] + seg[2] * seg[2]).clamp_min(1e-12)
    along = ((seg[0] * rel[0] + seg[1] * rel[1] + seg[2] * rel[2]) / seg2).clamp(0.0, 1.0)
    gap2 = sum((r - along * g) ** 2 for r, g in zip(rel, seg, strict=True))
    keep = (gap2 <= radius[col] ** 2) & (solids[col] != own[point])
    point, col = point[keep], col[keep]
    seg = ends[point] - start
    t = intersect_pairs(table, start.expand(point.numel(), 3), seg, solids[col])
    margin = 2 * _OFFSET / seg.norm(dim=1).clamp_min(1e-6)
    blocked[point[t < 1.0 - margin]] = True
    return blocked


def point_light_radiance(
    table: PrimitiveTable,
    points: Float[Tensor, "n 3"],
    normals: Float[Tensor, "n 3"],
    prim: Int[Tensor, " n"],
    lights: tuple[PointLight, ...],
    shadows: bool,
) -> Float[Tensor, "n 3"]:
    """Irradiance (RGB, multiplies the albedo) of the point lights at each point."""
    out = torch.zeros_like(points)
    f32 = {"dtype": points.dtype, "device": points.device}
    for light in lights:
        pos = torch.tensor(light.position, **f32)
        to_light = pos - points
        dist2 = (to_light * to_light).sum(dim=1)
        cos = ((normals * to_light).sum(dim=1) / dist2.sqrt().clamp_min(1e-9)).clamp_min(0.0)
        gain = POINT_LIGHT_GAIN * light.intensity * cos / dist2.clamp_min(0.01)
        if shadows:
            idx = torch.nonzero(gain > 0)[:, 0]
            ends = points[idx] + _OFFSET * normals[idx]
            dark = idx[_segment_blocked(table, pos, ends, prim[idx])]
            gain[dark] = 0.0
        out += gain[:, None] * torch.tensor(light.color, **f32)
    return out


def _sdf_pairs(
    table: PrimitiveTable,
    points: Float[Tensor, "m 3"],
    normals: Float[Tensor, "m 3"],
    heights: Float[Tensor, " k"],
    solid: Int[Tensor, " m"],
) -> Float[Tensor, "k m"]:
    """Signed distance of ``points + heights * normals`` to the solids ``solid``.

    Coordinates are kept as separate (k, m) tensors: torch's CPU kernels are much faster on
    those than on broadcast (m, k, 3) layouts.
    """
    rel = points - table.center[solid]
    c, s = table.cos_yaw[solid], table.sin_yaw[solid]
    px, py = rotate_to_local(rel[:, 0], rel[:, 1], c, s)
    nx, ny = rotate_to_local(normals[:, 0], normals[:, 1], c, s)
    h = heights[:, None]
    x = px + h * nx
    y = py + h * ny
    z = rel[:, 2] + h * normals[:, 2]
    half = table.half[solid]
    hx, hy, hz = half[:, 0], half[:, 1], half[:, 2]
    qx, qy, qz = x.abs() - hx, y.abs() - hy, z.abs() - hz
    outside = torch.sqrt(qx.clamp_min(0) ** 2 + qy.clamp_min(0) ** 2 + qz.clamp_min(0) ** 2)
    out = outside + torch.maximum(torch.maximum(qx, qy), qz).clamp_max(0)  # boxes
    kind = table.kind[solid]
    cyl = kind == KIND_CYLINDER
    if bool(cyl.any()):
        qr = torch.sqrt(x * x + y * y) - hx
        d_cyl = torch.sqrt(qr.clamp_min(0) ** 2 + qz.clamp_min(0) ** 2)
        d_cyl = d_cyl + torch.maximum(qr, qz).clamp_max(0)
        out = torch.where(cyl, d_cyl, out)
    sph = kind == KIND_SPHERE
    if bool(sph.any()):
        out = torch.where(sph, torch.sqrt(x * x + y * y + z * z) - hx, out)
    return out


def ambient_occlusion(
    scene: Scene,
    table: PrimitiveTable,
    points: Float[Tensor, "n 3"],
    normals: Float[Tensor, "n 3"],
    prim: Int[Tensor, " n"],
) -> Float[Tensor, " n"]:
    """Factor in [1 - ao_strength, 1] for the ambient, fill and bounce light (see module doc)."""
    n = points.shape[0]
    f32 = {"dtype": points.dtype, "device": points.device}
    heights = torch.tensor(AO_DISTANCES, **f32)
    weights = torch.tensor(AO_WEIGHTS, **f32)
    sdf = torch.full((len(AO_DISTANCES), n), float("inf"), **f32)  # (k, n)
    for axis in range(3):
        coord = points[:, axis] + heights[:, None] * normals[:, axis]
        lo, hi = scene.room_min[axis], scene.room_max[axis]
        sdf = torch.minimum(sdf, torch.minimum(coord - lo, hi - coord))
    solids = _solids(table)
    if solids.numel() and n:
        reach = AO_DISTANCES[-1]
        lo, hi = table.aabb_min[solids], table.aabb_max[solids]
        g_lo, g_hi = _group_bounds(points)
        mask = ((g_lo[:, None] - reach <= hi[None]) & (g_hi[:, None] + reach >= lo[None])).all(-1)
        point, col = _expand(mask, n)
        gap = torch.zeros(point.shape, **f32)
        for axis in range(3):
            x = points[:, axis][point]
            d = torch.maximum(lo[:, axis][col] - x, x - hi[:, axis][col]).clamp_min(0)
            gap += d * d
        keep = (gap <= reach * reach) & (solids[col] != prim[point])
        point, col = point[keep], col[keep]
        d = _sdf_pairs(table, points[point], normals[point], heights, solids[col])
        sdf = sdf.scatter_reduce(1, point.expand(len(AO_DISTANCES), -1), d, reduce="amin")
    occ = (((heights[:, None] - sdf) / heights[:, None]).clamp(0.0, 1.0) * weights[:, None]).sum(0)
    return 1.0 - scene.ao_strength * occ


__all__ = [
    "AO_DISTANCES",
    "AO_WEIGHTS",
    "GROUP",
    "ambient_occlusion",
    "key_light_visibility",
    "point_light_radiance",
]
